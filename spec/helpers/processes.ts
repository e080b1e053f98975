/**
 * Child processes for the multi-process and fault tests: start a TypeScript script (node + tsx)
 * and wait for the line that says where it listens, start a private redis-server, find a free
 * loopback port, stop a process politely and then for sure, and build connection URLs.
 *
 * Every process started here is remembered until it exits: `killAll` (for `afterAll`) and a
 * last-resort `exit` hook of the test worker SIGKILL whatever is still running, so a failing
 * test never leaves a server behind.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { connect, createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/**
 * The repository root (the working directory of the scripts): the nearest folder above this
 * module with a `package.json` — this file, or its compiled copy under `.bench-build/` (the bench
 * runs the compiled code, `bench/compiled.ts`).
 */
export const root: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir)
  return dir
})()

const running = new Set<ChildProcess>()

const alive = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null

let hooked = false
const hookExit = () => {
  if (hooked) return
  hooked = true
  process.once("exit", () => {
    for (const child of running) if (alive(child)) child.kill("SIGKILL")
  })
}

/** A running child process, with the tail of what it printed. */
export interface Running {
  readonly child: ChildProcess
  readonly pid: number
  /** The last few kilobytes of stdout and stderr. */
  readonly output: () => string
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s); resolves when it has exited. */
  readonly stop: (graceMs?: number) => Promise<void>
  /** SIGKILL; resolves when it has exited. */
  readonly kill: () => Promise<void>
}

const track = (child: ChildProcess, keepChars: number): Running => {
  hookExit()
  running.add(child)
  let output = ""
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-keepChars)
  }
  child.stdout?.on("data", keep)
  child.stderr?.on("data", keep)
  const exited = new Promise<void>((done) => {
    if (!alive(child)) return done()
    child.once("exit", () => done())
    child.once("error", () => done())
  }).then(() => {
    running.delete(child)
  })
  const stop = async (graceMs = 5000) => {
    if (alive(child)) {
      child.kill("SIGTERM")
      const timer = setTimeout(() => {
        if (alive(child)) child.kill("SIGKILL")
      }, graceMs)
      await exited
      clearTimeout(timer)
    }
    await exited
  }
  const kill = async () => {
    if (alive(child)) child.kill("SIGKILL")
    await exited
  }
  return { child, pid: child.pid ?? -1, output: () => output, exited, stop, kill }
}

/** Kills (SIGKILL) every process started here that still runs, and waits for them. */
export const killAll = async (): Promise<void> => {
  const all = [...running]
  for (const child of all) if (alive(child)) child.kill("SIGKILL")
  await Promise.all(all.map((child) => alive(child) ? new Promise<void>((done) => child.once("exit", () => done())) : Promise.resolve()))
}

/**
 * Starts `node --import tsx <script>` in the repository root with `env` over the current
 * environment, and waits (at most `timeoutMs`) for a line `Listening on http://…`.
 */
export const startScript = (
  script: string,
  env: Record<string, string>,
  options: { readonly timeoutMs?: number; readonly keepChars?: number } = {}
): Promise<Running & { readonly url: string }> =>
  new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const proc = track(child, options.keepChars ?? 8000)
    let settled = false
    let seen = ""
    const timeoutMs = options.timeoutMs ?? 30_000
    const fail = (why: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      void proc.kill().then(() => reject(new Error(`${script}: ${why}\n${proc.output().trim()}`)))
    }
    const timer = setTimeout(() => fail(`no "Listening on" line within ${timeoutMs} ms`), timeoutMs)
    child.stdout!.on("data", (chunk: Buffer) => {
      if (settled) return
      seen = (seen + chunk.toString("utf8")).slice(-4000)
      const match = /^Listening on (http:\/\/127\.0\.0\.1:\d+)\s*$/m.exec(seen)
      if (match !== null) {
        settled = true
        clearTimeout(timer)
        resolvePromise({ ...proc, url: match[1]! })
      }
    })
    child.once("error", (e) => fail(`spawn failed: ${e.message}`))
    void proc.exited.then(() => fail(`exited (code ${child.exitCode}, signal ${child.signalCode})`))
  })

/** A free TCP port on 127.0.0.1 (bound to port 0, read, released). */
export const freePort = (): Promise<number> =>
  new Promise((resolvePromise, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => (port > 0 ? resolvePromise(port) : reject(new Error("no port"))))
    })
  })

/** Whether something accepts TCP connections on 127.0.0.1:`port` now. */
export const listening = (port: number, timeoutMs = 500): Promise<boolean> =>
  new Promise((resolvePromise) => {
    const socket = connect({ host: "127.0.0.1", port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolvePromise(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

export const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms))

/** A private temporary directory and a function that removes it. */
export const tempDir = (prefix: string): { readonly path: string; readonly remove: () => void } => {
  const path = mkdtempSync(join(tmpdir(), prefix))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

/** Options of {@link startRedis}. */
export interface RedisServerOptions {
  readonly port: number
  /** The working directory (the AOF lives there). */
  readonly dir: string
  /** Append-only file with an fsync per write, so that an acknowledged write survives SIGKILL. */
  readonly durable: boolean
  readonly timeoutMs?: number
}

/** The redis-server binary: `redis-server` on the PATH, or $REDIS_SERVER. */
export const redisServerBinary: string = process.env["REDIS_SERVER"] ?? "redis-server"

/**
 * Starts a private `redis-server` on 127.0.0.1:`port` (no RDB snapshots; AOF with
 * `appendfsync always` when `durable`) and waits until it accepts connections.
 */
export const startRedis = async (options: RedisServerOptions): Promise<Running> => {
  const args = [
    "--port", String(options.port),
    "--bind", "127.0.0.1",
    "--save", "",
    "--daemonize", "no",
    "--dir", options.dir,
    "--appendonly", options.durable ? "yes" : "no",
    ...(options.durable ? ["--appendfsync", "always"] : [])
  ]
  const child = spawn(redisServerBinary, args, { cwd: options.dir, stdio: ["ignore", "pipe", "pipe"] })
  const proc = track(child, 4000)
  const failed = new Promise<string>((done) => {
    child.once("error", (e) => done(`spawn failed: ${e.message}`))
    void proc.exited.then(() => done(`exited (code ${child.exitCode}, signal ${child.signalCode})`))
  })
  const deadline = Date.now() + (options.timeoutMs ?? 10_000)
  let failure: string | undefined
  void failed.then((why) => {
    failure = why
  })
  while (Date.now() < deadline) {
    if (failure !== undefined) break
    // "Ready to accept connections" is printed once the AOF is loaded.
    if (/Ready to accept connections/.test(proc.output()) && (await listening(options.port))) return proc
    await sleep(20)
  }
  await proc.kill()
  throw new Error(`redis-server on port ${options.port}: ${failure ?? "not ready in time"}\n${proc.output().trim()}`)
}

// ---- URLs

/** `url` with its query parameters set (e.g. a PostgreSQL `application_name`). */
export const withParams = (url: string, params: Record<string, string>): string => {
  const u = new URL(url)
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v)
  return u.toString()
}

/** `url` pointing at another port of 127.0.0.1. */
export const onLocalPort = (url: string, port: number): string => {
  const u = new URL(url)
  u.hostname = "127.0.0.1"
  u.port = String(port)
  return u.toString()
}

/** The `Cookie`-ready value of a `Set-Cookie` line for `name` (`undefined` when absent). */
export const setCookieValue = (lines: ReadonlyArray<string>, name: string): { readonly value: string; readonly removal: boolean } | undefined => {
  let found: { value: string; removal: boolean } | undefined
  for (const line of lines) {
    const [pair = "", ...attributes] = line.split(";")
    const eq = pair.indexOf("=")
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue
    const value = pair.slice(eq + 1).trim()
    const removal = value === "" || attributes.some((a) => {
      const [k = "", v = ""] = a.split("=")
      const key = k.trim().toLowerCase()
      return (key === "max-age" && Number(v.trim()) <= 0) || (key === "expires" && Date.parse(v.trim()) <= Date.now())
    })
    found = { value, removal }
  }
  return found
}

/** What one `POST /api/counter` of the multi-process test server answered (status 0: a network error). */
export interface Increment {
  readonly status: number
  readonly count: number | undefined
  readonly cookie: { readonly value: string; readonly removal: boolean } | undefined
  readonly error?: string
}

/** One `POST /api/counter` to spec/multiprocess/server.ts with a client's token; network errors are outcomes too. */
export const increment = async (url: string, token: string | undefined, timeoutMs: number): Promise<Increment> => {
  try {
    const response = await fetch(`${url}/api/counter`, {
      method: "POST",
      headers: token === undefined ? {} : { cookie: `id=${token}` },
      signal: AbortSignal.timeout(timeoutMs)
    })
    const text = await response.text()
    const count = response.status === 200 ? (JSON.parse(text) as { count: number }).count : undefined
    return { status: response.status, count, cookie: setCookieValue(response.headers.getSetCookie(), "id") }
  } catch (e) {
    return { status: 0, count: undefined, cookie: undefined, error: String(e) }
  }
}
