/**
 * No import cycles in `src/`. A public module declares the names and re-exports what its
 * implementation defines; an internal module never imports a public module that imports it back
 * (cycles made the service need an `Effect.suspend` to be built at all, and make the order in
 * which a user's bundler evaluates the modules matter). Type-only imports count too: a type that
 * the implementation needs lives where the implementation can import it.
 *
 * The graph is read with a regular expression over the relative specifiers of `import … from`,
 * `export … from`, bare `import "…"` and `import("…")`, resolving `.js` to the `.ts` beside it.
 */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const SRC = fileURLToPath(new URL("../src/", import.meta.url))

const sources = (dir: string): ReadonlyArray<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sources(join(dir, entry.name))
      : entry.name.endsWith(".ts")
      ? [join(dir, entry.name)]
      : []
  )

const SPECIFIERS: ReadonlyArray<RegExp> = [
  // `import { a } from "./x.js"`, `import type { A } from …`, `export { a } from …`, `export * as X from …`,
  // across lines; a line inside a doc comment starts with `*`, so examples there never match.
  /^[ \t]*(?:import|export)\b[^;"'`]*?\bfrom\s*["'](\.{1,2}\/[^"']+)["']/gm,
  /^[ \t]*import\s*["'](\.{1,2}\/[^"']+)["']/gm,
  /\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g
]

/** The `.ts` file a relative specifier of `from` names (`./x.js` → `./x.ts`), if it is in src/. */
const resolveSpecifier = (from: string, specifier: string): string | undefined => {
  const target = resolve(dirname(from), specifier)
  const candidates = [target.replace(/\.js$/, ".ts"), target, `${target}.ts`, join(target, "index.ts")]
  return candidates.find((c) => c.endsWith(".ts") && existsSync(c))
}

/** Each module of `src/` and the modules of `src/` it imports. */
const importGraph = (): ReadonlyMap<string, ReadonlyArray<string>> => {
  const graph = new Map<string, ReadonlyArray<string>>()
  for (const file of sources(SRC)) {
    const text = readFileSync(file, "utf8")
    const targets = new Set<string>()
    for (const re of SPECIFIERS) {
      for (const m of text.matchAll(re)) {
        const target = resolveSpecifier(file, m[1]!)
        if (target !== undefined) targets.add(target)
      }
    }
    graph.set(file, [...targets].sort())
  }
  return graph
}

/** Every elementary cycle found by a depth-first search, each once (as first met), as paths. */
const cycles = (graph: ReadonlyMap<string, ReadonlyArray<string>>): ReadonlyArray<ReadonlyArray<string>> => {
  const found: Array<ReadonlyArray<string>> = []
  const seen = new Set<string>()
  const state = new Map<string, "open" | "done">()
  const stack: Array<string> = []
  const visit = (node: string) => {
    state.set(node, "open")
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") {
        const cycle = [...stack.slice(stack.indexOf(next)), next]
        // One report per set of modules, whichever module the search entered it by.
        const id = [...new Set(cycle)].sort().join("|")
        if (!seen.has(id)) {
          seen.add(id)
          found.push(cycle)
        }
      } else if (state.get(next) === undefined) {
        visit(next)
      }
    }
    stack.pop()
    state.set(node, "done")
  }
  for (const node of [...graph.keys()].sort()) if (state.get(node) === undefined) visit(node)
  return found
}

/** A cycle as `a → b → a`, from its first module in alphabetical order (however the search met it). */
const show = (cycle: ReadonlyArray<string>) => {
  const ring = cycle.slice(0, -1).map((f) => relative(SRC, f))
  const start = ring.indexOf([...ring].sort()[0]!)
  const from = [...ring.slice(start), ...ring.slice(0, start)]
  return [...from, from[0]].join(" → ")
}

describe("the import graph of src/", () => {
  const graph = importGraph()

  it("is read: the public modules import their internals, and the barrel every public module", () => {
    // A parser that found nothing would pass the next test for nothing.
    const edges = (file: string) => (graph.get(join(SRC, file)) ?? []).map((f) => relative(SRC, f))
    expect(graph.size).toBeGreaterThan(20)
    expect(edges("index.ts")).toContain("Sessions.ts")
    expect(edges("index.ts")).toContain("Http.ts")
    expect(edges("Http.ts")).toContain("internal/http.ts")
    expect(edges("Sessions.ts").some((f) => f.startsWith("internal/sessions"))).toBe(true)
  })

  it("has no cycles (type-only imports count too)", () => {
    const found = cycles(graph).map(show)
    expect(found, `import cycles in src/:\n${found.join("\n")}`).toStrictEqual([])
  })

  it("would report one (the search on a graph with a cycle)", () => {
    const a = join(SRC, "A.ts"), b = join(SRC, "internal/b.ts"), c = join(SRC, "c.ts")
    const withCycle = new Map([[a, [b]], [b, [c]], [c, [a]]])
    expect(cycles(withCycle).map(show)).toStrictEqual(["A.ts → internal/b.ts → c.ts → A.ts"])
    // Entered elsewhere, the same cycle reads the same.
    expect(cycles(new Map([[c, [a]], [b, [c]], [a, [b]]])).map(show)).toStrictEqual(["A.ts → internal/b.ts → c.ts → A.ts"])
    expect(cycles(new Map([[a, [b]], [b, [c]], [c, []]]))).toStrictEqual([])
  })
})
