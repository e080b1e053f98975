/**
 * The memory store's own behaviour, beyond the Persistence contract that the conformance suite
 * (src/internal/testing/persistenceSuite.ts) checks for every store: its capacity (least recently
 * used sessions evicted, counted and logged), its retention (records kept past their deadline,
 * then hidden and swept) and its user index. Store-free: in the mutation run's specs.
 */
import { assert, describe, it } from "@effect/vitest"
import { assertNone, assertSome, deepStrictEqual } from "@effect/vitest/utils"
import { Cause, Chunk, Effect, Exit, Layer, Logger, LogLevel, Metric, Option, Stream, TestClock } from "effect"
import * as Persistence from "../src/Persistence.js"
import { evicted, EVICTION_LOG_INTERVAL_MILLIS } from "../src/internal/memoryStore.js"
import { makeSession, rotation, uid } from "../src/internal/testing/persistenceSuite.js"
import { Session, type TokenRecord } from "../src/Session.js"

const HOUR = 3_600_000
const MINUTE = 60_000

interface Line {
  readonly level: string
  readonly message: unknown
  readonly annotations: Record<string, unknown>
}

/** Runs `effect` with every log line kept in `into`. */
const capturing = <A, E, R>(into: Array<Line>, effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.provide(Layer.merge(
      Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ annotations, logLevel, message }) => {
          into.push({ level: logLevel.label, message: Array.isArray(message) ? message[0] : message, annotations: Object.fromEntries(annotations) })
        })
      ),
      Logger.minimumLogLevel(LogLevel.All)
    ))
  )

const evictedCount = Effect.map(Metric.value(evicted), (s) => s.count)

/** A user's sessions by key, sorted (the listing's order is not promised). */
const keysOf = (store: Persistence.PersistenceShape, user: string) =>
  Effect.map(store.sessionsOfUser(user), (xs) => xs.map((s) => s.key).sort())

const sortedKeys = (xs: ReadonlyArray<Session>) => xs.map((s) => s.key).sort()

describe("memory store: capacity", () => {
  it.effect("creating past the capacity evicts the least recently used session with its token and its user-index entry; its redirect stays, leading nowhere", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemoryWith({ capacity: 2 })
      const user = "capacity-user"
      const a = makeSession(0, { userId: Option.some(user) })
      const b = makeSession(0, { userId: Option.some(user) })
      const c = makeSession(0, { userId: Option.some(user) })
      yield* store.create(a, HOUR)
      const r = rotation(a, 0, { grace: HOUR })
      assert.isTrue(yield* store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: HOUR }))
      yield* store.create(b, HOUR)
      deepStrictEqual(yield* keysOf(store, user), sortedKeys([a, b]))
      yield* store.create(c, HOUR)
      assertNone(yield* store.loadSession(a.key))
      assertNone(yield* store.load(r.session.tokenKey))
      deepStrictEqual(yield* keysOf(store, user), sortedKeys([b, c]))
      assertSome(yield* store.load(r.redirect.tokenKey), r.redirect as TokenRecord)
      assertSome(yield* store.load(b.tokenKey), b as TokenRecord)
      assertSome(yield* store.load(c.tokenKey), c as TokenRecord)
    }))

  it.effect("a read by token, a read by key, a write and a rotation each make a session the most recently used; a listing does not", () =>
    Effect.gen(function*() {
      const user = "lru-user"
      /** Creates a and b (in that order) in a store of capacity 2, runs `use` on them, creates c: which of a and b is left. */
      const left = (use: (store: Persistence.PersistenceShape, a: Session, b: Session) => Effect.Effect<unknown, Persistence.SessionStoreError>) =>
        Effect.gen(function*() {
          const store = yield* Persistence.makeMemoryWith({ capacity: 2 })
          const a = makeSession(0, { userId: Option.some(user) })
          const b = makeSession(0, { userId: Option.some(user) })
          yield* store.create(a, HOUR)
          yield* store.create(b, HOUR)
          yield* use(store, a, b)
          yield* store.create(makeSession(0), HOUR)
          const aLeft = Option.isSome(yield* store.loadSession(a.key))
          const bLeft = Option.isSome(yield* store.loadSession(b.key))
          return aLeft && !bLeft ? "a" : bLeft && !aLeft ? "b" : `a: ${aLeft}, b: ${bLeft}`
        })
      assert.strictEqual(yield* left(() => Effect.void), "b", "nothing used: the first created goes")
      assert.strictEqual(yield* left((store, a) => store.load(a.tokenKey)), "a", "load")
      assert.strictEqual(yield* left((store, a) => store.loadSession(a.key)), "a", "loadSession")
      assert.strictEqual(yield* left((store, a) => store.save(new Session({ ...a, version: 1 }), 0, HOUR)), "a", "save")
      assert.strictEqual(
        yield* left((store, a) => {
          const r = rotation(a, 0)
          return store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: HOUR })
        }),
        "a",
        "rotate"
      )
      assert.strictEqual(
        yield* left((store, a) => {
          const r = rotation(a, 0, { userId: Option.some(user) })
          return store.rotateWithinLimit({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: HOUR }, { max: 5, policy: "refuse" })
        }),
        "a",
        "rotateWithinLimit"
      )
      // a used, then both listed (a first): the listing leaves b the least recently used.
      assert.strictEqual(yield* left((store, a) => Effect.zipRight(store.load(a.tokenKey), store.sessionsOfUser(user))), "a", "a listing is no use")
    }))

  it.effect("a store of capacity 1 holds one session; creating a session again under a key it holds evicts nothing", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemoryWith({ capacity: 1 })
      const before = yield* evictedCount
      const a = makeSession(0)
      yield* store.create(a, HOUR)
      yield* store.create(a, 2 * HOUR)
      assert.strictEqual((yield* evictedCount) - before, 0)
      assertSome(yield* store.loadSession(a.key), a)
      const b = makeSession(0)
      yield* store.create(b, HOUR)
      assert.strictEqual((yield* evictedCount) - before, 1)
      assertNone(yield* store.loadSession(a.key))
      assertSome(yield* store.loadSession(b.key), b)
    }))

  it.effect("an Infinity capacity evicts nothing", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemoryWith({ capacity: Number.POSITIVE_INFINITY })
      const before = yield* evictedCount
      const all = Array.from({ length: 50 }, () => makeSession(0))
      for (const s of all) yield* store.create(s, HOUR)
      for (const s of all) assertSome(yield* store.loadSession(s.key), s)
      assert.strictEqual((yield* evictedCount) - before, 0)
    }))

  it("a capacity that is not a positive integer or Infinity is a defect, saying so", () => {
    for (const capacity of [0, -1, 1.5, Number.NaN, Number.NEGATIVE_INFINITY, 2 ** 53]) {
      const exit = Effect.runSyncExit(Persistence.makeMemoryWith({ capacity }))
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause), `capacity ${capacity}`)
      if (Exit.isFailure(exit)) {
        const defect = Option.getOrThrow(Cause.dieOption(exit.cause))
        assert.instanceOf(defect, RangeError)
        assert.strictEqual((defect as RangeError).message, `memory store capacity must be a positive integer or Infinity, got ${capacity}`)
      }
    }
    for (const capacity of [1, 2 ** 53 - 1, Number.POSITIVE_INFINITY]) {
      assert.isTrue(Exit.isSuccess(Effect.runSyncExit(Persistence.makeMemoryWith({ capacity }))), `capacity ${capacity}`)
    }
  })

  it.effect("each eviction is counted in effect_sessions_evicted_total and logged (a warning, at most one a minute, with the number since the last one); a sweep or the next eviction reports the ones not yet logged, a create that evicts nothing does not", () =>
    Effect.gen(function*() {
      const lines: Array<Line> = []
      const before = yield* evictedCount
      yield* capturing(
        lines,
        Effect.gen(function*() {
          const store = yield* Persistence.makeMemoryWith({ capacity: 2 })
          const create = Effect.flatMap(TestClock.currentTimeMillis, (now) => {
            const session = makeSession(now)
            return Effect.as(store.create(session, now + 10 * HOUR), session)
          })
          yield* create
          yield* create
          yield* store.sweep // nothing evicted: nothing logged
          yield* create // evicts 1: logged at once (at 0)
          yield* create // within the minute: counted, not logged
          yield* TestClock.adjust(EVICTION_LOG_INTERVAL_MILLIS - 1)
          yield* create
          yield* store.sweep // within the minute: not logged either
          yield* TestClock.adjust(1)
          yield* create // a minute after the last line: 3 since it
          const last = yield* create // counted, not logged
          yield* TestClock.adjust(EVICTION_LOG_INTERVAL_MILLIS)
          yield* store.delete(last.key)
          yield* create // room for it: evicts nothing, reports nothing
          yield* Effect.logWarning("marker")
          yield* store.sweep // the one not yet logged
          yield* store.sweep // nothing left to log
          yield* TestClock.adjust(EVICTION_LOG_INTERVAL_MILLIS)
          yield* store.sweep
        })
      )
      assert.strictEqual((yield* evictedCount) - before, 5)
      deepStrictEqual(lines.map((l) => [l.level, l.message, l.annotations]), [
        ["WARN", "memory session store full: evicted 1 least recently used sessions", { event: "sessions-evicted", evicted: 1, capacity: 2 }],
        ["WARN", "memory session store full: evicted 3 least recently used sessions", { event: "sessions-evicted", evicted: 3, capacity: 2 }],
        ["WARN", "marker", {}],
        ["WARN", "memory session store full: evicted 1 least recently used sessions", { event: "sessions-evicted", evicted: 1, capacity: 2 }]
      ])
    }))
})

describe("memory store: retention", () => {
  it.effect("by default a record is kept 10 minutes past its deadline: returned until then, hidden at it", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      const user = "retained-user"
      const s = makeSession(0, { userId: Option.some(user) })
      const other = makeSession(0)
      yield* store.create(s, 1000)
      yield* store.create(other, 1000)
      const r = rotation(other, 0, { grace: 500 })
      assert.isTrue(yield* store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: 1000 }))
      yield* TestClock.setTime(500 + 10 * MINUTE - 1)
      assertSome(yield* store.load(r.redirect.tokenKey), r.redirect as TokenRecord)
      yield* TestClock.adjust(1)
      assertNone(yield* store.load(r.redirect.tokenKey))
      yield* TestClock.setTime(1000 + 10 * MINUTE - 1)
      assertSome(yield* store.load(s.tokenKey), s as TokenRecord)
      assertSome(yield* store.loadSession(s.key), s)
      deepStrictEqual(yield* store.sessionsOfUser(user), [s])
      yield* TestClock.adjust(1)
      deepStrictEqual(yield* store.sessionsOfUser(user), [])
      assertNone(yield* store.load(s.tokenKey))
      assertNone(yield* store.loadSession(s.key))
      assertNone(yield* store.loadSession(other.key))
    }))

  it.effect("a retention given is the time records are kept past their deadline", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemoryWith({ retention: "1 minute" })
      const s = makeSession(0)
      yield* store.create(s, 1000)
      yield* TestClock.setTime(1000 + MINUTE - 1)
      assertSome(yield* store.loadSession(s.key), s)
      yield* TestClock.adjust(1)
      assertNone(yield* store.loadSession(s.key))
    }))

  it.effect("sweep removes exactly the records past their deadline and the retention, and counts them; retained ones stay", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemoryWith({ retention: "1 minute" })
      const user = "swept-user"
      const gone = makeSession(0, { userId: Option.some(user) })
      const kept = makeSession(0, { userId: Option.some(user) })
      const rotated = makeSession(0)
      yield* store.create(gone, 1000)
      yield* store.create(kept, 1001)
      yield* store.create(rotated, 10 * HOUR)
      const early = rotation(rotated, 0, { grace: 1000 })
      assert.isTrue(yield* store.rotate({ session: early.session, expectedVersion: 0, redirect: early.redirect, expiresAt: 10 * HOUR }))
      const late = rotation(early.session, 0, { grace: 1001 })
      assert.isTrue(yield* store.rotate({ session: late.session, expectedVersion: 1, redirect: late.redirect, expiresAt: 10 * HOUR }))
      yield* TestClock.setTime(1000 + MINUTE)
      // `gone` and the first redirect, at their instant exactly.
      assert.strictEqual(yield* store.sweep, 2)
      assert.strictEqual(yield* store.sweep, 0)
      // The clock going back shows what the sweep removed and what it kept.
      yield* TestClock.setTime(0)
      assertNone(yield* store.loadSession(gone.key))
      assertNone(yield* store.load(gone.tokenKey))
      assertNone(yield* store.load(early.redirect.tokenKey))
      assertSome(yield* store.load(late.redirect.tokenKey), late.redirect as TokenRecord)
      assertSome(yield* store.loadSession(kept.key), kept)
      deepStrictEqual(yield* store.sessionsOfUser(user), [kept])
      yield* TestClock.setTime(1001 + MINUTE)
      assert.strictEqual(yield* store.sweep, 2)
      yield* TestClock.setTime(0)
      assertNone(yield* store.loadSession(kept.key))
      assertNone(yield* store.load(late.redirect.tokenKey))
      assertSome(yield* store.load(late.session.tokenKey), late.session as TokenRecord)
    }))
})

describe("memory store: what it leaves behind", () => {
  it.effect("delete, eviction and sweep leave no token or user-index entry behind: a session created again under the same key is reached only by its own token and listed only under its own user", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemoryWith({ capacity: 2, retention: 0 })
      /** A session of `user` under `key`, its token then its key deleted by `end`; then a user-less session under that key. */
      const check = (what: string, end: (s: Session) => Effect.Effect<unknown, Persistence.SessionStoreError>) =>
        Effect.gen(function*() {
          const user = uid("former")
          const first = makeSession(yield* TestClock.currentTimeMillis, { userId: Option.some(user) })
          yield* store.create(first, (yield* TestClock.currentTimeMillis) + HOUR)
          yield* end(first)
          const again = makeSession(yield* TestClock.currentTimeMillis, { key: first.key })
          yield* store.create(again, (yield* TestClock.currentTimeMillis) + HOUR)
          assert.isTrue(Option.isNone(yield* store.load(first.tokenKey)), `${what}: the former token`)
          deepStrictEqual(yield* keysOf(store, user), [] as Array<string>, `${what}: the former user`)
          assertSome(yield* store.load(again.tokenKey), again as TokenRecord)
          yield* store.delete(again.key)
        })
      yield* check("delete", (s) => store.delete(s.key))
      yield* check("eviction", () =>
        Effect.gen(function*() {
          const now = yield* TestClock.currentTimeMillis
          yield* store.create(makeSession(now), now + HOUR)
          yield* store.create(makeSession(now), now + HOUR)
        }))
      yield* check("sweep", (s) =>
        Effect.gen(function*() {
          const now = yield* TestClock.currentTimeMillis
          assert.isTrue(yield* store.save(new Session({ ...s, version: 1 }), 0, now))
          assert.isAtLeast(yield* store.sweep, 1)
        }))
    }))
})

describe("memory store: rotateWithinLimit", () => {
  it.effect("a session at its deadline does not count against the limit; one a millisecond before it does", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      const user = uid("user")
      const other = makeSession(0, { userId: Option.some(user) })
      yield* store.create(other, 1000)
      const logIn = (now: number) =>
        Effect.gen(function*() {
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          const r = rotation(s, now, { userId: Option.some(user) })
          return yield* store.rotateWithinLimit({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: now + HOUR }, { max: 1, policy: "refuse" })
        })
      yield* TestClock.setTime(999)
      deepStrictEqual(yield* logIn(999), Persistence.LimitedRotation.Refused())
      yield* TestClock.setTime(1000)
      deepStrictEqual(yield* logIn(1000), Persistence.LimitedRotation.Rotated({ ended: [] }))
    }))

  it.effect("a rotated session without a user rotates as rotate does, ending nobody", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      const s = makeSession(0)
      yield* store.create(s, HOUR)
      const r = rotation(s, 0)
      deepStrictEqual(
        yield* store.rotateWithinLimit({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: HOUR }, { max: 1, policy: "endLeastRecentlyUsed" }),
        Persistence.LimitedRotation.Rotated({ ended: [] })
      )
      assertSome(yield* store.load(r.session.tokenKey), r.session as TokenRecord)
      assertSome(yield* store.load(s.tokenKey), r.redirect as TokenRecord)
    }))
})

describe("memory store: one process", () => {
  // The conformance suite runs over one store built before its tests; these build their own.
  it.effect("a fresh store has no revocation instant; revokeUntil stores the largest one given", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      assertNone(yield* store.revokedUntil)
      yield* store.revokeUntil(20)
      yield* store.revokeUntil(10)
      assertSome(yield* store.revokedUntil, 20)
    }))

  it.effect("publishing a user invalidation tells nobody, and nothing is ever heard", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      yield* store.publishUserInvalidation(Persistence.userKey("ada"))
      deepStrictEqual(Chunk.toReadonlyArray(yield* Stream.runCollect(store.invalidations)), [])
    }))
})
