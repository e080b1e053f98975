/**
 * Observability of the Sessions service: raw tokens never reach logs, spans or errors (a short
 * hash does), the events of the timing rules (docs/how-it-works.md) are logged, and the metrics count what happens.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Cause, Duration, Effect, Exit, Layer, Logger, LogLevel, Metric, Option, Redacted, TestClock, Tracer } from "effect"
import { createHash } from "node:crypto"
import { metrics } from "../src/internal/sessions/metrics.js"
import * as Sessions from "../src/Sessions.js"
import * as Persistence from "../src/Persistence.js"
import * as SecureRandom from "../src/SecureRandom.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import { recordingSpans } from "./helpers/tracing.js"

// ---------------------------------------------------------------------------------------------
// capture
// ---------------------------------------------------------------------------------------------

interface Captured {
  readonly logs: Array<{ readonly level: string; readonly message: unknown; readonly annotations: Record<string, unknown>; readonly cause: string }>
  readonly spans: Array<Tracer.Span>
  readonly errors: Array<unknown>
}

const capture = (): Captured => ({ logs: [], spans: [], errors: [] })

const collectingLogger = (into: Captured) =>
  Logger.make(({ annotations, cause, logLevel, message }) => {
    into.logs.push({
      level: logLevel.label,
      message,
      annotations: Object.fromEntries(annotations),
      cause: Cause.isEmpty(cause) ? "" : Cause.pretty(cause)
    })
  })

const observe = <A, E, R>(into: Captured, effect: Effect.Effect<A, E, R>) =>
  recordingSpans(into.spans, effect).pipe(
    Effect.provide(Layer.merge(Logger.replace(Logger.defaultLogger, collectingLogger(into)), Logger.minimumLogLevel(LogLevel.All)))
  )

const replacer = (_key: string, value: unknown): unknown => {
  if (typeof value === "bigint") return value.toString()
  if (value instanceof Map) return Object.fromEntries(value)
  if (value instanceof Error) return { ...value, name: value.name, message: value.message, stack: value.stack, cause: value.cause }
  return value
}

/** Everything that was logged, traced or raised, as one searchable text. */
const everything = (c: Captured): string => {
  const spans = c.spans.map((s) => ({
    name: s.name,
    attributes: Object.fromEntries(s.attributes),
    events: (s as unknown as { readonly events?: unknown }).events,
    exit: s.status._tag === "Ended" && Exit.isFailure(s.status.exit) ? Cause.pretty(s.status.exit.cause) : null
  }))
  const errors = c.errors.map((e) => ({ string: String(e), message: (e as Error).message, json: e }))
  return JSON.stringify({ logs: c.logs, spans, errors }, replacer)
}

/** The short fingerprint the service is meant to log instead of a token (computed here on purpose). */
const shortHash = (token: string) => createHash("sha256").update(`log:${token}`, "utf8").digest("base64url").slice(0, 8)

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

const tok = (h: Sessions.ActiveSession): string => Redacted.value(h.token)
const advance = (d: Duration.DurationInput) => TestClock.adjust(d)
const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 Firefox/128.0" })
const elsewhere = Session.client({ ip: "203.0.113.99", userAgent: "Mozilla/5.0 Firefox/128.0" })

const someSession = (r: Sessions.Resolution): Sessions.ActiveSession => {
  assert.isTrue(Option.isSome(r.session), `expected a session, got outcome ${r.outcome}`)
  return Option.getOrThrow(r.session)
}

/** The memory store with switches: a down `load`, and a corrupt record once. */
const switchableStore = Effect.map(Persistence.makeMemory, (memory) => {
  const state = { down: false, corruptOnce: false }
  const store: Persistence.PersistenceShape = {
    ...memory,
    load: (tk) => {
      if (state.down) {
        return Effect.fail(new Persistence.SessionStoreError({ method: "load", reason: "Unavailable", cause: new Error("ECONNREFUSED 10.0.0.5:6379") }))
      }
      if (state.corruptOnce) {
        state.corruptOnce = false
        return Effect.fail(new Persistence.SessionStoreError({ method: "load", reason: "Corrupt", key: tk, cause: "unexpected end of JSON input" }))
      }
      return memory.load(tk)
    }
  }
  return { store, state }
})

/**
 * A store that, like the Persistence contract allows ("a record whose deadline has passed may be
 * returned or not"), still returns records past their deadline until they are deleted — so that
 * the service, not the store, decides expiry, and the expiry metrics can be observed whatever the
 * cache does. (The memory store forgets expired records at once.)
 */
const lenient = (inner: Persistence.PersistenceShape): Persistence.PersistenceShape => {
  const seen = new Map<string, Session.TokenRecord>()
  const forgetSession = (sessionKey: string) => {
    for (const [tk, r] of seen) if (r._tag === "Session" && r.key === sessionKey) seen.delete(tk)
  }
  return {
    ...inner,
    load: (tk) =>
      Effect.map(inner.load(tk), (r) => {
        if (Option.isSome(r)) seen.set(tk, r.value)
        return Option.isSome(r) ? r : Option.fromNullable(seen.get(tk))
      }),
    create: (session, expiresAt) => Effect.tap(inner.create(session, expiresAt), () => seen.set(session.tokenKey, session)),
    save: (session, v, expiresAt) => Effect.tap(inner.save(session, v, expiresAt), (ok) => ok && seen.set(session.tokenKey, session)),
    rotate: (rotation) =>
      Effect.tap(inner.rotate(rotation), (ok) => {
        const { redirect, session } = rotation
        if (ok) {
          seen.set(redirect.tokenKey, redirect)
          seen.set(session.tokenKey, session)
        }
      }),
    delete: (sessionKey) => Effect.tap(inner.delete(sessionKey), () => forgetSession(sessionKey)),
    deleteToken: (tk) => Effect.tap(inner.deleteToken(tk), () => seen.delete(tk))
  }
}

const serviceOver = (store: Persistence.PersistenceShape, config: SessionConfig.SessionConfigInput) =>
  Sessions.layerFromContext.pipe(
    Layer.provide(
      Layer.mergeAll(Layer.succeed(Persistence.Persistence, store), Layer.orDie(SessionConfig.layer(config)), SecureRandom.layerSeeded("obs"))
    )
  )

const config: SessionConfig.SessionConfigInput = {
  idleTimeout: "10 minutes",
  idRotationInterval: "5 minutes",
  gracePeriod: "1 minute",
  ipBinding: { ipv4Prefix: 24 }
}

/**
 * A run that creates, rotates, follows, expires, hits an anomaly, late-uses a rotated token,
 * reads a corrupt record, logs in and out, and fails (gone session, store down). Returns every
 * token it saw.
 */
const scenario = (into: Captured, state: { down: boolean; corruptOnce: boolean }) =>
  Effect.gen(function*() {
    const sessions = yield* Sessions.Sessions
    const tokens: Array<string> = []
    const keep = (h: Sessions.ActiveSession) => {
      tokens.push(tok(h))
      return h
    }
    const failing = <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.flatMap(Effect.flip(effect), (e) => Effect.sync(() => into.errors.push(e)))
    // create, use, rotate, follow
    const h1 = keep(yield* sessions.create(browser))
    yield* sessions.set(h1, "cart", [1])
    assert.strictEqual((yield* sessions.resolve(tok(h1), browser)).outcome, "valid")
    yield* advance("5 minutes")
    const rotated = yield* sessions.resolve(tok(h1), browser)
    assert.strictEqual(rotated.outcome, "rotated")
    const h2 = keep(someSession(rotated))
    assert.strictEqual((yield* sessions.resolve(tok(h1), browser)).outcome, "followed")
    // late use of the rotated token
    yield* advance("2 minutes")
    const late = yield* sessions.resolve(tok(h1), browser)
    assert.isTrue(Option.isNone(late.session))
    // log in and out, regenerate, update
    const h3 = keep(yield* sessions.logIn(h2, "ada"))
    yield* sessions.update(h3, "n", () => 1)
    const h4 = keep(yield* sessions.regenerateId(h3))
    const h5 = keep(yield* sessions.logOut(h4))
    // anomaly
    const victim = keep(yield* sessions.create(browser))
    assert.strictEqual((yield* sessions.resolve(tok(victim), elsewhere)).outcome, "anomaly")
    yield* failing(sessions.set(victim, "k", 1)) // gone
    // idle expiry
    const idler = keep(yield* sessions.create(browser))
    yield* advance("10 minutes")
    assert.strictEqual(Option.isNone((yield* sessions.resolve(tok(idler), browser)).session), true)
    yield* failing(sessions.regenerateId(idler))
    yield* failing(sessions.logIn(idler, "bob"))
    // a corrupt record
    const corrupt = keep(yield* sessions.create(browser))
    yield* sessions.clearCache
    state.corruptOnce = true
    assert.strictEqual((yield* sessions.resolve(tok(corrupt), browser)).outcome, "missing")
    // the store goes down
    const last = keep(yield* sessions.create(browser))
    yield* sessions.clearCache
    state.down = true
    yield* failing(sessions.resolve(tok(last), browser))
    yield* failing(sessions.resolve(tok(h5), browser, { create: true }))
    state.down = false
    yield* sessions.destroy(last)
    yield* failing(sessions.update(last, "n", () => 2))
    yield* sessions.logOutEverywhere("ada")
    yield* sessions.listSessions("ada")
    return { tokens, h1 }
  })

describe("Sessions observability", () => {
  for (const hashIdsAtRest of [true, false]) {
    it.effect(`raw tokens never appear in logs, spans or errors; a short hash does (hashIdsAtRest: ${hashIdsAtRest})`, () =>
      Effect.gen(function*() {
        const into = capture()
        const { state, store } = yield* switchableStore
        const { h1, tokens } = yield* observe(into, scenario(into, state)).pipe(
          Effect.provide(serviceOver(store, { ...config, hashIdsAtRest }))
        )
        const text = everything(into)
        // the capture caught something of every kind
        assert.isAbove(into.logs.length, 2)
        assert.isAbove(into.spans.length, 10)
        assert.strictEqual(into.errors.length, 6)
        assert.strictEqual(new Set(tokens).size, tokens.length)
        assert.isAtLeast(tokens.length, 9)
        for (const t of tokens) {
          assert.notInclude(text, t, "a raw token leaked")
          // nor a long piece of one
          assert.notInclude(text, t.slice(0, 20))
        }
        // the short hash is what identifies a session in spans and logs
        assert.include(text, shortHash(tokens[0]!))
        const resolveSpans = into.spans.filter((s) => s.name === "Sessions.resolve")
        assert.isTrue(resolveSpans.some((s) => s.attributes.get("session.token_hash") === shortHash(tok(h1))))
        for (const e of into.errors) {
          if ((e as { _tag: string })._tag === "SessionGoneError") {
            assert.match((e as Error).message, /session [A-Za-z0-9_-]{8} is gone/)
          }
        }
      }))
  }

  it.effect("the errors raised in the scenario are the typed ones", () =>
    Effect.gen(function*() {
      const into = capture()
      const { state, store } = yield* switchableStore
      yield* observe(into, scenario(into, state)).pipe(Effect.provide(serviceOver(store, config)))
      expect(into.errors.map((e) => (e as { _tag: string })._tag)).toEqual([
        "SessionGoneError", // set on the anomaly victim
        "SessionGoneError", // regenerateId of the idle session
        "SessionGoneError", // logIn of the idle session
        "SessionStoreError", // resolve, store down
        "SessionStoreError", // resolve with create, store down: no silent new session
        "SessionGoneError" // update after destroy
      ])
    }))

  it.effect("events are logged: anomaly, corrupt record, late use of a rotated token", () =>
    Effect.gen(function*() {
      const into = capture()
      const { state, store } = yield* switchableStore
      const { h1 } = yield* observe(into, scenario(into, state)).pipe(Effect.provide(serviceOver(store, config)))
      const events = into.logs.map((l) => l.annotations["event"])
      expect(events).toContain("anomaly")
      expect(events).toContain("corrupt-record")
      expect(events).toContain("late-token-use")
      const late = into.logs.find((l) => l.annotations["event"] === "late-token-use")!
      assert.strictEqual(late.annotations["token"], shortHash(tok(h1)))
      assert.strictEqual(late.level, "WARN")
      // rotated at 5 minutes with a 1-minute grace period, used again at 7 minutes
      assert.strictEqual(late.annotations["lateByMillis"], 60_000)
      const anomaly = into.logs.find((l) => l.annotations["event"] === "anomaly")!
      assert.strictEqual(anomaly.annotations["kind"], "ip")
      // what an operator reads (and searches for) beside the event's name
      const message = (event: string) => into.logs.find((l) => l.annotations["event"] === event)?.message
      deepStrictEqual(
        ["late-token-use", "anomaly", "corrupt-record"].map(message),
        [
          ["a rotated session token was used after its grace period"],
          ["session destroyed: client changed"],
          ["dropped a corrupt session record"]
        ]
      )
    }))

  for (const cache of [false, true]) {
    it.effect(`a late use of a rotated token is reported as an event whatever the cache (cache ${cache})`, () =>
      Effect.gen(function*() {
        const into = capture()
        yield* observe(
          into,
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const h = yield* sessions.create(browser)
            yield* sessions.regenerateId(h)
            yield* advance("61 seconds")
            const r = yield* sessions.resolve(tok(h), browser)
            assert.isTrue(Option.isNone(r.session))
          })
        ).pipe(Effect.provide(serviceOver(yield* Persistence.makeMemory, { ...config, cache })))
        expect(into.logs.map((l) => l.annotations["event"])).toContain("late-token-use")
      }))
  }

  it.effect("spans: one per operation, named Sessions.<method>", () =>
    Effect.gen(function*() {
      const into = capture()
      yield* observe(
        into,
        Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h = yield* sessions.create(browser)
          yield* sessions.clearCache
          yield* sessions.resolve(tok(h), browser) // from the store: traced
          yield* sessions.set(h, "k", 1)
          const h2 = yield* sessions.logIn(h, "ada")
          const h3 = yield* sessions.logOut(h2)
          yield* sessions.destroy(h3)
          yield* sessions.logOutEverywhere("ada")
        })
      ).pipe(Effect.provide(serviceOver(yield* Persistence.makeMemory, config)))
      const names = into.spans.map((s) => s.name)
      for (const n of ["Sessions.create", "Sessions.resolve", "Sessions.set", "Sessions.logIn", "Sessions.logOut", "Sessions.destroy", "Sessions.logOutEverywhere"]) {
        expect(names).toContain(n)
      }
    }))

  it.effect("metrics count creations, rotations, expiries, anomalies, cache hits and misses", () =>
    Effect.gen(function*() {
      const count = (m: Metric.Metric.Counter<number>) => Effect.map(Metric.value(m), (s) => s.count)
      const snapshot = Effect.all({
        created: count(metrics.created),
        rotated: count(metrics.rotated),
        idle: count(Metric.tagged(metrics.expired, "reason", "idle")),
        grace: count(Metric.tagged(metrics.expired, "reason", "grace")),
        anomalyIp: count(Metric.tagged(metrics.anomalies, "kind", "ip")),
        anomalyUa: count(Metric.tagged(metrics.anomalies, "kind", "userAgent")),
        destroyed: count(metrics.destroyed),
        cacheHits: count(metrics.cacheHits),
        cacheMisses: count(metrics.cacheMisses)
      })
      const before = yield* snapshot
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const a = yield* sessions.create(browser)
        const b = yield* sessions.create(browser)
        const c = yield* sessions.create(browser)
        yield* sessions.resolve(tok(a), browser) // hit
        yield* sessions.clearCache
        yield* sessions.resolve(tok(a), browser) // miss
        yield* sessions.resolve(tok(b), elsewhere) // anomaly (ip)
        yield* sessions.resolve(tok(c), Session.client({ ip: "198.51.100.7", userAgent: "curl/8" })) // anomaly (user agent)
        yield* advance("5 minutes")
        yield* sessions.resolve(tok(a), browser) // rotated
        yield* advance("2 minutes")
        yield* sessions.resolve(tok(a), browser) // late: grace
        const d = yield* sessions.create(browser)
        yield* advance("10 minutes")
        yield* sessions.resolve(tok(d), browser) // idle
        const e = yield* sessions.create(browser)
        yield* sessions.destroy(e)
      }).pipe(Effect.provide(serviceOver(lenient(yield* Persistence.makeMemory), config)))
      const after = yield* snapshot
      const delta = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof typeof before]]))
      expect(delta).toMatchObject({ created: 5, rotated: 1, idle: 1, grace: 1, anomalyIp: 1, anomalyUa: 1, destroyed: 1 })
      assert.isAtLeast(delta["cacheHits"]!, 1)
      assert.isAtLeast(delta["cacheMisses"]!, 1)
    }))
})
