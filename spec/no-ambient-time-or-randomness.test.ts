/**
 * The rule of a pure core (docs/how-it-works.md, "Design notes"): time comes from Effect's `Clock` and randomness from the `SecureRandom`
 * service, so that `TestClock` and a seeded generator drive every test. Nothing in `src/` may read
 * the wall clock or draw random bytes directly, except the live layer in `src/internal/live/`.
 *
 * The one sanctioned path out of the live folder is an import of its bindings (the live
 * SecureRandom layer calls `randomBytes` from `src/internal/live/secureRandom.ts`): a bare use of
 * a name imported from `internal/live/` is allowed; the same name taken from anywhere else, or
 * used as a property (`crypto.randomBytes`), is not.
 */
import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const SRC = fileURLToPath(new URL("../src/", import.meta.url))
const LIVE_DIR = "internal/live/"

const FORBIDDEN: ReadonlyArray<readonly [string, RegExp]> = [
  ["Date.now(", /\bDate\s*\.\s*now\s*\(/g],
  ["Math.random(", /\bMath\s*\.\s*random\s*\(/g],
  ["new Date()", /\bnew\s+Date\s*\(\s*\)/g],
  ["randomBytes", /randomBytes/g],
  ["randomFill", /randomFill/g],
  ["getRandomValues", /getRandomValues/g],
  ["randomUUID", /randomUUID/g],
  ["randomInt", /randomInt/g]
]

interface Violation {
  readonly file: string
  readonly line: number
  readonly rule: string
  readonly text: string
}

/** Local names bound by imports from a module under `internal/live/`. */
const liveBindings = (source: string): ReadonlySet<string> => {
  const names = new Set<string>()
  const importRe = /import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*["']([^"']+)["']/g
  for (const m of source.matchAll(importRe)) {
    if (!/(^|\/)internal\/live\/|^\.\/live\/|^\.\.?\/live\//.test(m[2]!)) continue
    for (const spec of m[1]!.split(",")) {
      const local = spec.trim().split(/\s+as\s+/).pop()?.trim()
      if (local) names.add(local)
    }
  }
  return names
}

/** The identifier around position `index` of `line`, and whether it is a property access. */
const wordAt = (line: string, index: number): { readonly word: string; readonly property: boolean } => {
  let start = index
  while (start > 0 && /[\w$]/.test(line[start - 1]!)) start--
  let end = index
  while (end < line.length && /[\w$]/.test(line[end]!)) end++
  let before = start - 1
  while (before >= 0 && /\s/.test(line[before]!)) before--
  return { word: line.slice(start, end), property: before >= 0 && (line[before] === "." || line.slice(before - 1, before + 1) === "?.") }
}

/** The violations of one source text. */
const scan = (file: string, source: string): ReadonlyArray<Violation> => {
  const allowed = liveBindings(source)
  const out: Array<Violation> = []
  let inBlockComment = false
  source.split("\n").forEach((raw, i) => {
    const trimmed = raw.trim()
    if (inBlockComment) {
      if (trimmed.includes("*/")) inBlockComment = false
      return
    }
    if (trimmed.startsWith("/*")) {
      if (!trimmed.includes("*/")) inBlockComment = true
      return
    }
    if (trimmed.startsWith("//") || trimmed.startsWith("*")) return
    for (const [rule, re] of FORBIDDEN) {
      for (const m of raw.matchAll(re)) {
        const { property, word } = wordAt(raw, m.index)
        if (/^random/.test(rule) || rule === "getRandomValues") {
          if (!property && allowed.has(word)) continue
        }
        out.push({ file, line: i + 1, rule, text: trimmed })
      }
    }
  })
  return out
}

const sourceFiles = (): ReadonlyArray<string> =>
  (readdirSync(SRC, { recursive: true, encoding: "utf8" }) as Array<string>)
    .map((f) => f.split("\\").join("/"))
    .filter((f) => /\.(ts|mts|cts|js|mjs|cjs|tsx)$/.test(f))
    .filter((f) => !f.startsWith(LIVE_DIR))
    .sort()

describe("no ambient time or randomness in src/ (outside src/internal/live/)", () => {
  it("the scanner finds violations and ignores comments and live-layer imports (self-test)", () => {
    const flagged = (text: string) => scan("x.ts", text).map((v) => v.rule)
    deepStrictEqual(flagged("const t = Date.now()"), ["Date.now("])
    deepStrictEqual(flagged("const t = Date . now ()"), ["Date.now("])
    deepStrictEqual(flagged("const r = Math.random() * 10"), ["Math.random("])
    deepStrictEqual(flagged("const d = new Date()"), ["new Date()"])
    deepStrictEqual(flagged("const d = new Date(0)"), [])
    deepStrictEqual(flagged("import { randomBytes } from \"node:crypto\""), ["randomBytes"])
    deepStrictEqual(flagged("import * as crypto from \"node:crypto\"\nconst b = crypto.randomBytes(8)"), ["randomBytes"])
    deepStrictEqual(flagged("globalThis.crypto.getRandomValues(buf)"), ["getRandomValues"])
    deepStrictEqual(flagged("const id = crypto.randomUUID()"), ["randomUUID"])
    deepStrictEqual(flagged("import { randomFillSync, randomInt } from \"node:crypto\""), ["randomFill", "randomInt"])
    deepStrictEqual(flagged("// Date.now() is forbidden\n * Math.random() too\n/* new Date() */"), [])
    deepStrictEqual(flagged("/**\n * randomBytes\n * Date.now()\n */\nconst x = 1"), [])
    // The sanctioned path: a binding of the live layer, used bare.
    deepStrictEqual(
      flagged("import { randomBytes } from \"./internal/live/secureRandom.js\"\nconst f = (n) => randomBytes(n)"),
      []
    )
    // …but not the same name used as a property, nor imported from elsewhere.
    deepStrictEqual(
      flagged("import { randomBytes } from \"./internal/live/secureRandom.js\"\nconst b = crypto.randomBytes(8)"),
      ["randomBytes"]
    )
    deepStrictEqual(
      flagged("import { randomBytes } from \"./internal/lively.js\"\nrandomBytes(8)"),
      ["randomBytes", "randomBytes"]
    )
  })

  it("finds the source files (the scan is not vacuous)", () => {
    const files = sourceFiles()
    for (const f of ["Session.ts", "SessionConfig.ts", "Ids.ts", "SecureRandom.ts", "Codec.ts", "internal/hash.ts", "internal/ip.ts"]) {
      assert.include(files, f)
    }
    assert.isFalse(files.some((f) => f.startsWith(LIVE_DIR)))
  })

  it("no file under src/ outside src/internal/live/ reads the clock or draws randomness directly", () => {
    const violations = sourceFiles().flatMap((f) => scan(`src/${f}`, readFileSync(join(SRC, f), "utf8")))
    deepStrictEqual(
      violations.map((v) => `${v.file}:${v.line}: ${v.rule} in: ${v.text}`),
      [],
      "use Effect's Clock for time and the SecureRandom service for randomness"
    )
  })
})
