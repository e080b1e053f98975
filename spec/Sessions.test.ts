/**
 * The Sessions service: data operations, users (UserLoader, listSessions, endSession,
 * logOutEverywhere, exclusive logIn), the sweeper, store failures, and in-process concurrency
 * (invariant 10).
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { assertNone, assertSome, deepStrictEqual } from "@effect/vitest/utils"
import { Deferred, Duration, Effect, Either, Exit, Fiber, Layer, Option, Redacted, Schema, TestClock } from "effect"
import * as Persistence from "../src/Persistence.js"
import * as Testing from "../src/testing.js"
import * as SecureRandom from "../src/SecureRandom.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { notGone, retirements } from "../src/internal/testing/retirement.js"
import { forgetAtDeadline } from "../src/internal/testing/stores.js"
import { serviceLayer as makeServiceLayer } from "./helpers/service.js"

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

const serviceLayer = (
  config: SessionConfig.SessionConfigInput = {},
  options: { readonly seed?: string; readonly store?: Persistence.PersistenceShape } = {}
): Layer.Layer<Sessions.Sessions> => makeServiceLayer(config, { seed: "sessions", ...options })

const tok = (h: Sessions.ActiveSession): string => Redacted.value(h.token)
const advance = (millis: number) => TestClock.adjust(Duration.millis(millis))
const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 Firefox/128.0" })
const phone = Session.client({ ip: "203.0.113.40", userAgent: "Mozilla/5.0 (iPhone) Safari/604.1" })

const someSession = (r: Sessions.Resolution): Sessions.ActiveSession => {
  assert.isTrue(Option.isSome(r.session), `expected a session, got outcome ${r.outcome}`)
  return Option.getOrThrow(r.session)
}

const isDead = (sessions: Sessions.SessionsShape, token: string, client: Session.Client = browser) =>
  Effect.map(sessions.resolve(token, client), (r) => Option.isNone(r.session))

/** A well-formed token that no session has. */
const strangerToken = "A".repeat(47)

const counter = (old: Option.Option<Session.Json>): Session.Json => (Option.getOrElse(old, () => 0) as number) + 1

// ---------------------------------------------------------------------------------------------
// basics
// ---------------------------------------------------------------------------------------------

describe("Sessions: basics", () => {
  it.effect("create, resolve, and the data operations", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(browser)
      assert.strictEqual(tok(h).length, 47)
      const r = yield* sessions.resolve(tok(h), browser)
      assert.strictEqual(r.outcome, "valid")
      assert.strictEqual(r.cookie, "none")
      yield* sessions.set(h, "theme", "dark")
      yield* sessions.set(h, "cart", [1, 2])
      assertSome(yield* sessions.get(h, "theme"), "dark")
      assertSome(yield* sessions.pop(h, "theme"), "dark")
      assertNone(yield* sessions.pop(h, "theme"))
      assert.strictEqual(yield* sessions.update(h, "n", counter), 1)
      assert.strictEqual(yield* sessions.update(h, "n", counter), 2)
      yield* sessions.remove(h, "cart")
      deepStrictEqual({ ...(yield* sessions.current(h)).data }, { n: 2 })
      // typed values
      const When = Schema.Date
      yield* sessions.set(h, Session.key("when", When), new Date(86_400_000))
      const when = yield* sessions.get(h, Session.key("when", When))
      assert.strictEqual(Option.getOrThrow(when).getTime(), 86_400_000)
      const bad = yield* Effect.flip(sessions.get(h, Session.key("n", Schema.String)))
      assert.strictEqual(bad._tag, "SessionDataError")
      // a fresh resolve sees everything
      const again = someSession(yield* sessions.resolve(tok(h), browser))
      deepStrictEqual({ ...again.session.data }, { n: 2, when: "1970-01-02T00:00:00.000Z" })
    }).pipe(Effect.provide(serviceLayer())))

  for (const hashIdsAtRest of [true, false]) {
    it.effect(`feature: every token of a session, and its token key, starts with the routing tag of its internal key; sessions draw their own tags (hashIdsAtRest: ${hashIdsAtRest})`, () =>
      Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const tags = new Set<string>()
        for (let i = 0; i < 20; i++) {
          let h = yield* sessions.create(browser)
          const tag = h.session.key.slice(0, 4)
          expect(tag).toMatch(/^[0-9A-Za-z]{4}$/)
          tags.add(tag)
          const seen = new Set<string>()
          for (const step of [
            (x: Sessions.ActiveSession) => sessions.regenerateId(x),
            (x: Sessions.ActiveSession) => sessions.logIn(x, `user-${i}`),
            (x: Sessions.ActiveSession) => sessions.regenerateId(x, { grace: false }),
            (x: Sessions.ActiveSession) => sessions.logOut(x)
          ]) {
            assert.strictEqual(tok(h).slice(0, 4), tag)
            assert.strictEqual(h.session.tokenKey.slice(0, 4), tag)
            assert.strictEqual(h.session.tokenKey === tok(h), !hashIdsAtRest)
            seen.add(tok(h).slice(4))
            h = yield* step(h)
          }
          assert.strictEqual(tok(h).slice(0, 4), tag)
          assert.strictEqual(seen.size, 4, "fresh random bits after the tag every time")
        }
        assert.isAbove(tags.size, 15, "tags are drawn per session")
      }).pipe(Effect.provide(serviceLayer({ hashIdsAtRest }))))
  }

  it.effect("absent and malformed tokens resolve without a store call; create: true makes a new session", () =>
    Effect.gen(function*() {
      const counted = Testing.counted(yield* Persistence.makeMemory)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const absent = yield* sessions.resolve(undefined, browser)
        deepStrictEqual([absent.outcome, absent.cookie], ["absent", "none"])
        for (const bad of ["short", "A".repeat(48), "!".repeat(47), "A".repeat(46) + "="]) {
          const r = yield* sessions.resolve(bad, browser)
          deepStrictEqual([r.outcome, r.cookie], ["malformed", "clear"])
        }
        deepStrictEqual(counted.calls(), {})
        const missing = yield* sessions.resolve(strangerToken, browser)
        assert.strictEqual(missing.outcome, "missing")
        assert.notStrictEqual(missing.cookie, "set")
        assert.strictEqual(counted.calls().load, 1)
        const created = yield* sessions.resolve("garbage", browser, { create: true })
        deepStrictEqual([created.outcome, created.cookie], ["created", "set"])
        assert.strictEqual((yield* sessions.resolve(tok(someSession(created)), browser)).outcome, "valid")
      }).pipe(Effect.provide(serviceLayer({}, { store: counted.store })))
    }))

  it.effect("destroy ends the session, also for tokens inside their grace period", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h0 = yield* sessions.create(browser)
      const h1 = yield* sessions.regenerateId(h0)
      yield* sessions.destroy(h1)
      assert.isTrue(yield* isDead(sessions, tok(h1)))
      assert.isTrue(yield* isDead(sessions, tok(h0)))
      const gone = yield* Effect.flip(sessions.set(h1, "k", 1))
      assert.strictEqual(gone._tag, "SessionGoneError")
      // the handle died with its session: a second destroy is gone, and ends nothing
      const again = yield* Effect.flip(sessions.destroy(h1))
      assert.strictEqual(again._tag, "SessionGoneError")
    }).pipe(Effect.provide(serviceLayer({ gracePeriod: "1 minute" }))))

  it.effect("a handle whose token was rotated away without grace behaves the same over any store (retaining dead records or not)", () =>
    Effect.gen(function*() {
      const attempt = (store: Persistence.PersistenceShape) =>
        Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h0 = yield* sessions.create(browser)
          yield* sessions.logIn(h0, "ada") // h0's token dies now (no grace)
          const tag = <A, E extends { readonly _tag: string }>(e: Effect.Effect<A, E>) =>
            Effect.map(Effect.either(e), (x) => x._tag === "Left" ? x.left._tag : "ok")
          return [
            yield* tag(sessions.regenerateId(h0)),
            yield* tag(sessions.logOut(h0)),
            yield* tag(sessions.logIn(h0, "bob"))
          ]
        }).pipe(Effect.provide(serviceLayer({ cache: false }, { store })))
      const retaining = yield* attempt(yield* Persistence.makeMemory)
      const forgetting = yield* attempt(forgetAtDeadline(yield* Persistence.makeMemory))
      deepStrictEqual(retaining, forgetting)
    }))

  it.effect("an expired session takes no writes", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(browser)
      yield* advance(30 * 60_000)
      const e = yield* Effect.flip(sessions.set(h, "k", 1))
      assert.strictEqual(e._tag, "SessionGoneError")
      assert.isTrue(yield* isDead(sessions, tok(h)))
    }).pipe(Effect.provide(serviceLayer({ idleTimeout: "30 minutes" }))))
})

// ---------------------------------------------------------------------------------------------
// users
// ---------------------------------------------------------------------------------------------

describe("Sessions: users", () => {
  const loader = (calls: Array<string>) =>
    Layer.succeed(Sessions.UserLoader, {
      load: (userId: string) =>
        Effect.sync(() => {
          calls.push(userId)
          return userId === "nobody" ? Option.none() : Option.some({ id: userId, name: userId.toUpperCase() })
        })
    })

  it.effect("user() loads through the UserLoader, caches per user, and refreshUser loads again", () => {
    const calls: Array<string> = []
    return Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const anonymous = yield* sessions.create(browser)
      assertNone(yield* sessions.user(anonymous))
      deepStrictEqual(calls, [], "no user, no load")
      const h = yield* sessions.logIn(anonymous, "ada")
      assertSome(yield* sessions.user(h), { id: "ada", name: "ADA" })
      assertSome(yield* sessions.user(h), { id: "ada", name: "ADA" })
      deepStrictEqual(calls, ["ada"], "loaded once")
      yield* sessions.refreshUser("ada")
      yield* sessions.user(h)
      deepStrictEqual(calls, ["ada", "ada"])
      // a user the loader does not know
      const other = yield* sessions.logIn(yield* sessions.create(phone), "nobody")
      assertNone(yield* sessions.user(other))
      // after logOut there is no user again
      const out = yield* sessions.logOut(h)
      assertNone(yield* sessions.user(out))
    }).pipe(Effect.provide(serviceLayer().pipe(Layer.provide(loader(calls)))))
  })

  it.effect("user() is none without a UserLoader", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.logIn(yield* sessions.create(browser), "ada")
      assertNone(yield* sessions.user(h))
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("a failing UserLoader is a UserLoaderError", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.logIn(yield* sessions.create(browser), "ada")
      const e = yield* Effect.flip(sessions.user(h))
      assert.strictEqual(e._tag, "UserLoaderError")
      assert.strictEqual((e as Sessions.UserLoaderError).userId, "ada")
    }).pipe(
      Effect.provide(serviceLayer().pipe(Layer.provide(Layer.succeed(Sessions.UserLoader, { load: () => Effect.fail("db down") }))))
    ))

  it.effect("listSessions lists a user's live sessions with public ids, never tokens; endSession ends one", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const a1 = yield* sessions.logIn(yield* sessions.create(browser), "ada")
      yield* advance(1_000)
      const a2 = yield* sessions.logIn(yield* sessions.create(phone), "ada")
      const b1 = yield* sessions.logIn(yield* sessions.create(browser), "bob")
      const list = yield* sessions.listSessions("ada")
      assert.strictEqual(list.length, 2)
      const ids = list.map((i) => i.id)
      assert.strictEqual(new Set(ids).size, 2)
      expect([...list].map((i) => i.createdAt).sort()).toEqual([a1.session.createdAt, a2.session.createdAt].sort())
      expect(list.map((i) => Option.getOrNull(i.ip)).sort()).toEqual(["198.51.100.7", "203.0.113.40"])
      const text = JSON.stringify(list)
      for (const h of [a1, a2, b1]) {
        assert.notInclude(text, tok(h))
        assert.notInclude(text, h.session.key, "the internal key is not listed either")
      }
      deepStrictEqual(yield* sessions.listSessions("nobody"), [])
      // ending a2 by its listed id (found by its creation time)
      const a2Info = list.find((i) => i.createdAt === a2.session.createdAt)!
      assert.isFalse(yield* sessions.endSession("bob", a2Info.id), "not bob's session")
      assert.isFalse(yield* sessions.endSession("ada", "no-such-id"))
      assert.isTrue(yield* sessions.endSession("ada", a2Info.id))
      assert.isTrue(yield* isDead(sessions, tok(a2), phone))
      assert.isFalse(yield* isDead(sessions, tok(a1)))
      deepStrictEqual((yield* sessions.listSessions("ada")).map((i) => i.id), ids.filter((i) => i !== a2Info.id))
      assert.isFalse(yield* sessions.endSession("ada", a2Info.id), "already ended")
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("logOutEverywhere ends every session of a user and counts them; other users keep theirs", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const a = yield* Effect.all([
        sessions.logIn(yield* sessions.create(browser), "ada"),
        sessions.logIn(yield* sessions.create(phone), "ada"),
        sessions.logIn(yield* sessions.create(browser), "ada")
      ])
      const b = yield* sessions.logIn(yield* sessions.create(browser), "bob")
      assert.strictEqual(yield* sessions.logOutEverywhere("ada"), 3)
      for (const h of a) assert.isTrue(yield* isDead(sessions, tok(h), h === a[1] ? phone : browser))
      assert.isFalse(yield* isDead(sessions, tok(b)))
      deepStrictEqual(yield* sessions.listSessions("ada"), [])
      assert.strictEqual(yield* sessions.logOutEverywhere("ada"), 0)
      // a logged-out session (user detached) is not the user's any more
      const c = yield* sessions.logIn(yield* sessions.create(browser), "cy")
      yield* sessions.logOut(c)
      assert.strictEqual(yield* sessions.logOutEverywhere("cy"), 0)
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("listSessions and logOutEverywhere see live sessions only (an idle or too old one is not listed or counted)", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      yield* sessions.logIn(yield* sessions.create(browser), "ada") // will idle out
      yield* advance(4 * 60_000)
      const busy = yield* sessions.logIn(yield* sessions.create(phone), "ada")
      yield* advance(60_000) // the first one is idle now (5 minutes), the second is 1 minute old
      const list = yield* sessions.listSessions("ada")
      deepStrictEqual(list.map((i) => i.createdAt), [busy.session.createdAt])
      assert.strictEqual(yield* sessions.logOutEverywhere("ada"), 1)
    }).pipe(Effect.provide(serviceLayer({ idleTimeout: "5 minutes" }))))

  it.effect("logIn { exclusive: true } ends the user's other sessions and keeps this one", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const old1 = yield* sessions.logIn(yield* sessions.create(browser), "ada")
      const old2 = yield* sessions.logIn(yield* sessions.create(phone), "ada")
      const bob = yield* sessions.logIn(yield* sessions.create(browser), "bob")
      const fresh = yield* sessions.create(browser)
      yield* sessions.set(fresh, "cart", [7])
      const h = yield* sessions.logIn(fresh, "ada", { exclusive: true })
      assert.isTrue(yield* isDead(sessions, tok(old1)))
      assert.isTrue(yield* isDead(sessions, tok(old2), phone))
      assert.isFalse(yield* isDead(sessions, tok(bob)))
      const r = someSession(yield* sessions.resolve(tok(h), browser))
      deepStrictEqual(r.session.data, { cart: [7] })
      deepStrictEqual(Option.getOrNull(r.session.userId), "ada")
      assert.strictEqual((yield* sessions.listSessions("ada")).length, 1)
      // exclusive again from the same session keeps it
      const again = yield* sessions.logIn(h, "ada", { exclusive: true })
      assert.isFalse(yield* isDead(sessions, tok(again)))
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("logIn with a client rebinds the session to it", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.logIn(yield* sessions.create(browser), "ada", { client: phone })
      const r = yield* sessions.resolve(tok(h), phone)
      assert.strictEqual(r.outcome, "valid")
      assert.strictEqual((yield* sessions.resolve(tok(h), browser)).outcome, "anomaly")
    }).pipe(Effect.provide(serviceLayer({ ipBinding: { ipv4Prefix: 24 } }))))
})

// ---------------------------------------------------------------------------------------------
// sweeper
// ---------------------------------------------------------------------------------------------

describe("Sessions: sweeper", () => {
  it.effect("layerSweeper sweeps every sweepInterval and removes expired records", () =>
    Effect.gen(function*() {
      const swept: Array<number> = []
      const memory = yield* Persistence.makeMemory
      const counted = Testing.counted({ ...memory, sweep: Effect.tap(memory.sweep, (n) => Effect.sync(() => swept.push(n))) })
      // A sweep interval longer than any retention a store keeps dead records for (the built-in
      // stores: minutes), so that what died before a sweep is gone after it.
      const config = SessionConfig.layer({ idleTimeout: "5 seconds", gracePeriod: "1 second", sweepInterval: "2 hours" })
      const env = Layer.mergeAll(Sessions.layerFromContext, Sessions.layerSweeper).pipe(
        Layer.provide(Layer.mergeAll(Layer.succeed(Persistence.Persistence, counted.store), Layer.orDie(config), SecureRandom.layerSeeded("sweep")))
      )
      const hour = 60 * 60_000
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const a = yield* sessions.create(browser)
        const b = yield* sessions.create(phone)
        yield* sessions.regenerateId(b) // one session record, plus a redirect for the old token
        yield* advance(2 * hour - 1)
        assert.strictEqual(counted.calls().sweep ?? 0, 0, "not before the interval")
        yield* advance(1)
        yield* Effect.yieldNow()
        assert.strictEqual(counted.calls().sweep, 1)
        deepStrictEqual(swept, [3], "two sessions and one redirect, all expired")
        // the records are gone from the store itself
        assertNone(yield* memory.loadSession(a.session.key))
        assertNone(yield* memory.load(a.session.tokenKey))
        yield* advance(2 * hour)
        yield* Effect.yieldNow()
        assert.strictEqual(counted.calls().sweep, 2)
        deepStrictEqual(swept, [3, 0])
        // a session made now goes at the next sweep after it dies
        yield* sessions.create(browser)
        yield* advance(2 * hour)
        yield* Effect.yieldNow()
        deepStrictEqual(swept, [3, 0, 1])
      }).pipe(Effect.provide(env))
    }))

  it.effect("a live session survives a sweep; a failed sweep is retried at the next interval", () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      let fail = true
      const flaky = {
        ...memory,
        sweep: Effect.suspend(() => {
          if (fail) {
            fail = false
            return Effect.fail(new Persistence.SessionStoreError({ method: "sweep", reason: "Unavailable" }))
          }
          return memory.sweep
        })
      }
      const counted = Testing.counted(flaky)
      const env = Layer.mergeAll(Sessions.layerFromContext, Sessions.layerSweeper).pipe(
        Layer.provide(Layer.mergeAll(
          Layer.succeed(Persistence.Persistence, counted.store),
          Layer.orDie(SessionConfig.layer({ idleTimeout: "1 minute", sweepInterval: "10 seconds" })),
          SecureRandom.layerSeeded("sweep2")
        ))
      )
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        yield* advance(10_000)
        yield* Effect.yieldNow()
        assert.strictEqual(counted.calls().sweep, 1)
        yield* advance(10_000)
        yield* Effect.yieldNow()
        assert.strictEqual(counted.calls().sweep, 2, "the sweeper survived the failure")
        assert.strictEqual((yield* sessions.resolve(tok(h), browser)).outcome, "valid")
      }).pipe(Effect.provide(env))
    }))
})

// ---------------------------------------------------------------------------------------------
// store failures
// ---------------------------------------------------------------------------------------------

describe("Sessions: store failures", () => {
  const unavailable = (method: string) => new Persistence.SessionStoreError({ method, reason: "Unavailable", cause: new Error("connection refused") })

  it.effect("a store whose load fails: resolve fails with a typed SessionStoreError and creates nothing", () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      const counted = Testing.counted({ ...memory, load: () => Effect.fail(unavailable("load")) })
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const e = yield* Effect.flip(sessions.resolve(strangerToken, browser))
        assert.strictEqual(e._tag, "SessionStoreError")
        assert.strictEqual(e.method, "load")
        assert.strictEqual(e.reason, "Unavailable")
        const withCreate = yield* Effect.exit(sessions.resolve(strangerToken, browser, { create: true }))
        assert.isTrue(Exit.isFailure(withCreate), "no fresh session handed out silently")
        assert.strictEqual(counted.calls().create ?? 0, 0)
        const viaStart = yield* Effect.flip(sessions.resolve(strangerToken, browser, { create: true }).pipe(Effect.map((r) => r.session)))
        assert.strictEqual(viaStart._tag, "SessionStoreError")
      }).pipe(Effect.provide(serviceLayer({ cache: false }, { store: counted.store })))
    }))

  it.effect("a store whose create or save fails: create and set fail with SessionStoreError", () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      let down = false
      const store: Persistence.PersistenceShape = {
        ...memory,
        create: (s, e) => down ? Effect.fail(unavailable("create")) : memory.create(s, e),
        save: (s, v, e) => down ? Effect.fail(unavailable("save")) : memory.save(s, v, e)
      }
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        down = true
        const e1 = yield* Effect.flip(sessions.create(browser))
        deepStrictEqual([e1._tag, (e1 as Persistence.SessionStoreError).method], ["SessionStoreError", "create"])
        const e2 = yield* Effect.flip(sessions.set(h, "k", 1))
        deepStrictEqual([e2._tag, (e2 as Persistence.SessionStoreError).method], ["SessionStoreError", "save"])
        down = false
        // nothing half-written: the value is not there, and the next write works
        assertNone(yield* sessions.get(h, "k"))
        yield* sessions.set(h, "k", 2)
        assertSome(yield* sessions.get(h, "k"), 2)
      }).pipe(Effect.provide(serviceLayer({}, { store })))
    }))

  it.effect("a corrupt record is dropped and the request proceeds without a session", () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      let corruptOnce = false
      const store: Persistence.PersistenceShape = {
        ...memory,
        load: (tk) => {
          if (corruptOnce) {
            corruptOnce = false
            return Effect.fail(new Persistence.SessionStoreError({ method: "load", reason: "Corrupt", key: tk, cause: "bad json" }))
          }
          return memory.load(tk)
        }
      }
      const counted = Testing.counted(store)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        yield* sessions.set(h, "k", 1)
        corruptOnce = true
        const r = yield* sessions.resolve(tok(h), browser)
        assert.strictEqual(r.outcome, "missing")
        assert.notStrictEqual(r.cookie, "set")
        assert.isTrue(Option.isNone(r.session))
        assert.strictEqual(counted.calls().deleteToken, 1, "the corrupt record was dropped")
        // dropped for good: the token leads nowhere now
        assert.strictEqual((yield* sessions.resolve(tok(h), browser)).outcome, "missing")
        // with create: the request gets a new session instead of an error
        corruptOnce = true
        const c = yield* sessions.resolve(tok(h), browser, { create: true })
        assert.strictEqual(c.outcome, "created")
        assert.notStrictEqual(tok(someSession(c)), tok(h))
      }).pipe(Effect.provide(serviceLayer({ cache: false }, { store: counted.store })))
    }))
})

// ---------------------------------------------------------------------------------------------
// invariant 10: concurrency in one process
// ---------------------------------------------------------------------------------------------

/** A store whose `save` of one chosen session waits at a gate (to hold that session's lock). */
const gatedStore = Effect.gen(function*() {
  const memory = yield* Persistence.makeMemory
  const blocked = new Set<string>()
  const saves = new Map<string, number>()
  let gate = yield* Deferred.make<void>()
  let entered = yield* Deferred.make<void>()
  const store: Persistence.PersistenceShape = {
    ...memory,
    save: (s, v, e) =>
      Effect.suspend(() => {
        saves.set(s.key, (saves.get(s.key) ?? 0) + 1)
        return blocked.has(s.key)
          ? Deferred.succeed(entered, undefined).pipe(Effect.zipRight(Deferred.await(gate)), Effect.zipRight(memory.save(s, v, e)))
          : memory.save(s, v, e)
      })
  }
  return {
    store,
    /** How many saves of a session reached the store. */
    saves: (key: string) => saves.get(key) ?? 0,
    block: (key: string) => Effect.sync(() => blocked.add(key)),
    unblock: (key: string) => Effect.sync(() => blocked.delete(key)),
    /** Completes once a blocked save is waiting at the gate. */
    entered: Effect.suspend(() => Deferred.await(entered)),
    open: Effect.suspend(() => Deferred.succeed(gate, undefined)),
    reset: Effect.gen(function*() {
      gate = yield* Deferred.make<void>()
      entered = yield* Deferred.make<void>()
    })
  }
})

describe("Sessions: concurrency (invariant 10)", () => {
  it.effect("invariant 10: concurrency (in-process) — 1,000 concurrent sets of distinct keys leave all 1,000 keys", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(browser)
      yield* Effect.all(Array.from({ length: 1000 }, (_, i) => sessions.set(h, `k${i}`, i)), { concurrency: "unbounded" })
      const data = (yield* sessions.current(h)).data
      assert.strictEqual(Object.keys(data).length, 1000)
      for (let i = 0; i < 1000; i++) assert.strictEqual(data[`k${i}`], i)
      // and the store agrees (flush the cache, read again)
      yield* sessions.clearCache
      const r = someSession(yield* sessions.resolve(tok(h), browser))
      assert.strictEqual(Object.keys(r.session.data).length, 1000)
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("invariant 10: concurrency (in-process) — 1,000 concurrent update increments end at exactly 1,000", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(browser)
      const seen = yield* Effect.all(Array.from({ length: 1000 }, () => sessions.update(h, "n", counter)), { concurrency: "unbounded" })
      assertSome(yield* sessions.get(h, "n"), 1000)
      assert.strictEqual(new Set(seen).size, 1000, "every update saw a different previous value")
    }).pipe(Effect.provide(serviceLayer())))

  for (const cache of [false, true]) {
    it.effect(`invariant 10: concurrency (in-process) — concurrent resolves of a token due for rotation elect one rotation (cache ${cache})`, () =>
      Effect.gen(function*() {
        const counted = Testing.counted(yield* Persistence.makeMemory)
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h = yield* sessions.create(browser)
          yield* sessions.set(h, "k", "v")
          yield* advance(15 * 60_000)
          const results = yield* Effect.all(Array.from({ length: 100 }, () => sessions.resolve(tok(h), browser)), {
            concurrency: "unbounded"
          })
          assert.strictEqual(counted.calls().rotate, 1, "one rotation")
          const outcomes = results.map((r) => r.outcome)
          assert.strictEqual(outcomes.filter((o) => o === "rotated").length, 1)
          assert.strictEqual(outcomes.filter((o) => o === "followed").length, 99)
          const handles = results.map(someSession)
          assert.strictEqual(new Set(handles.map(tok)).size, 1, "everyone ends on the same token")
          assert.notStrictEqual(tok(handles[0]!), tok(h))
          assert.isTrue(handles.every((x) => x.session.key === h.session.key && x.session.data["k"] === "v"))
          // concurrent writes through all of them land on one session
          yield* Effect.all(handles.map((x, i) => sessions.set(x, `w${i}`, i)), { concurrency: "unbounded" })
          assert.strictEqual(Object.keys((yield* sessions.current(h)).data).length, 101)
        }).pipe(Effect.provide(serviceLayer({ idRotationInterval: "15 minutes", cache }, { store: counted.store })))
      }))
  }

  it.live("invariant 10: concurrency (in-process) — operations on different sessions don't wait for each other", () =>
    Effect.gen(function*() {
      const gated = yield* gatedStore
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const a = yield* sessions.create(browser)
        const b = yield* sessions.create(phone)
        yield* gated.block(a.session.key)
        const slow = yield* Effect.fork(sessions.set(a, "x", 1))
        yield* gated.entered // a's lock is held inside the store call
        // b's write completes meanwhile
        yield* sessions.set(b, "y", 2).pipe(Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "b waited for a" }))
        assertSome(yield* sessions.get(b, "y"), 2)
        // a second write to a does wait
        const queued = yield* Effect.fork(sessions.set(a, "z", 3))
        yield* Effect.sleep("20 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(slow)))
        assert.isTrue(Option.isNone(yield* Fiber.poll(queued)), "same session: serialised")
        assert.strictEqual(gated.saves(a.session.key), 1, "the queued write waits for the lock, not at the store")
        yield* gated.unblock(a.session.key)
        yield* gated.open
        yield* Fiber.join(slow)
        yield* Fiber.join(queued)
        deepStrictEqual({ ...(yield* sessions.current(a)).data }, { x: 1, z: 3 })
      }).pipe(Effect.provide(serviceLayer({}, { store: gated.store })))
    }))

  it.live("invariant 10: concurrency (in-process) — a lock is released when its holder or a waiter is interrupted", () =>
    Effect.gen(function*() {
      const gated = yield* gatedStore
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const a = yield* sessions.create(browser)
        // the holder is interrupted inside the store call
        yield* gated.block(a.session.key)
        const holder = yield* Effect.fork(sessions.set(a, "lost", 1))
        yield* gated.entered
        yield* Fiber.interrupt(holder)
        yield* gated.unblock(a.session.key)
        yield* sessions.set(a, "next", 2).pipe(Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "lock still held" }))
        deepStrictEqual({ ...(yield* sessions.current(a)).data }, { next: 2 })
        // a waiter is interrupted while queued behind a holder
        yield* gated.reset
        yield* gated.block(a.session.key)
        const holder2 = yield* Effect.fork(sessions.set(a, "held", 3))
        yield* gated.entered
        const waiter = yield* Effect.fork(sessions.set(a, "waiter", 4))
        yield* Effect.sleep("20 millis")
        yield* Fiber.interrupt(waiter)
        yield* gated.unblock(a.session.key)
        yield* gated.open
        yield* Fiber.join(holder2)
        yield* sessions.set(a, "after", 5).pipe(Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "lock still held" }))
        deepStrictEqual({ ...(yield* sessions.current(a)).data }, { next: 2, held: 3, after: 5 })
      }).pipe(Effect.provide(serviceLayer({}, { store: gated.store })))
    }))

  it.live("invariant 10: concurrency (in-process) — a lock is released when the operation fails", () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      let failures = 1
      const store: Persistence.PersistenceShape = {
        ...memory,
        save: (s, v, e) =>
          Effect.suspend(() =>
            failures-- > 0 ? Effect.fail(new Persistence.SessionStoreError({ method: "save", reason: "Unavailable" })) : memory.save(s, v, e)
          )
      }
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const a = yield* sessions.create(browser)
        const e = yield* Effect.flip(sessions.set(a, "x", 1))
        assert.strictEqual(e._tag, "SessionStoreError")
        yield* sessions.set(a, "y", 2).pipe(Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "lock still held" }))
        // a defect inside modify releases it too
        const defect = yield* Effect.exit(sessions.modify(a, () => {
          throw new Error("boom")
        }))
        assert.isTrue(Exit.isFailure(defect))
        yield* sessions.set(a, "z", 3).pipe(Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "lock still held" }))
        deepStrictEqual({ ...(yield* sessions.current(a)).data }, { y: 2, z: 3 })
      }).pipe(Effect.provide(serviceLayer({}, { store })))
    }))
  it.live("feature: write coalescing — N concurrent updates queued on one session's lock make fewer than N saves; each caller sees its own result, in order; a failing writer or a dead handle in the batch gets its own error", () =>
    Effect.gen(function*() {
      const gated = yield* gatedStore
      const counted = Testing.counted(gated.store)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const retired = yield* sessions.create(browser)
        const live = yield* sessions.regenerateId(retired, { grace: false })
        const savesBefore = counted.calls().save ?? 0
        // the first update holds the lock inside its save; the others queue behind it
        yield* gated.block(live.session.key)
        const first = yield* Effect.fork(sessions.update(live, "n", counter))
        yield* gated.entered
        const n = 20
        const queued: Array<Fiber.RuntimeFiber<Session.Json, Sessions.SessionError>> = []
        for (let i = 0; i < n; i++) {
          queued.push(yield* Effect.fork(sessions.update(live, "n", counter)))
          yield* Effect.yieldNow()
        }
        const bad = yield* Effect.fork(sessions.set(live, "bad", Number.NaN))
        yield* Effect.yieldNow()
        const dead = yield* Effect.fork(sessions.update(retired, "n", counter))
        yield* Effect.yieldNow()
        const last = yield* Effect.fork(sessions.update(live, "n", counter))
        yield* Effect.sleep("20 millis")
        yield* gated.unblock(live.session.key)
        yield* gated.open
        assert.strictEqual(yield* Fiber.join(first), 1)
        const seen: Array<Session.Json> = []
        for (const f of queued) seen.push(yield* Fiber.join(f))
        deepStrictEqual(seen, Array.from({ length: n }, (_, i) => i + 2))
        assert.strictEqual((yield* Effect.flip(Fiber.join(bad)))._tag, "SessionDataError")
        assert.strictEqual((yield* Effect.flip(Fiber.join(dead)))._tag, "SessionGoneError")
        assert.strictEqual(yield* Fiber.join(last), n + 2)
        const saves = (counted.calls().save ?? 0) - savesBefore
        assert.isTrue(saves < n + 2, `${n + 2} updates made ${saves} saves`)
        assert.strictEqual(saves, 2, "the held save, then one for everything queued behind it")
        // the store agrees (flush the cache, read again)
        yield* sessions.clearCache
        deepStrictEqual({ ...(yield* sessions.current(live)).data }, { n: n + 2 })
      }).pipe(Effect.provide(serviceLayer({}, { store: counted.store })))
    }))
})

// ---------------------------------------------------------------------------------------------
// security: a handle is only as good as its token
// ---------------------------------------------------------------------------------------------

describe("Sessions: dead handles", () => {
  for (const cache of [false, true]) {
    it.effect(`security: the reproduction — a planted token resolved by the attacker's and the victim's request; after the victim's logIn the attacker's handle reads and writes nothing (cache ${cache})`, () =>
      Effect.gen(function*() {
        const store = yield* Persistence.makeMemory
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const planted = yield* sessions.create(browser)
          const t = tok(planted)
          const attacker = someSession(yield* sessions.resolve(t, browser))
          const victim = someSession(yield* sessions.resolve(t, browser))
          const loggedIn = yield* sessions.logIn(victim, "victim")
          const current = yield* Effect.either(sessions.current(attacker))
          assert.isTrue(Either.isLeft(current) && current.left._tag === "SessionGoneError", "current on the attacker's handle is gone")
          const set = yield* Effect.either(sessions.set(attacker, "stolen", true))
          assert.isTrue(Either.isLeft(set) && set.left._tag === "SessionGoneError", "set on the attacker's handle is gone")
          const after = yield* sessions.current(loggedIn)
          expect({ ...after.data }).toStrictEqual({})
          assertSome(after.userId, "victim")
          deepStrictEqual(yield* store.loadSession(loggedIn.session.key), Option.some(after))
        }).pipe(Effect.provide(serviceLayer({ cache }, { store })))
      }))
  }

  for (const retirement of retirements) {
    for (const cache of [false, true]) {
      it.effect(`security: after ${retirement.name} through the victim's handle, every operation through the attacker's handle on the same token fails with SessionGoneError and changes nothing (cache ${cache})`, () =>
        Effect.gen(function*() {
          const store = yield* Persistence.makeMemory
          yield* Effect.gen(function*() {
            const sessions = yield* Sessions.Sessions
            let planted = yield* sessions.create(browser)
            yield* sessions.set(planted, "cart", [1, 2])
            if (retirement.loggedIn) planted = yield* sessions.logIn(planted, "victim")
            const attacker = someSession(yield* sessions.resolve(tok(planted), browser))
            const victim = someSession(yield* sessions.resolve(tok(planted), browser))
            const survivor = yield* retirement.retire(sessions, victim, "victim")
            const before = yield* store.loadSession(planted.session.key)
            assert.strictEqual(Option.isSome(before), Option.isSome(survivor), "the session lives on exactly when the retirement keeps it")
            expect(yield* notGone(sessions, attacker)).toStrictEqual([])
            // Nothing changed: not the session that lives on, not a session that ended.
            deepStrictEqual(yield* store.loadSession(planted.session.key), before)
            if (Option.isSome(survivor)) {
              const s = yield* sessions.current(survivor.value)
              expect({ ...s.data }).toStrictEqual({ cart: [1, 2] })
              assert.isTrue(Option.isNone(s.userId) || s.userId.value === "victim")
            }
            // The attacker's token leads nowhere either.
            assert.isTrue(yield* isDead(sessions, tok(attacker)))
          }).pipe(Effect.provide(serviceLayer({ cache, gracePeriod: "1 minute" }, { store })))
        }))
    }
  }

  it.effect("security: a dead handle's exclusive logIn ends none of the user's other sessions", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const planted = yield* sessions.create(browser)
      const attacker = someSession(yield* sessions.resolve(tok(planted), browser))
      yield* sessions.logIn(planted, "victim")
      const phoneSession = yield* sessions.logIn(yield* sessions.create(phone), "ada")
      const e = yield* Effect.flip(sessions.logIn(attacker, "ada", { exclusive: true }))
      assert.strictEqual(e._tag, "SessionGoneError")
      assert.isFalse(yield* isDead(sessions, tok(phoneSession), phone))
      assert.strictEqual((yield* sessions.listSessions("ada")).length, 1)
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("security: a handle inside the grace period of a periodic rotation still reads and writes the one session; after the grace period, or once the new token is retired, it is gone", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h0 = yield* sessions.create(browser)
      yield* sessions.set(h0, "n", 1)
      yield* advance(15 * 60_000)
      const rotated = yield* sessions.resolve(tok(h0), browser)
      assert.strictEqual(rotated.outcome, "rotated")
      const h1 = someSession(rotated)
      // the old handle (a request in flight) and the new one share the session
      assert.strictEqual(yield* sessions.update(h0, "n", counter), 2)
      assert.strictEqual(yield* sessions.update(h1, "n", counter), 3)
      assertSome(yield* sessions.get(h0, "n"), 3)
      assertSome(yield* sessions.get(h1, "n"), 3)
      // a second periodic rotation within the grace period: the chain still leads to the session
      const h2 = yield* sessions.regenerateId(h1)
      assert.strictEqual(yield* sessions.update(h0, "n", counter), 4)
      assertSome(yield* sessions.get(h2, "n"), 4)
      // past the grace period the old handle is gone; the current one carries on
      yield* advance(60_000)
      const late = yield* Effect.flip(sessions.set(h0, "n", 0))
      assert.strictEqual(late._tag, "SessionGoneError")
      assertSome(yield* sessions.get(h2, "n"), 4)
      // within a grace period again, a log-in through the newest handle retires the whole chain
      const h3 = yield* sessions.regenerateId(h2)
      const h4 = yield* sessions.logIn(h3, "ada")
      for (const dead of [h2, h3]) assert.strictEqual((yield* Effect.flip(sessions.current(dead)))._tag, "SessionGoneError")
      assertSome(yield* sessions.get(h4, "n"), 4)
    }).pipe(Effect.provide(serviceLayer({ idRotationInterval: "15 minutes", gracePeriod: "1 minute", idleTimeout: "30 minutes" }))))
})

describe("Sessions: privilege changes (security)", () => {
  it.effect("security: regenerateId({ grace: false }) kills the old token at once; regenerateId() keeps it alive within the grace period only", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h0 = yield* sessions.create(browser)
      yield* sessions.set(h0, "k", 1)
      const h1 = yield* sessions.regenerateId(h0, { grace: false })
      assert.notStrictEqual(tok(h1), tok(h0))
      assert.isTrue(yield* isDead(sessions, tok(h0)))
      assert.strictEqual((yield* Effect.flip(sessions.get(h0, "k")))._tag, "SessionGoneError")
      const h2 = yield* sessions.regenerateId(h1)
      const followed = yield* sessions.resolve(tok(h1), browser)
      assert.strictEqual(followed.outcome, "followed")
      assert.strictEqual(tok(someSession(followed)), tok(h2))
      assertSome(yield* sessions.get(h1, "k"), 1)
      yield* advance(60_000)
      assert.isTrue(yield* isDead(sessions, tok(h1)))
      assertSome(yield* sessions.get(h2, "k"), 1)
    }).pipe(Effect.provide(serviceLayer({ gracePeriod: "1 minute" }))))

  it.effect("security: logOut({ keepData: false }) leaves no data and a fresh token; logOut() keeps the data", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const a = yield* sessions.logIn(yield* sessions.create(browser), "ada")
      yield* sessions.set(a, "cart", [1, 2])
      const cleared = yield* sessions.logOut(a, { keepData: false })
      assert.notStrictEqual(tok(cleared), tok(a))
      assert.isTrue(yield* isDead(sessions, tok(a)))
      const afterClear = yield* sessions.current(cleared)
      expect({ ...afterClear.data }).toStrictEqual({})
      assertNone(afterClear.userId)
      expect({ ...someSession(yield* sessions.resolve(tok(cleared), browser)).session.data }).toStrictEqual({})
      // the default keeps the data
      const b = yield* sessions.logIn(yield* sessions.create(browser), "bob")
      yield* sessions.set(b, "cart", [3])
      const kept = yield* sessions.logOut(b)
      assert.notStrictEqual(tok(kept), tok(b))
      const afterKeep = yield* sessions.current(kept)
      expect({ ...afterKeep.data }).toStrictEqual({ cart: [3] })
      assertNone(afterKeep.userId)
      expect({ ...(yield* sessions.current(yield* sessions.logOut(yield* sessions.logIn(kept, "bob"), { keepData: true }))).data }).toStrictEqual({ cart: [3] })
    }).pipe(Effect.provide(serviceLayer())))
})

// ---------------------------------------------------------------------------------------------
// recent-login gate and remember me (issue 15, items 3 and 6)
// ---------------------------------------------------------------------------------------------

describe("Sessions: recent log-in and remember me", () => {
  it.effect("feature: recent-login gate — logIn records authenticatedAt; reauthenticated sets it to now, rotates the token with no grace and keeps data and user; logOut clears it; the stored record agrees", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      yield* TestClock.setTime(1_000_000)
      const anonymous = yield* sessions.create(browser)
      yield* sessions.set(anonymous, "cart", ["book"])
      assertNone((yield* sessions.current(anonymous)).authenticatedAt)
      const h = yield* sessions.logIn(anonymous, "ada")
      assertSome(h.session.authenticatedAt, 1_000_000)
      yield* advance(6 * 60_000)
      assert.isFalse(Session.isRecentLogin(yield* sessions.current(h), 1_000_000 + 6 * 60_000, "5 minutes"))
      const again = yield* sessions.reauthenticated(h)
      assert.notStrictEqual(tok(again), tok(h))
      assertSome(again.session.authenticatedAt, 1_000_000 + 6 * 60_000)
      assertSome(again.session.userId, "ada")
      deepStrictEqual(again.session.data, { cart: ["book"] })
      // A fresh read from the store (no cache) has it too, and the old token is dead at once.
      yield* sessions.clearCache
      assertSome((yield* sessions.current(again)).authenticatedAt, 1_000_000 + 6 * 60_000)
      assert.isTrue(yield* isDead(sessions, tok(h)))
      const out = yield* sessions.logOut(again)
      assertNone(out.session.authenticatedAt)
    }).pipe(Effect.provide(serviceLayer({ idleTimeout: "1 hour" }))))

  it.effect("feature: remember me — logIn(user, { persistent }) is stored with the session and kept by a periodic rotation; logOut forgets it", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.logIn(yield* sessions.create(browser), "ada", { persistent: true })
      assertSome(h.session.persistent, true)
      yield* advance(16 * 60_000)
      const r = yield* sessions.resolve(tok(h), browser)
      assert.strictEqual(r.outcome, "rotated")
      assertSome(someSession(r).session.persistent, true)
      yield* sessions.clearCache
      assertSome((yield* sessions.current(someSession(r))).persistent, true)
      assertNone((yield* sessions.logOut(someSession(r))).session.persistent)
    }).pipe(Effect.provide(serviceLayer({ idleTimeout: "1 hour" }))))
})
