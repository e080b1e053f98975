/**
 * The README and the guides stay true: the quick start is `examples/quick-start.ts` verbatim, the
 * configuration guide's table names every option, every relative link points at a file (and
 * heading) that exists, and the README stays a short user's path that ends with development.
 */
import { assert, describe, it } from "@effect/vitest"
import { existsSync } from "node:fs"
import { join } from "node:path"
import * as SessionConfig from "../src/SessionConfig.js"
import { anchors, markdownFiles, read, relativeLinks, root } from "./helpers/markdown.js"

const readme = read("README.md")

describe("README", () => {
  it("the quick start is a verbatim copy of examples/quick-start.ts", () => {
    const example = read("examples/quick-start.ts").trimEnd()
    assert.include(readme, "```ts\n" + example + "\n```")
  })

  it("is a short path for a user: about 300 lines, development last", () => {
    assert.isAtMost(readme.split("\n").length, 320)
    const sections = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]!)
    assert.strictEqual(sections.at(-1), "Development")
    for (const section of ["Install", "Quick start", "The session API", "Composing the layers", "Configuration at a glance", "Stores at a glance", "Security at a glance", "Guides"]) {
      assert.include(sections, section)
    }
  })

  it("the setup, test, demo, bench, coverage and mutation commands are there", () => {
    for (const command of ["npm ci", "npm test", "npm run demo", "npm run bench", "npm run coverage", "npm run mutation"]) {
      assert.include(readme, command)
    }
  })

  it("links every guide under docs/", () => {
    for (const file of markdownFiles.filter((f) => f !== "README.md")) assert.include(readme, `](${file})`, `README links to ${file}`)
  })
})

describe("the guides", () => {
  it("the configuration guide's table names every option", () => {
    const guide = read("docs/configuration.md")
    const options = Object.keys(SessionConfig.defaults).flatMap((k) =>
      k === "cookie" ? Object.keys(SessionConfig.defaults.cookie).map((c) => `cookie.${c}`) : [k]
    )
    for (const option of options) assert.include(guide, `| \`${option}\` |`, `option ${option}`)
  })

  it("every relative link points at a file that exists, and at a heading it has", () => {
    const links = markdownFiles.flatMap(relativeLinks)
    assert.isAbove(links.length, 40)
    for (const link of links) {
      assert.isTrue(existsSync(join(root, link.target)), `${link.file} links to a missing ${link.target}`)
      if (link.anchor !== undefined && link.target.endsWith(".md")) {
        assert.isTrue(anchors(link.target).has(link.anchor), `${link.file} links to a missing heading ${link.target}#${link.anchor}`)
      }
    }
  })
})
