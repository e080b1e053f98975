/**
 * HTTP benchmarks: each server runs in its own child process (`bench/servers/*.ts`, compiled
 * and run by plain `node`, or through tsx with `--source`: `compiled.ts`; it prints `PORT n`);
 * autocannon drives it from this process over 127.0.0.1. Two scenarios per server: one hot
 * session (50 connections, one cookie) and many distinct sessions (pre-created cookies, cycled by
 * `setupRequest`), in as many rounds over every server as asked.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { Agent, request as httpRequest } from "node:http"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { randomBytes } from "node:crypto"
import * as PgClient from "@effect/sql-pg/PgClient"
import { SqlClient } from "@effect/sql/SqlClient"
import autocannon from "autocannon"
import { Effect, Redacted } from "effect"
import { Redis } from "ioredis"
import { type Cluster, dbsizes, haveClusterTools, startCluster } from "../spec/helpers/redisCluster.js"
import { distinctScenario, HOT, mergeRounds, NAMES, type Row } from "./report.js"
import { scriptArgs } from "./compiled.js"

export const PG_URL = process.env["BENCH_PG_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
export const REDIS_URL = process.env["BENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379"
/**
 * The Redis Cluster row starts a cluster of its own (scripts/redis-cluster.sh: three primaries
 * with a replica each) on the first six free loopback ports from here (default 7020).
 */
export const CLUSTER_BASE_PORT = Number(process.env["BENCH_CLUSTER_BASE_PORT"] ?? 7020)

export interface HttpSettings {
  readonly smoke: boolean
  /** Seconds of load per scenario. */
  readonly duration: number
  /** Seconds of warm-up load before the hot-session run. */
  readonly warmup: number
  readonly connections: number
  /** Sessions of the distinct-sessions scenario. */
  readonly distinct: number
  /**
   * Rounds over every server (default 1). Each round starts every server afresh, in an order
   * rotated from the last round's; a row reports its median round (`mergeRounds` in `report.ts`).
   */
  readonly rounds?: number
  /** Skip rows whose service is down instead of failing them. */
  readonly requireServices: boolean
  /** Only servers whose name contains this (case-insensitive). */
  readonly only?: string | undefined
  /** Write a V8 CPU profile of every server into this directory. */
  readonly profileDir?: string | undefined
  readonly log: (line: string) => void
}

type Service = "pg" | "redis" | "cluster"

interface Prepared {
  readonly args: ReadonlyArray<string>
  readonly cleanup: () => Promise<void>
  /** Figures of the store after both scenarios, added to the distinct-sessions row's `extra`. */
  readonly figures?: () => Promise<Record<string, number | string>>
}

interface ServerSpec {
  readonly name: string
  readonly file: string
  /** Whether the server has sessions (cookies must be obtained from it). */
  readonly sessions: boolean
  readonly needs?: Service
  readonly prepare: () => Promise<Prepared>
}

const runId = `${process.pid}_${randomBytes(3).toString("hex")}`
const none: Prepared = { args: [], cleanup: async () => {} }

const dropPgTables = (prefix: string) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* SqlClient
      yield* sql.unsafe(`DROP TABLE IF EXISTS ${prefix}tokens, ${prefix}sessions, ${prefix}revocations`)
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(PG_URL) })), Effect.scoped)
  )

const deleteRedisKeys = async (prefix: string) => {
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    let cursor = "0"
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) await client.del(...keys)
    } while (cursor !== "0")
  } finally {
    client.disconnect()
  }
}

export const SERVERS: ReadonlyArray<ServerSpec> = [
  { name: NAMES.node, file: "bench/servers/node.ts", sessions: false, prepare: async () => none },
  { name: NAMES.platform, file: "bench/servers/platform.ts", sessions: false, prepare: async () => none },
  // The floor of the memory row's target: what a middleware of Http.middleware()'s shape costs.
  {
    name: NAMES.platformFloor,
    file: "bench/servers/platform.ts",
    sessions: false,
    prepare: async () => ({ args: ["--middleware", "pass-through"], cleanup: async () => {} })
  },
  {
    name: NAMES.memory,
    file: "bench/servers/sessions.ts",
    sessions: true,
    prepare: async () => ({ args: ["--store", "memory"], cleanup: async () => {} })
  },
  {
    name: NAMES.sqlite,
    file: "bench/servers/sessions.ts",
    sessions: true,
    prepare: async () => {
      const dir = mkdtempSync(join(tmpdir(), "effect-sessions-bench-"))
      return {
        args: ["--store", "sqlite", "--file", join(dir, "sessions.db")],
        cleanup: async () => rmSync(dir, { recursive: true, force: true })
      }
    }
  },
  {
    name: NAMES.pg,
    file: "bench/servers/sessions.ts",
    sessions: true,
    needs: "pg",
    prepare: async () => {
      const prefix = `bench_${runId}_`
      return { args: ["--store", "pg", "--url", PG_URL, "--prefix", prefix], cleanup: () => dropPgTables(prefix) }
    }
  },
  {
    name: NAMES.redis,
    file: "bench/servers/sessions.ts",
    sessions: true,
    needs: "redis",
    prepare: async () => {
      const prefix = `bench:${runId}:es:`
      return { args: ["--store", "redis", "--url", REDIS_URL, "--prefix", prefix], cleanup: () => deleteRedisKeys(prefix) }
    }
  },
  {
    name: NAMES.redisCluster,
    file: "bench/servers/sessions.ts",
    sessions: true,
    needs: "cluster",
    prepare: async () => {
      const prefix = `bench:${runId}:es:`
      const cluster: Cluster = await startCluster({ fromPort: CLUSTER_BASE_PORT })
      return {
        args: ["--store", "redis-cluster", "--nodes", cluster.nodes, "--prefix", prefix],
        // The keys of both scenarios, as the three primaries hold them (no clean-up: the cluster goes).
        figures: async () => {
          const sizes = await dbsizes(cluster.nodes)
          return {
            primaries: sizes.length,
            dbsizePerPrimary: sizes.map((s) => `${s.node} (slots ${s.slots}): ${s.keys}`).join("; "),
            ...Object.fromEntries(sizes.map((s, i) => [`dbsizePrimary${i + 1}`, s.keys]))
          }
        },
        cleanup: () => cluster.stop()
      }
    }
  },
  {
    name: NAMES.expressMemory,
    file: "bench/servers/express.ts",
    sessions: true,
    prepare: async () => ({ args: ["--store", "memory"], cleanup: async () => {} })
  },
  {
    name: NAMES.expressRedis,
    file: "bench/servers/express.ts",
    sessions: true,
    needs: "redis",
    prepare: async () => {
      const prefix = `bench:${runId}:cr:`
      return { args: ["--store", "redis", "--url", REDIS_URL, "--prefix", prefix], cleanup: () => deleteRedisKeys(prefix) }
    }
  }
]

// ---- child processes ---------------------------------------------------------------------------

const children = new Set<ChildProcess>()

/** Kills every server still running (SIGKILL); safe to call more than once. */
export const killAll = (): void => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  children.clear()
}

interface Running {
  readonly port: number
  readonly stop: () => Promise<void>
  readonly output: () => string
}

const startServer = (file: string, args: ReadonlyArray<string>, settings: HttpSettings, timeoutMs = 30_000): Promise<Running> =>
  new Promise((resolve, reject) => {
    const nodeArgs = settings.profileDir !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${settings.profileDir}`] : []
    const child = spawn(process.execPath, [...nodeArgs, ...scriptArgs(file), ...args], {
      cwd: process.cwd(),
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_ENV: "production" }
    })
    children.add(child)
    let output = ""
    let settled = false
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-4000)
    }
    const exited = new Promise<void>((r) => child.once("exit", () => r()))
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM")
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000)
        await exited
        clearTimeout(timer)
      }
      children.delete(child)
    }
    const fail = (why: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      void stop().then(() => reject(new Error(`${why}\n${output.trim()}`)))
    }
    const timer = setTimeout(() => fail(`no port within ${timeoutMs} ms`), timeoutMs)
    child.stdout!.on("data", (chunk: Buffer) => {
      keep(chunk)
      const match = /^PORT (\d+)$/m.exec(output)
      if (match !== null && !settled) {
        settled = true
        clearTimeout(timer)
        resolve({ port: Number(match[1]), stop, output: () => output })
      }
    })
    child.stderr!.on("data", keep)
    child.once("exit", (code, signal) => fail(`server exited (${code ?? signal}) before listening`))
    child.once("error", (e) => fail(`spawn failed: ${e.message}`))
  })

// ---- a small client for setup requests ---------------------------------------------------------

/**
 * Every request carries the same user agent, as a browser's would (effect-sessions binds a
 * session to the user agent by default: a request without one, or with another, ends it).
 */
const USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

const agent = new Agent({ keepAlive: true, maxSockets: 32 })

interface Answer {
  readonly status: number
  readonly body: string
  readonly setCookie: ReadonlyArray<string>
}

const call = (port: number, method: string, path: string, cookie?: string): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, method, path, agent, headers: cookie === undefined ? { "user-agent": USER_AGENT } : { cookie, "user-agent": USER_AGENT }, timeout: 10_000 },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString("utf8"),
            setCookie: res.headers["set-cookie"] ?? []
          }))
        res.on("error", reject)
      }
    )
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)))
    req.on("error", reject)
    req.end()
  })

const json = <A>(answer: Answer, what: string): A => {
  if (answer.status !== 200) throw new Error(`${what}: HTTP ${answer.status} ${answer.body.slice(0, 200)}`)
  return JSON.parse(answer.body) as A
}

const countOf = async (port: number, cookie: string) => json<{ count: number }>(await setupCall(port, "GET", "/count", cookie), "GET /count").count
/** The counter once requests still in flight (a previous run's) have finished: two equal reads 100 ms apart. */
const settledCount = async (port: number, cookie: string): Promise<number> => {
  let last = await countOf(port, cookie)
  for (let i = 0; i < 100; i++) {
    await sleep(100)
    const now = await countOf(port, cookie)
    if (now === last) return now
    last = now
  }
  return last
}

const answeredOf = async (port: number) => json<{ answered: number }>(await setupCall(port, "GET", "/stats"), "GET /stats").answered

/**
 * A setup call (not a measurement) with up to 3 retries on a 5xx answer or a connection error,
 * so that a store that hiccups under a loaded machine does not fail the row before it starts.
 */
const setupCall = async (port: number, method: string, path: string, cookie?: string): Promise<Answer> => {
  for (let attempt = 1; ; attempt++) {
    try {
      const answer = await call(port, method, path, cookie)
      if (answer.status < 500 || attempt >= 4) return answer
    } catch (e) {
      if (attempt >= 4) throw e
    }
    await sleep(250 * attempt)
  }
}

/** A new session: one increment without a cookie; returns the `name=value` of its Set-Cookie. */
const newSession = async (port: number): Promise<string> => {
  const answer = await setupCall(port, "POST", "/count")
  json(answer, "POST /count")
  const cookie = answer.setCookie[0]?.split(";")[0]
  if (cookie === undefined) throw new Error("POST /count without a cookie answered no Set-Cookie")
  return cookie
}

const fakeCookie = () => `id=${randomBytes(32).toString("base64url")}`

const createCookies = async (port: number, n: number, concurrency = 32): Promise<Array<string>> => {
  const out = new Array<string>(n)
  let next = 0
  const worker = async () => {
    while (next < n) {
      const i = next++
      out[i] = await newSession(port)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
  return out
}

// ---- load --------------------------------------------------------------------------------------

interface Load {
  readonly result: autocannon.Result
  /** Answers per second, from the first request to the last answer (autocannon rounds an `amount` run up to whole seconds). */
  readonly perSecond: number
}

/** Runs autocannon; a run given an `amount` is stopped after `maxSeconds` at the latest. */
const load = (options: autocannon.Options, maxSeconds?: number) =>
  new Promise<Load>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined
    const started = performance.now()
    let last = started
    const instance = autocannon({ timeout: 10, ...options }, (err: unknown, r: autocannon.Result) => {
      if (timer !== undefined) clearTimeout(timer)
      if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error(String(err)))
      else if (r.errors > 0 && r.requests.total === 0) reject(new Error(`autocannon: ${r.errors} errors and no answer`))
      else resolve({ result: r, perSecond: r.requests.total / Math.max((last - started) / 1000, 1e-3) })
    })
    instance.on("response", () => {
      last = performance.now()
    })
    if (maxSeconds !== undefined) timer = setTimeout(() => instance.stop(), maxSeconds * 1000)
  })

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export const reachable = (port: number, timeoutMs = 1000): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

const servicePorts: Record<Exclude<Service, "cluster">, number> = {
  pg: Number(new URL(PG_URL).port || 5432),
  redis: Number(new URL(REDIS_URL).port || 6379)
}

const indent = (text: string) => text.trim().slice(-1500).split("\n").map((l) => `         | ${l}`).join("\n")

const hotRow = (spec: ServerSpec): Row => ({ part: "http", name: spec.name, scenario: HOT, unit: "req/s" })

const benchServer = async (spec: ServerSpec, settings: HttpSettings): Promise<Array<Row>> => {
  const hot = hotRow(spec)
  const many: Row = { part: "http", name: spec.name, scenario: distinctScenario(settings.distinct), unit: "req/s" }
  const rows = [hot, many]
  if (spec.needs !== undefined && !(spec.needs === "cluster" ? await haveClusterTools() : await reachable(servicePorts[spec.needs]))) {
    const why = spec.needs === "cluster" ? "redis-server / redis-cli not found (the cluster harness needs them)" : `${spec.needs === "pg" ? "PostgreSQL" : "Redis"} unreachable`
    for (const r of rows) {
      if (settings.requireServices) r.failed = why
      else r.skipped = why
    }
    settings.log(`  http   ${spec.name}: ${why}${settings.requireServices ? " (required)" : ", skipped"}`)
    return rows
  }
  let prepared: Prepared
  try {
    prepared = await spec.prepare()
  } catch (e) {
    const why = (e as Error).message
    for (const r of rows) r.failed = `store: ${why.split("\n")[0]}`
    settings.log(`  http   ${spec.name}: store failed: ${why}`)
    return rows
  }
  let server: Running | undefined
  try {
    server = await startServer(spec.file, prepared.args, settings)
    const port = server.port
    const url = `http://127.0.0.1:${port}/count`
    const base = { url, method: "POST" as const, connections: settings.connections }

    // -- one hot session
    try {
      // Warm up on a session of its own, and learn the rate: the measured run sends a fixed
      // amount of requests (≈ duration × rate), all of which complete, so that the counter and
      // the answers compare exactly. (A warm-up stopped by time leaves requests in flight whose
      // store writes may land later; they go to the warm-up session, not the measured one.)
      const warmCookie = spec.sessions ? await newSession(port) : fakeCookie()
      const warm = await load({ ...base, duration: Math.max(settings.warmup, 0.1), headers: { cookie: warmCookie, "user-agent": USER_AGENT } })
      // the best second of the warm-up (the first ones run cold code)
      const rate = Math.max(warm.perSecond, warm.result.requests.max)
      const amount = Math.max(settings.connections, Math.round(rate * settings.duration))
      const cookie = spec.sessions ? await newSession(port) : fakeCookie()
      if (spec.sessions && (await countOf(port, cookie)) !== 1) throw new Error("the session cookie was not accepted")
      const c0 = await settledCount(port, cookie)
      const a0 = await answeredOf(port)
      const run = await load({ ...base, amount, headers: { cookie, "user-agent": USER_AGENT } }, settings.duration * 4 + 5)
      const r = run.result
      const c1 = await settledCount(port, cookie)
      const a1 = await answeredOf(port)
      const ok = r.requests.total - r.non2xx
      Object.assign(hot, {
        value: run.perSecond,
        p50Ms: r.latency.p50,
        p99Ms: r.latency.p99,
        errors: r.non2xx + r.errors,
        sent: r.requests.sent,
        answered: ok,
        counterDelta: c1 - c0,
        lost: ok - (c1 - c0),
        extra: { amount, answeredByServer: a1 - a0, complete: r.requests.total === amount ? "yes" : "no (stopped at the time bound)" }
      } satisfies Partial<Row>)
      settings.log(
        `  http   ${spec.name} / ${HOT}: ${Math.round(run.perSecond)} req/s, p99 ${r.latency.p99} ms, ` +
          `errors ${r.non2xx + r.errors}, counter +${c1 - c0} of ${ok} answered with 200`
      )
    } catch (e) {
      hot.failed = (e as Error).message.split("\n")[0]!
      settings.log(`  http   ${spec.name} / ${HOT}: FAILED ${(e as Error).message}\n${indent(server.output())}`)
    }

    // -- many distinct sessions
    try {
      const t0 = performance.now()
      const cookies = spec.sessions ? await createCookies(port, settings.distinct) : Array.from({ length: settings.distinct }, fakeCookie)
      const createMs = performance.now() - t0
      let next = 0
      const a0 = await answeredOf(port)
      const run = await load({
        ...base,
        duration: settings.duration,
        requests: [{
          method: "POST",
          path: "/count",
          setupRequest: (req) => ({ ...req, headers: { ...req.headers, cookie: cookies[next++ % cookies.length]!, "user-agent": USER_AGENT } })
        }]
      })
      const r = run.result
      await sleep(250)
      const a1 = await answeredOf(port)
      // The first cookie was used first: its session must have counted beyond its creation.
      if (spec.sessions && r.requests.total > 0 && (await countOf(port, cookies[0]!)) < 2) {
        throw new Error("the pre-created sessions were not found again (new sessions were made instead?)")
      }
      Object.assign(many, {
        value: run.perSecond,
        p50Ms: r.latency.p50,
        p99Ms: r.latency.p99,
        errors: r.non2xx + r.errors,
        sent: r.requests.sent,
        extra: { answered: a1 - a0, sessionsCreatedPerSecond: spec.sessions ? Math.round(settings.distinct / (createMs / 1000)) : 0 }
      } satisfies Partial<Row>)
      settings.log(
        `  http   ${spec.name} / ${many.scenario}: ${Math.round(run.perSecond)} req/s, p99 ${r.latency.p99} ms, ` +
          `errors ${r.non2xx + r.errors}${spec.sessions ? ` (created ${settings.distinct} sessions in ${(createMs / 1000).toFixed(1)} s)` : ""}`
      )
    } catch (e) {
      many.failed = (e as Error).message.split("\n")[0]!
      settings.log(`  http   ${spec.name} / ${many.scenario}: FAILED ${(e as Error).message}\n${indent(server.output())}`)
    }
    if (prepared.figures !== undefined) {
      try {
        const figures = await prepared.figures()
        many.extra = { ...many.extra, ...figures }
        settings.log(`  http   ${spec.name}: ${Object.entries(figures).filter(([k]) => !/^dbsizePrimary\d/.test(k)).map(([k, v]) => `${k} ${v}`).join(", ")}`)
      } catch (e) {
        settings.log(`  http   ${spec.name}: store figures failed: ${String(e)}`)
      }
    }
  } catch (e) {
    const why = (e as Error).message
    for (const r of rows) r.failed = `server: ${why.split("\n")[0]}`
    settings.log(`  http   ${spec.name}: server failed: ${why}`)
  } finally {
    await server?.stop()
    await prepared.cleanup().catch((e: unknown) => settings.log(`  http   ${spec.name}: cleanup failed: ${String(e)}`))
  }
  return rows
}

export const runHttp = async (settings: HttpSettings): Promise<Array<Row>> => {
  const specs = SERVERS.filter((spec) => settings.only === undefined || spec.name.toLowerCase().includes(settings.only.toLowerCase()))
  const rounds = Math.max(1, Math.floor(settings.rounds ?? 1))
  // Servers are measured one after another, and the load of the machine drifts meanwhile: over
  // several rounds in rotated orders each server meets the drift at another time, and the median
  // round stands for it.
  const byRow = new Map<string, Array<Row>>()
  try {
    for (let round = 0; round < rounds; round++) {
      const shift = specs.length === 0 ? 0 : (round * Math.ceil(specs.length / rounds)) % specs.length
      if (rounds > 1) settings.log(`  http   round ${round + 1} of ${rounds}`)
      for (const spec of [...specs.slice(shift), ...specs.slice(0, shift)]) {
        for (const row of await benchServer(spec, settings)) {
          const key = `${row.name}\u0000${row.scenario}`
          byRow.set(key, [...(byRow.get(key) ?? []), row])
        }
      }
    }
  } finally {
    killAll()
    agent.destroy()
  }
  return specs.flatMap((spec) => [...byRow.entries()].filter(([key]) => key.startsWith(`${spec.name}\u0000`)).map(([, rows]) => mergeRounds(rows)))
}
