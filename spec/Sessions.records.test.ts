/**
 * Reading token records through the local cache (`src/internal/sessions/records.ts`): the cache
 * answers only before a record's deadline, so that any cache size behaves like none (invariant 7)
 * — at the deadline itself too; what it answers costs no store call (a cached session's touch and
 * rotation, a cached redirect); a token the store does not know takes no room in it; a store read
 * overtaken by a change — another process's invalidation, or this process's own write — is not
 * put into it; and the latest value of a session is reached by its token only, so that a token
 * rotated away while a request was reading it is followed, never touched as if it were current.
 *
 * The interleavings are made in one process with a store whose `load` runs a change of the test's
 * between reading and answering (`interleaved`, below): the read is in flight while the change
 * commits, deterministically.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { assertNone, deepStrictEqual } from "@effect/vitest/utils"
import { Chunk, Context, Effect, Layer, Option, PubSub, Queue, Redacted, Stream, TestClock } from "effect"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import type * as SessionEvents from "../src/SessionEvents.js"
import * as Sessions from "../src/Sessions.js"
import * as Testing from "../src/testing.js"
import { serviceLayer } from "./helpers/service.js"

const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 Firefox/128.0" })
const tok = (h: Sessions.ActiveSession): string => Redacted.value(h.token)

const someSession = (r: Sessions.Resolution): Sessions.ActiveSession => {
  assert.isTrue(Option.isSome(r.session), `expected a session, got outcome ${r.outcome}`)
  return Option.getOrThrow(r.session)
}

const drain = (q: Queue.Dequeue<SessionEvents.SessionEvent>) =>
  Effect.map(Queue.takeAll(q), (events) => Chunk.toReadonlyArray(events).map((e) => e._tag))

/**
 * `inner` with a `load` that can be told to run a change between reading a token key and
 * answering (`meanwhile`): the read was in flight while the change committed. The change runs on
 * the next load of `tokenKey` after `skip` others of it (once); with `reread`, the answer is then
 * the session read again by its key (a store that reads the token, then the session: its answer
 * raced the change).
 */
const interleaved = (inner: Persistence.PersistenceShape) => {
  let pending:
    | { readonly tokenKey: string; skip: number; readonly change: Effect.Effect<unknown, unknown>; readonly reread: boolean }
    | undefined
  let ran = 0
  const store: Persistence.PersistenceShape = {
    ...inner,
    load: (tokenKey) =>
      Effect.flatMap(inner.load(tokenKey), (record) => {
        const p = pending
        if (p === undefined || p.tokenKey !== tokenKey) return Effect.succeed(record)
        if (p.skip > 0) {
          p.skip--
          return Effect.succeed(record)
        }
        pending = undefined
        return Effect.zipRight(
          Effect.orDie(p.change),
          Effect.suspend(() => {
            ran++
            return p.reread && Option.isSome(record) && record.value._tag === "Session"
              ? Effect.map(inner.loadSession(record.value.key), (s): Option.Option<Session.TokenRecord> => s)
              : Effect.succeed(record)
          })
        )
      })
  }
  return {
    store,
    meanwhile: (tokenKey: string, change: Effect.Effect<unknown, unknown>, options?: { readonly skip?: number; readonly reread?: boolean }) =>
      Effect.sync(() => {
        pending = { tokenKey, change, skip: options?.skip ?? 0, reread: options?.reread ?? false }
      }),
    /** How many changes ran inside a read. */
    ran: () => ran
  }
}

const cacheLabel = (cache: boolean) => `cache ${cache ? "on" : "off"}`

describe("Sessions: records through the cache", () => {
  // -------------------------------------------------------------------------------------------
  // the deadline
  // -------------------------------------------------------------------------------------------

  for (const cache of [true, false]) {
    it.scoped(`invariant 7 at the deadline itself: over a store that keeps nothing past a deadline, a session and a redirect whose deadline is now are missing, with no event — the cache does not answer for them (${cacheLabel(cache)})`, () =>
      Effect.gen(function*() {
        const store = yield* Persistence.makeMemoryWith({ retention: 0 })
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const q = yield* sessions.subscribe()
          const idle = yield* sessions.create(browser)
          const old = yield* sessions.create(browser)
          yield* TestClock.adjust("29 minutes")
          const current = yield* sessions.regenerateId(old) // `old` is a redirect for one minute (the grace period)
          yield* TestClock.adjust("1 minute") // `idle` at its idle deadline, `old` at the end of its grace period
          yield* drain(q)
          const r = yield* sessions.resolve(tok(idle), browser)
          deepStrictEqual([r.outcome, r.cookie], ["missing", "none"])
          const l = yield* sessions.resolve(tok(old), browser)
          deepStrictEqual([l.outcome, l.cookie], ["missing", "none"])
          deepStrictEqual(yield* drain(q), [])
          assert.strictEqual((yield* Effect.flip(sessions.get(idle, "k")))._tag, "SessionGoneError")
          // The session the redirect led to is alive: only the old token died.
          assert.strictEqual((yield* sessions.resolve(tok(current), browser)).outcome, "valid")
        }).pipe(Effect.provide(serviceLayer({ cache }, { store, seed: "records" })))
      }))
  }

  // -------------------------------------------------------------------------------------------
  // what the cache answers costs no store call
  // -------------------------------------------------------------------------------------------

  it.effect("the cache answers for a redirect: a rotated token inside its grace period is followed without a store read", () =>
    Effect.gen(function*() {
      const counted = Testing.counted(yield* Persistence.makeMemory)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        const next = yield* sessions.regenerateId(h)
        yield* TestClock.adjust("30 seconds")
        const before = counted.calls().load ?? 0
        const r = yield* sessions.resolve(tok(h), browser)
        deepStrictEqual([r.outcome, r.cookie], ["followed", "set"])
        assert.strictEqual(tok(someSession(r)), tok(next))
        assert.strictEqual((counted.calls().load ?? 0) - before, 0)
      }).pipe(Effect.provide(serviceLayer({}, { store: counted.store, seed: "records" })))
    }))

  it.effect("a cached session's touch and its rotation read nothing from the store (they write: one save, one rotation)", () =>
    Effect.gen(function*() {
      const counted = Testing.counted(yield* Persistence.makeMemory)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        const calls = () => ({ load: counted.calls().load ?? 0, save: counted.calls().save ?? 0, rotate: counted.calls().rotate ?? 0 })
        const start = calls()
        yield* TestClock.adjust("1 minute") // the touch interval
        const touched = yield* sessions.resolve(tok(h), browser)
        deepStrictEqual([touched.outcome, someSession(touched).session.lastAccessAt], ["valid", 60_000])
        deepStrictEqual(calls(), { ...start, save: start.save + 1 })
        yield* TestClock.adjust("14 minutes") // the rotation interval since the token was issued
        const rotated = yield* sessions.resolve(tok(h), browser)
        assert.strictEqual(rotated.outcome, "rotated")
        deepStrictEqual(calls(), { ...start, save: start.save + 1, rotate: start.rotate + 1 })
      }).pipe(Effect.provide(serviceLayer({}, { store: counted.store, seed: "records" })))
    }))

  it.effect("a token the store does not know takes no room in the cache: it never pushes out a live session (a cache of one entry)", () =>
    Effect.gen(function*() {
      const counted = Testing.counted(yield* Persistence.makeMemory)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const unknown = yield* sessions.create(browser)
        yield* sessions.destroy(unknown)
        const h = yield* sessions.create(browser)
        const before = counted.calls().load ?? 0
        for (let i = 0; i < 2; i++) assert.strictEqual((yield* sessions.resolve(tok(unknown), browser)).outcome, "missing")
        assert.strictEqual((counted.calls().load ?? 0) - before, 2, "each resolution of the unknown token asks the store")
        yield* sessions.set(h, "k", 1)
        deepStrictEqual(yield* sessions.get(h, "k"), Option.some(1))
        assert.strictEqual((counted.calls().load ?? 0) - before, 2, "the live session is still cached")
      }).pipe(Effect.provide(serviceLayer({ cache: { capacity: 1 } }, { store: counted.store, seed: "records" })))
    }))

  // -------------------------------------------------------------------------------------------
  // a store read overtaken by a change
  // -------------------------------------------------------------------------------------------

  it.scoped("an invalidation from another process that overtakes a store read is not undone by it: the older record is not cached", () =>
    Effect.gen(function*() {
      const shared = yield* Persistence.makeMemory
      // Process b hears what the test publishes: the channel a shared store would give it.
      const channel = yield* PubSub.unbounded<Persistence.Invalidation>()
      const b_ = interleaved({ ...shared, invalidations: Stream.fromPubSub(channel) })
      const build = (s: Persistence.PersistenceShape, seed: string) =>
        Effect.map(Layer.build(serviceLayer({}, { store: s, seed })), Context.get(Sessions.Sessions))
      const a = yield* build(shared, "a")
      const b = yield* build(b_.store, "b")
      // b's listener starts on its own fiber: let it subscribe before anything is published.
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      const h = yield* a.create(browser)
      yield* a.set(h, "n", 1)
      // b reads the session from the store; while its read is in flight, a writes and b hears of it.
      yield* b_.meanwhile(
        h.session.tokenKey,
        Effect.gen(function*() {
          yield* a.set(h, "n", 2)
          yield* PubSub.publish(channel, Persistence.Invalidation.Token({ tokenKey: h.session.tokenKey }))
          for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
        })
      )
      const hb = someSession(yield* b.resolve(tok(h), browser))
      assert.strictEqual(b_.ran(), 1)
      // The read began before the write: it may answer with the older value…
      deepStrictEqual(hb.session.data, { n: 1 })
      // …but b did not keep it: its next read is the store's.
      deepStrictEqual(yield* b.get(hb, "n"), Option.some(2))
      deepStrictEqual(someSession(yield* b.resolve(tok(h), browser)).session.data, { n: 2 })
    }))

  // The change is this process's own: it hears no invalidation of it, and with the cache on it
  // must still not find the older record put back by the read, whatever the change (a write, a
  // rotation without grace, a destruction, a log-out): the cache answers as the store does.
  const changes: ReadonlyArray<
    readonly [string, (sessions: Sessions.SessionsShape, h: Sessions.ActiveSession) => Effect.Effect<unknown, unknown>]
  > = [
    ["set", (sessions, h) => sessions.set(h, "secret", 2)],
    ["logOut", (sessions, h) => sessions.logOut(h)],
    ["regenerateId({ grace: false })", (sessions, h) => sessions.regenerateId(h, { grace: false })],
    ["destroy", (sessions, h) => sessions.destroy(h)],
    ["logOutEverywhere", (sessions) => sessions.logOutEverywhere("ada")]
  ]
  for (const [name, change] of changes) {
    it.effect(`invariant 7: a ${name} this process commits while a store read of the same token is in flight is not undone by that read — after it, the token and the handle see what the store holds, cache on as off`, () =>
      Effect.gen(function*() {
        const seen: Array<unknown> = []
        for (const cache of [false, true]) {
          const i = interleaved(yield* Persistence.makeMemory)
          yield* Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            const h = yield* sessions.logIn(yield* sessions.create(browser), "ada")
            yield* sessions.set(h, "secret", 1)
            yield* sessions.clearCache
            yield* i.meanwhile(h.session.tokenKey, change(sessions, h))
            // This request's read began before the change: it may still see the session as it was.
            const during = yield* sessions.resolve(tok(h), browser)
            assert.strictEqual(i.ran(), 1)
            const after = yield* sessions.resolve(tok(h), browser)
            const read = yield* Effect.either(sessions.get(h, "secret"))
            const facts = {
              during: during.outcome,
              after: after.outcome,
              user: Option.getOrNull(Option.flatMap(after.session, (s) => s.session.userId)),
              data: Option.getOrNull(Option.map(after.session, (s) => s.session.data)),
              read: read._tag === "Right" ? Option.getOrNull(read.right) : read.left._tag
            }
            seen.push(facts)
            if (name === "set") {
              expect(facts).toStrictEqual({ during: "valid", after: "valid", user: "ada", data: { secret: 2 }, read: 2 })
            } else {
              assertNone(after.session)
              assert.strictEqual(facts.read, "SessionGoneError", cacheLabel(cache))
            }
          }).pipe(Effect.provide(serviceLayer({ cache }, { store: i.store, seed: "records" })))
        }
        deepStrictEqual(seen[1], seen[0])
      }))
  }

  // -------------------------------------------------------------------------------------------
  // the latest value of a session, by its token
  // -------------------------------------------------------------------------------------------

  for (const cache of [true, false]) {
    it.effect(`a rotation that lands between a request's read and its touch: the old token is followed to the new one, never touched as if it were current (${cacheLabel(cache)})`, () =>
      Effect.gen(function*() {
        const i = interleaved(yield* Persistence.makeMemory)
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h = yield* sessions.create(browser)
          yield* TestClock.adjust("1 minute") // the touch interval: the request will write an access
          yield* sessions.clearCache
          let next: Sessions.ActiveSession | undefined
          yield* i.meanwhile(h.session.tokenKey, Effect.map(sessions.regenerateId(h), (n) => (next = n)))
          const r = yield* sessions.resolve(tok(h), browser)
          assert.strictEqual(i.ran(), 1)
          deepStrictEqual([r.outcome, r.cookie], ["followed", "set"])
          const s = someSession(r)
          assert.strictEqual(s.session._tag, "Session")
          assert.strictEqual(tok(s), tok(next!))
          assert.strictEqual(s.session.tokenKey, next!.session.tokenKey)
        }).pipe(Effect.provide(serviceLayer({ cache }, { store: i.store, seed: "records" })))
      }))
  }

  it.scoped("a store whose answer for a token is the session as another process's rotation left it (it read the token, then the session by its key, and the rotation came between): the request's touch is not written through the old token, which is followed (cache off)", () =>
    Effect.gen(function*() {
      const shared = yield* Persistence.makeMemory
      const counted = Testing.counted(shared)
      const i = interleaved(counted.store)
      const build = (s: Persistence.PersistenceShape, seed: string) =>
        Effect.map(Layer.build(serviceLayer({ cache: false }, { store: s, seed })), Context.get(Sessions.Sessions))
      const a = yield* build(shared, "a")
      const b = yield* build(i.store, "b")
      const h = yield* b.create(browser)
      yield* TestClock.adjust("1 minute") // the touch interval: b will write an access
      let next: Sessions.ActiveSession | undefined
      // b reads the token once to decide, and again (the latest value, under its lock) to touch
      // it: process a's rotation lands inside the second read.
      yield* i.meanwhile(h.session.tokenKey, Effect.map(a.regenerateId(h), (n) => (next = n)), { skip: 1, reread: true })
      const saves = counted.calls().save ?? 0
      const r = yield* b.resolve(tok(h), browser)
      assert.strictEqual(i.ran(), 1)
      deepStrictEqual([r.outcome, r.cookie], ["followed", "set"])
      assert.strictEqual(tok(someSession(r)), tok(next!))
      assert.strictEqual((counted.calls().save ?? 0) - saves, 0, "no touch written (the rotation recorded the access)")
    }))
})
