/**
 * The one retry mechanism of the service (src/internal/sessions/retry.ts): a compare-and-set lost
 * to another writer is retried by `Effect.retry` on a bounded, jittered exponential `Schedule`
 * whose waits run on the event loop's timer (so they pass under a paused TestClock), only on the
 * lost-race signal; after `MAX_ATTEMPTS` attempts the caller's answer — for a data write a
 * `SessionConflictError` naming the attempts, for a touch the session as it is — and every lost
 * race counted in `effect_sessions_conflicts_total`.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Data, Effect, Exit, Metric, Option, Redacted, TestClock } from "effect"
import { logHash } from "../src/internal/hash.js"
import { metrics } from "../src/internal/sessions/metrics.js"
import { LostRace, lostCompareAndSet, MAX_ATTEMPTS, retryLostRaces } from "../src/internal/sessions/retry.js"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import * as Sessions from "../src/Sessions.js"
import { serviceLayer } from "./helpers/service.js"

class Other extends Data.TaggedError("Other")<{}> {}

const conflicts = Effect.map(Metric.value(metrics.conflicts), (s) => s.count)
const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 Firefox/128.0" })

/** The memory store, with compare-and-set writes that lose while `losing` says so, counted. */
const losingStore = Effect.map(Persistence.makeMemory, (memory) => {
  const state = { losing: false, saves: 0, rotations: 0 }
  const store: Persistence.PersistenceShape = {
    ...memory,
    save: (...args) => {
      state.saves++
      return state.losing ? Effect.succeed(false) : memory.save(...args)
    },
    rotate: (...args) => {
      state.rotations++
      return state.losing ? Effect.succeed(false) : memory.rotate(...args)
    }
  }
  return { store, state }
})

describe("retryLostRaces", () => {
  it.effect(`runs an attempt that keeps losing exactly ${MAX_ATTEMPTS} times, then answers onExhausted; the waits pass under the paused TestClock`, () =>
    Effect.gen(function*() {
      let runs = 0
      const started = performance.now()
      const answer = yield* retryLostRaces(
        Effect.suspend(() => {
          runs++
          return Effect.fail(new LostRace())
        }),
        () => Effect.succeed("exhausted")
      )
      const elapsed = performance.now() - started
      assert.strictEqual(answer, "exhausted")
      assert.strictEqual(runs, MAX_ATTEMPTS)
      // Jittered waits of 0…2^n ms, at most 64 each: about 0.8 s in all, never above the caps' sum.
      assert.isAbove(elapsed, 100)
      assert.isBelow(elapsed, 5_000)
    }))

  it.effect("stops at the first attempt that wins, and retries nothing but a lost race", () =>
    Effect.gen(function*() {
      let runs = 0
      const wins = yield* retryLostRaces(
        Effect.suspend(() => ++runs < 3 ? Effect.fail(new LostRace()) : Effect.succeed(runs)),
        () => Effect.succeed(-1)
      )
      assert.strictEqual(wins, 3)
      let others = 0
      const exit = yield* Effect.exit(retryLostRaces(
        Effect.suspend(() => {
          others++
          return Effect.fail(new Other())
        }),
        () => Effect.succeed(-1)
      ))
      assert.strictEqual(others, 1)
      assert.isTrue(Exit.isFailure(exit))
    }))

  it.effect("lostCompareAndSet counts the conflict, cleans up, and fails with the signal", () =>
    Effect.gen(function*() {
      const before = yield* conflicts
      let cleaned = false
      const error = yield* Effect.flip(lostCompareAndSet(Effect.sync(() => {
        cleaned = true
      })))
      assert.instanceOf(error, LostRace)
      assert.isTrue(cleaned)
      assert.strictEqual((yield* conflicts) - before, 1)
    }))
})

describe("Sessions under writers that keep winning", () => {
  it.effect(`a write fails with SessionConflictError after ${MAX_ATTEMPTS} compare-and-sets, each counted, and changes nothing`, () =>
    Effect.gen(function*() {
      const { state, store } = yield* losingStore
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        yield* sessions.set(h, "n", 1)
        state.losing = true
        state.saves = 0
        const before = yield* conflicts
        const error = yield* Effect.flip(sessions.set(h, "n", 2))
        assert.instanceOf(error, Sessions.SessionConflictError)
        expect(error).toMatchObject({ method: "set", attempts: MAX_ATTEMPTS })
        // Named as every error names a session: by the short log hash of its token, never the token.
        assert.strictEqual(error.session, logHash(Redacted.value(h.token)))
        assert.notInclude(error.message, Redacted.value(h.token))
        assert.strictEqual(state.saves, MAX_ATTEMPTS)
        assert.strictEqual((yield* conflicts) - before, MAX_ATTEMPTS)
        state.losing = false
        assert.strictEqual(Option.getOrThrow(yield* sessions.get(h, "n")), 1)
      }).pipe(Effect.provide(serviceLayer({}, { store })))
    }))

  it.effect(`destroy fails with SessionConflictError after ${MAX_ATTEMPTS} rotations lost, and the session lives on`, () =>
    Effect.gen(function*() {
      const { state, store } = yield* losingStore
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        state.losing = true
        const error = yield* Effect.flip(sessions.destroy(h))
        assert.instanceOf(error, Sessions.SessionConflictError)
        expect(error).toMatchObject({ method: "destroy", attempts: MAX_ATTEMPTS })
        assert.strictEqual(state.rotations, MAX_ATTEMPTS)
        state.losing = false
        assert.strictEqual((yield* sessions.resolve(Redacted.value(h.token), browser)).outcome, "valid")
      }).pipe(Effect.provide(serviceLayer({}, { store })))
    }))

  it.effect(`a touch that keeps losing is best effort: after ${MAX_ATTEMPTS} attempts the session is served as it is`, () =>
    Effect.gen(function*() {
      const { state, store } = yield* losingStore
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        yield* sessions.clearCache
        // Past the touch interval (default 1 minute), inside the idle timeout: the access is written through.
        yield* TestClock.adjust("2 minutes")
        state.losing = true
        const r = yield* sessions.resolve(Redacted.value(h.token), browser)
        assert.strictEqual(r.outcome, "valid")
        assert.strictEqual(state.saves, MAX_ATTEMPTS)
        assert.strictEqual(Option.getOrThrow(r.session).session.lastAccessAt, h.session.lastAccessAt)
      }).pipe(Effect.provide(serviceLayer({}, { store })))
    }))
})
