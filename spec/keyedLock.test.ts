import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Deferred, Effect, Fiber } from "effect"
import { makeKeyedLock } from "../src/internal/keyedLock.js"

describe("keyed lock (per-session mutual exclusion)", () => {
  it.effect("one holder at a time per key, first come first served, and the table empties", () =>
    Effect.gen(function*() {
      const lock = makeKeyedLock()
      const order: Array<number> = []
      let inside = 0
      let most = 0
      yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) =>
          lock.withLock("k")(Effect.gen(function*() {
            inside++
            most = Math.max(most, inside)
            order.push(i)
            yield* Effect.yieldNow()
            inside--
          })),
        { concurrency: "unbounded", discard: true }
      )
      assert.strictEqual(most, 1)
      deepStrictEqual(order, Array.from({ length: 200 }, (_, i) => i))
      assert.strictEqual(lock.size(), 0)
    }))

  it.effect("different keys never wait for each other", () =>
    Effect.gen(function*() {
      const lock = makeKeyedLock()
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(lock.withLock("a")(Deferred.await(gate)))
      yield* Effect.yieldNow()
      yield* lock.withLock("b")(Effect.void) // completes although "a" is held
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      assert.strictEqual(lock.size(), 0)
    }))

  it.effect("interrupted waiters leave the queue, failures release, and the next waiter gets the lock", () =>
    Effect.gen(function*() {
      const lock = makeKeyedLock()
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(lock.withLock("k")(Deferred.await(gate)))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(lock.withLock("k")(Effect.never))
      const failing = yield* Effect.fork(Effect.either(lock.withLock("k")(Effect.fail("boom"))))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(waiter)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      deepStrictEqual((yield* Fiber.join(failing))._tag, "Left")
      assert.strictEqual(yield* lock.withLock("k")(Effect.succeed(42)), 42)
      assert.strictEqual(lock.size(), 0)
    }))

  it.effect("a holder interrupted while inside releases the lock", () =>
    Effect.gen(function*() {
      const lock = makeKeyedLock()
      const entered = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(lock.withLock("k")(Effect.zipRight(Deferred.succeed(entered, undefined), Effect.never)))
      yield* Deferred.await(entered)
      const next = yield* Effect.fork(lock.withLock("k")(Effect.succeed("next")))
      yield* Fiber.interrupt(holder)
      assert.strictEqual(yield* Fiber.join(next), "next")
      assert.strictEqual(lock.size(), 0)
    }))
})
