/**
 * Admin controls (OWASP ASVS 7.4.5, issue 15 item 9): ending every session of one user
 * (`logOutEverywhere`), of every user (`logOutEveryone`, a revocation instant the store keeps and
 * every process compares against, with no scan of the sessions), and listing a user's sessions with
 * the facts the store keeps. The store side runs on every store in the conformance suites
 * (`conformance/persistence.ts` and `conformance/sessions.ts`, "feature: logOutEveryone …").
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { assertNone, assertSome, deepStrictEqual } from "@effect/vitest/utils"
import { Context, Effect, FastCheck as fc, Layer, Logger, Metric, Option, PubSub, Redacted, Stream, TestClock } from "effect"
import { publicId } from "../src/internal/hash.js"
import { metrics } from "../src/internal/sessions/metrics.js"
import { RELOAD_MILLIS } from "../src/internal/sessions/revocation.js"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import * as Sessions from "../src/Sessions.js"
import * as Testing from "../src/testing.js"
import { serviceLayer } from "./helpers/service.js"

const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 Firefox/128.0" })
const phone = Session.client({ ip: "203.0.113.40", userAgent: "Mozilla/5.0 (iPhone) Safari/604.1" })
const tok = (h: Sessions.ActiveSession): string => Redacted.value(h.token)

type Op =
  | { readonly _tag: "create" }
  | { readonly _tag: "logIn"; readonly i: number }
  | { readonly _tag: "set"; readonly i: number }
  | { readonly _tag: "resolve"; readonly i: number }
  | { readonly _tag: "advance"; readonly millis: number }
  | { readonly _tag: "logOutEveryone" }

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ _tag: "create" as const }) },
  { weight: 2, arbitrary: fc.nat(7).map((i) => ({ _tag: "logIn" as const, i })) },
  { weight: 2, arbitrary: fc.nat(7).map((i) => ({ _tag: "set" as const, i })) },
  { weight: 3, arbitrary: fc.nat(7).map((i) => ({ _tag: "resolve" as const, i })) },
  // Zero keeps operations in the switch's own millisecond: the boundary of the rule.
  { weight: 3, arbitrary: fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: 0, max: 5_000 })).map((millis) => ({ _tag: "advance" as const, millis })) },
  { weight: 1, arbitrary: fc.constant({ _tag: "logOutEveryone" as const }) }
)

/** What the model knows of a session: its birth, its last log-in, and whether it is known dead. */
interface Model {
  handle: Sessions.ActiveSession
  readonly createdAt: number
  authenticatedAt: number | undefined
  dead: boolean
}

describe("feature: admin controls (ASVS 7.4.5)", () => {
  for (const cache of [false, true] as const) {
    it.effect.prop(
      `feature: logOutEveryone — over random creations, log-ins, writes, resolutions, clock moves and switches, a session answers iff its birth or last log-in is after the latest switch; what a switch ended stays ended (cache ${cache ? "on" : "off"})`,
      [fc.array(arbOp, { minLength: 1, maxLength: 30 })],
      ([ops]) =>
        Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const models: Array<Model> = []
          let until = Number.NEGATIVE_INFINITY
          const now = () => TestClock.currentTimeMillis
          const revoked = (m: Model) => Math.max(m.createdAt, m.authenticatedAt ?? m.createdAt) <= until
          for (const op of ops) {
            const m = "i" in op ? models[op.i % Math.max(1, models.length)] : undefined
            switch (op._tag) {
              case "create": {
                const handle = yield* sessions.create(browser)
                models.push({ handle, createdAt: yield* now(), authenticatedAt: undefined, dead: false })
                break
              }
              case "advance":
                yield* TestClock.adjust(op.millis)
                break
              case "logOutEveryone": {
                const at = yield* sessions.logOutEveryone()
                assert.strictEqual(at, Math.max(yield* now(), until))
                until = at
                break
              }
              case "logIn":
              case "set": {
                if (m === undefined) break
                const expectGone = m.dead || revoked(m)
                const r = op._tag === "logIn"
                  ? yield* Effect.either(sessions.logIn(m.handle, "ada"))
                  : yield* Effect.either(Effect.as(sessions.set(m.handle, "k", op.i), m.handle))
                assert.strictEqual(r._tag === "Left", expectGone, `${op._tag} on a session born at ${m.createdAt}, switch at ${until}`)
                if (r._tag === "Left") {
                  assert.strictEqual(r.left._tag, "SessionGoneError")
                  m.dead = true
                } else if (op._tag === "logIn") {
                  m.handle = r.right
                  m.authenticatedAt = yield* now()
                }
                break
              }
              case "resolve": {
                if (m === undefined) break
                const r = yield* sessions.resolve(tok(m.handle), browser)
                const expectNone = m.dead || revoked(m)
                assert.strictEqual(Option.isNone(r.session), expectNone, `resolve of a session born at ${m.createdAt}, switch at ${until}: ${r.outcome}`)
                if (expectNone) {
                  assert.include(["expired", "missing"], r.outcome)
                  m.dead = true
                }
                break
              }
            }
          }
          // Every session the switches ended is gone from the store once met; the others live.
          for (const m of models) {
            const r = yield* sessions.resolve(tok(m.handle), browser)
            assert.strictEqual(Option.isSome(r.session), !m.dead && !revoked(m))
          }
        }).pipe(Effect.provide(serviceLayer({ cache }, { seed: "admin" }))),
      { fastCheck: { numRuns: 60 } }
    )
  }

  it.effect("feature: logOutEveryone — the switch is one store write (no scan, no session touched); sessions it ended do not count against maxSessionsPerUser", () =>
    Effect.gen(function*() {
      const counted = Testing.counted(yield* Persistence.makeMemory)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const held = yield* Effect.forEach([1, 2], () => Effect.flatMap(sessions.create(browser), (h) => sessions.logIn(h, "ada")))
        const before = counted.calls()
        yield* TestClock.adjust(1)
        yield* sessions.logOutEveryone()
        const after = counted.calls()
        const delta = Object.fromEntries(Object.entries(after).map(([k, n]) => [k, n - (before[k] ?? 0)]).filter(([, n]) => n !== 0))
        expect(delta).toStrictEqual({ revokeUntil: 1 })
        // The two old sessions still sit in the store until met; a new log-in is not refused for them.
        yield* TestClock.adjust(1)
        const fresh = yield* sessions.logIn(yield* sessions.create(phone), "ada")
        assertSome(fresh.session.userId, "ada")
        const second = yield* sessions.logIn(yield* sessions.create(phone), "ada")
        assertSome(second.session.userId, "ada")
        for (const h of held) assertNone((yield* sessions.resolve(tok(h), browser)).session)
        const refused = yield* Effect.flip(sessions.logIn(yield* sessions.create(phone), "ada"))
        assert.instanceOf(refused, Sessions.SessionLimitError)
      }).pipe(Effect.provide(serviceLayer({ maxSessionsPerUser: 2, onSessionLimit: "refuse" }, { store: counted.store })))
    }))

  it.effect("logOutEveryone — 50 requests that reach the store together on a fresh service read the instant once; again once a minute later", () =>
    Effect.gen(function*() {
      const counted = Testing.counted(yield* Persistence.makeMemory)
      // A read that takes a while (the memory store answers at once), so that the requests overlap.
      const slow: Persistence.PersistenceShape = {
        ...counted.store,
        revokedUntil: Effect.zipRight(Effect.repeatN(Effect.yieldNow(), 20), counted.store.revokedUntil)
      }
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const tokens = yield* Effect.forEach(Array.from({ length: 50 }), () => Effect.map(sessions.create(browser), tok))
        yield* sessions.clearCache
        const all = Effect.forEach(tokens, (t) => sessions.resolve(t, browser), { concurrency: "unbounded" })
        for (const r of yield* all) assert.strictEqual(r.outcome, "valid")
        assert.strictEqual(counted.calls().revokedUntil, 1)
        yield* TestClock.adjust(RELOAD_MILLIS)
        yield* sessions.clearCache
        for (const r of yield* all) assert.strictEqual(r.outcome, "valid")
        assert.strictEqual(counted.calls().revokedUntil, 2)
      }).pipe(Effect.provide(serviceLayer({}, { store: slow })))
    }))

  it.scoped("feature: logOutEveryone — a second process over the store ends the sessions as soon as its invalidation (All) arrives; were it lost, its next request after RELOAD_MILLIS reads the instant again", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      // Process b hears what the test publishes: the channel a shared store would give it.
      const channel = yield* PubSub.unbounded<Persistence.Invalidation>()
      const build = (s: Persistence.PersistenceShape, seed: string) =>
        Effect.map(Layer.build(serviceLayer({}, { store: s, seed })), Context.get(Sessions.Sessions))
      const a = yield* build(store, "a")
      const b = yield* build({ ...store, invalidations: Stream.fromPubSub(channel) }, "b")
      const heard = yield* b.logIn(yield* b.create(browser), "ada")
      const lost = yield* b.create(browser)
      assert.strictEqual((yield* b.resolve(tok(heard), browser)).outcome, "valid")
      yield* TestClock.adjust(1)
      yield* a.logOutEveryone()
      // b has not heard yet: its cached sessions still answer (the lag the docs state).
      assert.strictEqual((yield* b.resolve(tok(heard), browser)).outcome, "valid")
      yield* PubSub.publish(channel, Persistence.Invalidation.All())
      let outcome = "valid"
      for (let i = 0; i < 100 && outcome === "valid"; i++) {
        yield* Effect.yieldNow()
        outcome = (yield* b.resolve(tok(heard), browser)).outcome
      }
      assert.strictEqual(outcome, "expired", "ended once the invalidation arrived, with no clock move")

      // A lost message: a later switch that b never hears of.
      yield* TestClock.adjust(1)
      const c = yield* b.create(browser)
      yield* TestClock.adjust(1)
      yield* a.logOutEveryone()
      assert.strictEqual((yield* b.resolve(tok(c), browser)).outcome, "valid")
      // b read the instant when the invalidation arrived, 2 ms ago.
      yield* TestClock.adjust(RELOAD_MILLIS - 3)
      assert.strictEqual((yield* b.resolve(tok(c), browser)).outcome, "valid", "within the minute, b still trusts what it read")
      yield* TestClock.adjust(1)
      assert.strictEqual((yield* b.resolve(tok(c), browser)).outcome, "expired", "a minute after its last read, b reads the instant again")
      assertNone((yield* b.resolve(tok(lost), browser)).session)
    }))

  it.effect("feature: logOutEverywhere — an administrator ends every session of one user, anywhere (returns how many); other users keep theirs", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const ada = yield* Effect.forEach([browser, phone, phone], (c) => Effect.flatMap(sessions.create(c), (h) => sessions.logIn(h, "ada")))
      const bob = yield* sessions.logIn(yield* sessions.create(browser), "bob")
      assert.strictEqual(yield* sessions.logOutEverywhere("ada"), 3)
      for (const h of ada) assertNone((yield* sessions.resolve(tok(h), browser)).session)
      deepStrictEqual(yield* sessions.listSessions("ada"), [])
      assert.strictEqual((yield* sessions.resolve(tok(bob), browser)).outcome, "valid")
      assert.strictEqual(yield* sessions.logOutEverywhere("ada"), 0)
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("feature: listSessions — an administrator lists a user's live sessions with the facts the store keeps: public id (never a token), born, last access, token issued, last log-in, IP and user-agent hash", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const start = yield* TestClock.currentTimeMillis
      const a = yield* sessions.create(browser)
      yield* TestClock.adjust("1 minute")
      const a1 = yield* sessions.logIn(a, "ada")
      yield* TestClock.adjust("2 minutes")
      const b1 = yield* sessions.logIn(yield* sessions.create(phone), "ada")
      yield* TestClock.adjust("20 minutes")
      yield* sessions.resolve(tok(b1), phone) // an access, recorded (touchInterval passed), and a rotation
      const list = yield* sessions.listSessions("ada")
      const byId = new Map(list.map((i) => [i.id, i]))
      const first = byId.get(publicId(a1.session.key))!
      const second = byId.get(publicId(b1.session.key))!
      expect({ ...first, ip: Option.getOrNull(first.ip), userAgentHash: Option.getOrNull(first.userAgentHash), authenticatedAt: Option.getOrNull(first.authenticatedAt) }).toStrictEqual({
        id: publicId(a.session.key),
        createdAt: start,
        lastAccessAt: start + 60_000,
        idIssuedAt: start + 60_000,
        authenticatedAt: start + 60_000,
        ip: "198.51.100.7",
        userAgentHash: Option.getOrNull(a.session.userAgentHash)
      })
      assert.strictEqual(second.createdAt, start + 3 * 60_000)
      assert.strictEqual(second.lastAccessAt, start + 23 * 60_000)
      assert.strictEqual(second.idIssuedAt, start + 23 * 60_000, "rotated by the access (idRotationInterval: 15 minutes)")
      assertSome(second.authenticatedAt, start + 3 * 60_000)
      assertSome(second.ip, "203.0.113.40")
      assert.notStrictEqual(Option.getOrNull(second.userAgentHash), Option.getOrNull(first.userAgentHash))
      // Ids are public: no token, no internal key.
      for (const info of list) {
        for (const secret of [tok(a1), tok(b1), a.session.key, b1.session.key]) assert.notInclude(JSON.stringify(info), secret)
      }
    }).pipe(Effect.provide(serviceLayer())))

  const revokedCount = Effect.map(Metric.value(Metric.tagged(metrics.expired, "reason", "revoked")), (c) => c.count)
  const buildIn = (store: Persistence.PersistenceShape, seed: string) =>
    Effect.map(Layer.build(serviceLayer({}, { store, seed })), Context.get(Sessions.Sessions))

  it.scoped("feature: logOutEveryone — a process that starts after the switch reads the instant before its first decision: the older sessions it meets are ended at once (counted as expired, reason revoked), a younger one lives on", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      const a = yield* buildIn(store, "a")
      const old = yield* a.logIn(yield* a.create(browser), "ada")
      const anonymous = yield* a.create(phone)
      yield* TestClock.adjust(1)
      yield* a.logOutEveryone()
      yield* TestClock.adjust(1)
      const young = yield* a.create(browser)
      // b starts now: it has never read the instant, and its cache is empty.
      const b = yield* buildIn(store, "b")
      const before = yield* revokedCount
      const r = yield* b.resolve(tok(old), browser)
      deepStrictEqual([Option.isNone(r.session), r.cookie, r.outcome], [true, "clear", "expired"])
      assert.strictEqual((yield* Effect.flip(b.set(anonymous, "k", 1)))._tag, "SessionGoneError")
      assert.strictEqual((yield* revokedCount) - before, 2)
      assertNone(yield* store.loadSession(anonymous.session.key))
      assert.strictEqual((yield* b.resolve(tok(young), browser)).outcome, "valid")
    }))

  it.scoped("logOutEveryone — a switch announced (All) while a process is reading the instant: the older answer is used but not trusted; when reading it again then fails (logged), the next request reads it before answering, even from the cache", () =>
    Effect.gen(function*() {
      const shared = yield* Persistence.makeMemory
      const channel = yield* PubSub.unbounded<Persistence.Invalidation>()
      const logs: Array<string> = []
      const logger = Logger.make(({ message }) => {
        logs.push(String(Array.isArray(message) ? message[0] : message))
      })
      let down = false
      let meanwhile: Effect.Effect<void, unknown> | undefined
      // b's store: the shared one, its channel the test's, and a read of the instant that can run a
      // change of the test's between reading and answering, or fail while `down`.
      const storeB: Persistence.PersistenceShape = {
        ...shared,
        invalidations: Stream.fromPubSub(channel),
        revokedUntil: Effect.suspend(() => {
          if (down) return Effect.fail(new Persistence.SessionStoreError({ method: "revokedUntil", reason: "Unavailable", cause: new Error("ECONNRESET") }))
          const m = meanwhile
          meanwhile = undefined
          return m === undefined ? shared.revokedUntil : Effect.tap(shared.revokedUntil, () => Effect.orDie(m))
        })
      }
      const a = yield* buildIn(shared, "a")
      const b = yield* buildIn(storeB, "b").pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      // b's listener starts on its own fiber: let it subscribe before anything is published.
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      const h = yield* b.create(browser)
      yield* b.clearCache
      yield* TestClock.adjust(1)
      meanwhile = Effect.gen(function*() {
        // b has read "no switch yet"; now a switches, b hears of it, and cannot read the instant again.
        yield* a.logOutEveryone()
        down = true
        yield* PubSub.publish(channel, Persistence.Invalidation.All())
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      })
      // This request's read began before the switch: it may still be served.
      assert.strictEqual((yield* b.resolve(tok(h), browser)).outcome, "valid")
      assert.isUndefined(meanwhile, "the read ran the switch")
      expect(logs).toContain("could not read the revocation instant; the next request reads it")
      down = false
      // The next one reads the instant first, though the session sits in b's cache.
      const r = yield* b.resolve(tok(h), browser)
      deepStrictEqual([Option.isNone(r.session), r.outcome], [true, "expired"])
    }))
})
