/**
 * The README stays true: its quick start is `examples/quick-start.ts` verbatim, its configuration
 * table names every option, and the files it links to exist.
 */
import { assert, describe, it } from "@effect/vitest"
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as SessionConfig from "../src/SessionConfig.js"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const readme = readFileSync(join(root, "README.md"), "utf8")

describe("README", () => {
  it("the quick start is a verbatim copy of examples/quick-start.ts", () => {
    const example = readFileSync(join(root, "examples/quick-start.ts"), "utf8").trimEnd()
    assert.include(readme, "```ts\n" + example + "\n```")
  })

  it("the configuration table names every option", () => {
    const options = Object.keys(SessionConfig.defaults).flatMap((k) =>
      k === "cookie" ? Object.keys(SessionConfig.defaults.cookie).map((c) => `cookie.${c}`) : [k]
    )
    for (const option of options) assert.include(readme, `| \`${option}\` |`, `option ${option}`)
  })

  it("every relative link points at a file that exists", () => {
    const links = [...readme.matchAll(/\]\(((?:spec|src|examples|bench|docs)\/[^)#]+)\)/g)].map((m) => m[1]!)
    assert.isAbove(links.length, 5)
    for (const link of links) assert.isTrue(existsSync(join(root, link)), `README links to a missing ${link}`)
  })

  it("the two setup commands and the demo command are there", () => {
    for (const command of ["npm ci", "npm test", "npm run demo"]) assert.include(readme, command)
  })
})
