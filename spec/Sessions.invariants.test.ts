/**
 * The invariants of DESIGN §4 on the running Sessions service: seeded SecureRandom, a fresh
 * memory store per run, time from a manual clock in the properties (TestClock in the examples).
 * Expectations are computed from the numbers each property chose, never from the code under test.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Clock, Duration, Effect, FastCheck as fc, FiberRef, Layer, LogLevel, Option, Redacted, TestClock } from "effect"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { serviceLayer as makeServiceLayer } from "./helpers/service.js"

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/** Far enough away never to matter in a property (about 31 years). */
const LONG = 1_000_000_000_000

const serviceLayer = (
  config: SessionConfig.SessionConfigInput = {},
  options: { readonly seed?: string; readonly store?: Persistence.PersistenceShape } = {}
): Layer.Layer<Sessions.Sessions> => makeServiceLayer(config, { seed: "invariants", ...options })

const tok = (h: Sessions.ActiveSession): string => Redacted.value(h.token)

const someSession = (r: Sessions.Resolution): Sessions.ActiveSession => {
  assert.isTrue(Option.isSome(r.session), `expected a session, got outcome ${r.outcome}`)
  return Option.getOrThrow(r.session)
}

const noSession = (r: Sessions.Resolution): void => {
  assert.isTrue(Option.isNone(r.session), `expected no session, got outcome ${r.outcome}`)
  assert.include(["expired", "missing"], r.outcome)
  // "clear" for a session that just died; "none" for an unknown or long-dead token (whose cookie
  // name may already hold a newer token): never "set"
  assert.notStrictEqual(r.cookie, "set")
}

const advance = (millis: number) => TestClock.adjust(Duration.millis(millis))

/**
 * A clock that moves only when told. The service only reads time, and `TestClock.adjust` waits for
 * a timer tick (a few milliseconds) on every call: too slow for properties of thousands of steps.
 */
const manualClock = () => {
  let now = 0
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    currentTimeMillis: Effect.sync(() => now),
    unsafeCurrentTimeNanos: () => BigInt(now) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
    sleep: () => Effect.dieMessage("manualClock: sleep is not supported")
  }
  return {
    clock,
    advance: (millis: number) =>
      Effect.sync(() => {
        now += millis
      })
  }
}

const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0" })

/** A time step: a fraction of a reference duration, or one of the boundaries. */
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

/**
 * A property over the running service: each run builds its own service (fresh memory store) and
 * runs with logging off. Properties use {@link manualClock}, so they need no TestClock.
 */
const prop = <T>(name: string, arb: fc.Arbitrary<T>, body: (t: T) => Effect.Effect<void, unknown>, numRuns: number) =>
  it(name, () => fc.assert(fc.asyncProperty(arb, (t) => Effect.runPromise(quiet(body(t)))), { numRuns }))

const quiet = <A, E>(effect: Effect.Effect<A, E>) => Effect.locally(effect, FiberRef.currentMinimumLogLevel, LogLevel.None)

const fraction = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true })
const touchOf = (idle: number, frac: number) => Math.max(1, Math.min(idle - 1, Math.floor(frac * idle)))

// ---------------------------------------------------------------------------------------------
// 1. idle
// ---------------------------------------------------------------------------------------------

describe("Sessions invariants (running service)", () => {
  prop(
    "invariant 1: idle — a resolve returns a session only while now − lastAccessAt < idleTimeout; once idle the token is dead forever",
    fc.record({
      idle: fc.oneof(fc.integer({ min: 2, max: 50 }), fc.integer({ min: 2, max: 10_000_000 })),
      touchFrac: fraction,
      rotationFrac: fc.double({ min: 0, max: 3, noNaN: true }),
      steps: fc.array(arbStep, { maxLength: 30 })
    }),
    ({ idle, rotationFrac, steps, touchFrac }) => {
      const touch = touchOf(idle, touchFrac)
      const rotation = Math.max(1, Math.floor(rotationFrac * idle))
      const time = manualClock()
      return Effect.gen(function*() {
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
        // dead forever: whatever happens later, the token never comes back
        if (!alive) {
          for (const later of [0, 1, idle, LONG / 2]) {
            yield* time.advance(later)
            noSession(yield* sessions.resolve(token, browser))
          }
        }
      }).pipe(
        Effect.provide(
          serviceLayer({ idleTimeout: idle, touchInterval: touch, idRotationInterval: rotation, gracePeriod: 1_000, absoluteTimeout: LONG })
        ),
        Effect.withClock(time.clock)
      )
    },
    150
  )

  // -------------------------------------------------------------------------------------------
  // 2. absolute
  // -------------------------------------------------------------------------------------------

  prop(
    "invariant 2: absolute — a busy session (resolved every step < idleTimeout − touchInterval) is never returned at or after createdAt + absoluteTimeout",
    fc.record({
      idle: fc.integer({ min: 2, max: 1_000_000 }),
      touchFrac: fraction,
      absoluteFrac: fraction,
      rotationFrac: fc.double({ min: 0, max: 4, noNaN: true }),
      fracs: fc.array(fraction, { minLength: 1, maxLength: 10 })
    }),
    ({ absoluteFrac, fracs, idle, rotationFrac, touchFrac }) => {
      const touch = touchOf(idle, touchFrac)
      // Largest step that keeps a session alive whatever the touch lag: idle − touch.
      const maxStep = idle - touch
      const steps = Array.from({ length: 30 }, (_, i) => 1 + Math.floor(fracs[i % fracs.length]! * (maxStep - 1)))
      // The deadline falls within the first 27 steps, so three steps remain after it.
      const absolute = Math.max(1, Math.floor(absoluteFrac * steps.slice(0, 27).reduce((a, b) => a + b, 0)))
      const rotation = Math.max(1, Math.floor(rotationFrac * idle))
      const time = manualClock()
      return Effect.gen(function*() {
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
      }).pipe(
        Effect.provide(
          serviceLayer({ idleTimeout: idle, touchInterval: touch, idRotationInterval: rotation, gracePeriod: 1_000, absoluteTimeout: absolute })
        ),
        Effect.withClock(time.clock)
      )
    },
    100
  )

  // -------------------------------------------------------------------------------------------
  // 3. rotation
  // -------------------------------------------------------------------------------------------

  prop(
    "invariant 3: rotation — a resolve with a token ≥ idRotationInterval old never returns that token as current; data, user and createdAt are kept",
    fc.record({
      rotation: fc.integer({ min: 1, max: 1_000_000 }),
      idleFrac: fc.double({ min: 0.1, max: 4, noNaN: true }),
      ageKind: fc.constantFrom("frac", "rotation", "rotation-1", "zero"),
      ageFrac: fraction,
      loggedIn: fc.boolean(),
      before: fc.nat({ max: 1_000_000 }),
      data: fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 4 })
    }),
    ({ ageFrac, ageKind, before, data, idleFrac, loggedIn, rotation }) => {
      const idle = Math.max(2, Math.floor(idleFrac * rotation))
      // The age of the token when it is used, always < idle so the session is alive.
      const ageWanted = ageKind === "frac"
        ? Math.floor(ageFrac * idle)
        : ageKind === "rotation"
        ? rotation
        : ageKind === "rotation-1"
        ? rotation - 1
        : 0
      const age = Math.min(ageWanted, idle - 1)
      // A logIn rotates the token: its age then counts from the logIn. Keep `before` < rotation and < idle.
      const wait = Math.min(before, rotation - 1, idle - 1)
      const time = manualClock()
      return Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const start = yield* Clock.currentTimeMillis
        let h = yield* sessions.create(browser)
        for (const [k, v] of Object.entries(data)) yield* sessions.set(h, k, v)
        let issued = start
        if (loggedIn) {
          yield* time.advance(wait)
          h = yield* sessions.logIn(h, "user-1")
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
          // The new token is the current one: it resolves as valid (not followed, not rotated again).
          const again = yield* sessions.resolve(tok(s), browser)
          assert.strictEqual(again.outcome, "valid")
        } else {
          assert.strictEqual(r.outcome, "valid")
          assert.strictEqual(r.cookie, "none")
          assert.strictEqual(tok(s), tok(h))
        }
        deepStrictEqual({ ...s.session.data }, data)
        deepStrictEqual(Option.getOrNull(s.session.userId), loggedIn ? "user-1" : null)
        assert.strictEqual(s.session.createdAt, start)
        assert.strictEqual(s.session.key, h.session.key)
      }).pipe(
        Effect.provide(
          serviceLayer({ idleTimeout: idle, touchInterval: 1, idRotationInterval: rotation, gracePeriod: 1_000, absoluteTimeout: LONG })
        ),
        Effect.withClock(time.clock)
      )
    },
    150
  )

  // -------------------------------------------------------------------------------------------
  // 4. grace
  // -------------------------------------------------------------------------------------------

  prop(
    "invariant 4: grace — a token rotated at t follows to its successor iff now < t + gracePeriod, never after; also along chains",
    fc.record({
      grace: fc.integer({ min: 1, max: 1_000_000 }),
      gaps: fc.array(fraction, { minLength: 1, maxLength: 4 }),
      probes: fc.array(fc.double({ min: 0, max: 3, noNaN: true }), { maxLength: 4 }),
      viaResolve: fc.boolean()
    }),
    ({ gaps, grace, probes, viaResolve }) => {
      // Rotation by resolve: every gap is ≥ idRotationInterval, every probe before the current token is due
      // again (probes end by 3 × grace after the last rotation). regenerateId rotates at any gap: chains.
      const rotation = viaResolve ? 3 * grace + 1 : LONG
      const time = manualClock()
      return Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const start = yield* Clock.currentTimeMillis
        let h = yield* sessions.create(browser)
        yield* sessions.set(h, "n", 1)
        const tokens = [tok(h)]
        const rotatedAt: Array<number> = [] // rotatedAt[j] = when tokens[j] was rotated away
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
        // Probe times: both sides of every boundary, and random ones.
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
          // the current token is untouched by all of this
          const r = yield* sessions.resolve(current, browser)
          assert.strictEqual(r.outcome, "valid")
        }
      }).pipe(
        Effect.provide(
          serviceLayer({ idleTimeout: LONG / 10, idRotationInterval: rotation, gracePeriod: grace, absoluteTimeout: LONG })
        ),
        Effect.withClock(time.clock)
      )
    },
    150
  )

  it.effect("invariant 4: grace — logIn and logOut rotate without grace: the old token is dead at once", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h0 = yield* sessions.create(browser)
      const h1 = yield* sessions.logIn(h0, "ada")
      noSession(yield* sessions.resolve(tok(h0), browser))
      const h2 = yield* sessions.logOut(h1)
      noSession(yield* sessions.resolve(tok(h1), browser))
      assert.strictEqual((yield* sessions.resolve(tok(h2), browser)).outcome, "valid")
      // regenerateId({ grace: false }) too
      const h3 = yield* sessions.regenerateId(h2, { grace: false })
      noSession(yield* sessions.resolve(tok(h2), browser))
      assert.strictEqual((yield* sessions.resolve(tok(h3), browser)).outcome, "valid")
    }).pipe(Effect.provide(serviceLayer({ gracePeriod: "1 minute" }))))

  // -------------------------------------------------------------------------------------------
  // 5. no loss
  // -------------------------------------------------------------------------------------------

  type Op =
    | { readonly _tag: "set"; readonly handle: number; readonly key: string; readonly value: number }
    | { readonly _tag: "remove"; readonly handle: number; readonly key: string }
    | { readonly _tag: "pop"; readonly handle: number; readonly key: string }
  const arbKey = fc.constantFrom("a", "b", "c", "d")
  const arbOp: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ handle: fc.nat(2), key: arbKey, value: fc.integer() }).map((r): Op => ({ _tag: "set", ...r })),
    fc.record({ handle: fc.nat(2), key: arbKey }).map((r): Op => ({ _tag: "remove", ...r })),
    fc.record({ handle: fc.nat(2), key: arbKey }).map((r): Op => ({ _tag: "pop", ...r }))
  )

  prop(
    "invariant 5: no loss — inside the grace period the old and the new token read and write the very same session",
    fc.record({ ops: fc.array(arbOp, { maxLength: 25 }), grace: fc.integer({ min: 2, max: 9_999 }), elapsed: fraction }),
    ({ elapsed, grace, ops }) => {
      const time = manualClock()
      return Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const original = yield* sessions.create(browser)
        yield* sessions.set(original, "seed", true)
        yield* time.advance(10_000) // the token is due
        const rotated = someSession(yield* sessions.resolve(tok(original), browser))
        yield* time.advance(Math.floor(elapsed * grace)) // still inside the grace period
        const followed = yield* sessions.resolve(tok(original), browser)
        assert.strictEqual(followed.outcome, "followed")
        const viaOld = someSession(followed)
        // three handles: the pre-rotation one, the rotated one, and the one that followed the old token
        const handles = [original, rotated, viaOld]
        const model = new Map<string, unknown>([["seed", true]])
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
          }
          for (const other of handles) {
            const s = yield* sessions.current(other)
            deepStrictEqual({ ...s.data }, Object.fromEntries(model))
          }
        }
        // and the old token still leads to the same data
        const again = someSession(yield* sessions.resolve(tok(original), browser))
        deepStrictEqual({ ...again.session.data }, Object.fromEntries(model))
        assert.strictEqual(again.session.key, original.session.key)
      }).pipe(
        Effect.provide(serviceLayer({ idleTimeout: LONG / 10, idRotationInterval: 10_000, gracePeriod: grace, absoluteTimeout: LONG })),
        Effect.withClock(time.clock)
      )
    },
    60
  )

  it.effect("invariant 5: no loss — concurrent updates through old and new handles lose nothing", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const original = yield* sessions.create(browser)
      yield* advance(10_000)
      const rotated = someSession(yield* sessions.resolve(tok(original), browser))
      const viaOld = someSession(yield* sessions.resolve(tok(original), browser))
      const handles = [original, rotated, viaOld]
      const n = 300
      const increment = (old: Option.Option<Session.Json>) => (Option.getOrElse(old, () => 0) as number) + 1
      const results = yield* Effect.all(
        Array.from({ length: n }, (_, i) => sessions.update(handles[i % 3]!, "counter", increment)),
        { concurrency: "unbounded" }
      )
      for (const h of handles) deepStrictEqual(Option.getOrNull(yield* sessions.get(h, "counter")), n)
      // every increment saw a distinct previous value
      deepStrictEqual([...results].sort((a, b) => (a as number) - (b as number)), Array.from({ length: n }, (_, i) => i + 1))
    }).pipe(Effect.provide(serviceLayer({ idRotationInterval: 10_000, gracePeriod: 60_000 }))))

  it.effect("invariant 5: no loss — logIn and logOut keep data and createdAt, and set the user", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h0 = yield* sessions.create(browser)
      yield* sessions.set(h0, "cart", [1, 2, 3])
      yield* advance(1_000)
      const h1 = yield* sessions.logIn(h0, "ada")
      assert.notStrictEqual(tok(h1), tok(h0))
      deepStrictEqual(h1.session.data, { cart: [1, 2, 3] })
      deepStrictEqual(Option.getOrNull(h1.session.userId), "ada")
      assert.strictEqual(h1.session.createdAt, h0.session.createdAt)
      // the pre-login handle died with its token (DESIGN §7): a request in flight on it writes nothing
      const late = yield* Effect.flip(sessions.set(h0, "late", "write"))
      assert.strictEqual(late._tag, "SessionGoneError")
      const h2 = yield* sessions.logOut(h1)
      deepStrictEqual({ ...h2.session.data }, { cart: [1, 2, 3] })
      assert.isTrue(Option.isNone(h2.session.userId))
      assert.strictEqual(h2.session.key, h0.session.key)
      assert.strictEqual(h2.session.createdAt, h0.session.createdAt)
    }).pipe(Effect.provide(serviceLayer({}))))

  // -------------------------------------------------------------------------------------------
  // 6. anomaly
  // -------------------------------------------------------------------------------------------

  const arbOctets = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))

  prop(
    "invariant 6: anomaly — a rejected client change destroys the session for everyone; an accepted one never does",
    fc.record({
      level: fc.integer({ min: 1, max: 4 }),
      acceptUa: fc.boolean(),
      ip: arbOctets,
      change: fc.tuple(fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean()),
      delta: fc.tuple(fc.integer({ min: 1, max: 255 }), fc.integer({ min: 1, max: 255 }), fc.integer({ min: 1, max: 255 }), fc.integer({ min: 1, max: 255 })),
      uaChanged: fc.boolean(),
      viaOldToken: fc.boolean()
    }),
    ({ acceptUa, change, delta, ip, level, uaChanged, viaOldToken }) => {
      const ip2 = ip.map((o, i) => change[i] ? (o + delta[i]!) % 256 : o)
      const original = Session.client({ ip: ip.join("."), userAgent: "agent/1" })
      const other = Session.client({ ip: ip2.join("."), userAgent: uaChanged ? "agent/2" : "agent/1" })
      // acceptRemoteIp n: the first n − 1 octets must stay.
      const ipRejected = level > 1 && ip.slice(0, level - 1).some((o, i) => o !== ip2[i])
      const rejected = ipRejected || (!acceptUa && uaChanged)
      return Effect.gen(function*() {
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
          // afterwards even the original client gets nothing, with either token
          noSession(yield* sessions.resolve(tok(h), original))
          noSession(yield* sessions.resolve(first, original))
        } else {
          assert.strictEqual(r.outcome, viaOldToken ? "followed" : "valid")
          deepStrictEqual(someSession(r).session.data, { x: 1 })
          // the session lives on, for both clients
          assert.strictEqual((yield* sessions.resolve(tok(h), original)).outcome, "valid")
          assert.strictEqual((yield* sessions.resolve(tok(h), other)).outcome, "valid")
        }
      }).pipe(Effect.provide(serviceLayer({ acceptRemoteIp: level, acceptChangingUserAgent: acceptUa, gracePeriod: "1 minute" })))
    },
    200
  )

  it.effect("invariant 6: anomaly — examples at each acceptRemoteIp level", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [level: number, from: string, to: string, rejected: boolean]> = [
        [1, "10.1.2.3", "192.168.0.1", false],
        [2, "10.1.2.3", "10.200.0.1", false],
        [2, "10.1.2.3", "11.1.2.3", true],
        [3, "10.1.2.3", "10.1.99.99", false],
        [3, "10.1.2.3", "10.2.2.3", true],
        [4, "10.1.2.3", "10.1.2.250", false],
        [4, "10.1.2.3", "10.1.3.3", true]
      ]
      for (const [level, from, to, rejected] of cases) {
        const r = yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h = yield* sessions.create(Session.client({ ip: from, userAgent: "ua" }))
          return yield* sessions.resolve(tok(h), Session.client({ ip: to, userAgent: "ua" }))
        }).pipe(Effect.provide(serviceLayer({ acceptRemoteIp: level })))
        assert.strictEqual(r.outcome, rejected ? "anomaly" : "valid", `level ${level}: ${from} → ${to}`)
      }
    }))

  // -------------------------------------------------------------------------------------------
  // 7. cache transparency
  // -------------------------------------------------------------------------------------------

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
  const users = ["ada", "grace"]

  const n = fc.nat(50)
  const key = fc.constantFrom("a", "b", "c")
  const arbCmd: fc.Arbitrary<Cmd> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ client: fc.nat(1) }).map((r): Cmd => ({ _tag: "Create", ...r })) },
    {
      weight: 6,
      arbitrary: fc.record({ token: n, client: fc.oneof(fc.constant(0), fc.constant(0), fc.nat(3)), create: fc.boolean() })
        .map((r): Cmd => ({ _tag: "Resolve", ...r }))
    },
    { weight: 3, arbitrary: fc.record({ handle: n, key, value: fc.integer({ min: -9, max: 99 }) }).map((r): Cmd => ({ _tag: "Set", ...r })) },
    { weight: 2, arbitrary: fc.record({ handle: n, key }).map((r): Cmd => ({ _tag: "Pop", ...r })) },
    { weight: 2, arbitrary: fc.record({ handle: n, key }).map((r): Cmd => ({ _tag: "Update", ...r })) },
    { weight: 2, arbitrary: fc.record({ handle: n, key }).map((r): Cmd => ({ _tag: "Get", ...r })) },
    {
      weight: 5,
      arbitrary: fc.oneof(
        { weight: 10, arbitrary: fc.integer({ min: 0, max: 12_000 }) },
        { weight: 5, arbitrary: fc.constantFrom(1_000, 2_000, 5_000, 7_000, 10_000) },
        // past any retention a store may keep dead records for (the built-in stores: 10 minutes)
        { weight: 1, arbitrary: fc.constantFrom(11 * 60_000, 61 * 60_000) }
      ).map((millis): Cmd => ({ _tag: "Advance", millis }))
    },
    { weight: 1, arbitrary: fc.record({ handle: n }).map((r): Cmd => ({ _tag: "Destroy", ...r })) },
    { weight: 2, arbitrary: fc.record({ handle: n, user: fc.nat(1), exclusive: fc.boolean() }).map((r): Cmd => ({ _tag: "LogIn", ...r })) },
    { weight: 1, arbitrary: fc.record({ handle: n }).map((r): Cmd => ({ _tag: "LogOut", ...r })) },
    { weight: 2, arbitrary: fc.record({ handle: n, grace: fc.boolean() }).map((r): Cmd => ({ _tag: "Regenerate", ...r })) },
    { weight: 1, arbitrary: fc.record({ user: fc.nat(1) }).map((r): Cmd => ({ _tag: "LogOutEverywhere", ...r })) },
    { weight: 1, arbitrary: fc.record({ user: fc.nat(1) }).map((r): Cmd => ({ _tag: "List", ...r })) }
  )

  const view = (s: Session.Session) => ({
    key: s.key,
    data: { ...s.data },
    user: Option.getOrNull(s.userId),
    createdAt: s.createdAt,
    idIssuedAt: s.idIssuedAt,
    lastAccessAt: s.lastAccessAt
  })

  /** Runs commands against the service in context and returns everything a caller can observe. */
  const interpret = (cmds: ReadonlyArray<Cmd>, time: ReturnType<typeof manualClock>) =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const handles: Array<Sessions.ActiveSession> = []
      const tokens: Array<string> = []
      const trace: Array<unknown> = []
      const add = (h: Sessions.ActiveSession) => {
        handles.push(h)
        if (!tokens.includes(tok(h))) tokens.push(tok(h))
        return { token: tok(h), ...view(h.session) }
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
            trace.push(["resolve", r.outcome, r.cookie, Option.match(r.session, { onNone: () => null, onSome: add })])
            break
          }
          case "Advance":
            yield* time.advance(cmd.millis)
            trace.push(["advance", cmd.millis])
            break
          case "LogOutEverywhere":
            trace.push(["logOutEverywhere", yield* sessions.logOutEverywhere(users[cmd.user]!)])
            break
          case "List":
            trace.push(["list", (yield* sessions.listSessions(users[cmd.user]!)).map((i) => ({ ...i, ip: Option.getOrNull(i.ip), userAgentHash: Option.getOrNull(i.userAgentHash) }))])
            break
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
                trace.push(["update", yield* run(sessions.update(handle, cmd.key, (o) => Option.match(o, { onNone: () => 1, onSome: (v) => typeof v === "number" ? v + 1 : 0 })), (v) => v)])
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

  const transparencyConfig: SessionConfig.SessionConfigInput = {
    idleTimeout: 10_000,
    touchInterval: 1_000,
    idRotationInterval: 5_000,
    gracePeriod: 2_000,
    absoluteTimeout: 60_000,
    acceptRemoteIp: 4,
    acceptChangingUserAgent: false
  }

  /**
   * A store that hides every record at its deadline (no retention at all), as the Persistence
   * contract allows: the cache must match this store too, not only the built-in ones.
   */
  const strict = (inner: Persistence.PersistenceShape): Persistence.PersistenceShape => {
    const deadlines = new Map<string, number>() // session key → deadline given by the service
    const visible = (r: Session.TokenRecord, now: number) =>
      (r._tag === "Redirect" ? r.expiresAt : deadlines.get(r.key) ?? Number.POSITIVE_INFINITY) > now
    const keep = (s: Session.Session, expiresAt: number) => (ok: boolean) => {
      if (ok) deadlines.set(s.key, expiresAt)
    }
    return {
      ...inner,
      load: (tk) => Effect.zipWith(inner.load(tk), Clock.currentTimeMillis, (r, now) => Option.filter(r, (x) => visible(x, now))),
      loadSession: (key) => Effect.zipWith(inner.loadSession(key), Clock.currentTimeMillis, (r, now) => Option.filter(r, (x) => visible(x, now))),
      create: (s, e) => Effect.tap(inner.create(s, e), () => keep(s, e)(true)),
      save: (s, v, e) => Effect.tap(inner.save(s, v, e), keep(s, e)),
      rotate: (s, v, r, e) => Effect.tap(inner.rotate(s, v, r, e), keep(s, e)),
      sessionsOfUser: (user) =>
        Effect.zipWith(inner.sessionsOfUser(user), Clock.currentTimeMillis, (all, now) => all.filter((x) => visible(x, now)))
    }
  }

  const traceWith = (cmds: ReadonlyArray<Cmd>, maxCacheSize: number, cacheExpiry: number, store: "memory" | "strict") => {
    const time = manualClock()
    return Effect.runPromise(
      Effect.flatMap(Persistence.makeMemory, (memory) =>
        interpret(cmds, time).pipe(
          Effect.provide(
            serviceLayer({ ...transparencyConfig, maxCacheSize, cacheExpiry }, { seed: "transparency", store: store === "strict" ? strict(memory) : memory })
          )
        )).pipe(
        Effect.withClock(time.clock),
        quiet
      )
    )
  }

  it("invariant 7: cache transparency — cache sizes 1, 16 and unbounded behave exactly like size 0 on the same random operations", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbCmd, { minLength: 1, maxLength: 60 }),
        // cache entries idle out before the sessions do, or live far longer than them
        fc.constantFrom(7_000, 3_600_000),
        fc.constantFrom("memory" as const, "strict" as const),
        async (cmds, cacheExpiry, store) => {
          const reference = await traceWith(cmds, 0, cacheExpiry, store)
          for (const size of [1, 16, -1]) {
            const trace = await traceWith(cmds, size, cacheExpiry, store)
            expect(trace, `maxCacheSize ${size}`).toEqual(reference)
          }
        }
      ),
      { numRuns: 150 }
    )
  })
})
