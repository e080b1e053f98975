/**
 * The write path of session data (src/internal/sessions/commit.ts), as a user sees it: what each
 * write's errors say, what a write that changes nothing costs, the access time and version a write
 * records, the size limit against a lowered limit, and write coalescing — writers queued on one
 * session's lock answered one by one, whatever happens to one of them (a defect, an interruption,
 * the batch's holder interrupted) — and the touch written by `resolve` under the lock.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { assertNone, assertSome, deepStrictEqual } from "@effect/vitest/utils"
import { Cause, Chunk, Deferred, Effect, Either, Exit, Fiber, Logger, Option, Queue, Redacted, Schema, TestClock, Tracer } from "effect"
import { ParseError, Type } from "effect/ParseResult"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import * as Testing from "../src/testing.js"
import { logHash, publicId } from "../src/internal/hash.js"
import { MAX_ATTEMPTS } from "../src/internal/sessions/retry.js"
import { manualClock } from "../src/internal/testing/clock.js"
import { flickering, serviceLayer } from "./helpers/service.js"
import { recordingSpans } from "./helpers/tracing.js"

const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 Firefox/128.0" })
const tok = (h: Sessions.ActiveSession): string => Redacted.value(h.token)

/** The store reads (`load`, `loadSession`) made between two `Testing.counted` snapshots. */
const readsSince = (before: Record<string, number>, after: Record<string, number>) => ({
  load: (after.load ?? 0) - (before.load ?? 0),
  loadSession: (after.loadSession ?? 0) - (before.loadSession ?? 0)
})
/** What a write through a handle to a dead session reads: its token's record, once. */
const READS_OF_A_DEAD_WRITE = { load: 1, loadSession: 0 }

/**
 * The memory store whose next call of a method can be held: `hold(method)` arms it; the returned
 * `entered` completes once such a call waits at the gate, `release` lets it reach the store
 * (`hold(method, n)`: the call after the next `n`).
 * Saves are counted.
 */
const holdableStore = Effect.gen(function*() {
  const memory = yield* Persistence.makeMemory
  const armed: Array<{
    readonly method: Testing.StoreMethod
    readonly skip: { n: number }
    readonly entered: Deferred.Deferred<void>
    readonly gate: Deferred.Deferred<void>
  }> = []
  let saves = 0
  const store = Testing.intercept(memory, (method, call) =>
    Effect.suspend(() => {
      if (method === "save") saves++
      const i = armed.findIndex((a) => a.method === method)
      if (i < 0) return call
      if (armed[i]!.skip.n-- > 0) return call
      const [a] = armed.splice(i, 1)
      return Deferred.succeed(a!.entered, undefined).pipe(Effect.zipRight(Deferred.await(a!.gate)), Effect.zipRight(call))
    }))
  const hold = (method: Testing.StoreMethod, skip = 0) =>
    Effect.gen(function*() {
      const entered = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      armed.push({ method, skip: { n: skip }, entered, gate })
      return { entered: Deferred.await(entered), release: Deferred.succeed(gate, undefined) }
    })
  return { memory, store, hold, saves: () => saves }
})

/**
 * Runs `body` against the service over a {@link holdableStore}, on a clock that moves only when
 * told (`time.advance`) while sleeps and timeouts take real time (for `it.live`).
 */
const withGatedService = <A, E>(
  config: SessionConfig.SessionConfigInput,
  body: (
    sessions: Sessions.SessionsShape,
    gated: Effect.Effect.Success<typeof holdableStore>,
    time: ReturnType<typeof manualClock>
  ) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const gated = yield* holdableStore
    const time = manualClock(1_765_000_000_000)
    return yield* Effect.flatMap(Sessions.Sessions, (sessions) => body(sessions, gated, time)).pipe(
      Effect.provide(serviceLayer(config, { store: gated.store })),
      Effect.withClock(time.clock)
    )
  })

/** Runs `body` as another process would: its own instance of the service over the same store. */
const otherProcess = <A, E>(
  store: Persistence.PersistenceShape,
  config: SessionConfig.SessionConfigInput,
  body: (sessions: Sessions.SessionsShape) => Effect.Effect<A, E>
) => Effect.flatMap(Sessions.Sessions, body).pipe(Effect.provide(serviceLayer(config, { store, seed: "other process" })))

/** Fails the test instead of hanging when an answer never comes. */
const within = <A, E>(effect: Effect.Effect<A, E>) =>
  effect.pipe(Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error("no answer within 2 seconds") }))

/** Lets forked fibers run up to their next wait. */
const settle = Effect.sleep("20 millis")

const stored = (store: Persistence.PersistenceShape, h: Sessions.ActiveSession) =>
  Effect.map(store.loadSession(h.session.key), Option.getOrThrow)

describe("Sessions writes: errors name the method and the key", () => {
  it.effect("a typed value its Schema refuses, or a stored value that does not decode, fails with SessionDataError naming the method and the key", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(browser)
      yield* sessions.set(h, "n", "not a number")
      const n = Session.key("n", Schema.Number)
      const fields = (e: unknown) => {
        assert.instanceOf(e, Sessions.SessionDataError)
        const { key, method } = e as Sessions.SessionDataError
        assert.instanceOf((e as Sessions.SessionDataError).cause, ParseError)
        return { method, key }
      }
      expect(fields(yield* Effect.flip(sessions.get(h, n)))).toStrictEqual({ method: "get", key: "n" })
      expect(fields(yield* Effect.flip(sessions.pop(h, n)))).toStrictEqual({ method: "pop", key: "n" })
      expect(fields(yield* Effect.flip(sessions.update(h, n, () => 1)))).toStrictEqual({ method: "update", key: "n" })
      const m = Session.key("m", Schema.Number)
      expect(fields(yield* Effect.flip(sessions.set(h, m, "x" as unknown as number)))).toStrictEqual({ method: "set", key: "m" })
      const refused = new ParseError({ issue: new Type(Schema.Number.ast, "x") })
      expect(fields(yield* Effect.flip(sessions.modify(h, () => Either.left(refused))))).toStrictEqual({ method: "modify", key: "" })
      // nothing changed
      deepStrictEqual({ ...(yield* sessions.current(h)).data }, { n: "not a number" })
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("data that is not JSON fails with SessionDataError naming the method and the first key that is not JSON (none when every value is)", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(browser)
      yield* sessions.set(h, "ok", 1)
      const fields = (e: unknown) => {
        assert.instanceOf(e, Sessions.SessionDataError)
        const { key, method } = e as Sessions.SessionDataError
        return { method, key }
      }
      expect(fields(yield* Effect.flip(sessions.set(h, "bad", Number.NaN)))).toStrictEqual({ method: "set", key: "bad" })
      expect(fields(yield* Effect.flip(sessions.update(h, "worse", () => new Date(0) as unknown as Session.Json))))
        .toStrictEqual({ method: "update", key: "worse" })
      expect(fields(yield* Effect.flip(sessions.modify(h, (s) => Session.set(Session.set(s, "fine", 2), "inf", Number.POSITIVE_INFINITY)))))
        .toStrictEqual({ method: "modify", key: "inf" })
      // Each value is JSON, the whole is one level too deep: no key to name.
      let deep: Session.Json = 0
      for (let i = 0; i < Session.MAX_JSON_DEPTH; i++) deep = [deep]
      expect(fields(yield* Effect.flip(sessions.set(h, "deep", deep)))).toStrictEqual({ method: "set", key: "" })
      deepStrictEqual({ ...(yield* sessions.current(h)).data }, { ok: 1 })
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("every write through a handle whose session is gone fails with SessionGoneError naming the method", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(browser)
      yield* sessions.destroy(h)
      const method = (e: unknown) => {
        assert.instanceOf(e, Sessions.SessionGoneError)
        return (e as Sessions.SessionGoneError).method
      }
      const methods = [
        method(yield* Effect.flip(sessions.get(h, "k"))),
        method(yield* Effect.flip(sessions.set(h, "k", 1))),
        method(yield* Effect.flip(sessions.remove(h, "k"))),
        method(yield* Effect.flip(sessions.pop(h, "k"))),
        method(yield* Effect.flip(sessions.update(h, "k", () => 1))),
        method(yield* Effect.flip(sessions.modify(h, (s) => s)))
      ]
      expect(methods).toStrictEqual(["get", "set", "remove", "pop", "update", "modify"])
    }).pipe(Effect.provide(serviceLayer())))
})

describe("Sessions writes: what a write stores", () => {
  it.effect("a write that changes nothing (remove or pop of an absent key, modify answering the session itself) makes no save and keeps the version", () =>
    Effect.gen(function*() {
      const counted = Testing.counted(yield* Persistence.makeMemory)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        yield* sessions.set(h, "k", 1)
        const before = yield* stored(counted.store, h)
        const saves = counted.calls().save ?? 0
        yield* sessions.remove(h, "absent")
        assertNone(yield* sessions.pop(h, "absent"))
        assertNone(yield* sessions.pop(h, Session.key("absent", Schema.Number)))
        const same = yield* sessions.modify(h, (s) => s)
        assert.strictEqual(same.version, before.version)
        assert.strictEqual(counted.calls().save ?? 0, saves)
        deepStrictEqual(yield* stored(counted.store, h), before)
        // a change is saved, at the next version
        yield* sessions.set(h, "k", 2)
        assert.strictEqual(counted.calls().save, saves + 1)
        assert.strictEqual((yield* stored(counted.store, h)).version, before.version + 1)
      }).pipe(Effect.provide(serviceLayer({}, { store: counted.store })))
    }))

  it.effect("a write records the access when touchInterval has passed since the recorded one (exactly touchInterval too), keeps it otherwise, and stores each change at the next version", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        const created = yield* stored(store, h)
        // touchInterval is 1 minute
        yield* TestClock.adjust("59999 millis")
        yield* sessions.set(h, "a", 1)
        const early = yield* stored(store, h)
        assert.strictEqual(early.lastAccessAt, created.lastAccessAt)
        assert.strictEqual(early.version, created.version + 1)
        yield* TestClock.adjust("1 millis")
        yield* sessions.set(h, "b", 2)
        const due = yield* stored(store, h)
        assert.strictEqual(due.lastAccessAt, created.lastAccessAt + 60_000)
        assert.strictEqual(due.version, created.version + 2)
        yield* TestClock.adjust("30 seconds")
        const modified = yield* sessions.modify(h, (s) => Session.set(s, "c", 3))
        assert.strictEqual(modified.lastAccessAt, created.lastAccessAt + 60_000)
        assert.strictEqual(modified.version, created.version + 3)
        deepStrictEqual(yield* stored(store, h), modified)
      }).pipe(Effect.provide(serviceLayer({ touchInterval: "1 minute" }, { store })))
    }))

  it.effect("under a lowered maxDataBytes a session above it may keep its size (a value replaced by one as long), not grow", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      const first = yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        yield* sessions.set(h, "a", "x".repeat(500))
        return h
      }).pipe(Effect.provide(serviceLayer({ maxDataBytes: 2_000 }, { store })))
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = Option.getOrThrow((yield* sessions.resolve(tok(first), browser)).session)
        yield* sessions.set(h, "a", "y".repeat(500))
        assertSome(yield* sessions.get(h, "a"), "y".repeat(500))
        const e = yield* Effect.flip(sessions.set(h, "a", "z".repeat(501)))
        assert.instanceOf(e, Sessions.SessionDataError)
        assert.instanceOf((e as Sessions.SessionDataError).cause, Sessions.SessionDataTooLargeError)
        assertSome(yield* sessions.get(h, "a"), "y".repeat(500))
      }).pipe(Effect.provide(serviceLayer({ maxDataBytes: 100 }, { store })))
    }))
})

describe("Sessions writes: a dead session takes no writes", () => {
  it.scoped("a write through a handle to a session past its idle timeout fails with SessionGoneError, deletes the session and reports it expired, in one pass (no second store read)", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      const counted = Testing.counted(store)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        yield* sessions.set(h, "k", 1)
        const events = yield* sessions.subscribe()
        yield* TestClock.adjust("30 minutes")
        const before = counted.calls()
        const e = yield* Effect.flip(sessions.update(h, "k", () => 2))
        assert.instanceOf(e, Sessions.SessionGoneError)
        assert.strictEqual((e as Sessions.SessionGoneError).method, "update")
        // The writer is answered by the pass that found the session dead, not queued again
        // for a pass that would read the deleted session back to learn the same.
        deepStrictEqual(readsSince(before, counted.calls()), READS_OF_A_DEAD_WRITE)
        assertNone(yield* store.loadSession(h.session.key))
        const seen = Chunk.toReadonlyArray(yield* Queue.takeAll(events))
        expect(seen.map((ev) => [ev._tag, "reason" in ev ? ev.reason : undefined])).toStrictEqual([["Expired", "idle"]])
      }).pipe(Effect.provide(serviceLayer({ idleTimeout: "30 minutes" }, { store: counted.store })))
    }))

  it.effect("a write through a handle after logOutEveryone fails with SessionGoneError and ends the session, in one pass (no second store read)", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      const counted = Testing.counted(store)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        yield* sessions.set(h, "k", 1)
        yield* TestClock.adjust("1 second")
        yield* sessions.logOutEveryone()
        const before = counted.calls()
        const e = yield* Effect.flip(sessions.set(h, "k", 2))
        assert.instanceOf(e, Sessions.SessionGoneError)
        assert.strictEqual((e as Sessions.SessionGoneError).method, "set")
        deepStrictEqual(readsSince(before, counted.calls()), READS_OF_A_DEAD_WRITE)
        assertNone(yield* store.loadSession(h.session.key))
      }).pipe(Effect.provide(serviceLayer({}, { store: counted.store })))
    }))
})

describe("Sessions writes: write coalescing", () => {
  it.live("a change that throws fails its own writer with the defect; the writers queued with it are answered and their changes saved", () =>
    withGatedService({}, (sessions, gated) =>
      Effect.gen(function*() {
        const h = yield* sessions.create(browser)
        const held = yield* gated.hold("save")
        const first = yield* Effect.fork(sessions.set(h, "a", 1))
        yield* held.entered
        const boom = new Error("boom")
        const throwing = yield* Effect.fork(sessions.modify(h, () => {
          throw boom
        }))
        yield* Effect.yieldNow()
        const after = yield* Effect.fork(sessions.update(h, "b", () => 2))
        yield* settle
        yield* held.release
        yield* within(Fiber.join(first))
        const exit = yield* within(Fiber.await(throwing))
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        deepStrictEqual(Exit.isFailure(exit) ? Cause.dieOption(exit.cause) : Option.none(), Option.some<unknown>(boom))
        assert.strictEqual(yield* within(Fiber.join(after)), 2)
        assert.strictEqual(gated.saves(), 2, "the held save, then one for the batch")
        yield* sessions.clearCache
        deepStrictEqual({ ...(yield* sessions.current(h)).data }, { a: 1, b: 2 })
      })))

  for (const which of ["first", "last"] as const) {
    it.live(`a writer interrupted while queued (the ${which} of two) leaves the queue: its change is not made, the other's is`, () =>
      withGatedService({}, (sessions, gated) =>
        Effect.gen(function*() {
          const h = yield* sessions.create(browser)
          const held = yield* gated.hold("save")
          const holder = yield* Effect.fork(sessions.set(h, "held", 1))
          yield* held.entered
          const one = yield* Effect.fork(sessions.set(h, "one", 2))
          yield* Effect.yieldNow()
          const two = yield* Effect.fork(sessions.set(h, "two", 3))
          yield* settle
          const [interrupted, kept, key] = which === "first" ? [one, two, "two"] : [two, one, "one"]
          yield* Fiber.interrupt(interrupted)
          yield* held.release
          yield* within(Fiber.join(holder))
          yield* within(Fiber.join(kept))
          yield* sessions.clearCache
          deepStrictEqual({ ...(yield* sessions.current(h)).data }, { held: 1, [key]: which === "first" ? 3 : 2 })
          // and the session takes writes as before
          yield* within(sessions.set(h, "later", 4))
          assertSome(yield* sessions.get(h, "later"), 4)
        })))
  }

  it.live("a holder committing the changes queued with its own finishes when interrupted: every writer queued with it is answered, every change saved", () =>
    withGatedService({}, (sessions, gated) =>
      Effect.gen(function*() {
        const h = yield* sessions.create(browser)
        const firstSave = yield* gated.hold("save")
        const first = yield* Effect.fork(sessions.set(h, "a", 1))
        yield* firstSave.entered
        const holder = yield* Effect.fork(sessions.set(h, "b", 2))
        yield* Effect.yieldNow()
        const other = yield* Effect.fork(sessions.update(h, "c", () => 3))
        yield* settle
        const batchSave = yield* gated.hold("save")
        yield* firstSave.release
        yield* within(Fiber.join(first))
        // `holder` took the lock and commits its change and `other`'s in one save, held here
        yield* within(batchSave.entered)
        const interrupting = yield* Effect.fork(Fiber.interrupt(holder))
        yield* settle
        yield* batchSave.release
        yield* within(Fiber.join(interrupting))
        assert.strictEqual(yield* within(Fiber.join(other)), 3)
        assert.strictEqual(gated.saves(), 2)
        yield* sessions.clearCache
        deepStrictEqual({ ...(yield* sessions.current(h)).data }, { a: 1, b: 2, c: 3 })
      })))

  it.live("a holder alone in its batch is interruptible inside its save: the change is not made, the lock passes on", () =>
    withGatedService({}, (sessions, gated) =>
      Effect.gen(function*() {
        const h = yield* sessions.create(browser)
        const held = yield* gated.hold("save")
        const holder = yield* Effect.fork(sessions.set(h, "a", 1))
        yield* held.entered
        // (the gate opens either way, so that a holder that cannot be interrupted ends too)
        const interrupting = yield* Effect.fork(Fiber.interrupt(holder))
        yield* within(Fiber.join(interrupting)).pipe(Effect.ensuring(held.release))
        yield* within(sessions.set(h, "b", 2))
        yield* sessions.clearCache
        deepStrictEqual({ ...(yield* sessions.current(h)).data }, { b: 2 })
      })))
  it.live("writers queued together whose handles read two versions of the session (another process wrote between the reads) start over from the store, without a save bound to fail", () =>
    withGatedService({ cache: false }, (sessions, gated) =>
      Effect.gen(function*() {
        const h = yield* sessions.create(browser)
        const firstSave = yield* gated.hold("save")
        const first = yield* Effect.fork(sessions.set(h, "a", 1))
        yield* firstSave.entered
        const one = yield* Effect.fork(sessions.set(h, "b", 2))
        yield* Effect.yieldNow()
        const two = yield* Effect.fork(sessions.update(h, "c", () => 3))
        yield* settle
        // the batch of `one` and `two` reads the session once per handle: the second read waits
        const secondRead = yield* gated.hold("load", 1)
        yield* firstSave.release
        yield* within(Fiber.join(first))
        yield* within(secondRead.entered)
        // another process writes meanwhile (the same store, not through this one's gate)
        yield* Effect.gen(function*() {
          const other = yield* Sessions.Sessions
          const ho = Option.getOrThrow((yield* other.resolve(tok(h), browser)).session)
          yield* other.set(ho, "x", 9)
        }).pipe(Effect.provide(serviceLayer({ cache: false }, { store: gated.memory, seed: "other process" })))
        const saves = gated.saves()
        yield* secondRead.release
        yield* within(Fiber.join(one))
        assert.strictEqual(yield* within(Fiber.join(two)), 3)
        assert.strictEqual(gated.saves() - saves, 1, "one save, from the second read on")
        deepStrictEqual({ ...(yield* sessions.current(h)).data }, { a: 1, b: 2, c: 3, x: 9 })
      })))
})

describe("Sessions writes: the touch written by resolve", () => {
  it.live("two requests that both find a touch due record it once", () =>
    withGatedService({}, (sessions, gated, time) =>
      Effect.gen(function*() {
        const h = yield* sessions.create(browser)
        yield* time.advance(120_000)
        const saves = gated.saves()
        const held = yield* gated.hold("save")
        const one = yield* Effect.fork(sessions.resolve(tok(h), browser))
        yield* held.entered
        const two = yield* Effect.fork(sessions.resolve(tok(h), browser))
        yield* settle
        yield* held.release
        const [r1, r2] = [yield* within(Fiber.join(one)), yield* within(Fiber.join(two))]
        expect([r1.outcome, r2.outcome]).toStrictEqual(["valid", "valid"])
        assert.strictEqual(gated.saves() - saves, 1)
        const touched = yield* stored(gated.store, h)
        assert.strictEqual(touched.version, h.session.version + 1)
        assert.strictEqual(Option.getOrThrow(r2.session).session.version, touched.version)
      })))

  it.live("a request that finds a touch due while the token is being rotated follows the rotation", () =>
    withGatedService({}, (sessions, gated, time) =>
      Effect.gen(function*() {
        const h = yield* sessions.create(browser)
        yield* time.advance(120_000)
        const held = yield* gated.hold("rotate")
        const rotating = yield* Effect.fork(sessions.regenerateId(h))
        yield* held.entered
        const request = yield* Effect.fork(sessions.resolve(tok(h), browser))
        yield* settle
        yield* held.release
        const next = yield* within(Fiber.join(rotating))
        const r = yield* within(Fiber.join(request))
        assert.strictEqual(r.outcome, "followed")
        assert.strictEqual(tok(Option.getOrThrow(r.session)), tok(next))
      })))
})

describe("Sessions writes: rotations that lose a race to another process", () => {
  it.live("a rotation whose compare-and-set loses to another process's data write tries again from the store: both stand", () =>
    withGatedService({}, (sessions, gated) =>
      Effect.gen(function*() {
        const h = yield* sessions.create(browser)
        yield* sessions.set(h, "a", 1)
        const held = yield* gated.hold("rotate")
        const rotating = yield* Effect.fork(sessions.regenerateId(h))
        yield* within(held.entered)
        yield* otherProcess(gated.memory, {}, (other) =>
          Effect.gen(function*() {
            const ho = Option.getOrThrow((yield* other.resolve(tok(h), browser)).session)
            yield* other.set(ho, "b", 2)
          }))
        yield* held.release
        const next = yield* within(Fiber.join(rotating))
        yield* sessions.clearCache
        deepStrictEqual({ ...(yield* sessions.current(next)).data }, { a: 1, b: 2 })
        assert.strictEqual((yield* sessions.resolve(tok(next), browser)).outcome, "valid")
      })))

  it.live("a log-in under maxSessionsPerUser whose rotation loses to another process's write tries again: logged in, both writes stand", () =>
    withGatedService({ maxSessionsPerUser: 2 }, (sessions, gated) =>
      Effect.gen(function*() {
        const h = yield* sessions.create(browser)
        yield* sessions.set(h, "a", 1)
        const held = yield* gated.hold("rotateWithinLimit")
        const loggingIn = yield* Effect.fork(sessions.logIn(h, "ada"))
        yield* within(held.entered)
        yield* otherProcess(gated.memory, { maxSessionsPerUser: 2 }, (other) =>
          Effect.gen(function*() {
            const ho = Option.getOrThrow((yield* other.resolve(tok(h), browser)).session)
            yield* other.set(ho, "b", 2)
          }))
        yield* held.release
        const next = yield* within(Fiber.join(loggingIn))
        assertSome(next.session.userId, "ada")
        yield* sessions.clearCache
        deepStrictEqual({ ...(yield* sessions.current(next)).data }, { a: 1, b: 2 })
      })))

  it.live("while destroy is under way (its rotation stored, the session not yet deleted), another process finds the destroyed token leading nowhere: destroy's rotation keeps no grace period", () =>
    withGatedService({ gracePeriod: "1 minute" }, (sessions, gated, time) =>
      Effect.gen(function*() {
        const h = yield* sessions.create(browser)
        const held = yield* gated.hold("delete")
        const destroying = yield* Effect.fork(sessions.destroy(h))
        yield* within(held.entered)
        const seen = yield* otherProcess(gated.memory, { gracePeriod: "1 minute" }, (other) => other.resolve(tok(h), browser)).pipe(
          Effect.withClock(time.clock)
        )
        yield* held.release
        yield* within(Fiber.join(destroying))
        deepStrictEqual([seen.outcome, Option.isNone(seen.session)], ["expired", true])
      })))

  for (const operation of ["regenerateId", "logOut", "destroy"] as const) {
    it.live(`${operation} through a handle whose token another process retired meanwhile (a log-in) fails with SessionGoneError and leaves that process's session alone`, () =>
      withGatedService({}, (sessions, gated) =>
        Effect.gen(function*() {
          const h = yield* sessions.create(browser)
          yield* sessions.set(h, "a", 1)
          const held = yield* gated.hold("rotate")
          const run = operation === "regenerateId"
            ? Effect.asVoid(sessions.regenerateId(h))
            : operation === "logOut"
            ? Effect.asVoid(sessions.logOut(h))
            : sessions.destroy(h)
          const attempt = yield* Effect.fork(run)
          yield* within(held.entered)
          const victim = yield* otherProcess(gated.memory, {}, (other) =>
            Effect.gen(function*() {
              const ho = Option.getOrThrow((yield* other.resolve(tok(h), browser)).session)
              return yield* other.logIn(ho, "victim")
            }))
          yield* held.release
          const e = yield* within(Effect.flip(Fiber.join(attempt)))
          assert.instanceOf(e, Sessions.SessionGoneError)
          assert.strictEqual((e as Sessions.SessionGoneError).method, operation)
          const kept = Option.getOrThrow(yield* gated.memory.loadSession(h.session.key))
          assert.strictEqual(kept.tokenKey, victim.session.tokenKey)
          assertSome(kept.userId, "victim")
          assert.strictEqual((yield* sessions.resolve(tok(victim), browser)).outcome, "valid")
        })))
  }

  it.live("a rotation that finds its token rotated meanwhile by another process follows the redirect and rotates from there", () =>
    withGatedService({ cache: false }, (sessions, gated) =>
      Effect.gen(function*() {
        const h = yield* sessions.create(browser)
        yield* sessions.set(h, "a", 1)
        // regenerateId reads the token's record twice (where the handle leads, then the latest value): the second waits
        const held = yield* gated.hold("load", 1)
        const rotating = yield* Effect.fork(sessions.regenerateId(h))
        yield* within(held.entered)
        const theirs = yield* otherProcess(gated.memory, { cache: false }, (other) =>
          Effect.gen(function*() {
            const ho = Option.getOrThrow((yield* other.resolve(tok(h), browser)).session)
            return yield* other.regenerateId(ho)
          }))
        yield* held.release
        const next = yield* within(Fiber.join(rotating))
        assert.notStrictEqual(tok(next), tok(theirs))
        assert.strictEqual((yield* sessions.resolve(tok(next), browser)).outcome, "valid")
        const followed = yield* sessions.resolve(tok(theirs), browser)
        assert.strictEqual(followed.outcome, "followed")
        assert.strictEqual(tok(Option.getOrThrow(followed.session)), tok(next))
        assertSome(yield* sessions.get(next, "a"), 1)
      })))
})

describe("Sessions writes: rotations against a store that keeps refusing them", () => {
  it.live(`a rotation whose compare-and-set loses ${MAX_ATTEMPTS} times in a row while its token stays current fails with SessionConflictError after exactly ${MAX_ATTEMPTS} attempts, the session unchanged; one loss fewer and it succeeds at the next version`, () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      const refusals = { left: 0, rotations: 0 }
      const store = Testing.intercept(memory, (method, call) =>
        method === "rotate"
          ? Effect.suspend(() => {
            refusals.rotations++
            return refusals.left-- > 0 ? Effect.succeed(false as never) : call
          })
          : call)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        yield* sessions.set(h, "a", 1)
        const before = Option.getOrThrow(yield* memory.loadSession(h.session.key))
        // Every attempt loses: one round of attempts (with their backoff), then the conflict — not
        // a round per follow of the handle (32 × 32 attempts, half a minute).
        refusals.left = MAX_ATTEMPTS
        const e = yield* Effect.flip(sessions.regenerateId(h))
        assert.instanceOf(e, Sessions.SessionConflictError)
        deepStrictEqual([(e as Sessions.SessionConflictError).method, (e as Sessions.SessionConflictError).attempts], ["regenerateId", MAX_ATTEMPTS])
        assert.strictEqual(refusals.rotations, MAX_ATTEMPTS)
        deepStrictEqual(Option.getOrThrow(yield* memory.loadSession(h.session.key)), before)
        // One loss fewer: the last attempt wins.
        refusals.rotations = 0
        refusals.left = MAX_ATTEMPTS - 1
        const next = yield* sessions.regenerateId(h)
        assert.strictEqual(refusals.rotations, MAX_ATTEMPTS)
        const after = Option.getOrThrow(yield* memory.loadSession(h.session.key))
        assert.strictEqual(after.version, before.version + 1)
        assert.strictEqual(after.tokenKey, next.session.tokenKey)
        assertSome(yield* sessions.get(next, "a"), 1)
      }).pipe(Effect.provide(serviceLayer({}, { store })))
    }))

  it.effect(`a rotation through a handle whose token is found rotated away on every attempt (a store that flickers) follows at most ${MAX_ATTEMPTS} times, then fails with SessionConflictError`, () =>
    Effect.gen(function*() {
      // The handle's read finds the session under its token; the rotation's own read, just after,
      // finds nothing there, as if another writer had rotated in between.
      const flicker = flickering(yield* Persistence.makeMemory)
      const store = flicker.store
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        flicker.set(true)
        const e = yield* Effect.flip(sessions.regenerateId(h))
        assert.instanceOf(e, Sessions.SessionConflictError)
        deepStrictEqual([(e as Sessions.SessionConflictError).method, flicker.loads()], ["regenerateId", 2 * MAX_ATTEMPTS])
        flicker.set(false)
        assert.notStrictEqual((yield* sessions.regenerateId(h)).session.tokenKey, h.session.tokenKey)
      }).pipe(Effect.provide(serviceLayer({ cache: false }, { store })))
    }))
})

describe("Sessions writes: log-ins and log-outs", () => {
  it.effect("a log-in reads none of the user's sessions while nobody subscribes to the events, nor under maxSessionsPerUser before any logOutEveryone (the store counts them)", () =>
    Effect.gen(function*() {
      for (const maxSessionsPerUser of [false, 3] as const) {
        const counted = Testing.counted(yield* Persistence.makeMemory)
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          yield* sessions.logIn(yield* sessions.create(browser), "ada")
          yield* sessions.logIn(yield* sessions.create(browser), "ada")
          assert.strictEqual(counted.calls().sessionsOfUser ?? 0, 0, `maxSessionsPerUser ${maxSessionsPerUser}`)
        }).pipe(Effect.provide(serviceLayer({ maxSessionsPerUser }, { store: counted.store })))
      }
    }))

  it.scoped("after logOutEveryone a log-in reads the user's sessions once (to meet the ended ones) under maxSessionsPerUser, with or without subscribers; never without the limit and subscribers", () =>
    Effect.gen(function*() {
      for (const [maxSessionsPerUser, subscribed, reads] of [[false, false, 0], [3, false, 1], [3, true, 1], [false, true, 1]] as const) {
        const counted = Testing.counted(yield* Persistence.makeMemory)
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          if (subscribed) yield* sessions.subscribe()
          yield* TestClock.adjust("1 second")
          yield* sessions.logOutEveryone()
          yield* TestClock.adjust("1 second")
          yield* sessions.logIn(yield* sessions.create(browser), "ada")
          assert.strictEqual(counted.calls().sessionsOfUser ?? 0, reads, `maxSessionsPerUser ${maxSessionsPerUser}, subscribed ${subscribed}`)
        }).pipe(Effect.provide(serviceLayer({ maxSessionsPerUser }, { store: counted.store })))
      }
    }))

  it.scoped("when the user's sessions cannot be read for a log-in's event, the log-in goes on, logs a warning, and the device counts as new", () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      const failing = { on: false }
      const store = Testing.intercept(memory, (method, call) =>
        method === "sessionsOfUser" && failing.on
          ? Effect.fail(new Persistence.SessionStoreError({ method: "sessionsOfUser", reason: "Unavailable" }))
          : call)
      const warnings: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
      })
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const events = yield* sessions.subscribe()
        yield* sessions.logIn(yield* sessions.create(browser), "ada")
        failing.on = true
        const again = yield* sessions.logIn(yield* sessions.create(browser), "ada")
        failing.on = false
        assert.strictEqual((yield* sessions.resolve(tok(again), browser)).outcome, "valid")
        const loggedIn = Chunk.toReadonlyArray(yield* Queue.takeAll(events)).flatMap((ev) => ev._tag === "LoggedIn" ? [ev.newDevice] : [])
        expect(loggedIn).toStrictEqual([true, true])
        expect(warnings).toStrictEqual([expect.stringContaining("could not read the user's sessions for a log-in event")])
      }).pipe(Effect.provide(serviceLayer({}, { store })), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    }))

  it.scoped("after logOutEveryone a user's session list holds only the sessions logged in to since; listing deletes the ended ones and reports them", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const old = yield* sessions.logIn(yield* sessions.create(browser), "ada")
        yield* TestClock.adjust("1 second")
        yield* sessions.logOutEveryone()
        yield* TestClock.adjust("1 second")
        const fresh = yield* sessions.logIn(yield* sessions.create(browser), "ada")
        const events = yield* sessions.subscribe()
        expect((yield* sessions.listSessions("ada")).map((i) => i.id)).toStrictEqual([publicId(fresh.session.key)])
        assertNone(yield* store.loadSession(old.session.key))
        expect(Chunk.toReadonlyArray(yield* Queue.takeAll(events)).map((ev) => ev._tag)).toStrictEqual(["Revoked"])
        expect((yield* sessions.listSessions("ada")).map((i) => i.id)).toStrictEqual([publicId(fresh.session.key)])
      }).pipe(Effect.provide(serviceLayer({}, { store })))
    }))

  it.effect("logOutEveryone never lowers the instant in force: with the clock set back it answers the later instant", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      yield* TestClock.setTime(1_800_000_000_000)
      assert.strictEqual(yield* sessions.logOutEveryone(), 1_800_000_000_000)
      yield* TestClock.setTime(1_700_000_000_000)
      assert.strictEqual(yield* sessions.logOutEveryone(), 1_800_000_000_000)
      const born = yield* sessions.create(browser)
      assertNone((yield* sessions.resolve(tok(born), browser)).session)
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("through a dead handle a log-in (exclusive or not, limited or not), logOut, reauthenticated, logOutOthers and user fail with SessionGoneError naming the method", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.logIn(yield* sessions.create(browser), "ada")
      yield* sessions.destroy(h)
      const method = (e: unknown) => {
        assert.instanceOf(e, Sessions.SessionGoneError)
        return (e as Sessions.SessionGoneError).method
      }
      expect([
        method(yield* Effect.flip(sessions.logIn(h, "ada", { exclusive: true }))),
        method(yield* Effect.flip(sessions.logOutOthers(h))),
        method(yield* Effect.flip(sessions.user(h))),
        method(yield* Effect.flip(sessions.reauthenticated(h))),
        method(yield* Effect.flip(sessions.logIn(h, "ada"))),
        method(yield* Effect.flip(sessions.logOut(h)))
      ]).toStrictEqual(["logIn", "logOutOthers", "current", "reauthenticated", "logIn", "logOut"])
      // under maxSessionsPerUser too
      yield* Effect.gen(function*() {
        const limited = yield* Sessions.Sessions
        const d = yield* limited.create(browser)
        yield* limited.destroy(d)
        expect(method(yield* Effect.flip(limited.logIn(d, "ada")))).toStrictEqual("logIn")
      }).pipe(Effect.provide(serviceLayer({ maxSessionsPerUser: 2 })))
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("logOutOthers through a session nobody is logged in to ends nothing and reads no user's sessions", () =>
    Effect.gen(function*() {
      const counted = Testing.counted(yield* Persistence.makeMemory)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const ada = yield* sessions.logIn(yield* sessions.create(browser), "ada")
        const anonymous = yield* sessions.create(browser)
        assert.strictEqual(yield* sessions.logOutOthers(anonymous), 0)
        assert.strictEqual(counted.calls().sessionsOfUser ?? 0, 0)
        assert.strictEqual((yield* sessions.resolve(tok(ada), browser)).outcome, "valid")
      }).pipe(Effect.provide(serviceLayer({}, { store: counted.store })))
    }))
})

describe("Sessions writes: traced", () => {
  /** Every span made while `effect` runs, with its result. */
  const recording = <A, E, R>(effect: Effect.Effect<A, E, R>) => {
    const spans: Array<Tracer.Span> = []
    return Effect.map(recordingSpans(spans, effect), (a) => [a, spans] as const)
  }

  it.effect("each write through a handle is a span Sessions.<method>, naming the session by its token's hash (never the token); so are the log-outs of a user and of everyone", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h0 = yield* sessions.create(browser)
      const steps: Array<readonly [string, (h: Sessions.ActiveSession) => Effect.Effect<Sessions.ActiveSession, unknown>]> = [
        ["Sessions.set", (h) => Effect.as(sessions.set(h, "k", 1), h)],
        ["Sessions.update", (h) => Effect.as(sessions.update(h, "k", () => 2), h)],
        ["Sessions.pop", (h) => Effect.as(sessions.pop(h, "k"), h)],
        ["Sessions.remove", (h) => Effect.as(sessions.remove(h, "k"), h)],
        ["Sessions.modify", (h) => Effect.as(sessions.modify(h, (s) => Session.set(s, "m", 1)), h)],
        ["Sessions.regenerateId", (h) => sessions.regenerateId(h)],
        ["Sessions.logIn", (h) => sessions.logIn(h, "ada")],
        ["Sessions.reauthenticated", (h) => sessions.reauthenticated(h)],
        ["Sessions.logOutOthers", (h) => Effect.as(sessions.logOutOthers(h), h)],
        ["Sessions.logOut", (h) => sessions.logOut(h)],
        ["Sessions.destroy", (h) => Effect.as(sessions.destroy(h), h)]
      ]
      let h = h0
      for (const [name, step] of steps) {
        const [next, spans] = yield* recording(step(h))
        const own = spans.filter((span) => span.name === name)
        assert.strictEqual(own.length, 1, `one ${name} span`)
        assert.strictEqual(own[0]!.attributes.get("session.token_hash"), logHash(tok(h)), name)
        assert.notInclude(JSON.stringify([...own[0]!.attributes.values()]), tok(h))
        h = next
      }
      for (const [name, run] of [["Sessions.logOutEverywhere", sessions.logOutEverywhere("ada")], ["Sessions.logOutEveryone", sessions.logOutEveryone()]] as const) {
        const [, spans] = yield* recording(run)
        assert.strictEqual(spans.filter((span) => span.name === name).length, 1, `one ${name} span`)
      }
    }).pipe(Effect.provide(serviceLayer())))
})
