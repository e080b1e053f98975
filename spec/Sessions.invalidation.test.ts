/**
 * What this process does with the invalidations other processes announce on the store's channel
 * (src/internal/sessions/invalidation.ts): a token key's record leaves the session cache, a user
 * leaves the user cache, "All" empties both and reads the revocation instant again; a read from the
 * store that an invalidation overtook answers its caller but is not cached; a channel that fails
 * is logged. Store-free: the memory store with a channel the test publishes on.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Cause, Context, Effect, Layer, Logger, LogLevel, Option, Queue, Redacted, Stream, TestClock } from "effect"
import * as Persistence from "../src/Persistence.js"
import * as SecureRandom from "../src/SecureRandom.js"
import * as Session from "../src/Session.js"
import * as SessionCache from "../src/SessionCache.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { makeInvalidationBook } from "../src/internal/sessions/invalidation.js"
import { makeSessions } from "../src/internal/sessions/make.js"

const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 Firefox/128.0" })
const tok = (h: Sessions.ActiveSession): string => Redacted.value(h.token)

interface Harness {
  readonly sessions: Sessions.SessionsShape
  /** The store under the service, as another process sharing it would change it. */
  readonly store: Persistence.PersistenceShape
  /** Announces an invalidation on the channel, as another process would. */
  readonly publish: (invalidation: Persistence.Invalidation) => Effect.Effect<void>
  /** Waits until the service has handled everything published so far. */
  readonly settle: Effect.Effect<void>
  /** Runs `hook` once, right after the store's next read of `tokenKey` (before it answers). */
  readonly afterRead: (tokenKey: string, hook: Effect.Effect<void>) => void
  /** How many times the user loader ran, by user. */
  readonly loads: Map<string, number>
}

/**
 * The service over the memory store, its invalidations from a queue the test publishes on, a user
 * loader that counts its loads, and a session cache that reports the token keys it drops (how
 * `settle` knows the subscriber has caught up: a marker invalidation of its own, the last one).
 */
const harness = (channel?: Stream.Stream<Persistence.Invalidation>) =>
  Effect.gen(function*() {
    const inner = yield* Persistence.makeMemory
    const published = yield* Queue.unbounded<Persistence.Invalidation>()
    const dropped = yield* Queue.unbounded<string>()
    const hooks = new Map<string, Effect.Effect<void>>()
    const loads = new Map<string, number>()
    const store: Persistence.PersistenceShape = {
      ...inner,
      load: (tk) =>
        Effect.tap(inner.load(tk), () =>
          Effect.suspend(() => {
            const hook = hooks.get(tk)
            hooks.delete(tk)
            return hook ?? Effect.void
          })),
      invalidations: channel ?? Stream.fromQueue(published)
    }
    const cache = Layer.effect(
      SessionCache.SessionCache,
      Effect.map(SessionCache.SessionCache, (c): SessionCache.SessionCacheShape => ({
        ...c,
        invalidate: (tk) => Effect.zipRight(c.invalidate(tk), Queue.offer(dropped, tk))
      }))
    ).pipe(Layer.provide(SessionCache.layer))
    const loader = Layer.succeed(Sessions.UserLoader, {
      load: (userId: string) =>
        Effect.sync(() => {
          loads.set(userId, (loads.get(userId) ?? 0) + 1)
          return Option.some({ name: userId })
        })
    })
    const context = yield* Layer.build(
      Layer.scoped(Sessions.Sessions, makeSessions).pipe(
        Layer.provide(Layer.mergeAll(cache, Layer.succeed(Persistence.Persistence, store), SecureRandom.layerSeeded("invalidation"), loader)),
        Layer.provide(Layer.orDie(SessionConfig.layer({})))
      )
    )
    let markers = 0
    const publish = (i: Persistence.Invalidation) => Effect.asVoid(Queue.offer(published, i))
    const settle = Effect.suspend(() => {
      const marker = `marker-${markers++}`
      const wait: Effect.Effect<void> = Effect.flatMap(Queue.take(dropped), (tk) => tk === marker ? Effect.void : wait)
      return Effect.zipRight(publish(Persistence.Invalidation.Token({ tokenKey: marker })), wait)
    })
    const harness: Harness = {
      sessions: Context.get(context, Sessions.Sessions),
      store: inner,
      publish,
      settle,
      afterRead: (tk, hook) => hooks.set(tk, hook),
      loads
    }
    return harness
  })

const outcome = (h: Harness, handle: Sessions.ActiveSession) => Effect.map(h.sessions.resolve(tok(handle), browser), (r) => r.outcome)

describe("Sessions: invalidations from other processes", () => {
  it.scoped("a token invalidation drops that record from this process's cache: the next request asks the store", () =>
    Effect.gen(function*() {
      const h = yield* harness()
      const a = yield* h.sessions.create(browser)
      const b = yield* h.sessions.create(browser)
      assert.strictEqual(yield* outcome(h, a), "valid")
      assert.strictEqual(yield* outcome(h, b), "valid")
      // Another process ends both; this one still answers from its cache until it hears of it.
      yield* h.store.delete(a.session.key)
      yield* h.store.delete(b.session.key)
      assert.strictEqual(yield* outcome(h, a), "valid")
      yield* h.publish(Persistence.Invalidation.Token({ tokenKey: a.session.tokenKey }))
      yield* h.settle
      assert.strictEqual(yield* outcome(h, a), "missing")
      assert.strictEqual(yield* outcome(h, b), "valid", "only the token named is dropped")
    }))

  it.scoped("a user invalidation makes this process load that user again, and only that one", () =>
    Effect.gen(function*() {
      const h = yield* harness()
      const ada = yield* h.sessions.logIn(yield* h.sessions.create(browser), "ada")
      const bob = yield* h.sessions.logIn(yield* h.sessions.create(browser), "bob")
      yield* h.sessions.user(ada)
      yield* h.sessions.user(bob)
      yield* h.sessions.user(ada)
      expect(Object.fromEntries(h.loads)).toStrictEqual({ ada: 1, bob: 1 })
      yield* h.publish(Persistence.Invalidation.User({ userKey: Persistence.userKey("ada") }))
      yield* h.settle
      yield* h.sessions.user(ada)
      yield* h.sessions.user(bob)
      expect(Object.fromEntries(h.loads)).toStrictEqual({ ada: 2, bob: 1 })
    }))

  it.scoped("an All invalidation empties this process's session cache and user cache", () =>
    Effect.gen(function*() {
      const h = yield* harness()
      const ada = yield* h.sessions.logIn(yield* h.sessions.create(browser), "ada")
      const gone = yield* h.sessions.create(browser)
      yield* h.sessions.user(ada)
      assert.strictEqual(yield* outcome(h, gone), "valid")
      yield* h.store.delete(gone.session.key)
      yield* h.publish(Persistence.Invalidation.All())
      yield* h.settle
      assert.strictEqual(yield* outcome(h, gone), "missing")
      yield* h.sessions.user(ada)
      expect(Object.fromEntries(h.loads)).toStrictEqual({ ada: 2 })
    }))

  it.scoped("an All invalidation makes this process read the revocation instant again: another process's logOutEveryone ends its sessions at once", () =>
    Effect.gen(function*() {
      const h = yield* harness()
      const a = yield* h.sessions.create(browser)
      // The instant read once (a request that went to the store): trusted for a minute from now on.
      yield* h.sessions.clearCache
      assert.strictEqual(yield* outcome(h, a), "valid")
      yield* TestClock.adjust(1)
      yield* h.store.revokeUntil(1)
      yield* h.sessions.clearCache
      assert.strictEqual(yield* outcome(h, a), "valid", "not heard yet: the instant read before stands")
      yield* h.publish(Persistence.Invalidation.All())
      yield* h.settle
      assert.strictEqual(yield* outcome(h, a), "expired")
    }))

  it.scoped("a read from the store that a token invalidation overtook answers its request but is not cached", () =>
    Effect.gen(function*() {
      const h = yield* harness()
      const a = yield* h.sessions.create(browser)
      yield* h.sessions.clearCache
      h.afterRead(a.session.tokenKey, Effect.zipRight(h.publish(Persistence.Invalidation.Token({ tokenKey: a.session.tokenKey })), h.settle))
      assert.strictEqual(yield* outcome(h, a), "valid")
      yield* h.store.delete(a.session.key)
      assert.strictEqual(yield* outcome(h, a), "missing", "the next request asked the store")
    }))

  it.scoped("a read from the store that an All invalidation overtook answers its request but is not cached", () =>
    Effect.gen(function*() {
      const h = yield* harness()
      const a = yield* h.sessions.create(browser)
      yield* h.sessions.clearCache
      h.afterRead(a.session.tokenKey, Effect.zipRight(h.publish(Persistence.Invalidation.All()), h.settle))
      assert.strictEqual(yield* outcome(h, a), "valid")
      yield* h.store.delete(a.session.key)
      assert.strictEqual(yield* outcome(h, a), "missing", "the next request asked the store")
    }))

  it.scoped("a read that started after the invalidation of its token is cached", () =>
    Effect.gen(function*() {
      const h = yield* harness()
      const a = yield* h.sessions.create(browser)
      yield* h.publish(Persistence.Invalidation.Token({ tokenKey: a.session.tokenKey }))
      yield* h.settle
      assert.strictEqual(yield* outcome(h, a), "valid")
      yield* h.store.delete(a.session.key)
      assert.strictEqual(yield* outcome(h, a), "valid", "answered from the cache")
    }))

  it.scoped("a channel that breaks is logged as a warning with its cause; the service goes on", () =>
    Effect.gen(function*() {
      const lines: Array<{ level: string; message: unknown; cause: string }> = []
      const logger = Logger.make(({ cause, logLevel, message }) => {
        // Effect's own debug lines (a forked fiber's end) are not the service's.
        if (LogLevel.greaterThanEqual(logLevel, LogLevel.Info)) {
          lines.push({ level: logLevel.label, message: Array.isArray(message) ? message[0] : message, cause: Cause.pretty(cause) })
        }
      })
      const h = yield* harness(Stream.dieMessage("connection lost")).pipe(
        Effect.provide(Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.All)))
      )
      for (let i = 0; i < 10 && lines.length === 0; i++) yield* Effect.yieldNow()
      expect(lines.map((l) => [l.level, l.message])).toStrictEqual([["WARN", "session invalidation stream ended"]])
      expect(lines[0]!.cause).toContain("connection lost")
      const a = yield* h.sessions.create(browser)
      assert.strictEqual(yield* outcome(h, a), "valid")
    }))
})

describe("the invalidation book (which reads from the store may be cached)", () => {
  it("a read is overtaken by an invalidation of its token, or of everything, that arrived after it started; not by one before it, nor of another token", () => {
    const book = makeInvalidationBook()
    const fresh = book.epoch()
    assert.isFalse(book.overtaken("a", fresh), "nothing arrived")
    book.noteToken("a")
    assert.isTrue(book.overtaken("a", fresh))
    assert.isFalse(book.overtaken("b", fresh), "another token")
    const afterA = book.epoch()
    assert.isFalse(book.overtaken("a", afterA), "started after the invalidation")
    book.noteToken("b")
    assert.isFalse(book.overtaken("a", afterA))
    assert.isTrue(book.overtaken("b", afterA))
    const afterB = book.epoch()
    book.noteAll()
    assert.isTrue(book.overtaken("a", afterB))
    assert.isTrue(book.overtaken("c", afterB), "everything")
    const afterAll = book.epoch()
    assert.isFalse(book.overtaken("a", afterAll))
    assert.isFalse(book.overtaken("c", afterAll))
    book.noteToken("c")
    assert.isTrue(book.overtaken("c", afterAll))
    assert.isFalse(book.overtaken("a", afterAll))
  })

  it("past 10,000 tokens tracked the book forgets them, and every read in flight counts as overtaken", () => {
    const book = makeInvalidationBook()
    const start = book.epoch()
    for (let i = 0; i < 10_000; i++) book.noteToken(`k${i}`)
    const full = book.epoch()
    assert.isFalse(book.overtaken("other", start), "10,000 tracked: nothing forgotten yet")
    assert.isTrue(book.overtaken("k0", start))
    book.noteToken("one-more")
    assert.isTrue(book.overtaken("other", full), "a read in flight when the book was cleared")
    assert.isTrue(book.overtaken("one-more", full))
    const after = book.epoch()
    assert.isFalse(book.overtaken("k0", after), "forgotten, and the read started after")
    assert.isFalse(book.overtaken("other", after))
    // Emptied: the next invalidation of one token is about that token only again.
    book.noteToken("x")
    assert.isFalse(book.overtaken("other", after))
    assert.isTrue(book.overtaken("x", after))
  })
})
