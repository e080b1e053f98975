/**
 * The local LRU (src/internal/lru.ts) against a naive reference list, and the SessionCache built
 * on it: capacity, least-recently-used eviction, idle eviction (TestClock), capacity 0, and
 * "a cache hit does not touch the store".
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Duration, Effect, FastCheck as fc, Layer, Option, Redacted, TestClock } from "effect"
import { Lru } from "../src/internal/lru.js"
import * as Persistence from "../src/Persistence.js"
import * as Testing from "../src/testing.js"
import * as SecureRandom from "../src/SecureRandom.js"
import * as Session from "../src/Session.js"
import * as SessionCache from "../src/SessionCache.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { numRuns } from "./helpers/runs.js"

// ---------------------------------------------------------------------------------------------
// a naive reference: a list from least to most recently used
// ---------------------------------------------------------------------------------------------

interface RefEntry {
  readonly key: number
  readonly value: number
  readonly usedAt: number
}

class ReferenceLru {
  entries: Array<RefEntry> = []
  constructor(readonly capacity: number, readonly expiry: number) {}
  get(key: number, now: number): number | undefined {
    const entry = this.entries.find((e) => e.key === key)
    if (!entry) return undefined
    this.entries = this.entries.filter((e) => e.key !== key)
    if (now - entry.usedAt >= this.expiry) return undefined // idle: gone
    this.entries.push({ ...entry, usedAt: now })
    return entry.value
  }
  set(key: number, value: number, now: number): void {
    if (this.capacity === 0) return
    this.entries = this.entries.filter((e) => e.key !== key)
    this.entries.push({ key, value, usedAt: now })
    this.entries = this.entries.filter((e) => now - e.usedAt < this.expiry)
    while (this.capacity > 0 && this.entries.length > this.capacity) this.entries.shift()
  }
  delete(key: number): void {
    this.entries = this.entries.filter((e) => e.key !== key)
  }
  keys(): Array<number> {
    return this.entries.map((e) => e.key)
  }
}

type LruOp =
  | { readonly _tag: "get"; readonly key: number; readonly dt: number }
  | { readonly _tag: "set"; readonly key: number; readonly value: number; readonly dt: number }
  | { readonly _tag: "delete"; readonly key: number; readonly dt: number }

const arbLruOp: fc.Arbitrary<LruOp> = fc.oneof(
  fc.record({ key: fc.nat(7), dt: fc.nat(20) }).map((r): LruOp => ({ _tag: "get", ...r })),
  fc.record({ key: fc.nat(7), value: fc.integer(), dt: fc.nat(20) }).map((r): LruOp => ({ _tag: "set", ...r })),
  fc.record({ key: fc.nat(7), dt: fc.nat(20) }).map((r): LruOp => ({ _tag: "delete", ...r }))
)

describe("Lru (internal)", () => {
  it("behaves like the reference list: same answers, same recency order, size ≤ capacity", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1, max: 6 }),
        fc.oneof(fc.integer({ min: 1, max: 60 }), fc.constant(Number.POSITIVE_INFINITY)),
        fc.array(arbLruOp, { maxLength: 80 }),
        (capacity, expiry, ops) => {
          const lru = new Lru<number, number>(capacity, expiry)
          const ref = new ReferenceLru(capacity, expiry)
          let now = 0
          for (const op of ops) {
            now += op.dt
            switch (op._tag) {
              case "get":
                assert.strictEqual(lru.get(op.key, now), ref.get(op.key, now))
                break
              case "set":
                lru.set(op.key, op.value, now)
                ref.set(op.key, op.value, now)
                break
              case "delete":
                lru.delete(op.key)
                ref.delete(op.key)
                break
            }
            deepStrictEqual(lru.keys(), ref.keys())
            assert.strictEqual(lru.size, ref.keys().length)
            if (capacity >= 0) assert.isAtMost(lru.size, capacity)
          }
        }
      ),
      { numRuns: numRuns(500) }
    )
  })

  it("the evicted entry is always the least recently used one", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.tuple(fc.boolean(), fc.nat(9)), { maxLength: 60 }), (capacity, ops) => {
        const lru = new Lru<number, string>(capacity, Number.POSITIVE_INFINITY)
        // recency, least recent first, kept by hand
        let order: Array<number> = []
        for (const [isGet, key] of ops) {
          if (isGet) {
            if (lru.get(key, 0) !== undefined) order = [...order.filter((k) => k !== key), key]
            continue
          }
          const fresh = !order.includes(key)
          const before = [...order]
          lru.set(key, `v${key}`, 0)
          order = [...order.filter((k) => k !== key), key]
          if (fresh && before.length === capacity) {
            const victim = before[0]!
            assert.isUndefined(lru.peek(victim), `evicted ${victim}, the least recently used`)
            order = order.filter((k) => k !== victim)
            for (const k of before.slice(1)) assert.strictEqual(lru.peek(k), `v${k}`)
          }
          deepStrictEqual(lru.keys(), order)
        }
      }),
      { numRuns: numRuns(300) }
    )
  })

  it("idle entries expire after expiryMillis; capacity 0 stores nothing; negative is unbounded", () => {
    const lru = new Lru<string, number>(10, 100)
    lru.set("a", 1, 0)
    assert.strictEqual(lru.get("a", 99), 1) // a use refreshes it
    assert.strictEqual(lru.get("a", 198), 1)
    assert.isUndefined(lru.get("a", 298))
    assert.strictEqual(lru.size, 0)
    const off = new Lru<string, number>(0, 100)
    off.set("a", 1, 0)
    assert.strictEqual(off.size, 0)
    assert.isUndefined(off.get("a", 0))
    const unbounded = new Lru<number, number>(-1, Number.POSITIVE_INFINITY)
    for (let i = 0; i < 5000; i++) unbounded.set(i, i, i)
    assert.strictEqual(unbounded.size, 5000)
    assert.strictEqual(unbounded.get(0, 5000), 0)
  })
})

// ---------------------------------------------------------------------------------------------
// SessionCache
// ---------------------------------------------------------------------------------------------

const client = Session.client({ ip: "198.51.100.7", userAgent: "ua" })
const record = (i: number, now = 0) => Session.start({ key: `key-${i}`, tokenKey: `tk-${i}`, now, client })

describe("SessionCache", () => {
  it.effect.prop(
    "size never exceeds the capacity, and what is left are the most recently used keys",
    [fc.integer({ min: 1, max: 8 }), fc.array(fc.nat(15), { maxLength: 50 })],
    ([capacity, keys]) =>
      Effect.gen(function*() {
        const cache = yield* SessionCache.make({ capacity, idleTimeout: Duration.hours(1) })
        for (const k of keys) {
          yield* cache.set(`tk-${k}`, record(k))
          assert.isAtMost(yield* cache.size, capacity)
        }
        // the survivors: the last `capacity` distinct keys in order of last use
        const lastUse: Array<string> = []
        for (const k of keys) {
          const i = lastUse.indexOf(`tk-${k}`)
          if (i >= 0) lastUse.splice(i, 1)
          lastUse.push(`tk-${k}`)
        }
        deepStrictEqual(yield* cache.keys, lastUse.slice(-capacity))
      }),
    { fastCheck: { numRuns: numRuns(50) } }
  )

  it.effect("a get makes an entry the most recently used", () =>
    Effect.gen(function*() {
      const cache = yield* SessionCache.make({ capacity: 2, idleTimeout: Duration.hours(1) })
      yield* cache.set("tk-1", record(1))
      yield* cache.set("tk-2", record(2))
      assert.isTrue(Option.isSome(yield* cache.get("tk-1")))
      yield* cache.set("tk-3", record(3)) // evicts tk-2, the least recently used
      assert.isTrue(Option.isNone(yield* cache.get("tk-2")))
      assert.isTrue(Option.isSome(yield* cache.get("tk-1")))
      assert.isTrue(Option.isSome(yield* cache.get("tk-3")))
    }))

  it.effect("idle eviction after cache.idleTimeout (TestClock)", () =>
    Effect.gen(function*() {
      const cache = yield* SessionCache.make({ capacity: 10, idleTimeout: Duration.minutes(1) })
      yield* cache.set("tk-1", record(1))
      yield* cache.set("tk-2", record(2))
      yield* TestClock.adjust(Duration.millis(59_999))
      assert.isTrue(Option.isSome(yield* cache.get("tk-1")), "used just in time: kept, and refreshed")
      yield* TestClock.adjust(Duration.millis(1))
      assert.isTrue(Option.isNone(yield* cache.get("tk-2")), "unused for a minute: gone")
      yield* TestClock.adjust(Duration.millis(59_998)) // tk-1 was last used at 59,999; now it is 119,998
      assert.isTrue(Option.isSome(yield* cache.get("tk-1")))
      yield* TestClock.adjust(Duration.minutes(1))
      assert.isTrue(Option.isNone(yield* cache.get("tk-1")))
      // a set also drops idle entries
      yield* cache.set("tk-3", record(3))
      yield* TestClock.adjust(Duration.minutes(2))
      yield* cache.set("tk-4", record(4))
      deepStrictEqual(yield* cache.keys, ["tk-4"])
    }))

  it.effect("cache: false stores nothing", () =>
    Effect.gen(function*() {
      const cache = yield* SessionCache.make(false)
      assert.isFalse(cache.enabled)
      yield* cache.set("tk-1", record(1))
      assert.isTrue(Option.isNone(yield* cache.get("tk-1")))
      assert.strictEqual(yield* cache.size, 0)
      deepStrictEqual(yield* cache.keys, [])
    }))

  it.effect("invalidate and clear (an unbounded cache)", () =>
    Effect.gen(function*() {
      const cache = yield* SessionCache.make({ capacity: Infinity, idleTimeout: Duration.hours(1) })
      assert.isTrue(cache.enabled)
      for (let i = 0; i < 5; i++) yield* cache.set(`tk-${i}`, record(i))
      yield* cache.invalidate("tk-2")
      yield* cache.invalidate("tk-absent")
      deepStrictEqual(yield* cache.keys, ["tk-0", "tk-1", "tk-3", "tk-4"])
      yield* cache.clear
      assert.strictEqual(yield* cache.size, 0)
    }))

  it.effect("SessionCache.layer takes its size from cache.capacity", () =>
    Effect.gen(function*() {
      const cache = yield* SessionCache.SessionCache
      for (let i = 0; i < 5; i++) yield* cache.set(`tk-${i}`, record(i))
      deepStrictEqual(yield* cache.keys, ["tk-2", "tk-3", "tk-4"])
    }).pipe(Effect.provide(SessionCache.layer.pipe(Layer.provide(Layer.orDie(SessionConfig.layer({ cache: { capacity: 3 } })))))))
})

// ---------------------------------------------------------------------------------------------
// the cache in the service
// ---------------------------------------------------------------------------------------------

const serviceOver = (store: Persistence.PersistenceShape, config: SessionConfig.SessionConfigInput) =>
  Sessions.layerFromContext.pipe(
    Layer.provide(
      Layer.mergeAll(Layer.succeed(Persistence.Persistence, store), Layer.orDie(SessionConfig.layer(config)), SecureRandom.layerSeeded("cache"))
    )
  )

describe("SessionCache in the service", () => {
  it.effect("a cache hit does not touch the store", () =>
    Effect.gen(function*() {
      const counted = Testing.counted(yield* Persistence.makeMemory)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(client)
        const token = Redacted.value(h.token)
        yield* sessions.clearCache // start cold
        const before = counted.calls()
        assert.strictEqual((yield* sessions.resolve(token, client)).outcome, "valid")
        const afterFirst = counted.calls()
        assert.strictEqual((afterFirst.load ?? 0) - (before.load ?? 0), 1, "a miss loads once")
        assert.strictEqual((yield* sessions.resolve(token, client)).outcome, "valid")
        expect(counted.calls(), "the second resolve made no store call").toEqual(afterFirst)
        // reads of the session are hits too
        yield* sessions.get(h, "x")
        yield* sessions.current(h)
        expect(counted.calls()).toEqual(afterFirst)
        // a rotation writes through and caches the new token: its first use is a hit
        const h2 = yield* sessions.regenerateId(h)
        const afterRotate = counted.calls()
        assert.strictEqual((yield* sessions.resolve(Redacted.value(h2.token), client)).outcome, "valid")
        expect(counted.calls()).toEqual(afterRotate)
      }).pipe(Effect.provide(serviceOver(counted.store, {})))
    }))

  it.effect("with cache: false every resolve asks the store", () =>
    Effect.gen(function*() {
      const counted = Testing.counted(yield* Persistence.makeMemory)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(client)
        for (let i = 1; i <= 3; i++) {
          yield* sessions.resolve(Redacted.value(h.token), client)
          assert.strictEqual(counted.calls().load, i)
        }
      }).pipe(Effect.provide(serviceOver(counted.store, { cache: false })))
    }))

  it.effect("a small cache evicts sessions, which then come back from the store unchanged", () =>
    Effect.gen(function*() {
      const counted = Testing.counted(yield* Persistence.makeMemory)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const handles = yield* Effect.forEach([0, 1, 2, 3], (i) => Effect.tap(sessions.create(client), (h) => sessions.set(h, "i", i)))
        const loads = counted.calls().load ?? 0
        for (const [i, h] of handles.entries()) {
          const r = yield* sessions.resolve(Redacted.value(h.token), client)
          deepStrictEqual(Option.getOrThrow(r.session).session.data, { i })
        }
        assert.isAbove(counted.calls().load ?? 0, loads, "evicted entries were loaded again")
      }).pipe(Effect.provide(serviceOver(counted.store, { cache: { capacity: 1 } })))
    }))
})
