/**
 * Test helpers for the documentation: the markdown files a user reads (the README, the guides
 * under docs/, bench/README.md, examples/demo/README.md), their fenced code blocks, their
 * headings as GitHub anchors, and their relative links.
 */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

/** The repository root. */
export const root = join(dirname(fileURLToPath(import.meta.url)), "../..")

/** The documentation, as paths relative to the root. */
export const markdownFiles: ReadonlyArray<string> = [
  "README.md",
  ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`),
  "bench/README.md",
  "examples/demo/README.md"
]

/** A file's text, by its path relative to the root. */
export const read = (path: string): string => readFileSync(join(root, path), "utf8")

/** A fenced code block: its language tag (empty when none), its text and its first line. */
export interface CodeBlock {
  readonly file: string
  readonly lang: string
  readonly code: string
  readonly line: number
}

/** The fenced code blocks of a markdown file. */
export const codeBlocks = (file: string): ReadonlyArray<CodeBlock> => {
  const blocks: Array<CodeBlock> = []
  const lines = read(file).split("\n")
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!)
    if (open === null) continue
    const start = i
    const body: Array<string> = []
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]!)
    blocks.push({ file, lang: open[1]!, code: body.join("\n"), line: start + 1 })
  }
  return blocks
}

/** The lines of a text without their common leading indentation, trailing spaces trimmed. */
export const dedent = (lines: ReadonlyArray<string>): ReadonlyArray<string> => {
  const trimmed = lines.map((l) => l.trimEnd())
  const indents = trimmed.filter((l) => l !== "").map((l) => l.length - l.trimStart().length)
  const indent = indents.length === 0 ? 0 : Math.min(...indents)
  return trimmed.map((l) => l.slice(indent))
}

/** Whether `excerpt` is a run of consecutive lines of `text`, up to a common indentation. */
export const isExcerpt = (excerpt: string, text: string): boolean => {
  const wanted = dedent(excerpt.split("\n")).join("\n")
  const lines = text.split("\n")
  const n = excerpt.split("\n").length
  for (let i = 0; i + n <= lines.length; i++) {
    if (dedent(lines.slice(i, i + n)).join("\n") === wanted) return true
  }
  return false
}

/** Every `.ts` file under a folder, recursively, as paths relative to the root. */
export const typeScriptFiles = (folder: string): ReadonlyArray<string> =>
  readdirSync(join(root, folder), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort()

/** The GitHub anchor of a heading ("Why `__Host-id`" → "why-__host-id"). */
export const anchorOf = (heading: string): string =>
  heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-")

/** The anchors of a markdown file's headings (outside code blocks). */
export const anchors = (file: string): ReadonlySet<string> => {
  const text = read(file).replace(/^```[\s\S]*?^```$/gm, "")
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1]!)))
}

/** A relative link of a markdown file: its target resolved against the root, and its anchor. */
export interface Link {
  readonly file: string
  readonly target: string
  readonly anchor: string | undefined
}

/** The relative links (not `http:`, `https:`, `mailto:`) of a markdown file, outside code blocks. */
export const relativeLinks = (file: string): ReadonlyArray<Link> => {
  const text = read(file).replace(/^```[\s\S]*?^```$/gm, "")
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((href) => !/^(https?|mailto):/.test(href))
    .map((href) => {
      const [path = "", anchor] = href.split("#")
      return { file, target: path === "" ? file : relative(root, join(root, dirname(file), path)), anchor }
    })
}
