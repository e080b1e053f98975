/**
 * Every export of a public module carries a TSDoc comment (it becomes the API reference), and
 * every public module opens with a module comment.
 */
import { assert, describe, it } from "@effect/vitest"
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
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
