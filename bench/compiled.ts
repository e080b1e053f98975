/**
 * The bench measures the library as it ships: compiled by `tsc` to plain JavaScript and run by
 * plain `node`, not through `tsx`. Run from source, tsx's esbuild transform keeps function names
 * by wrapping every named closure in a `__name(fn, "…")` call (an `Object.defineProperty` each
 * time the closure is created): 8 % of the self time of a `Sessions.update` loop in its profile,
 * a cost the published package does not have and the other servers (plain JavaScript from
 * `node_modules`, which tsx leaves alone) never pay. `bench/run.ts` compiles `bench/` (and what it
 * imports: `src/`, a test helper) into a fresh folder under `.bench-build/`, runs itself from
 * there, and removes the folder; every child process (servers, memory children) starts from the
 * same compiled files. `--source` runs the TypeScript through tsx instead.
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmdirSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

/** True when this module runs as compiled JavaScript (from `.bench-build/`). */
export const isCompiled: boolean = import.meta.url.endsWith(".js")

/** The root of the compiled tree this module belongs to (the repository root when run from source). */
const treeRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..")

/**
 * The node arguments that run a bench script given by its source path (`bench/servers/node.ts`):
 * its compiled file when the bench runs compiled, else the TypeScript through tsx.
 */
export const scriptArgs = (file: string): ReadonlyArray<string> =>
  isCompiled ? [join(treeRoot, file.replace(/\.ts$/, ".js"))] : ["--import", "tsx", file]

/** How the measured code runs, for the results' settings. */
export const codeSetting: string = isCompiled
  ? "compiled by tsc and run by node, as the package ships (bench/compiled.ts)"
  : "TypeScript through tsx (--source)"

/**
 * Compiles the bench into a fresh folder under `.bench-build/` (inside the repository, so that
 * its files find `node_modules` and the `"type": "module"` of `package.json`), runs `bench/run.js`
 * there with `args` and the same stdio, removes the folder, and resolves with the exit code.
 */
export const runCompiled = async (args: ReadonlyArray<string>): Promise<number> => {
  mkdirSync(".bench-build", { recursive: true })
  const out = mkdtempSync(join(".bench-build", "run-"))
  try {
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
    process.stdout.write(`compiling the bench and the library with tsc into ${out} …\n`)
    execFileSync(process.execPath, [tsc, "-p", "tsconfig.bench.json", "--outDir", out], { stdio: "inherit" })
    const child = spawn(process.execPath, [join(out, "bench/run.js"), ...args], { stdio: "inherit" })
    // Ctrl-C reaches the child too (same process group); a SIGTERM to this process alone is passed
    // on. Either way this process waits for the child to clean up, then removes the folder.
    const onSignal = (signal: NodeJS.Signals) => {
      if (signal === "SIGTERM") child.kill("SIGTERM")
    }
    process.on("SIGINT", onSignal)
    process.on("SIGTERM", onSignal)
    const code = await new Promise<number>((done) => child.once("exit", (c, signal) => done(c ?? (signal ? 1 : 0))))
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
    return code
  } finally {
    rmSync(out, { recursive: true, force: true })
    try {
      rmdirSync(".bench-build") // only when no other run is using it
    } catch {
      // another run's folder is still there
    }
  }
}
