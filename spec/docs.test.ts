/**
 * Every export of a public module carries a TSDoc comment (it becomes the API reference), and
 * every public module opens with a module comment. Every TypeScript block of the README and the
 * guides is an excerpt of a file under examples/ (which the suite type-checks, and runs where it
 * can), and nothing speaks of design documents the repository does not hold.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"
import { codeBlocks, isExcerpt, markdownFiles, read, root, typeScriptFiles } from "./helpers/markdown.js"
const publicModules = [
  ...readdirSync(join(root, "src")).filter((f) => f.endsWith(".ts")).map((f) => join(root, "src", f)),
  ...readdirSync(join(root, "src/Persistence")).filter((f) => f.endsWith(".ts")).map((f) => join(root, "src/Persistence", f))
]

describe("API documentation", () => {
  it("covers the public modules", () => {
    assert.isAtLeast(publicModules.length, 15)
  })

  for (const file of publicModules) {
    const name = relative(root, file)
    it(`${name}: a module comment and a doc comment on every export`, () => {
      const text = readFileSync(file, "utf8")
      const lines = text.split("\n")
      if (!name.endsWith("index.ts")) assert.match(text, /^\/\*\*[\s\S]*?@module[\s\S]*?\*\//, "module comment with @module")
      const seen = new Set<string>()
      lines.forEach((line, i) => {
        if (!/^export (declare )?(const|function|class|interface|type|abstract class|\* as)\b/.test(line)) return
        // Overloads of a function share the first signature's comment.
        const overload = /^export function (\w+)/.exec(line)?.[1]
        if (overload !== undefined) {
          if (seen.has(overload)) return
          seen.add(overload)
        }
        let j = i - 1
        while (j >= 0 && lines[j]!.trim() === "") j--
        assert.isTrue(j >= 0 && lines[j]!.trim().endsWith("*/"), `${name}:${i + 1} is exported without a doc comment: ${line}`)
      })
    })
  }
})

describe("code in the documentation", () => {
  const blocks = markdownFiles.flatMap(codeBlocks)
  const checked = blocks.filter((b) => b.lang === "ts")
  const examples = typeScriptFiles("examples").map((file) => ({ file, text: read(file) }))

  it("every block names its language: ts (checked), or sh / text (not code)", () => {
    for (const b of blocks) assert.include(["ts", "sh", "text"], b.lang, `${b.file}:${b.line} opens a block with \`\`\`${b.lang}`)
    assert.isAtLeast(checked.length, 14)
  })

  for (const b of checked) {
    it(`${b.file}:${b.line} is an excerpt of a file under examples/`, () => {
      const source = examples.find((e) => isExcerpt(b.code, e.text))
      assert.isDefined(source, `${b.file}:${b.line}: no file under examples/ holds these lines:\n${b.code}`)
    })
  }
})

describe("no references to documents the repository does not hold", () => {
  // Patterns are spelled in pieces so that this file does not match itself.
  const forbidden: ReadonlyArray<readonly [RegExp, string]> = [
    [new RegExp("\\b" + "DESIGN" + "\\b"), "a design document"],
    [new RegExp("STYLE" + "\\.md"), "a style document"],
    [new RegExp("design " + "brief|\\bthe " + "brief\\b", "i"), "a brief"],
    [new RegExp("\\bthe " + "seed\\b|\\bseed" + "'s\\b|\\bseed " + "(option|document|package|code)", "i"), "the starting document (say rivo/sessions for the Go package)"]
  ]
  // A section sign is fine for external standards (NIST SP 800-63B, RFCs), not for a design document.
  const section = new RegExp("\u00a7")
  const external = /800-63B|RFC \d|NIST/
  const files = [
    ...["src", "spec", "examples", "bench", "scripts"].flatMap((folder) =>
      readdirSync(join(root, folder), { withFileTypes: true, recursive: true })
        .filter((e) => e.isFile() && /\.(ts|mjs|md)$/.test(e.name) && !e.parentPath.includes("results"))
        .map((e) => relative(root, join(e.parentPath, e.name)))
    ),
    ...markdownFiles.filter((f) => !f.includes("/") || f.startsWith("docs/"))
  ].filter((f) => f !== "spec/docs.test.ts")

  it("covers the sources, the tests, the examples and the guides", () => {
    assert.isAtLeast(files.length, 100)
    assert.include(files, "docs/how-it-works.md")
  })

  it("no file mentions them", () => {
    const found: Array<string> = []
    for (const file of files) {
      const passwords = /assword/.test(file)
      read(file).split("\n").forEach((line, i) => {
        for (const [pattern, what] of forbidden) if (pattern.test(line)) found.push(`${file}:${i + 1} (${what}): ${line.trim()}`)
        if (section.test(line) && !passwords && !external.test(line)) found.push(`${file}:${i + 1} (a section of a document): ${line.trim()}`)
      })
    }
    expect(found).toStrictEqual([])
  })
})
