/**
 * Micro benchmarks: a small harness on `process.hrtime.bigint()` — calibrate the batch size to a
 * target round time, warm up, run several rounds, report the median ops/s.
 *
 *   npx tsx bench/micro.ts [--smoke]        (also run by bench/run.ts)
 */
import { createHash, randomBytes } from "node:crypto"
import { HttpApp, HttpRouter, HttpServerResponse } from "@effect/platform"
import { pathToFileURL } from "node:url"
import { Duration, Effect, Either, Layer, Option, Redacted, RuntimeFlags, Supervisor } from "effect"
import { ManagedRuntime } from "effect"
import * as Codec from "../src/Codec.js"
import * as Http from "../src/Http.js"
import * as Password from "../src/Password.js"
import * as Session from "../src/Session.js"
import * as SessionCache from "../src/SessionCache.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { Lru } from "../src/internal/lru.js"
import { passThrough } from "./floorMiddleware.js"
import { passwordSet, runPasswordBench } from "./password.js"
import { NAMES, type Row } from "./report.js"

export interface MicroOptions {
  readonly smoke: boolean
  /** Only run benchmarks whose name contains this (case-insensitive). */
  readonly only?: string | undefined
  readonly log?: (line: string) => void
}

interface Settings {
  /** Target duration of one measured round. */
  readonly roundMs: number
  readonly warmupRounds: number
  readonly rounds: number
}

/** Keeps results observable so that the JIT cannot drop the measured work. */
let sink = 0
const consume = (x: unknown): void => {
  sink = (sink + (x === undefined ? 1 : typeof x === "number" ? x : 2)) | 0
}

const now = () => process.hrtime.bigint()
const seconds = (from: bigint, to: bigint) => Number(to - from) / 1e9

/**
 * Measures `batch(n)`, which performs n operations. Returns the median ops/s over the rounds and
 * the spread (fastest, slowest).
 */
export const measure = (batch: (n: number) => void, settings: Settings, maxN = 50_000_000) => {
  // calibrate: grow n until a batch takes ≥ 1/8 of a round, then scale to a round
  let n = 64
  for (;;) {
    const t0 = now()
    batch(n)
    const dt = seconds(t0, now())
    if (dt * 1000 >= settings.roundMs / 8 || n >= maxN) {
      n = Math.max(1, Math.min(maxN, Math.round((n * settings.roundMs) / Math.max(dt * 1000, 1e-3))))
      break
    }
    n *= 4
  }
  // warm up, then size the batch again from warm code
  for (let i = 0; i < settings.warmupRounds; i++) {
    const t0 = now()
    batch(n)
    const dt = seconds(t0, now())
    n = Math.max(1, Math.min(maxN, Math.round((n * settings.roundMs) / Math.max(dt * 1000, 1e-3))))
  }
  const rates: Array<number> = []
  for (let i = 0; i < settings.rounds; i++) {
    const t0 = now()
    batch(n)
    rates.push(n / seconds(t0, now()))
  }
  if (process.env["BENCH_DEBUG"] === "1") console.log(`    n=${n} rates=${rates.map(Math.round).join(",")}`)
  rates.sort((a, b) => a - b)
  return { opsPerSecond: rates[Math.floor(rates.length / 2)]!, fastest: rates[rates.length - 1]!, slowest: rates[0]!, n }
}

/** {@link measure} for asynchronous batches. */
export const measureAsync = async (batch: (n: number) => Promise<void>, settings: Settings, maxN = 10_000_000) => {
  let n = 16
  const timed = async (k: number) => {
    const t0 = now()
    await batch(k)
    return seconds(t0, now())
  }
  const rescale = (dt: number) => Math.max(1, Math.min(maxN, Math.round((n * settings.roundMs) / Math.max(dt * 1000, 1e-3))))
  for (;;) {
    const dt = await timed(n)
    if (dt * 1000 >= settings.roundMs / 8 || n >= maxN) {
      n = rescale(dt)
      break
    }
    n *= 4
  }
  for (let i = 0; i < settings.warmupRounds; i++) n = rescale(await timed(n))
  const rates: Array<number> = []
  for (let i = 0; i < settings.rounds; i++) rates.push(n / (await timed(n)))
  rates.sort((a, b) => a - b)
  return { opsPerSecond: rates[Math.floor(rates.length / 2)]!, fastest: rates[rates.length - 1]!, slowest: rates[0]!, n }
}

/**
 * {@link measureAsync} for several batches compared with each other: each is calibrated alone,
 * then all are warmed up and measured in turns, the order rotating every round, so that none
 * pays the JIT's or the garbage collector's warm-up for the others, and a change of load during
 * the run falls on all alike. Measured one after the other, the web handler's bare route (the
 * first) came out slower than the routes that do more (2026-12-07: 4,427 against 6,061 ops/s).
 */
export const measureInterleaved = async (batches: ReadonlyArray<(n: number) => Promise<void>>, settings: Settings) => {
  const ns: Array<number> = []
  for (const batch of batches) {
    let n = 16
    for (;;) {
      const t0 = now()
      await batch(n)
      const dt = seconds(t0, now())
      if (dt * 1000 >= settings.roundMs / 8) {
        ns.push(Math.max(1, Math.round((n * settings.roundMs) / Math.max(dt * 1000, 1e-3))))
        break
      }
      n *= 4
    }
  }
  const rates: Array<Array<number>> = batches.map(() => [])
  const rounds = settings.warmupRounds + Math.max(settings.rounds, 5)
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < batches.length; k++) {
      const i = (round + k) % batches.length
      const t0 = now()
      await batches[i]!(ns[i]!)
      if (round >= settings.warmupRounds) rates[i]!.push(ns[i]! / seconds(t0, now()))
    }
  }
  return rates.map((r, i) => {
    r.sort((a, b) => a - b)
    return { opsPerSecond: r[Math.floor(r.length / 2)]!, fastest: r[r.length - 1]!, slowest: r[0]!, n: ns[i]! }
  })
}

const base64url = (n: number) => randomBytes(n).toString("base64url")
const sha = (s: string) => createHash("sha256").update(s).digest("base64url")

/** n distinct 43-character keys, like the token keys the cache and the store hold. */
const keys = (n: number): Array<string> => {
  const out = new Array<string>(n)
  const seed = base64url(16)
  for (let i = 0; i < n; i++) out[i] = sha(`${seed}:${i}`)
  return out
}

const CLIENT = Session.client({ ip: "203.0.113.7", userAgent: "Mozilla/5.0 (X11; Linux x86_64) bench/1.0" })

const config = Either.getOrThrow(SessionConfig.make({ cookie: { secure: false } }))

const sampleSession = (t: number) =>
  Session.withVersion(
    Session.set(Session.start({ key: base64url(32), tokenKey: sha(base64url(32)), now: t, client: CLIENT }), "count", 41),
    3
  )

/** The name of the rows that count the Effect steps of a web-handler request. */
const STEPS_ROW = "web handler: Effect steps per request"

/** Counts every step the fiber run loop takes, and the fibers started, while `on`. */
class StepCounter extends Supervisor.AbstractSupervisor<void> {
  on = false
  steps = 0
  fibers = 0
  get value() {
    return Effect.void
  }
  override onStart() {
    if (this.on) this.fibers++
  }
  override onEffect() {
    if (this.on) this.steps++
  }
}

/**
 * The Effect steps and fibers per request of each web-handler route, on a runtime of its own
 * with op supervision on (it slows every step, so the timed rows never run on it).
 */
const countSteps = async (
  apps: ReadonlyArray<readonly [string, HttpApp.Default<any, any>]>,
  ua: string
): Promise<Array<{ readonly steps: number; readonly fibers: number; readonly requests: number }>> => {
  const counter = new StepCounter()
  const rt = ManagedRuntime.make(
    Layer.mergeAll(Sessions.layerMemory({ cookie: { secure: false } }), Supervisor.addSupervisor(counter), RuntimeFlags.enableOpSupervision)
  )
  try {
    const runtime = await rt.runtime()
    const handlers = apps.map(([, app]) => HttpApp.toWebHandlerRuntime(runtime)(app))
    const post = (handler: (r: Request) => Promise<Response>, headers: Record<string, string>) =>
      handler(new Request("http://localhost/count", { method: "POST", headers })).then(async (res) => {
        consume((await res.arrayBuffer()).byteLength)
        return res
      })
    // The last route updates the session: its first request creates it.
    const first = await post(handlers[handlers.length - 1]!, { "user-agent": ua })
    const cookie = first.headers.getSetCookie()[0]?.split(";")[0]
    if (cookie === undefined) throw new Error("web handler steps: no session cookie")
    const requests = 200
    const counts = []
    for (const handler of handlers) {
      for (let i = 0; i < 20; i++) await post(handler, { cookie, "user-agent": ua })
      counter.steps = 0
      counter.fibers = 0
      counter.on = true
      for (let i = 0; i < requests; i++) await post(handler, { cookie, "user-agent": ua })
      counter.on = false
      counts.push({ steps: counter.steps / requests, fibers: counter.fibers / requests, requests })
    }
    return counts
  } finally {
    await rt.dispose()
  }
}

/** Builds a runtime for a layer once and runs effects on it synchronously. */
const runtimeOf = async <R, E>(layer: Layer.Layer<R, E>) => {
  const rt = ManagedRuntime.make(layer)
  await rt.runtime()
  return rt
}

export const runMicro = async (options: MicroOptions): Promise<Array<Row>> => {
  const log = options.log ?? ((line: string) => console.log(line))
  const settings: Settings = options.smoke
    ? { roundMs: 15, warmupRounds: 1, rounds: 3 }
    : { roundMs: 150, warmupRounds: 3, rounds: 7 }
  const sizes = options.smoke ? [1_000, 10_000, 50_000] : [1_000, 10_000, 100_000, 1_000_000]
  const sizeLabel = (n: number) => n >= 1_000_000 ? `${n / 1_000_000}M entries` : `${n / 1_000}k entries`
  const rows: Array<Row> = []
  const only = options.only?.toLowerCase()
  // A group runs when its name contains the filter or the filter names a row of it
  // ("--only Sessions.start" runs the Sessions group); within a group, only the rows it names.
  const wanted = (group: string) => only === undefined || group.toLowerCase().includes(only) || only.includes(group.toLowerCase())
  const wantedRow = (name: string) => only === undefined || name.toLowerCase().includes(only)

  const add = (name: string, scenario: string, r: ReturnType<typeof measure>, extra?: Record<string, number | string>) => {
    rows.push({
      part: "micro",
      name,
      scenario,
      value: r.opsPerSecond,
      unit: "ops/s",
      extra: { n: r.n, fastest: Math.round(r.fastest), slowest: Math.round(r.slowest), ...extra }
    })
    log(`  micro  ${name} ${scenario}: ${Math.round(r.opsPerSecond).toLocaleString("en-US")} ops/s`)
  }

  // ---- the pure core
  const t = 1_700_000_000_000
  const session = sampleSession(t)
  const record = Option.some<Session.TokenRecord>(session)
  if (wanted("Session.decide")) {
    const context = { now: t + 1000, client: CLIENT, config }
    add("Session.decide (valid)", "", measure((n) => {
      for (let i = 0; i < n; i++) consume(Session.decide(record, context)._tag.length)
    }, settings))
  }
  if (wanted("Session.rotate")) {
    const rotateOptions = { tokenKey: sha("successor"), sealedSuccessor: base64url(32), now: t + 1000, config }
    add("Session.rotate", "", measure((n) => {
      for (let i = 0; i < n; i++) consume(Session.rotate(session, rotateOptions).session.idIssuedAt)
    }, settings))
  }

  // ---- the raw LRU
  if (wanted("Lru")) {
    for (const size of sizes) {
      const ks = keys(size)
      const lru = new Lru<string, Session.TokenRecord>(size, 3_600_000)
      for (const k of ks) lru.set(k, session, t)
      // a large odd stride visits every key, far from the last one
      const stride = 7919
      let i = 0
      add("Lru.get (raw)", sizeLabel(size), measure((n) => {
        for (let j = 0; j < n; j++) {
          i = (i + stride) % size
          consume(lru.get(ks[i]!, t) === undefined ? 0 : 1)
        }
      }, settings))
      add("Lru.set (raw, existing key)", sizeLabel(size), measure((n) => {
        for (let j = 0; j < n; j++) {
          i = (i + stride) % size
          lru.set(ks[i]!, session, t)
        }
      }, settings))
      if (lru.size !== size) throw new Error(`Lru lost entries: ${lru.size} != ${size}`)
    }
  }

  // ---- SessionCache through its Effect API, the largest size
  if (wanted("SessionCache")) {
    const size = sizes[sizes.length - 1]!
    const ks = keys(size)
    const cache = Effect.runSync(SessionCache.make({ capacity: size, idleTimeout: Duration.hours(1) }))
    Effect.runSync(Effect.gen(function*() {
      for (const k of ks) yield* cache.set(k, session)
    }))
    if (Effect.runSync(cache.size) !== size) throw new Error("SessionCache did not fill")
    const stride = 7919
    let i = 0
    const loop = (n: number) =>
      Effect.gen(function*() {
        let hits = 0
        for (let j = 0; j < n; j++) {
          i = (i + stride) % size
          const r = yield* cache.get(ks[i]!)
          if (r._tag === "Some") hits++
        }
        return hits
      })
    if (wantedRow(NAMES.cacheGetApi)) add(NAMES.cacheGetApi, sizeLabel(size), measure((n) => consume(Effect.runSync(loop(n))), settings))
    // What any Effect API over the LRU costs at least: the same loop, each get one `Effect.sync`
    // of the raw LRU and an `Option` (no Ref, no service). The 2M ops/s target needs this floor
    // above it.
    const floorName = "SessionCache floor: Effect.sync(Lru.get) per get"
    if (wantedRow(floorName)) {
      const lru = new Lru<string, Session.TokenRecord>(size, 3_600_000)
      for (const k of ks) lru.set(k, session, t)
      const floorLoop = (n: number) =>
        Effect.gen(function*() {
          let hits = 0
          for (let j = 0; j < n; j++) {
            i = (i + stride) % size
            const r = yield* Effect.sync(() => Option.fromNullable(lru.get(ks[i]!, t)))
            if (r._tag === "Some") hits++
          }
          return hits
        })
      add(floorName, sizeLabel(size), measure((n) => consume(Effect.runSync(floorLoop(n))), settings))
    }
    const perCallName = "SessionCache.get, one runSync per get"
    if (wantedRow(perCallName)) {
      add(perCallName, sizeLabel(size), measure((n) => {
        for (let j = 0; j < n; j++) {
          i = (i + stride) % size
          consume(Effect.runSync(cache.get(ks[i]!))._tag.length)
        }
      }, settings))
    }
  }

  // ---- Sessions on the hit path (memory store, valid token, no touch due)
  if (wanted("Sessions")) {
    for (const cacheOn of [true, false]) {
      const rt = await runtimeOf(Sessions.layerMemory({ cookie: { secure: false }, cache: cacheOn }))
      try {
        const sessions = await rt.runPromise(Sessions.Sessions)
        const handle = await rt.runPromise(sessions.create(CLIENT))
        const token = Redacted.value(handle.token)
        const startLoop = (n: number) =>
          Effect.gen(function*() {
            let ok = 0
            for (let j = 0; j < n; j++) {
              const s = yield* sessions.resolve(token, CLIENT).pipe(Effect.map((r) => r.session))
              if (s._tag === "Some") ok++
            }
            if (ok !== n) throw new Error(`Sessions.start lost the session (${ok}/${n})`)
            return ok
          })
        const resolveLoop = (n: number) =>
          Effect.gen(function*() {
            let valid = 0
            for (let j = 0; j < n; j++) {
              const r = yield* sessions.resolve(token, CLIENT)
              if (r.outcome === "valid") valid++
            }
            if (valid !== n) throw new Error(`Sessions.resolve was not valid (${valid}/${n})`)
            return valid
          })
        if (cacheOn) {
          if (wantedRow(NAMES.start)) add(NAMES.start, "memory", measure((n) => consume(rt.runSync(startLoop(n))), settings, 5_000_000))
          const perCallName = "Sessions.start hit, one runSync per call"
          if (wantedRow(perCallName)) {
            add(perCallName, "memory", measure((n) => {
              for (let j = 0; j < n; j++) consume(rt.runSync(sessions.resolve(token, CLIENT).pipe(Effect.map((r) => r.session)))._tag.length)
            }, settings, 5_000_000))
          }
          const resolveName = "Sessions.resolve hit (cache on)"
          if (wantedRow(resolveName)) add(resolveName, "memory", measure((n) => consume(rt.runSync(resolveLoop(n))), settings, 5_000_000))
          // the write path of the HTTP route: one counter increment, written through to the store
          const bump = (old: Option.Option<Session.Json>) => (typeof old === "object" && old._tag === "Some" && typeof old.value === "number" ? old.value : 0) + 1
          const updateLoop = (n: number) =>
            Effect.gen(function*() {
              let last = 0
              for (let j = 0; j < n; j++) last = (yield* sessions.update(handle, "count", bump)) as number
              return last
            })
          const updateName = "Sessions.update (write-through)"
          if (wantedRow(updateName)) add(updateName, "memory", measure((n) => consume(rt.runSync(updateLoop(n))), settings, 2_000_000))
        } else {
          const offName = "Sessions.start hit (cache off)"
          if (wantedRow(offName)) add(offName, "memory", measure((n) => consume(rt.runSync(startLoop(n))), settings, 5_000_000))
        }
      } finally {
        await rt.dispose()
      }
    }
  }

  // ---- the HTTP route in-process (no sockets, no load generator): what the middleware costs
  if (wanted("web handler")) {
    // The floor (bench/floorMiddleware.ts): a middleware of the same shape with no session work.
    const rt = await runtimeOf(Sessions.layerMemory({ cookie: { secure: false } }))
    try {
      const runtime = await rt.runtime()
      let counter = 0
      const bump = (old: Option.Option<Session.Json>) => (old._tag === "Some" && typeof old.value === "number" ? old.value : 0) + 1
      const apps = [
        ["web handler: bare route", HttpRouter.empty.pipe(
          HttpRouter.post("/count", Effect.sync(() => HttpServerResponse.unsafeJson({ count: ++counter })))
        )],
        ["web handler floor: a pass-through middleware of the same shape", HttpRouter.empty.pipe(
          HttpRouter.post("/count", Effect.sync(() => HttpServerResponse.unsafeJson({ count: ++counter }))),
          passThrough
        )],
        ["web handler: Http.middleware, no session use", HttpRouter.empty.pipe(
          HttpRouter.post("/count", Effect.sync(() => HttpServerResponse.unsafeJson({ count: ++counter }))),
          Http.middleware()
        )],
        ["web handler: Http.middleware + get", HttpRouter.empty.pipe(
          HttpRouter.post("/count", Effect.gen(function*() {
            const session = yield* Http.CurrentSession
            return HttpServerResponse.unsafeJson({ count: yield* session.get("count") })
          })),
          Http.middleware()
        )],
        ["web handler: Http.middleware + update", HttpRouter.empty.pipe(
          HttpRouter.post("/count", Effect.gen(function*() {
            const session = yield* Http.CurrentSession
            return HttpServerResponse.unsafeJson({ count: yield* session.update("count", bump) })
          })),
          Http.middleware()
        )]
      ] as const
      const ua = "Mozilla/5.0 (X11; Linux x86_64) bench/1.0"
      const updater = HttpApp.toWebHandlerRuntime(runtime)(apps[4][1])
      const first = await updater(new Request("http://localhost/count", { method: "POST", headers: { "user-agent": ua } }))
      const cookie = first.headers.getSetCookie()[0]?.split(";")[0]
      if (cookie === undefined) throw new Error("web handler: no session cookie")
      const batches = apps.map(([name, app]) => {
        const handler = HttpApp.toWebHandlerRuntime(runtime)(app)
        return async (n: number) => {
          for (let i = 0; i < n; i++) {
            const res = await handler(new Request("http://localhost/count", { method: "POST", headers: { cookie, "user-agent": ua } }))
            if (res.status !== 200 || res.headers.has("set-cookie")) throw new Error(`${name}: HTTP ${res.status}, set-cookie ${res.headers.get("set-cookie")}`)
            consume((await res.arrayBuffer()).byteLength)
          }
        }
      })
      // Longer rounds than the other rows: a request takes tens of microseconds, and the JIT settles late.
      const results = await measureInterleaved(batches, options.smoke ? settings : { roundMs: 400, warmupRounds: 5, rounds: 9 })
      apps.forEach(([name], i) => {
        const r = results[i]!
        add(name, "memory, 1 session", r, { microsPerRequest: Math.round(1e7 / r.opsPerSecond) / 10 })
      })
      // The same routes, counted instead of timed: the Effect steps (operations of the fiber run
      // loop) and fibers one request takes. Unlike the timings, the counts are exact and the same
      // on any machine: what the session layer adds to a request, in the currency of its cost.
      const steps = await countSteps(apps, ua)
      apps.forEach(([name], i) => {
        const label = name.replace(/^web handler( floor)?: /, "")
        rows.push({
          part: "micro",
          name: STEPS_ROW,
          scenario: label,
          value: steps[i]!.steps,
          unit: "steps/request",
          extra: { fibers: steps[i]!.fibers, requests: steps[i]!.requests }
        })
        log(`  micro  ${STEPS_ROW} ${label}: ${steps[i]!.steps.toFixed(1)} (fibers ${steps[i]!.fibers.toFixed(2)})`)
      })
    } finally {
      await rt.dispose()
    }
  }

  // ---- Codec
  if (wanted("Codec")) {
    const encoded = Codec.encode(session)
    add("Codec.encode (small session)", `${encoded.length} B`, measure((n) => {
      for (let i = 0; i < n; i++) consume(Codec.encode(session).length)
    }, settings))
    add("Codec.decode (small session)", `${encoded.length} B`, measure((n) => {
      for (let i = 0; i < n; i++) consume(Either.isRight(Codec.decode(encoded)) ? 1 : 0)
    }, settings))
  }

  // ---- checkPassword
  if (wanted("checkPassword")) {
    if (options.smoke) {
      const inputs = passwordSet(300)
      let k = 0
      add("checkPassword", "varied set", measure((n) => {
        for (let i = 0; i < n; i++) consume(Password.checkPassword(inputs[k++ % inputs.length]!).ok ? 1 : 0)
      }, settings))
    } else {
      const r = await runPasswordBench()
      rows.push({
        part: "micro",
        name: "checkPassword",
        scenario: "12,000 varied, with context",
        value: 1e6 / r.perCheckMicros,
        unit: "ops/s",
        extra: { perCheckMicros: r.perCheckMicros, firstCheckMs: r.firstCheckMs }
      })
      log(`  micro  checkPassword: ${Math.round(1e6 / r.perCheckMicros).toLocaleString("en-US")} ops/s`)
    }
  }
  consume(sink)
  return rows
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const smoke = process.argv.includes("--smoke")
  const onlyAt = process.argv.indexOf("--only")
  const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined
  const rows = await runMicro({ smoke, only })
  for (const r of rows) console.log(`${r.name}\t${r.scenario}\t${Math.round(r.value ?? 0)}`)
}
