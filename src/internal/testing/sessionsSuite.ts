/**
 * The service-level conformance suite (invariants 1–10 on the running Sessions
 * service): the same test code for every store — memory, SQLite, PostgreSQL, Redis. Where
 * persistenceSuite.ts checks the store contract, this suite checks that the service
 * keeps every invariant over that store.
 *
 * How a store is shared by the tests. The suite builds the store once (`layer(...)`), and every
 * property run builds its own service over it (`Sessions.layerStore`, live SecureRandom), so
 * runs never share a token, a session key or a user (users get a random name per run).
 *
 * Time. The service decides expiry from `Clock`, and the memory and SQL stores read `Clock` too;
 * Redis expires by TTLs on its own clock, computed as `deadline − Clock.now` at every write. The
 * properties run on a manual clock (clock.ts: it moves only when told, like `TestClock`, but without the
 * timer tick that `TestClock.adjust` waits for on every call, and its `sleep` is the live one so
 * that drivers with internal timeouts keep working). Every duration is at least a few seconds,
 * so on Redis a TTL (real time) can never fire before the manual clock reaches the deadline
 * during a run that lasts milliseconds; one example test uses `TestClock` itself, to show that
 * the store works with it.
 *
 * @internal
 */
import { assert, expect, layer } from "@effect/vitest"
import { assertNone, assertSome, deepStrictEqual } from "@effect/vitest/utils"
import {
  Clock,
  Context,
  Duration,
  Effect,
  Either,
  Exit,
  FastCheck as fc,
  FiberRef,
  Layer,
  LogLevel,
  Option,
  Queue,
  Redacted,
  Scope,
  TestClock,
  TestContext
} from "effect"
import { randomBytes } from "../live/secureRandom.js"
import { publicId } from "../hash.js"
import * as Persistence from "../../Persistence.js"
import * as Session from "../../Session.js"
import type * as SessionConfig from "../../SessionConfig.js"
import * as Sessions from "../../Sessions.js"
import { normalizeJson } from "./arbitraries.js"
import { type ManualClock, manualClock } from "./clock.js"
import { handleOperations, notGone, retirements } from "./retirement.js"
import { forgetAtDeadline } from "./stores.js"
import { RELOAD_MILLIS } from "../sessions/revocation.js"

/**
 * Options of the service-level conformance suite (`sessionsConformance`).
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionsSuiteOptions {
  /**
   * A second, independent instance on the same backend (another "process": its own connections
   * and origin id). Without one, the second process is a second service over the same store
   * instance (the memory store, which one process only can share).
   */
  readonly peer?: Layer.Layer<Persistence.Persistence, unknown, never> | undefined
  /**
   * A store of its own on the same backend, under `namespace` (a key or table prefix of its own;
   * two calls with one namespace: two "processes" on one store), for the tests that change what
   * the whole store holds — `logOutEveryone` stores one instant that ends every older session,
   * which must not reach the suite's other tests. Without it those tests are skipped.
   */
  readonly fresh?: ((namespace: string) => Layer.Layer<Persistence.Persistence, unknown, never>) | undefined
  /** Runs of each property (default 25). */
  readonly numRuns?: number | undefined
  /** Runs of the timing properties (invariants 1–4 and 6; default twice `numRuns`). */
  readonly timingRuns?: number | undefined
  /** Runs of the cache-transparency property (invariant 7; default `numRuns`). */
  readonly transparencyRuns?: number | undefined
  /**
   * How long the store keeps a record past its deadline (default `Persistence.DEFAULT_RETENTION`,
   * what the shipped stores keep). Invariant 8 compares the service over this store with the
   * service over a memory store that keeps dead records as long: a store that forgets a record at
   * its deadline (`retention: 0`) rightly answers "missing" where one that keeps it answers
   * "expired", and the two clear the cookie differently.
   */
  readonly retention?: Duration.DurationInput | undefined
}

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/** One second: every duration below is a multiple of it, or at least it. */
const SECOND = 1_000
/** The shortest timeout a property uses: far longer than any run takes in real time. */
const MIN = 60 * SECOND
/** Far enough away never to matter in a property (about 31 years). */
const LONG = 1_000_000_000_000

/** A random name for this run (users, so that runs sharing a store never share a user). */
const uid = (tag: string): string => `${tag}-${Buffer.from(randomBytes(6)).toString("base64url")}`


const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.locally(effect, FiberRef.currentMinimumLogLevel, LogLevel.None)

/** The service (and its config) over `store`, as `Sessions.layerStore` builds it for an app. */
const serviceLayer = (store: Persistence.PersistenceShape, config: SessionConfig.SessionConfigInput) =>
  Sessions.layer(config).pipe(Layer.provide(Layer.succeed(Persistence.Persistence, store)), Layer.orDie)

/** Runs `body` with a service over `store`, on `time`. */
const withService = <A, E>(
  store: Persistence.PersistenceShape,
  config: SessionConfig.SessionConfigInput,
  time: ManualClock,
  body: Effect.Effect<A, E, Sessions.Sessions>
): Effect.Effect<A, E> => body.pipe(Effect.provide(serviceLayer(store, config)), Effect.withClock(time.clock), quiet)

const tok = (h: Sessions.ActiveSession): string => Redacted.value(h.token)

const someSession = (r: Sessions.Resolution): Sessions.ActiveSession => {
  assert.isTrue(Option.isSome(r.session), `expected a session, got outcome ${r.outcome}`)
  return Option.getOrThrow(r.session)
}

/** No session (dead or unknown); the cookie is cleared or left alone, never set. */
const noSession = (r: Sessions.Resolution): void => {
  assert.isTrue(Option.isNone(r.session), `expected no session, got outcome ${r.outcome}`)
  assert.include(["expired", "missing"], r.outcome)
  assert.include(["clear", "none"], r.cookie)
}

const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0" })

const fraction = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true })
const touchOf = (idle: number, frac: number) => Math.max(1, Math.min(idle - 1, Math.floor(frac * idle)))

/** A time step: a fraction of the idle timeout, or one of the boundaries. */
type StepKind = "frac" | "idle" | "idle-1" | "touch" | "touch-1" | "zero"
const arbStep = fc.record({
  kind: fc.constantFrom<StepKind>("frac", "frac", "frac", "idle", "idle-1", "touch", "touch-1", "zero"),
  frac: fc.double({ min: 0, max: 1.5, noNaN: true }),
  resolve: fc.boolean()
})
const stepMillis = (step: { readonly kind: StepKind; readonly frac: number }, idle: number, touch: number): number => {
  switch (step.kind) {
    case "frac":
      return Math.floor(step.frac * idle)
    case "idle":
      return idle
    case "idle-1":
      return idle - 1
    case "touch":
      return touch
    case "touch-1":
      return touch - 1
    case "zero":
      return 0
  }
}

const increment = (old: Option.Option<Session.Json>): Session.Json => (Option.getOrElse(old, () => 0) as number) + 1

// ---------------------------------------------------------------------------------------------
// the command interpreter of invariants 7 and 8
// ---------------------------------------------------------------------------------------------

type Cmd =
  | { readonly _tag: "Create"; readonly client: number }
  | { readonly _tag: "Resolve"; readonly token: number; readonly client: number; readonly create: boolean }
  | { readonly _tag: "Set"; readonly handle: number; readonly key: string; readonly value: number }
  | { readonly _tag: "Pop"; readonly handle: number; readonly key: string }
  | { readonly _tag: "Update"; readonly handle: number; readonly key: string }
  | { readonly _tag: "Get"; readonly handle: number; readonly key: string }
  | { readonly _tag: "Advance"; readonly millis: number }
  | { readonly _tag: "Destroy"; readonly handle: number }
  | { readonly _tag: "LogIn"; readonly handle: number; readonly user: number; readonly exclusive: boolean }
  | { readonly _tag: "LogOut"; readonly handle: number }
  | { readonly _tag: "Regenerate"; readonly handle: number; readonly grace: boolean }
  | { readonly _tag: "LogOutEverywhere"; readonly user: number }
  | { readonly _tag: "List"; readonly user: number }

const clients = [
  Session.client({ ip: "198.51.100.7", userAgent: "ua/1" }),
  Session.client({ ip: "198.51.100.99", userAgent: "ua/1" }), // accepted change (same /24)
  Session.client({ ip: "203.0.113.5", userAgent: "ua/1" }), // rejected IP change
  Session.client({ ip: "198.51.100.7", userAgent: "ua/2" }) // rejected user-agent change
]

/**
 * Timings of the command runs. Every instant of a run is a multiple of GRID (the clock only moves
 * by multiples of it), so a write never lands closer than GRID before a deadline: on Redis no TTL
 * (real time) can fire before the manual clock reaches the deadline.
 */
const GRID = 5 * SECOND
const transparencyConfig: SessionConfig.SessionConfigInput = {
  idleTimeout: 20 * GRID,
  touchInterval: 2 * GRID,
  idRotationInterval: 10 * GRID,
  gracePeriod: 4 * GRID,
  absoluteTimeout: 120 * GRID,
  ipBinding: { ipv4Prefix: 24 },
  acceptChangingUserAgent: false
}

const n = fc.nat(50)
const dataKey = fc.constantFrom("a", "b", "c")
const arbCmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ client: fc.nat(1) }).map((r): Cmd => ({ _tag: "Create", ...r })) },
  {
    weight: 6,
    arbitrary: fc.record({ token: n, client: fc.oneof(fc.constant(0), fc.constant(0), fc.nat(3)), create: fc.boolean() })
      .map((r): Cmd => ({ _tag: "Resolve", ...r }))
  },
  { weight: 3, arbitrary: fc.record({ handle: n, key: dataKey, value: fc.integer({ min: -9, max: 99 }) }).map((r): Cmd => ({ _tag: "Set", ...r })) },
  { weight: 2, arbitrary: fc.record({ handle: n, key: dataKey }).map((r): Cmd => ({ _tag: "Pop", ...r })) },
  { weight: 2, arbitrary: fc.record({ handle: n, key: dataKey }).map((r): Cmd => ({ _tag: "Update", ...r })) },
  { weight: 2, arbitrary: fc.record({ handle: n, key: dataKey }).map((r): Cmd => ({ _tag: "Get", ...r })) },
  {
    weight: 5,
    arbitrary: fc.oneof(fc.integer({ min: 0, max: 24 }), fc.constantFrom(2, 4, 10, 14, 20))
      .map((units): Cmd => ({ _tag: "Advance", millis: units * GRID }))
  },
  { weight: 1, arbitrary: fc.record({ handle: n }).map((r): Cmd => ({ _tag: "Destroy", ...r })) },
  { weight: 2, arbitrary: fc.record({ handle: n, user: fc.nat(1), exclusive: fc.boolean() }).map((r): Cmd => ({ _tag: "LogIn", ...r })) },
  { weight: 1, arbitrary: fc.record({ handle: n }).map((r): Cmd => ({ _tag: "LogOut", ...r })) },
  { weight: 2, arbitrary: fc.record({ handle: n, grace: fc.boolean() }).map((r): Cmd => ({ _tag: "Regenerate", ...r })) },
  { weight: 1, arbitrary: fc.record({ user: fc.nat(1) }).map((r): Cmd => ({ _tag: "LogOutEverywhere", ...r })) },
  { weight: 1, arbitrary: fc.record({ user: fc.nat(1) }).map((r): Cmd => ({ _tag: "List", ...r }))
  }
)

/**
 * Runs commands against the service in context and returns everything a caller can observe,
 * with the random parts (tokens, session keys, public ids, user names) replaced by names in the
 * order they first appear — so that runs with different randomness compare equal when they
 * behave the same.
 */
const interpret = (cmds: ReadonlyArray<Cmd>, time: ManualClock) =>
  Effect.gen(function*() {
    const sessions = yield* Sessions.Sessions
    const users = [uid("ada"), uid("grace")]
    const names = new Map<string, string>(users.map((u, i) => [u, `user${i}`]))
    const name = (raw: string, kind: string): string => {
      let known = names.get(raw)
      if (known === undefined) {
        known = `${kind}${names.size}`
        names.set(raw, known)
      }
      return known
    }
    const handles: Array<Sessions.ActiveSession> = []
    const tokens: Array<string> = []
    const trace: Array<unknown> = []
    const view = (s: Session.Session) => ({
      key: name(s.key, "key"),
      data: { ...s.data },
      user: Option.match(s.userId, { onNone: () => null, onSome: (u) => names.get(u) ?? u }),
      createdAt: s.createdAt,
      idIssuedAt: s.idIssuedAt,
      lastAccessAt: s.lastAccessAt
    })
    const add = (h: Sessions.ActiveSession) => {
      handles.push(h)
      if (!tokens.includes(tok(h))) tokens.push(tok(h))
      // the public id is derived from the key: it gets the key's name
      const v = view(h.session)
      names.set(publicId(h.session.key), v.key)
      return { token: name(tok(h), "token"), ...v }
    }
    const run = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>, f: (a: A) => unknown) =>
      Effect.match(effect, { onFailure: (e) => ({ error: e._tag }), onSuccess: f })
    for (const cmd of cmds) {
      const handle = handles.length === 0 || !("handle" in cmd) ? undefined : handles[cmd.handle % handles.length]
      switch (cmd._tag) {
        case "Create":
          trace.push(["create", add(yield* sessions.create(clients[cmd.client]!))])
          break
        case "Resolve": {
          const token = tokens.length === 0 ? undefined : tokens[cmd.token % tokens.length]
          const r = yield* sessions.resolve(token, clients[cmd.client]!, { create: cmd.create })
          // A store may or may not return a record past its deadline (the Persistence contract):
          // the service then says "expired" or "missing" — the same behaviour (no session, clear).
          const outcome = r.outcome === "expired" || r.outcome === "missing" ? "gone" : r.outcome
          trace.push(["resolve", outcome, r.cookie, Option.match(r.session, { onNone: () => null, onSome: add })])
          break
        }
        case "Advance":
          yield* time.advance(cmd.millis)
          trace.push(["advance", cmd.millis])
          break
        case "LogOutEverywhere":
          trace.push(["logOutEverywhere", yield* sessions.logOutEverywhere(users[cmd.user]!)])
          break
        case "List": {
          const list = yield* sessions.listSessions(users[cmd.user]!)
          const entries = list.map((i) => ({
            id: names.get(i.id) ?? "unknown",
            createdAt: i.createdAt,
            lastAccessAt: i.lastAccessAt,
            idIssuedAt: i.idIssuedAt,
            ip: Option.getOrNull(i.ip),
            userAgentHash: Option.getOrNull(i.userAgentHash)
          }))
          // stores list in their own order
          trace.push(["list", entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))])
          break
        }
        default: {
          if (handle === undefined) {
            trace.push(["no handle"])
            break
          }
          switch (cmd._tag) {
            case "Set":
              trace.push(["set", yield* run(Effect.zipRight(sessions.set(handle, cmd.key, cmd.value), sessions.current(handle)), view)])
              break
            case "Pop":
              trace.push(["pop", yield* run(sessions.pop(handle, cmd.key), Option.getOrNull)])
              break
            case "Update":
              trace.push([
                "update",
                yield* run(
                  sessions.update(handle, cmd.key, (o) => Option.match(o, { onNone: () => 1, onSome: (v) => typeof v === "number" ? v + 1 : 0 })),
                  (v) => v
                )
              ])
              break
            case "Get":
              trace.push(["get", yield* run(sessions.get(handle, cmd.key), Option.getOrNull)])
              break
            case "Destroy":
              trace.push(["destroy", yield* run(sessions.destroy(handle), () => "ok")])
              break
            case "LogIn":
              trace.push(["logIn", yield* run(sessions.logIn(handle, users[cmd.user]!, { exclusive: cmd.exclusive }), add)])
              break
            case "LogOut":
              trace.push(["logOut", yield* run(sessions.logOut(handle), add)])
              break
            case "Regenerate":
              trace.push(["regenerate", yield* run(sessions.regenerateId(handle, { grace: cmd.grace }), add)])
              break
          }
        }
      }
    }
    return trace
  })

/**
 * The trace of `cmds` over `store` with a cache of `capacity` entries (0: no cache; `Infinity`:
 * unbounded) that idle out after `idleTimeout` (by default before the sessions do), on a fresh
 * manual clock.
 */
const traceOf = (
  store: Persistence.PersistenceShape,
  cmds: ReadonlyArray<Cmd>,
  capacity: number,
  idleTimeout: number = 14 * GRID
) => {
  const time = manualClock()
  return withService(store, { ...transparencyConfig, cache: capacity === 0 ? false : { capacity, idleTimeout } }, time, interpret(cmds, time))
}

// ---------------------------------------------------------------------------------------------
// rich data for the codec invariant
// ---------------------------------------------------------------------------------------------

const awkwardStrings = fc.constantFrom(
  "",
  "\u0000",
  "\ud800", // a lone surrogate
  "é vs e\u0301",
  "😀👩‍👩‍👧",
  "\"quoted\" 'single' `back` \\ /",
  "line\nbreak\ttab\r",
  "<script>alert(1)</script>",
  "'; DROP TABLE sessions; --",
  "c:looks-like-a-redis-pointer",
  "{\"v\":1}",
  "x".repeat(10_000)
)
const awkwardNumbers = fc.constantFrom(
  0,
  -1,
  1.5,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  -Number.MAX_VALUE,
  1e-300,
  0.1 + 0.2
)
const richLeaf: fc.Arbitrary<Session.Json> = fc.oneof(
  awkwardStrings,
  awkwardNumbers,
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null)
)
const richValue: fc.Arbitrary<Session.Json> = fc.oneof(
  richLeaf,
  fc.jsonValue({ maxDepth: 4, stringUnit: "binary" }).map((v) => v as Session.Json),
  fc.array(richLeaf, { maxLength: 5 }),
  fc.dictionary(fc.string({ unit: "binary", maxLength: 8 }), richLeaf, { maxKeys: 5 }).map((d) => d as Session.Json)
).map(normalizeJson)
/** Rich session data: awkward keys and values, nested, `__proto__` keys included. */
const richData: fc.Arbitrary<ReadonlyArray<readonly [string, Session.Json]>> = fc
  .array(fc.tuple(fc.oneof(fc.string({ unit: "binary", maxLength: 12 }), awkwardStrings, fc.constantFrom("__proto__", "constructor", "toString", "a.b")), richValue), { maxLength: 8 })

// ---------------------------------------------------------------------------------------------
// the suite
// ---------------------------------------------------------------------------------------------

/**
 * Registers the service-level conformance suite for one store. `persistenceLayer` provides the
 * store; it is built once for the suite (and `options.peer`, when given, once for the tests that
 * need a second process).
 */
export const sessionsSuite = (
  name: string,
  persistenceLayer: Layer.Layer<Persistence.Persistence, unknown, never>,
  options: SessionsSuiteOptions = {}
): void => {
  const numRuns = options.numRuns ?? 25
  const timingRuns = options.timingRuns ?? 2 * numRuns
  const transparencyRuns = options.transparencyRuns ?? numRuns
  const referenceStore = options.retention === undefined
    ? Persistence.makeMemory
    : Persistence.makeMemoryWith({ retention: options.retention })
  const title = (text: string) => `${text} [${name}]`

  layer(persistenceLayer, { excludeTestServices: true, timeout: "60 seconds" })(`Sessions over ${name}`, (it) => {
    /** A property over the running service; every run gets the store and its own service. */
    const prop = <T>(
      text: string,
      arb: fc.Arbitrary<T>,
      body: (t: T, store: Persistence.PersistenceShape) => Effect.Effect<void, unknown>,
      runs: number
    ) =>
      it.effect(title(text), () =>
        Effect.flatMap(Persistence.Persistence, (store) =>
          Effect.promise(() => fc.assert(fc.asyncProperty(arb, (t) => Effect.runPromise(body(t, store))), { numRuns: runs }))))

    // -----------------------------------------------------------------------------------------
    // 1. idle
    // -----------------------------------------------------------------------------------------

    prop(
      "invariant 1: idle — a resolve returns a session only while now − lastAccessAt < idleTimeout; once idle the token is dead forever",
      fc.record({
        idle: fc.oneof(fc.integer({ min: MIN, max: MIN + 50 }), fc.integer({ min: MIN, max: 10_000_000 })),
        touchFrac: fraction,
        rotationFrac: fc.double({ min: 0, max: 3, noNaN: true }),
        steps: fc.array(arbStep, { maxLength: 20 })
      }),
      ({ idle, rotationFrac, steps, touchFrac }, store) => {
        const touch = touchOf(idle, touchFrac)
        const rotation = Math.max(1, Math.floor(rotationFrac * idle))
        const time = manualClock()
        return withService(
          store,
          { idleTimeout: idle, touchInterval: touch, idRotationInterval: rotation, gracePeriod: MIN, absoluteTimeout: LONG },
          time,
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const start = yield* Clock.currentTimeMillis
            let token = tok(yield* sessions.create(browser))
            let now = start
            let lastAccess = start
            let idIssued = start
            let alive = true
            for (const step of steps) {
              const ms = stepMillis(step, idle, touch)
              yield* time.advance(ms)
              now += ms
              if (!step.resolve) continue
              const r = yield* sessions.resolve(token, browser)
              if (!alive || now - lastAccess >= idle) {
                alive = false
                noSession(r)
                continue
              }
              const s = someSession(r)
              assert.isBelow(now - s.session.lastAccessAt, idle)
              if (now - idIssued >= rotation) {
                assert.strictEqual(r.outcome, "rotated")
                token = tok(s)
                lastAccess = now
                idIssued = now
              } else {
                assert.strictEqual(r.outcome, "valid")
                assert.strictEqual(tok(s), token)
                if (now - lastAccess >= touch) lastAccess = now
              }
              assert.strictEqual(s.session.lastAccessAt, lastAccess, "the recorded access follows the touch rule")
            }
            if (!alive) {
              for (const later of [0, 1, idle, LONG / 2]) {
                yield* time.advance(later)
                noSession(yield* sessions.resolve(token, browser))
              }
            }
          })
        )
      },
      timingRuns
    )

    // -----------------------------------------------------------------------------------------
    // 2. absolute
    // -----------------------------------------------------------------------------------------

    prop(
      "invariant 2: absolute — a busy session is never returned at or after createdAt + absoluteTimeout",
      fc.record({
        idle: fc.integer({ min: 2 * MIN, max: 100 * MIN }),
        touchFrac: fraction,
        absoluteFrac: fraction,
        rotationFrac: fc.double({ min: 0, max: 4, noNaN: true }),
        fracs: fc.array(fraction, { minLength: 1, maxLength: 10 })
      }),
      ({ absoluteFrac, fracs, idle, rotationFrac, touchFrac }, store) => {
        // The touch lag leaves at least MIN of the idle timeout: steps of MIN / 10 … idle − touch keep the session alive.
        const touch = Math.min(touchOf(idle, touchFrac), idle - MIN)
        const maxStep = idle - touch
        const minStep = MIN / 10
        const steps = Array.from({ length: 30 }, (_, i) => minStep + Math.floor(fracs[i % fracs.length]! * (maxStep - minStep)))
        // The deadline falls within the first 27 steps, so three steps remain after it.
        const within = steps.slice(0, 27).reduce((a, b) => a + b, 0)
        const absolute = MIN + Math.floor(absoluteFrac * (within - MIN))
        const rotation = Math.max(1, Math.floor(rotationFrac * idle))
        const time = manualClock()
        return withService(
          store,
          { idleTimeout: idle, touchInterval: touch, idRotationInterval: rotation, gracePeriod: MIN, absoluteTimeout: absolute },
          time,
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const start = yield* Clock.currentTimeMillis
            const created = yield* sessions.create(browser)
            yield* sessions.set(created, "k", 1)
            let token = tok(created)
            let now = start
            let deaths = 0
            for (const planned of steps) {
              // Land exactly on the absolute deadline once.
              const step = now - start < absolute && now - start + planned > absolute ? start + absolute - now : planned
              yield* time.advance(step)
              now += step
              const r = yield* sessions.resolve(token, browser)
              if (now - start >= absolute) {
                noSession(r)
                deaths++
                continue
              }
              assert.strictEqual(deaths, 0)
              const s = someSession(r)
              assert.strictEqual(s.session.createdAt, start)
              deepStrictEqual(s.session.data, { k: 1 })
              token = tok(s)
            }
            assert.isAbove(deaths, 0, "the steps reached the absolute deadline")
          })
        )
      },
      timingRuns
    )

    // -----------------------------------------------------------------------------------------
    // 3. rotation
    // -----------------------------------------------------------------------------------------

    prop(
      "invariant 3: rotation — a token ≥ idRotationInterval old never leaves a resolve as current; data, user and createdAt are kept",
      fc.record({
        rotation: fc.integer({ min: 10 * MIN, max: 100 * MIN }),
        idleFrac: fc.double({ min: 0.1, max: 4, noNaN: true }),
        ageKind: fc.constantFrom("frac", "rotation", "rotation-1", "zero"),
        ageFrac: fraction,
        loggedIn: fc.boolean(),
        before: fc.nat({ max: 100 * MIN }),
        data: fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 4 })
      }),
      ({ ageFrac, ageKind, before, data, idleFrac, loggedIn, rotation }, store) => {
        const idle = Math.max(MIN, Math.floor(idleFrac * rotation))
        const ageWanted = ageKind === "frac"
          ? Math.floor(ageFrac * idle)
          : ageKind === "rotation"
          ? rotation
          : ageKind === "rotation-1"
          ? rotation - 1
          : 0
        const age = Math.min(ageWanted, idle - 1)
        const wait = Math.min(before, rotation - 1, idle - 1)
        const user = uid("user")
        const time = manualClock()
        return withService(
          store,
          { idleTimeout: idle, touchInterval: 1, idRotationInterval: rotation, gracePeriod: MIN, absoluteTimeout: LONG },
          time,
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const start = yield* Clock.currentTimeMillis
            let h = yield* sessions.create(browser)
            for (const [k, v] of Object.entries(data)) yield* sessions.set(h, k, v)
            let issued = start
            if (loggedIn) {
              yield* time.advance(wait)
              h = yield* sessions.logIn(h, user)
              issued = start + wait
            }
            yield* time.advance(age)
            const now = issued + age
            const r = yield* sessions.resolve(tok(h), browser)
            const s = someSession(r)
            if (now - issued >= rotation) {
              assert.strictEqual(r.outcome, "rotated")
              assert.strictEqual(r.cookie, "set")
              assert.notStrictEqual(tok(s), tok(h))
              assert.strictEqual(s.session.idIssuedAt, now)
              const again = yield* sessions.resolve(tok(s), browser)
              assert.strictEqual(again.outcome, "valid")
            } else {
              assert.strictEqual(r.outcome, "valid")
              assert.strictEqual(r.cookie, "none")
              assert.strictEqual(tok(s), tok(h))
            }
            deepStrictEqual({ ...s.session.data }, data)
            deepStrictEqual(Option.getOrNull(s.session.userId), loggedIn ? user : null)
            assert.strictEqual(s.session.createdAt, start)
            assert.strictEqual(s.session.key, h.session.key)
          })
        )
      },
      timingRuns
    )

    // -----------------------------------------------------------------------------------------
    // 4. grace
    // -----------------------------------------------------------------------------------------

    prop(
      "invariant 4: grace — a token rotated at t follows to its successor iff now < t + gracePeriod, never after; also along chains of followed tokens",
      fc.record({
        grace: fc.integer({ min: MIN, max: 100 * MIN }),
        // chains of at most 4 redirects here; longer ones: the example below
        gaps: fc.array(fraction, { minLength: 1, maxLength: 4 }),
        probes: fc.array(fc.double({ min: 0, max: 3, noNaN: true }), { maxLength: 4 }),
        viaResolve: fc.boolean()
      }),
      ({ gaps, grace, probes, viaResolve }, store) => {
        const rotation = viaResolve ? 3 * grace + 1 : LONG
        const time = manualClock()
        return withService(
          store,
          { idleTimeout: LONG / 10, idRotationInterval: rotation, gracePeriod: grace, absoluteTimeout: LONG },
          time,
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const start = yield* Clock.currentTimeMillis
            let h = yield* sessions.create(browser)
            yield* sessions.set(h, "n", 1)
            const tokens = [tok(h)]
            const rotatedAt: Array<number> = []
            let now = start
            for (const gap of gaps) {
              const step = viaResolve ? rotation + Math.floor(gap * grace) : Math.floor(gap * 2 * grace)
              yield* time.advance(step)
              now += step
              if (viaResolve) {
                const r = yield* sessions.resolve(tok(h), browser)
                assert.strictEqual(r.outcome, "rotated")
                h = someSession(r)
              } else {
                h = yield* sessions.regenerateId(h)
              }
              rotatedAt.push(now)
              tokens.push(tok(h))
            }
            const current = tokens[tokens.length - 1]!
            const times = new Set<number>()
            for (const t of rotatedAt) {
              times.add(t + grace - 1)
              times.add(t + grace)
            }
            for (const p of probes) times.add(now + Math.floor(p * grace))
            const sorted = [...times].filter((t) => t >= now).sort((a, b) => a - b)
            for (const t of sorted) {
              yield* time.advance(t - now)
              now = t
              for (let j = 0; j < tokens.length - 1; j++) {
                const r = yield* sessions.resolve(tokens[j]!, browser)
                if (now < rotatedAt[j]! + grace) {
                  assert.strictEqual(r.outcome, "followed", `token ${j} at +${now - rotatedAt[j]!} of grace ${grace}`)
                  assert.strictEqual(r.cookie, "set")
                  const s = someSession(r)
                  assert.strictEqual(tok(s), current)
                  assert.strictEqual(s.session.key, h.session.key)
                  deepStrictEqual(s.session.data, { n: 1 })
                } else {
                  noSession(r)
                }
              }
              const r = yield* sessions.resolve(current, browser)
              assert.strictEqual(r.outcome, "valid")
            }
          })
        )
      },
      timingRuns
    )

    // Chains longer than the property's: the service once followed at most 4 redirects (a lost
    // rotation race spending one more), so a client holding a token 5 rotations old got no
    // session — and the middleware a new, empty one; under load that lost sessions
    // (spec/multiprocess.test.ts). It follows 16 now; invariant 4 itself has no limit.
    it.effect(title("invariant 4: grace — a token rotated 12 times within its grace period still follows to the current token"), () =>
      Effect.flatMap(Persistence.Persistence, (store) => {
        const time = manualClock()
        return withService(
          store,
          { idleTimeout: 100 * MIN, idRotationInterval: 100 * MIN, gracePeriod: 10 * MIN, absoluteTimeout: LONG },
          time,
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            let h = yield* sessions.create(browser)
            yield* sessions.set(h, "n", 1)
            const tokens = [tok(h)]
            for (let i = 0; i < 12; i++) {
              yield* time.advance(SECOND)
              h = yield* sessions.regenerateId(h)
              tokens.push(tok(h))
            }
            const lost: Array<number> = []
            for (let j = 0; j < tokens.length - 1; j++) {
              const r = yield* sessions.resolve(tokens[j]!, browser)
              if (r.outcome !== "followed" || Option.isNone(r.session) || tok(r.session.value) !== tok(h)) lost.push(tokens.length - 1 - j)
            }
            deepStrictEqual(lost, [], "rotations behind the current token of the tokens that did not follow")
          })
        )
      }))

    it.effect(title("invariant 4: grace — logIn and logOut rotate without grace: the old token is dead at once"), () =>
      Effect.flatMap(Persistence.Persistence, (store) =>
        withService(
          store,
          { gracePeriod: "1 minute" },
          manualClock(),
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const h0 = yield* sessions.create(browser)
            const h1 = yield* sessions.logIn(h0, uid("ada"))
            noSession(yield* sessions.resolve(tok(h0), browser))
            const h2 = yield* sessions.logOut(h1)
            noSession(yield* sessions.resolve(tok(h1), browser))
            assert.strictEqual((yield* sessions.resolve(tok(h2), browser)).outcome, "valid")
            const h3 = yield* sessions.regenerateId(h2, { grace: false })
            noSession(yield* sessions.resolve(tok(h2), browser))
            assert.strictEqual((yield* sessions.resolve(tok(h3), browser)).outcome, "valid")
          })
        )))

    // -----------------------------------------------------------------------------------------
    // 5. no loss
    // -----------------------------------------------------------------------------------------

    type Op =
      | { readonly _tag: "set"; readonly handle: number; readonly key: string; readonly value: number }
      | { readonly _tag: "remove"; readonly handle: number; readonly key: string }
      | { readonly _tag: "pop"; readonly handle: number; readonly key: string }
      | { readonly _tag: "update"; readonly handle: number; readonly key: string }
    const opKey = fc.constantFrom("a", "b", "c", "d")
    const arbOp: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ handle: fc.nat(2), key: opKey, value: fc.integer() }).map((r): Op => ({ _tag: "set", ...r })),
      fc.record({ handle: fc.nat(2), key: opKey }).map((r): Op => ({ _tag: "remove", ...r })),
      fc.record({ handle: fc.nat(2), key: opKey }).map((r): Op => ({ _tag: "pop", ...r })),
      fc.record({ handle: fc.nat(2), key: opKey }).map((r): Op => ({ _tag: "update", ...r }))
    )

    const ROTATION = 200 * MIN
    prop(
      "invariant 5: no loss — inside the grace period the old and the new token read and write the very same session",
      fc.record({ ops: fc.array(arbOp, { maxLength: 20 }), grace: fc.integer({ min: MIN, max: 100 * MIN }), elapsed: fraction }),
      ({ elapsed, grace, ops }, store) => {
        const time = manualClock()
        return withService(
          store,
          { idleTimeout: LONG / 10, idRotationInterval: ROTATION, gracePeriod: grace, absoluteTimeout: LONG },
          time,
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const original = yield* sessions.create(browser)
            yield* sessions.set(original, "seed", true)
            yield* time.advance(ROTATION) // the token is due (and its successor will not be within the grace period)
            const rotated = someSession(yield* sessions.resolve(tok(original), browser))
            assert.notStrictEqual(tok(rotated), tok(original))
            yield* time.advance(Math.floor(elapsed * grace)) // still inside the grace period
            const followed = yield* sessions.resolve(tok(original), browser)
            assert.strictEqual(followed.outcome, "followed")
            const viaOld = someSession(followed)
            const handles = [original, rotated, viaOld]
            const model = new Map<string, Session.Json>([["seed", true]])
            for (const op of ops) {
              const h = handles[op.handle]!
              switch (op._tag) {
                case "set":
                  yield* sessions.set(h, op.key, op.value)
                  model.set(op.key, op.value)
                  break
                case "remove":
                  yield* sessions.remove(h, op.key)
                  model.delete(op.key)
                  break
                case "pop": {
                  const v = yield* sessions.pop(h, op.key)
                  deepStrictEqual(Option.getOrUndefined(v), model.get(op.key))
                  model.delete(op.key)
                  break
                }
                case "update": {
                  const old = model.get(op.key)
                  const expected = typeof old === "number" ? old + 1 : 1
                  const v = yield* sessions.update(h, op.key, (o) => Option.match(o, { onNone: () => 1, onSome: (x) => typeof x === "number" ? x + 1 : 1 }))
                  assert.strictEqual(v, expected)
                  model.set(op.key, expected)
                  break
                }
              }
              for (const other of handles) {
                const s = yield* sessions.current(other)
                deepStrictEqual({ ...s.data }, Object.fromEntries(model))
              }
            }
            const again = someSession(yield* sessions.resolve(tok(original), browser))
            deepStrictEqual({ ...again.session.data }, Object.fromEntries(model))
            assert.strictEqual(again.session.key, original.session.key)
          })
        )
      },
      numRuns
    )

    it.effect(title("invariant 5: no loss — 300 concurrent updates through the old, the new and a followed handle lose nothing"), () =>
      Effect.flatMap(Persistence.Persistence, (store) => {
        const time = manualClock()
        return withService(
          store,
          { idRotationInterval: MIN, gracePeriod: 10 * MIN },
          time,
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const original = yield* sessions.create(browser)
            yield* time.advance(MIN)
            const rotated = someSession(yield* sessions.resolve(tok(original), browser))
            const viaOld = someSession(yield* sessions.resolve(tok(original), browser))
            assert.strictEqual(tok(viaOld), tok(rotated))
            const handles = [original, rotated, viaOld]
            const total = 300
            const results = yield* Effect.all(
              Array.from({ length: total }, (_, i) => sessions.update(handles[i % 3]!, "counter", increment)),
              { concurrency: "unbounded" }
            )
            for (const h of handles) deepStrictEqual(Option.getOrNull(yield* sessions.get(h, "counter")), total)
            deepStrictEqual([...results].sort((a, b) => (a as number) - (b as number)), Array.from({ length: total }, (_, i) => i + 1))
          })
        )
      }))

    it.effect(title("invariant 5: no loss — logIn and logOut keep data and createdAt, and set the user"), () =>
      Effect.flatMap(Persistence.Persistence, (store) => {
        const time = manualClock()
        return withService(
          store,
          {},
          time,
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const user = uid("ada")
            const h0 = yield* sessions.create(browser)
            yield* sessions.set(h0, "cart", [1, 2, 3])
            yield* time.advance(SECOND)
            const h1 = yield* sessions.logIn(h0, user)
            assert.notStrictEqual(tok(h1), tok(h0))
            deepStrictEqual(h1.session.data, { cart: [1, 2, 3] })
            deepStrictEqual(Option.getOrNull(h1.session.userId), user)
            assert.strictEqual(h1.session.createdAt, h0.session.createdAt)
            // the pre-login handle died with its token: a request in flight on it writes nothing
            const late = yield* Effect.flip(sessions.set(h0, "late", "write"))
            assert.strictEqual(late._tag, "SessionGoneError")
            const h2 = yield* sessions.logOut(h1)
            deepStrictEqual({ ...h2.session.data }, { cart: [1, 2, 3] })
            assert.isTrue(Option.isNone(h2.session.userId))
            assert.strictEqual(h2.session.key, h0.session.key)
            assert.strictEqual(h2.session.createdAt, h0.session.createdAt)
            // and the store holds exactly that: data kept, no user
            const stored = yield* store.loadSession(h0.session.key)
            deepStrictEqual(Option.map(stored, (s) => ({ data: { ...s.data }, user: Option.getOrNull(s.userId) })), Option.some({ data: { cart: [1, 2, 3] }, user: null }))
          })
        )
      }))

    // -----------------------------------------------------------------------------------------
    // 6. anomaly
    // -----------------------------------------------------------------------------------------

    const arbOctets = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
    const arbDelta = fc.integer({ min: 1, max: 255 })

    prop(
      "invariant 6: anomaly — a rejected client change destroys the session for everyone; an accepted one never does",
      fc.record({
        // off, or the first 0–3 octets (rivo/sessions' AcceptRemoteIP 1–4)
        octets: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
        acceptUa: fc.boolean(),
        ip: arbOctets,
        change: fc.tuple(fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean()),
        delta: fc.tuple(arbDelta, arbDelta, arbDelta, arbDelta),
        uaChanged: fc.boolean(),
        viaOldToken: fc.boolean()
      }),
      ({ acceptUa, change, delta, ip, octets, uaChanged, viaOldToken }, store) => {
        const ip2 = ip.map((o, i) => change[i] ? (o + delta[i]!) % 256 : o)
        const original = Session.client({ ip: ip.join("."), userAgent: "agent/1" })
        const other = Session.client({ ip: ip2.join("."), userAgent: uaChanged ? "agent/2" : "agent/1" })
        const ipRejected = octets !== undefined && ip.slice(0, octets).some((o, i) => o !== ip2[i])
        const rejected = ipRejected || (!acceptUa && uaChanged)
        return withService(
          store,
          { ipBinding: octets === undefined ? false : { ipv4Prefix: octets * 8 }, acceptChangingUserAgent: acceptUa, gracePeriod: "1 minute" },
          manualClock(),
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            let h = yield* sessions.create(original)
            yield* sessions.set(h, "x", 1)
            const first = tok(h)
            if (viaOldToken) h = yield* sessions.regenerateId(h)
            const r = yield* sessions.resolve(viaOldToken ? first : tok(h), other)
            if (rejected) {
              assert.strictEqual(r.outcome, "anomaly")
              assert.strictEqual(r.cookie, "clear")
              assert.isTrue(Option.isNone(r.session))
              noSession(yield* sessions.resolve(tok(h), original))
              noSession(yield* sessions.resolve(first, original))
              assert.isTrue(Option.isNone(yield* store.loadSession(h.session.key)), "the session is gone from the store")
            } else {
              assert.strictEqual(r.outcome, viaOldToken ? "followed" : "valid")
              deepStrictEqual(someSession(r).session.data, { x: 1 })
              assert.strictEqual((yield* sessions.resolve(tok(h), original)).outcome, "valid")
              assert.strictEqual((yield* sessions.resolve(tok(h), other)).outcome, "valid")
            }
          })
        )
      },
      timingRuns
    )

    // -----------------------------------------------------------------------------------------
    // 7. cache transparency
    // -----------------------------------------------------------------------------------------

    prop(
      "invariant 7: cache transparency — cache sizes 1, 16 and unbounded give exactly the trace of size 0 on the same random operations, with cache entries idling out before or after the sessions, over the store as it is and one that keeps nothing past a deadline",
      fc.record({
        cmds: fc.array(arbCmd, { minLength: 1, maxLength: 40 }),
        // cache entries idle out before the sessions do (idleTimeout is 20 GRID), or live far longer
        cacheIdleTimeout: fc.constantFrom(14 * GRID, 720 * GRID),
        strictStore: fc.boolean()
      }),
      ({ cacheIdleTimeout, cmds, strictStore }, store) =>
        Effect.gen(function*() {
          const over = () => (strictStore ? forgetAtDeadline(store) : store)
          const reference = yield* traceOf(over(), cmds, 0, cacheIdleTimeout)
          for (const capacity of [1, 16, Infinity]) {
            const trace = yield* traceOf(over(), cmds, capacity, cacheIdleTimeout)
            deepStrictEqual(trace, reference, `cache capacity ${capacity}`)
          }
        }),
      transparencyRuns
    )

    // -----------------------------------------------------------------------------------------
    // 8. store conformance
    // -----------------------------------------------------------------------------------------

    // The contract itself is persistenceSuite.ts (run for every store by
    // spec/Persistence.test.ts); here: the service over this store is indistinguishable from the
    // service over the reference memory store.
    prop(
      "invariant 8: store conformance — the service over this store gives exactly the trace of the service over the memory store",
      fc.record({ cmds: fc.array(arbCmd, { minLength: 1, maxLength: 40 }), cache: fc.constantFrom(0, 16) }),
      ({ cache, cmds }, store) =>
        Effect.gen(function*() {
          const reference = yield* traceOf(yield* referenceStore, cmds, 0)
          const trace = yield* traceOf(store, cmds, cache)
          deepStrictEqual(trace, reference, `${name} (cache capacity ${cache}) vs memory`)
        }),
      numRuns
    )

    // -----------------------------------------------------------------------------------------
    // 9. codec
    // -----------------------------------------------------------------------------------------

    prop(
      "invariant 9: codec — a session with rich data and a user round-trips through this store exactly",
      fc.record({
        data: richData,
        // (a NUL in a user id: the test below; "" is fine, the id gets a prefix)
        user: fc.oneof(fc.string({ unit: "binary", maxLength: 20 }), awkwardStrings).filter((u) => !u.includes("\u0000")),
        ip: fc.constantFrom("203.0.113.7", "2001:db8::1", "::ffff:192.0.2.1"),
        userAgent: fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.constant("Mozilla/5.0 😀"))
      }),
      ({ data, ip, user, userAgent }, store) => {
        const client = Session.client({ ip, userAgent })
        const time = manualClock(1_700_000_000_123)
        const config = { idleTimeout: 10 * MIN }
        return Effect.gen(function*() {
          // writer: one process; reader: another with a cold cache
          const written = yield* withService(
            store,
            config,
            time,
            Effect.gen(function*() {
              const sessions = yield* Sessions.Sessions
              let h = yield* sessions.create(client)
              for (const [k, v] of data) yield* sessions.set(h, k, v)
              h = yield* sessions.logIn(h, `${uid("u")}:${user}`)
              return { token: tok(h), session: yield* sessions.current(h) }
            })
          )
          const expected: Record<string, Session.Json> = {}
          for (const [k, v] of data) Object.defineProperty(expected, k, { value: v, enumerable: true, writable: true, configurable: true })
          deepStrictEqual({ ...written.session.data }, expected)
          const read = yield* withService(
            store,
            { ...config, cache: false },
            time,
            Effect.gen(function*() {
              const sessions = yield* Sessions.Sessions
              return someSession(yield* sessions.resolve(written.token, client)).session
            })
          )
          // the very value: every field, the data to the last bit
          deepStrictEqual(read, written.session)
          const raw = yield* Effect.withClock(store.loadSession(written.session.key), time.clock)
          assert.isTrue(Option.isSome(raw))
          deepStrictEqual(Option.getOrThrow(raw), written.session)
        })
      },
      numRuns
    )

    // A user id is any string: PostgreSQL refuses a NUL character in text, so the SQL store must
    // not write the id raw into its user index (it did once: logIn failed "Unavailable", a 503).
    it.effect(title("invariant 9: codec — a user id with a NUL character logs in and round-trips"), () =>
      Effect.flatMap(Persistence.Persistence, (store) =>
        withService(
          store,
          {},
          manualClock(),
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const user = `${uid("nul")}\u0000after`
            const h = yield* sessions.logIn(yield* sessions.create(browser), user)
            const read = yield* sessions.resolve(tok(h), browser)
            deepStrictEqual(Option.getOrNull(someSession(read).session.userId), user)
            deepStrictEqual((yield* sessions.listSessions(user)).length, 1)
            assert.strictEqual(yield* sessions.logOutEverywhere(user), 1)
          })
        )))

    // -----------------------------------------------------------------------------------------
    // 10. concurrency
    // -----------------------------------------------------------------------------------------

    it.effect(title("invariant 10: concurrency — 1,000 concurrent updates of one session in one process end at exactly 1,000"), () =>
      Effect.flatMap(Persistence.Persistence, (store) =>
        Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h = yield* sessions.create(browser)
          const total = 1_000
          const results = yield* Effect.all(Array.from({ length: total }, () => sessions.update(h, "counter", increment)), {
            concurrency: "unbounded"
          })
          deepStrictEqual([...results].sort((a, b) => (a as number) - (b as number)), Array.from({ length: total }, (_, i) => i + 1))
          deepStrictEqual(Option.getOrNull(yield* sessions.get(h, "counter")), total)
          const stored = yield* store.loadSession(h.session.key)
          assertSome(Option.map(stored, (s) => s.data["counter"]), total)
        }).pipe(Effect.provide(serviceLayer(store, {})), quiet)), { timeout: 60_000 })

    it.effect(title("invariant 10: concurrency — two processes (two service layers) incrementing one session 2×250 times concurrently end at exactly 500"), () =>
      Effect.gen(function*() {
        const store = yield* Persistence.Persistence
        const scope = yield* Scope.make()
        const peerStore = options.peer === undefined ? store : Context.get(yield* Layer.buildWithScope(options.peer, scope), Persistence.Persistence)
        const a = Context.get(yield* Layer.buildWithScope(serviceLayer(store, {}), scope), Sessions.Sessions)
        const b = Context.get(yield* Layer.buildWithScope(serviceLayer(peerStore, {}), scope), Sessions.Sessions)
        const exit = yield* Effect.exit(Effect.gen(function*() {
          const ha = yield* a.create(browser)
          // The second process learns the session from the token, as a request would bring it.
          const hb = someSession(yield* b.resolve(tok(ha), browser))
          const each = 250
          const results = yield* Effect.all(
            Array.from({ length: 2 * each }, (_, i) => (i % 2 === 0 ? a.update(ha, "counter", increment) : b.update(hb, "counter", increment))),
            { concurrency: "unbounded" }
          )
          deepStrictEqual(
            [...results].sort((x, y) => (x as number) - (y as number)),
            Array.from({ length: 2 * each }, (_, i) => i + 1),
            "every increment saw a distinct previous value"
          )
          const stored = yield* store.loadSession(ha.session.key)
          assertSome(Option.map(stored, (s) => s.data["counter"]), 2 * each)
          const peerView = yield* peerStore.loadSession(ha.session.key)
          assertSome(Option.map(peerView, (s) => s.data["counter"]), 2 * each)
        }).pipe(quiet))
        yield* Scope.close(scope, Exit.void)
        return yield* exit
      }), { timeout: 60_000 })

    // -----------------------------------------------------------------------------------------
    // features: the limit on a user's sessions, logging out the other sessions
    // -----------------------------------------------------------------------------------------

    /** One step of the limit property: a new device logs in, a logged-in one logs out or is used, time passes. */
    type LimitStep =
      | { readonly op: "logIn" | "logOut" | "use"; readonly slot: number; readonly wait: number }
      | { readonly op: "idle" }
    const arbLimitStep: fc.Arbitrary<LimitStep> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ op: fc.constant("logIn" as const), slot: fc.nat(7), wait: fc.integer({ min: 1, max: MIN }) }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant("logOut" as const), slot: fc.nat(7), wait: fc.integer({ min: 1, max: MIN }) }) },
      { weight: 3, arbitrary: fc.record({ op: fc.constant("use" as const), slot: fc.nat(7), wait: fc.integer({ min: 1, max: MIN }) }) },
      { weight: 1, arbitrary: fc.constant({ op: "idle" as const }) }
    )

    prop(
      "feature: maxSessionsPerUser — random log-ins, log-outs, uses and expiries of one user never leave more than the limit live; with endLeastRecentlyUsed exactly the least recently used others end, with refuse a log-in fails exactly at the limit",
      fc.record({
        max: fc.integer({ min: 1, max: 4 }),
        policy: fc.constantFrom("endLeastRecentlyUsed" as const, "refuse" as const),
        steps: fc.array(arbLimitStep, { minLength: 1, maxLength: 24 })
      }),
      ({ max, policy, steps }, store) => {
        const idle = 10 * MIN
        const time = manualClock()
        return withService(
          store,
          {
            idleTimeout: idle,
            touchInterval: 1,
            idRotationInterval: LONG,
            gracePeriod: MIN,
            absoluteTimeout: LONG,
            maxSessionsPerUser: max,
            onSessionLimit: policy
          },
          time,
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const user = uid("limited")
            let devices: Array<Sessions.ActiveSession> = []
            for (const step of steps) {
              if (step.op === "idle") {
                yield* time.advance(idle)
                devices = []
                deepStrictEqual(yield* sessions.listSessions(user), [])
                continue
              }
              // Every step at its own millisecond: no two last accesses tie.
              yield* time.advance(step.wait)
              const before = yield* sessions.listSessions(user)
              if (step.op === "logIn") {
                const device = yield* sessions.create(browser)
                const result = yield* Effect.either(sessions.logIn(device, user))
                const after = yield* sessions.listSessions(user)
                if (policy === "refuse") {
                  assert.strictEqual(Either.isLeft(result), before.length >= max, `refused exactly at the limit (${before.length} of ${max})`)
                  if (Either.isLeft(result)) {
                    assert.instanceOf(result.left, Sessions.SessionLimitError)
                    deepStrictEqual(after, before)
                  }
                } else {
                  const expected = [...before].sort((a, b) => a.lastAccessAt - b.lastAccessAt).slice(0, Math.max(0, before.length + 1 - max))
                  const ended = before.filter((b) => !after.some((a) => a.id === b.id))
                  expect(ended.map((x) => x.id).sort()).toStrictEqual(expected.map((x) => x.id).sort())
                }
                if (Either.isRight(result)) devices.push(result.right)
                assert.isAtMost(after.length, max)
                continue
              }
              if (devices.length === 0) continue
              const i = step.slot % devices.length
              if (step.op === "logOut") {
                yield* Effect.ignore(sessions.logOut(devices[i]!))
                devices.splice(i, 1)
              } else {
                const r = yield* sessions.resolve(tok(devices[i]!), browser)
                if (Option.isSome(r.session)) devices[i] = r.session.value
                else devices.splice(i, 1)
              }
              assert.isAtMost((yield* sessions.listSessions(user)).length, max)
            }
          })
        )
      },
      numRuns
    )

    it.effect(title("feature: maxSessionsPerUser — a refused log-in fails with SessionLimitError and changes nothing: the session keeps its token, its user and its data"), () =>
      Effect.flatMap(Persistence.Persistence, (store) =>
        withService(
          store,
          { maxSessionsPerUser: 1, onSessionLimit: "refuse" },
          manualClock(),
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const user = uid("refused")
            const first = yield* sessions.logIn(yield* sessions.create(browser), user)
            const second = yield* sessions.create(browser)
            yield* sessions.set(second, "cart", [1])
            const refused = yield* Effect.flip(sessions.logIn(second, user))
            assert.instanceOf(refused, Sessions.SessionLimitError)
            assert.strictEqual(refused.max, 1)
            const still = someSession(yield* sessions.resolve(tok(second), browser))
            assertNone(still.session.userId)
            expect({ ...still.session.data }).toStrictEqual({ cart: [1] })
            deepStrictEqual((yield* sessions.listSessions(user)).map((s) => s.id), [publicId(first.session.key)])
            // Once the first logs out, the second may log in.
            yield* sessions.logOut(first)
            assertSome((yield* sessions.logIn(second, user)).session.userId, user)
          })
        )))

    it.effect(title("feature: logOutOthers — ends every other session of the user and keeps this one (token, cookie, data); returns how many; another user's sessions stay; without a user it ends nothing; a dead handle fails"), () =>
      Effect.flatMap(Persistence.Persistence, (store) =>
        withService(
          store,
          {},
          manualClock(),
          Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const user = uid("user")
            const other = uid("other")
            const mine = yield* Effect.forEach([1, 2, 3], () => Effect.flatMap(sessions.create(browser), (h) => sessions.logIn(h, user)))
            const theirs = yield* sessions.logIn(yield* sessions.create(browser), other)
            const current = mine[0]!
            yield* sessions.set(current, "kept", true)
            assert.strictEqual(yield* sessions.logOutOthers(current), 2)
            deepStrictEqual((yield* sessions.listSessions(user)).map((s) => s.id), [publicId(current.session.key)])
            for (const gone of mine.slice(1)) noSession(yield* sessions.resolve(tok(gone), browser))
            const r = yield* sessions.resolve(tok(current), browser)
            assert.strictEqual(r.outcome, "valid")
            assertSome(yield* sessions.get(someSession(r), "kept"), true)
            assert.strictEqual((yield* sessions.listSessions(other)).length, 1)
            assert.strictEqual(yield* sessions.logOutOthers(current), 0, "nothing left to end")
            assert.strictEqual(yield* sessions.logOutOthers(yield* sessions.create(browser)), 0, "no user: nothing to end")
            const dead = yield* Effect.flip(sessions.logOutOthers(mine[1]!))
            assert.strictEqual(dead._tag, "SessionGoneError")
            assert.strictEqual((yield* sessions.listSessions(user)).length, 1)
            yield* sessions.logOutEverywhere(user)
            yield* sessions.destroy(theirs)
          })
        )))

    // -----------------------------------------------------------------------------------------
    // feature: log everybody out
    // -----------------------------------------------------------------------------------------

    const fresh = options.fresh
    if (fresh === undefined) {
      it.effect.skip(title("feature: logOutEveryone (needs the suite option `fresh`: a store of its own)"), () => Effect.void)
    } else {
      it.effect(title("feature: logOutEveryone — every session born (and not logged in to since) at or before the switch ends when next met: at once in the calling process (resolve, reads and writes through handles, listings, a Revoked event), in a second process when it hears the store or within a minute; sessions born after it live on"), () =>
        Effect.gen(function*() {
          const time = manualClock(1_000_000)
          const scope = yield* Scope.make()
          const namespace = uid("ns").replace(/[^A-Za-z0-9]/g, "").toLowerCase()
          const exit = yield* Effect.exit(Effect.gen(function*() {
            const storeA = Context.get(yield* Layer.buildWithScope(fresh(namespace), scope), Persistence.Persistence)
            const storeB = options.peer === undefined ? storeA : Context.get(yield* Layer.buildWithScope(fresh(namespace), scope), Persistence.Persistence)
            const a = Context.get(yield* Layer.buildWithScope(serviceLayer(storeA, {}), scope), Sessions.Sessions)
            const b = Context.get(yield* Layer.buildWithScope(serviceLayer(storeB, {}), scope), Sessions.Sessions)
            const events = yield* Scope.extend(a.subscribe(), scope)
            const user = uid("user")
            const mine = yield* a.logIn(yield* a.create(browser), user)
            const anonymous = yield* a.create(browser)
            const other = yield* a.logIn(yield* a.create(browser), uid("other"))
            // A session the second process made, and holds in its cache.
            const elsewhere = yield* b.logIn(yield* b.create(browser), user)
            for (const h of [mine, anonymous, other]) assert.strictEqual((yield* a.resolve(tok(h), browser)).outcome, "valid")
            assert.strictEqual((yield* b.resolve(tok(elsewhere), browser)).outcome, "valid")
            yield* Queue.takeAll(events)

            yield* time.advance(SECOND)
            const until = yield* a.logOutEveryone()
            assert.strictEqual(until, yield* Clock.currentTimeMillis)

            // The calling process: at once.
            const ended = yield* a.resolve(tok(mine), browser)
            deepStrictEqual([Option.isNone(ended.session), ended.cookie, ended.outcome], [true, "clear", "expired"])
            assert.strictEqual((yield* Effect.flip(a.get(anonymous, "x")))._tag, "SessionGoneError")
            assert.strictEqual((yield* Effect.flip(a.set(other, "x", 1)))._tag, "SessionGoneError")
            assertNone(yield* storeA.loadSession(other.session.key))
            const revoked = [...(yield* Queue.takeAll(events))].filter((e) => e._tag === "Revoked")
            deepStrictEqual(revoked.map((e) => [e.sessionId, e.revokedUntil]), [
              [publicId(mine.session.key), until],
              [publicId(other.session.key), until]
            ])

            // The second process: as soon as it hears the store; without a channel, once its instant is a minute old.
            let outcome = (yield* b.resolve(tok(elsewhere), browser)).outcome
            for (let i = 0; i < 50 && outcome === "valid" && options.peer !== undefined; i++) {
              yield* Effect.sleep("20 millis")
              outcome = (yield* b.resolve(tok(elsewhere), browser)).outcome
            }
            if (outcome === "valid") {
              yield* time.advance(RELOAD_MILLIS)
              outcome = (yield* b.resolve(tok(elsewhere), browser)).outcome
            }
            assert.strictEqual(outcome, "expired")
            assert.strictEqual((yield* Effect.flip(b.set(elsewhere, "x", 1)))._tag, "SessionGoneError")

            // A session born after the switch lives on, logged in or not.
            yield* time.advance(1)
            const again = yield* a.logIn(yield* a.create(browser), user)
            assert.strictEqual((yield* a.resolve(tok(again), browser)).outcome, "valid")

            // Listings show only the sessions born after the switch.
            deepStrictEqual((yield* a.listSessions(user)).map((s) => s.id), [publicId(again.session.key)])
            deepStrictEqual((yield* b.listSessions(user)).map((s) => s.id), [publicId(again.session.key)])
            assert.strictEqual((yield* b.resolve(tok(again), browser)).outcome, "valid")
          }).pipe(Effect.withClock(time.clock), quiet))
          yield* Scope.close(scope, Exit.void)
          return yield* exit
        }), { timeout: 60_000 })
    }

    // -----------------------------------------------------------------------------------------
    // security: a handle is only as good as its token
    // -----------------------------------------------------------------------------------------

    for (const retirement of retirements) {
      it.effect(title(`security: after ${retirement.name} through the victim's handle, every operation through the attacker's handle on the same token fails with SessionGoneError and changes nothing`), () =>
        Effect.flatMap(Persistence.Persistence, (store) =>
          withService(
            store,
            { gracePeriod: MIN },
            manualClock(),
            Effect.gen(function*() {
              const sessions = yield* Sessions.Sessions
              const user = uid("victim")
              let planted = yield* sessions.create(browser)
              yield* sessions.set(planted, "cart", [1, 2])
              if (retirement.loggedIn) planted = yield* sessions.logIn(planted, user)
              const attacker = someSession(yield* sessions.resolve(tok(planted), browser))
              const victim = someSession(yield* sessions.resolve(tok(planted), browser))
              const survivor = yield* retirement.retire(sessions, victim, user)
              const before = yield* store.loadSession(planted.session.key)
              assert.strictEqual(Option.isSome(before), Option.isSome(survivor), "the session lives on exactly when the retirement keeps it")
              expect(yield* notGone(sessions, attacker)).toStrictEqual([])
              deepStrictEqual(yield* store.loadSession(planted.session.key), before)
              if (Option.isSome(survivor)) {
                const s = yield* sessions.current(survivor.value)
                expect({ ...s.data }).toStrictEqual({ cart: [1, 2] })
              }
              noSession(yield* sessions.resolve(tok(attacker), browser))
            })
          )))
    }

    it.effect(title("security: a handle resolved in a second process is dead after a log-in through the first — every operation fails with the cache off, every write with the cache on, and no read shows the victim's user"), () =>
      Effect.gen(function*() {
        const store = yield* Persistence.Persistence
        const scope = yield* Scope.make()
        const peerStore = options.peer === undefined ? store : Context.get(yield* Layer.buildWithScope(options.peer, scope), Persistence.Persistence)
        const a = Context.get(yield* Layer.buildWithScope(serviceLayer(store, {}), scope), Sessions.Sessions)
        const cold = Context.get(yield* Layer.buildWithScope(serviceLayer(peerStore, { cache: false }), scope), Sessions.Sessions)
        const warm = Context.get(yield* Layer.buildWithScope(serviceLayer(peerStore, {}), scope), Sessions.Sessions)
        const exit = yield* Effect.exit(Effect.gen(function*() {
          const user = uid("victim")
          const planted = yield* a.create(browser)
          yield* a.set(planted, "cart", [1, 2])
          // The attacker's requests reach the second process, the victim's the first.
          const viaCold = someSession(yield* cold.resolve(tok(planted), browser))
          const viaWarm = someSession(yield* warm.resolve(tok(planted), browser))
          const victim = someSession(yield* a.resolve(tok(planted), browser))
          const loggedIn = yield* a.logIn(victim, user)
          const before = yield* store.loadSession(loggedIn.session.key)
          assertSome(Option.flatMap(before, (s) => s.userId), user)
          // Reads with a warm cache may still see the pre-login session until the invalidation
          // arrives, never the logged-in one.
          const reads: ReadonlyArray<Effect.Effect<unknown, Sessions.SessionError>> = [warm.current(viaWarm), warm.get(viaWarm, "cart")]
          for (const read of reads) {
            const r = yield* Effect.either(read)
            if (Either.isLeft(r)) assert.strictEqual(r.left._tag, "SessionGoneError")
          }
          const seen = yield* Effect.either(warm.current(viaWarm))
          if (Either.isRight(seen)) assertNone(seen.right.userId)
          // Writes compare-and-set in the store: gone whatever the cache holds.
          const writes = handleOperations(warm, viaWarm).filter(([name]) => !["current", "get", "getAs", "user"].includes(name))
          for (const [name, write] of writes) {
            const r = yield* Effect.either(write)
            assert.isTrue(Either.isLeft(r) && r.left._tag === "SessionGoneError", `${name} through the warm peer: ${Either.isLeft(r) ? r.left._tag : "succeeded"}`)
          }
          expect(yield* notGone(cold, viaCold)).toStrictEqual([])
          deepStrictEqual(yield* store.loadSession(loggedIn.session.key), before)
          deepStrictEqual(yield* peerStore.loadSession(loggedIn.session.key), before)
          assertSome((yield* a.current(loggedIn)).userId, user)
        }).pipe(quiet))
        yield* Scope.close(scope, Exit.void)
        return yield* exit
      }), { timeout: 60_000 })

    // -----------------------------------------------------------------------------------------
    // TestClock
    // -----------------------------------------------------------------------------------------

    it.effect(title("the service over this store runs on TestClock: a session dies exactly at its idle timeout, a rotated token exactly at the end of its grace period"), () =>
      Effect.gen(function*() {
        const store = yield* Persistence.Persistence
        const idle = 30 * MIN
        const grace = 2 * MIN
        const rotation = 20 * MIN
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          // idle: A is never used again, B once just before its deadline
          const a = yield* sessions.create(browser)
          const b = yield* sessions.create(browser)
          yield* TestClock.adjust(Duration.millis(idle - 1))
          assert.isTrue(Option.isSome((yield* sessions.resolve(tok(b), browser)).session), "alive 1 ms before the idle timeout")
          yield* TestClock.adjust(Duration.millis(1))
          noSession(yield* sessions.resolve(tok(a), browser))
          // grace: C rotates, and its old token follows until exactly rotation time + grace period
          const c = yield* sessions.create(browser)
          yield* sessions.set(c, "k", "v")
          yield* TestClock.adjust(Duration.millis(rotation))
          const rotated = yield* sessions.resolve(tok(c), browser)
          assert.strictEqual(rotated.outcome, "rotated")
          const successor = someSession(rotated)
          yield* TestClock.adjust(Duration.millis(grace - 1))
          const followed = yield* sessions.resolve(tok(c), browser)
          assert.strictEqual(followed.outcome, "followed")
          assert.strictEqual(tok(someSession(followed)), tok(successor))
          yield* TestClock.adjust(Duration.millis(1))
          noSession(yield* sessions.resolve(tok(c), browser))
          const current = yield* sessions.resolve(tok(successor), browser)
          assert.strictEqual(current.outcome, "valid")
          deepStrictEqual(someSession(current).session.data, { k: "v" })
        }).pipe(
          Effect.provide(serviceLayer(store, {
            idleTimeout: idle,
            touchInterval: idle - 1,
            idRotationInterval: rotation,
            gracePeriod: grace,
            absoluteTimeout: LONG
          })),
          Effect.provide(TestContext.TestContext),
          quiet
        )
      }))
  })
}
