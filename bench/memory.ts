/**
 * Memory per session: heap bytes per session of a small counter session (`{count: n}`, bound to
 * an IP and a user agent, as the HTTP middleware makes them) held
 *  - by the memory store (session, its maps and keys), and
 *  - by the LRU cache: with its own session value, and as the entry alone (the value shared
 *    with the store, which is how the service uses it: the same object in both).
 *
 * Each size runs in a child process (`node --expose-gc --max-old-space-size=8192`):
 * `global.gc()` before and after, `process.memoryUsage().heapUsed` delta / n.
 *
 *   npx tsx bench/memory.ts [--smoke]            (parent: spawns the children)
 *   node --expose-gc --import tsx bench/memory.ts --child <n>   (a child; `bench/run.ts` starts the compiled file)
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { pathToFileURL } from "node:url"
import { Effect, Option } from "effect"
import { Lru } from "../src/internal/lru.js"
import { makeMemoryStore } from "../src/internal/memoryStore.js"
import { scriptArgs } from "./compiled.js"
import * as Session from "../src/Session.js"
import { defaults as DEFAULT_CONFIG } from "../src/SessionConfig.js"
import { NAMES, type Row } from "./report.js"

declare const gc: undefined | (() => void)

interface ChildResult {
  readonly n: number
  readonly store: number
  readonly lruWithValue: number
  readonly lruEntry: number
  readonly session: number
  readonly floor: number
}

const T = 1_700_000_000_000

/**
 * Random bytes for every key, drawn once outside the measured regions (a Buffer lives outside the
 * JS heap, so it does not disturb `heapUsed`); `randomBytes` per key would dominate the run time.
 */
let entropy = Buffer.alloc(0)
const prepare = (n: number) => {
  entropy = randomBytes(64 * n)
}

/** A session as the service makes it for an HTTP client: random key, token key (a SHA-256 in base64url), binding, one counter. */
const makeSession = (i: number): Session.Session => {
  const client = Session.client({
    ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
  })
  const at = (i % (entropy.length / 64)) * 64
  const key = entropy.toString("base64url", at, at + 32)
  const tokenKey = entropy.toString("base64url", at + 32, at + 64)
  return Session.withVersion(Session.set(Session.start({ key, tokenKey, now: T, client }), "count", i % 1000), 2)
}

const heap = () => {
  gc!()
  gc!()
  return process.memoryUsage().heapUsed
}

/** Bytes per item that `build` keeps alive (the result must be returned to stay reachable). */
const perItem = (n: number, build: () => unknown): number => {
  const before = heap()
  const kept = build()
  const after = heap()
  if (kept === undefined) throw new Error("nothing kept")
  return (after - before) / n
}

const child = (n: number): ChildResult => {
  if (typeof gc !== "function") throw new Error("run with --expose-gc")
  prepare(n)
  // warm every code path once, so that compiled code and lazily built structures are not counted
  perItem(1000, () => {
    const store = makeMemoryStore()
    const lru = new Lru<string, Session.TokenRecord>(-1, 3_600_000)
    for (let i = 0; i < 1000; i++) {
      const s = makeSession(i)
      Effect.runSync(store.create(s, T + 1))
      lru.set(s.tokenKey, s, T)
    }
    return [store, lru]
  })

  const session = perItem(n, () => {
    const all = new Array<Session.Session>(n)
    for (let i = 0; i < n; i++) all[i] = makeSession(i)
    return all
  })

  const store = perItem(n, () => {
    const s = makeMemoryStore()
    Effect.runSync(Effect.gen(function*() {
      for (let i = 0; i < n; i++) {
        const value = makeSession(i)
        yield* s.create(value, Session.expiresAt(value, DEFAULT_CONFIG))
      }
    }))
    return s
  })

  const lruWithValue = perItem(n, () => {
    const lru = new Lru<string, Session.TokenRecord>(n, 3_600_000)
    for (let i = 0; i < n; i++) {
      const value = makeSession(i)
      lru.set(value.tokenKey, value, T)
    }
    return lru
  })

  // the entry alone: keys and values already exist (the store holds them)
  const sessions = new Array<Session.Session>(n)
  for (let i = 0; i < n; i++) sessions[i] = makeSession(i)
  const lruEntry = perItem(n, () => {
    const lru = new Lru<string, Session.TokenRecord>(n, 3_600_000)
    for (let i = 0; i < n; i++) lru.set(sessions[i]!.tokenKey, sessions[i]!, T)
    return lru
  })
  if (sessions.length !== n) throw new Error("unreachable")

  // The floor of any store that keeps a session as one object: the same content (keys, IP, the
  // shared user-agent hash, data, three timestamps, version, the deadline) as one plain object
  // with no `Option`, class or wrapper, in the two maps every store of this shape needs (by session
  // key, by token key). What stands between the memory store and 400 B per session.
  const uaHash = Option.getOrThrow(sessions[0]!.userAgentHash)
  const floor = perItem(n, () => {
    const byKey = new Map<string, object>()
    const byToken = new Map<string, string>()
    for (let i = 0; i < n; i++) {
      const at = (i % (entropy.length / 64)) * 64
      const key = entropy.toString("base64url", at, at + 32)
      const tokenKey = entropy.toString("base64url", at + 32, at + 64)
      const now = T + i
      byKey.set(key, {
        key,
        tokenKey,
        createdAt: now,
        idIssuedAt: now,
        lastAccessAt: now,
        userId: undefined,
        ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
        userAgentHash: uaHash,
        data: { count: i % 1000 },
        version: 2,
        authenticatedAt: undefined,
        persistent: undefined,
        expiresAt: now + 1_800_000
      })
      byToken.set(tokenKey, key)
    }
    return [byKey, byToken]
  })
  return { n, store, lruWithValue, lruEntry, session, floor }
}

const running = new Set<ChildProcess>()

/** Kills the memory children still running (on an interrupted run). */
export const killMemoryChildren = (): void => {
  for (const proc of running) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL")
  running.clear()
}

const runChild = (n: number, timeoutMs: number): Promise<ChildResult> =>
  new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      ["--expose-gc", "--max-old-space-size=8192", ...scriptArgs("bench/memory.ts"), "--child", String(n)],
      { cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"] }
    )
    running.add(proc)
    let out = ""
    proc.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")))
    proc.stderr.on("data", (c: Buffer) => (out += c.toString("utf8")))
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs)
    proc.once("error", reject)
    proc.once("exit", (code, signal) => {
      clearTimeout(timer)
      running.delete(proc)
      const line = /^RESULT (.*)$/m.exec(out)
      if (code === 0 && line !== null) resolve(JSON.parse(line[1]!) as ChildResult)
      else reject(new Error(`memory child (n=${n}) exited ${code ?? signal}: ${out.trim().slice(-500)}`))
    })
  })

const label = (n: number) => n >= 1_000_000 ? `${n / 1_000_000}M sessions` : `${(n / 1000).toLocaleString("en-US")}k sessions`

export const runMemory = async (options: { readonly smoke: boolean; readonly log?: (line: string) => void }): Promise<Array<Row>> => {
  const log = options.log ?? ((line: string) => console.log(line))
  const sizes = options.smoke ? [20_000, 50_000] : [100_000, 1_000_000]
  const rows: Array<Row> = []
  for (const n of sizes) {
    const scenario = label(n)
    const names = [
      NAMES.memoryStore,
      "LRU entry incl. its session",
      "LRU entry, session shared with store",
      "session value alone",
      "floor: the same fields as one plain object, in two maps"
    ]
    try {
      const r = await runChild(n, options.smoke ? 60_000 : 240_000)
      const values = [r.store, r.lruWithValue, r.lruEntry, r.session, r.floor]
      names.forEach((name, i) => rows.push({ part: "memory", name, scenario, value: values[i]!, unit: "B/session" }))
      log(`  memory ${scenario}: store ${Math.round(r.store)} B, LRU ${Math.round(r.lruWithValue)} B (entry ${Math.round(r.lruEntry)} B), session ${Math.round(r.session)} B, floor ${Math.round(r.floor)} B`)
    } catch (e) {
      for (const name of names) rows.push({ part: "memory", name, scenario, unit: "B/session", failed: (e as Error).message.split("\n")[0]! })
      log(`  memory ${scenario}: FAILED ${(e as Error).message}`)
    }
  }
  return rows
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf("--child")
  if (at >= 0) {
    const result = child(Number(process.argv[at + 1]))
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
  } else {
    await runMemory({ smoke: process.argv.includes("--smoke") })
  }
}
