// Counts the public surface: the exports of every package entry point (package.json `exports`),
// read from the sources with the TypeScript compiler API (the same names the built .d.ts carry).
// Run: node scripts/count-exports.mjs [--names]
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
const entries = Object.entries(pkg.exports)
  .filter(([, target]) => typeof target === "object")
  .map(([name, target]) => [name, join(root, target.import.replace(/^\.\/dist\//, "src/").replace(/\.js$/, ".ts"))])

const program = ts.createProgram(entries.map(([, file]) => file), {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  skipLibCheck: true,
  noEmit: true
})
const checker = program.getTypeChecker()
const names = process.argv.includes("--names")
let total = 0
for (const [name, file] of entries) {
  const source = program.getSourceFile(file)
  const symbol = source && checker.getSymbolAtLocation(source)
  const exports = symbol ? checker.getExportsOfModule(symbol).map((s) => s.name).sort() : []
  total += exports.length
  console.log(`${name.padEnd(24)} ${String(exports.length).padStart(4)}${names ? `  ${exports.join(", ")}` : ""}`)
}
console.log(`${"total".padEnd(24)} ${String(total).padStart(4)}`)
