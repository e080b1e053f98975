/**
 * Handles (src/internal/sessions/handles.ts): a handle is only as good as its token. What a
 * handle reaches — through the cache or the store, along a redirect chain — and what it does not:
 * a token that names another session, a redirect past its deadline, a redirect whose sealed
 * successor the token does not open, a session that idled out or was logged out by
 * logOutEveryone. Handles made by another instance of the service (plain objects) work alike.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { assertNone, assertSome } from "@effect/vitest/utils"
import { Chunk, Effect, Either, Option, Queue, Redacted, TestClock } from "effect"
import { logHash } from "../src/internal/hash.js"
import { MAX_HOPS } from "../src/internal/sessions/tokens.js"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import * as Sessions from "../src/Sessions.js"
import * as Testing from "../src/testing.js"
import { serviceLayer } from "./helpers/service.js"

const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 Firefox/128.0" })
const tok = (h: Sessions.ActiveSession): string => Redacted.value(h.token)

/** A handle as another instance of the service (or a deserialized one) would carry it: a plain object. */
const plain = (session: Session.Session, token: Redacted.Redacted<string>): Sessions.ActiveSession => ({ session, token })

const goneAs = (e: unknown) => {
  assert.instanceOf(e, Sessions.SessionGoneError)
  const { method, session } = e as Sessions.SessionGoneError
  return { method, session }
}

for (const cache of [true, false]) {
  describe(`Sessions handles (cache ${cache})`, () => {
    it.effect("a handle that is a plain object reads and writes its session, and its errors name the session by its token's hash", () =>
      Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        const p = plain(h.session, h.token)
        yield* sessions.set(p, "k", 1)
        assertSome(yield* sessions.get(p, "k"), 1)
        assert.strictEqual(yield* sessions.update(p, "k", () => 2), 2)
        const next = yield* sessions.regenerateId(p, { grace: false })
        assertSome(yield* sessions.get(next, "k"), 2)
        const e = yield* Effect.flip(sessions.set(p, "k", 3))
        expect(goneAs(e)).toStrictEqual({ method: "set", session: logHash(tok(h)) })
        expect(goneAs(yield* Effect.flip(sessions.set(h, "k", 3)))).toStrictEqual({ method: "set", session: logHash(tok(h)) })
      }).pipe(Effect.provide(serviceLayer({ cache }))))

    it.effect("a handle that names one session and carries another's token, current or redirected, reaches neither; the first record of another session ends the walk", () =>
      Effect.gen(function*() {
        const counted = Testing.counted(yield* Persistence.makeMemory)
        const store = counted.store
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const a = yield* sessions.create(browser)
          const b0 = yield* sessions.create(browser)
          yield* sessions.set(b0, "owner", "b")
          const b1 = yield* sessions.regenerateId(b0)
          for (const token of [b1.token, b0.token]) {
            const forged = plain(a.session, token)
            assert.instanceOf(yield* Effect.flip(sessions.get(forged, "owner")), Sessions.SessionGoneError)
            assert.instanceOf(yield* Effect.flip(sessions.set(forged, "owner", "a")), Sessions.SessionGoneError)
            assert.instanceOf(yield* Effect.flip(sessions.regenerateId(forged)), Sessions.SessionGoneError)
          }
          if (!cache) {
            // the redirect of another session is the one record read
            const loads = counted.calls().load ?? 0
            assert.instanceOf(yield* Effect.flip(sessions.get(plain(a.session, b0.token), "owner")), Sessions.SessionGoneError)
            assert.strictEqual((counted.calls().load ?? 0) - loads, 1)
          }
          assertSome(yield* sessions.get(b1, "owner"), "b")
          assertNone(yield* sessions.get(a, "owner"))
          assert.strictEqual((yield* sessions.resolve(tok(b1), browser)).outcome, "valid")
        }).pipe(Effect.provide(serviceLayer({ cache }, { store })))
      }))

    it.effect("a handle on a rotated token reaches the session until the redirect's deadline: at the deadline it is gone", () =>
      Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h0 = yield* sessions.create(browser)
        const h1 = yield* sessions.regenerateId(h0)
        // gracePeriod: 1 minute
        yield* TestClock.adjust("59999 millis")
        yield* sessions.set(h0, "k", 1)
        assertSome(yield* sessions.get(h0, "k"), 1)
        yield* TestClock.adjust("1 millis")
        expect(goneAs(yield* Effect.flip(sessions.get(h0, "k")))).toStrictEqual({ method: "get", session: logHash(tok(h0)) })
        assert.instanceOf(yield* Effect.flip(sessions.set(h0, "k", 2)), Sessions.SessionGoneError)
        assert.instanceOf(yield* Effect.flip(sessions.regenerateId(h0)), Sessions.SessionGoneError)
        assertSome(yield* sessions.get(h1, "k"), 1)
      }).pipe(Effect.provide(serviceLayer({ cache, gracePeriod: "1 minute" }))))

    it.effect("a redirect whose sealed successor the token does not open (a record tampered with in the store) leads nowhere", () =>
      Effect.gen(function*() {
        const memory = yield* Persistence.makeMemory
        const tampering = { on: false }
        const store = Testing.intercept(memory, (method, call) =>
          method === "load" && tampering.on
            ? Effect.map(call, (record) =>
              Option.map(record as Option.Option<Session.TokenRecord>, (r) =>
                Session.isRedirect(r) ? new Session.Redirect({ ...r, sealedSuccessor: `x${r.sealedSuccessor.slice(1)}` }) : r)) as typeof call
            : call)
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h0 = yield* sessions.create(browser)
          const h1 = yield* sessions.regenerateId(h0)
          yield* sessions.clearCache
          tampering.on = true
          assert.instanceOf(yield* Effect.flip(sessions.set(h0, "k", 1)), Sessions.SessionGoneError)
          assert.instanceOf(yield* Effect.flip(sessions.get(h0, "k")), Sessions.SessionGoneError)
          assert.instanceOf(yield* Effect.flip(sessions.regenerateId(h0)), Sessions.SessionGoneError)
          tampering.on = false
          // (the cache kept the tampered record)
          yield* sessions.clearCache
          assertNone(yield* sessions.get(h1, "k"))
          yield* sessions.set(h0, "k", 2)
          assertSome(yield* sessions.get(h1, "k"), 2)
        }).pipe(Effect.provide(serviceLayer({ cache }, { store })))
      }))

    it.scoped("a session past its idle timeout is gone for every handle: a read fails, a rotation fails, deletes it and reports it expired", () =>
      Effect.gen(function*() {
        const store = yield* Persistence.makeMemory
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h = yield* sessions.create(browser)
          yield* sessions.set(h, "k", 1)
          const events = yield* sessions.subscribe()
          yield* TestClock.adjust("10 minutes")
          expect(goneAs(yield* Effect.flip(sessions.get(h, "k")))).toStrictEqual({ method: "get", session: logHash(tok(h)) })
          expect(goneAs(yield* Effect.flip(sessions.current(h)))).toStrictEqual({ method: "current", session: logHash(tok(h)) })
          // a read leaves the store as it is; a rotation deletes the session on the way
          assert.isTrue(Option.isSome(yield* store.loadSession(h.session.key)))
          expect(goneAs(yield* Effect.flip(sessions.regenerateId(h)))).toStrictEqual({ method: "regenerateId", session: logHash(tok(h)) })
          assertNone(yield* store.loadSession(h.session.key))
          const seen = Chunk.toReadonlyArray(yield* Queue.takeAll(events))
          expect(seen.map((ev) => [ev._tag, "reason" in ev ? ev.reason : undefined])).toStrictEqual([["Expired", "idle"]])
        }).pipe(Effect.provide(serviceLayer({ cache, idleTimeout: "10 minutes" }, { store })))
      }))

    it.effect("after logOutEveryone every handle of an earlier session is gone: a read fails, a rotation fails and deletes the session", () =>
      Effect.gen(function*() {
        const store = yield* Persistence.makeMemory
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h = yield* sessions.create(browser)
          yield* sessions.set(h, "k", 1)
          yield* TestClock.adjust("1 second")
          yield* sessions.logOutEveryone()
          assert.instanceOf(yield* Effect.flip(sessions.get(h, "k")), Sessions.SessionGoneError)
          assert.isTrue(Option.isSome(yield* store.loadSession(h.session.key)))
          expect(goneAs(yield* Effect.flip(sessions.logIn(h, "ada")))).toStrictEqual({ method: "logIn", session: logHash(tok(h)) })
          assertNone(yield* store.loadSession(h.session.key))
        }).pipe(Effect.provide(serviceLayer({ cache }, { store })))
      }))
  })
}

describe("Sessions handles: a store whose answers race rotations", () => {
  /**
   * The memory store, answering the first read of each redirect with the session as it is now
   * (what a store that reads a token's record in two steps may answer while a rotation lands).
   */
  const racingStore = Effect.map(Persistence.makeMemory, (memory) => {
    const raced = new Set<string>()
    const state = { on: false }
    const store = Testing.intercept(memory, (method, call) =>
      method === "load" && state.on
        ? Effect.flatMap(call, (record) => {
          const r = record as Option.Option<Session.TokenRecord>
          if (Option.isNone(r) || !Session.isRedirect(r.value) || raced.has(r.value.tokenKey)) return Effect.succeed(r)
          raced.add(r.value.tokenKey)
          return memory.loadSession(r.value.sessionKey)
        }) as typeof call
        : call)
    return { store, state, raced }
  })

  for (const [rotations, reaches] of [[MAX_HOPS, true], [MAX_HOPS + 1, false]] as const) {
    it.effect(`a handle ${rotations} rotations behind, each redirect first read as the session, ${reaches ? "still reaches it (a hop and a re-read per rotation)" : "is too far behind: gone"}`, () =>
      Effect.gen(function*() {
        const racing = yield* racingStore
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h0 = yield* sessions.create(browser)
          let h = h0
          for (let i = 0; i < rotations; i++) h = yield* sessions.regenerateId(h)
          racing.state.on = true
          const written = yield* Effect.either(sessions.set(h0, "k", 1))
          assert.strictEqual(racing.raced.size, rotations)
          assert.strictEqual(Either.isRight(written), reaches)
          racing.state.on = false
          if (reaches) assertSome(yield* sessions.get(h, "k"), 1)
          else assert.instanceOf(Either.flip(written).pipe(Either.getOrThrow), Sessions.SessionGoneError)
        }).pipe(Effect.provide(serviceLayer({ cache: false, gracePeriod: "1 minute" }, { store: racing.store })))
      }))
  }
})
