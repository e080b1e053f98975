/**
 * Session events (`SessionEvents`, `Sessions.subscribe`): every kind is published after its change
 * is stored, none carries a token or an internal key, a subscriber that never reads blocks
 * nothing, a failed or lost write publishes nothing, and over random operation sequences the
 * events are exactly what a model of the timing rules predicts, in order.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { assertSome } from "@effect/vitest/utils"
import { Chunk, Duration, Effect, Exit, FastCheck as fc, Fiber, Metric, Option, Queue, Redacted, Schema, Stream, TestClock } from "effect"
import { createHash } from "node:crypto"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import type * as SessionConfig from "../src/SessionConfig.js"
import * as SessionEvents from "../src/SessionEvents.js"
import * as Sessions from "../src/Sessions.js"
import * as Testing from "../src/testing.js"
import { serviceLayer as makeServiceLayer } from "./helpers/service.js"

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

const serviceLayer = (config: SessionConfig.SessionConfigInput = {}, store?: Persistence.PersistenceShape) =>
  makeServiceLayer(config, store === undefined ? { seed: "events" } : { seed: "events", store })

const tok = (h: Sessions.ActiveSession): string => Redacted.value(h.token)
const advance = (d: Duration.DurationInput) => TestClock.adjust(d)
const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 Firefox/128.0" })
const sameBrowserNextDoor = Session.client({ ip: "198.51.100.99", userAgent: "Mozilla/5.0 Firefox/128.0" })
const phone = Session.client({ ip: "203.0.113.40", userAgent: "Mozilla/5.0 (iPhone) Safari/604.1" })

/** The public ID of a session, computed here on purpose (a hash of the internal key). */
const pid = (h: Sessions.ActiveSession | Session.Session): string =>
  createHash("sha256").update(`public:${"session" in h ? h.session.key : h.key}`, "utf8").digest("base64url").slice(0, 16)

const someSession = (r: Sessions.Resolution): Sessions.ActiveSession => {
  assert.isTrue(Option.isSome(r.session), `expected a session, got outcome ${r.outcome}`)
  return Option.getOrThrow(r.session)
}

const drain = (q: Queue.Dequeue<SessionEvents.SessionEvent>) => Effect.map(Queue.takeAll(q), Chunk.toReadonlyArray)

/** An event without its time and client facts: what the assertions compare. */
const brief = (e: SessionEvents.SessionEvent): Record<string, unknown> => {
  const { at: _at, ip: _ip, tokenHash: _th, userAgentHash: _ua, ...rest } = e as unknown as Record<string, unknown>
  return Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, Option.isOption(v) ? Option.getOrUndefined(v) : v]))
}

const briefs = (events: ReadonlyArray<SessionEvents.SessionEvent>) => events.map(brief)

const droppedCount = Effect.map(
  Metric.value(Metric.counter("effect_sessions_events_dropped_total", { description: "session events a subscriber missed because its queue was full" })),
  (s) => s.count
)

// ---------------------------------------------------------------------------------------------
// every kind
// ---------------------------------------------------------------------------------------------

describe("Sessions events", () => {
  it.scoped("feature: session events — every kind is published after its change, with public IDs (created, logged in with newDevice, rotated, followed, late use, anomaly, logged out, destroyed, ended by another session, expired)", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const q = yield* sessions.subscribe()

      const a = yield* sessions.create(browser)
      const [created] = yield* drain(q)
      expect(created).toBeInstanceOf(SessionEvents.Created)
      expect(brief(created!)).toStrictEqual({ _tag: "Created", sessionId: pid(a) })
      assertSome((created as SessionEvents.Created).ip, "198.51.100.7")
      assert.strictEqual(yield* Effect.map(sessions.listSessions("alice"), (l) => l.length), 0)

      // A valid resolution is no event.
      yield* sessions.resolve(tok(a), browser)
      expect(yield* drain(q)).toStrictEqual([])

      // First log-in of alice: a new device. Same browser, same /24: known. A phone: new.
      const a1 = yield* sessions.logIn(a, "alice")
      const b = yield* sessions.create(sameBrowserNextDoor)
      const b1 = yield* sessions.logIn(b, "alice")
      const c = yield* sessions.create(phone)
      const c1 = yield* sessions.logIn(c, "alice")
      expect(briefs(yield* drain(q))).toStrictEqual([
        { _tag: "LoggedIn", sessionId: pid(a), userId: "alice", newDevice: true, exclusive: false },
        { _tag: "Created", sessionId: pid(b) },
        { _tag: "LoggedIn", sessionId: pid(b), userId: "alice", newDevice: false, exclusive: false },
        { _tag: "Created", sessionId: pid(c) },
        { _tag: "LoggedIn", sessionId: pid(c), userId: "alice", newDevice: true, exclusive: false }
      ])

      // Rotation by interval, then the old token inside its grace period.
      yield* advance("15 minutes")
      const a2 = someSession(yield* sessions.resolve(tok(a1), browser))
      const followed = yield* sessions.resolve(tok(a1), browser)
      assert.strictEqual(followed.outcome, "followed")
      const a3 = yield* sessions.regenerateId(a2, { grace: false })
      expect(briefs(yield* drain(q))).toStrictEqual([
        { _tag: "Rotated", sessionId: pid(a), userId: "alice", cause: "interval", grace: true },
        { _tag: "FollowedAfterRotation", sessionId: pid(a), userId: "alice", hops: 1 },
        { _tag: "Rotated", sessionId: pid(a), userId: "alice", cause: "regenerateId", grace: false }
      ])

      // The first token, two minutes after its grace period ended (the store still keeps it).
      yield* advance("2 minutes")
      assert.strictEqual((yield* sessions.resolve(tok(a1), phone)).outcome, "expired")
      const [late] = yield* drain(q)
      expect(brief(late!)).toStrictEqual({ _tag: "LateUseOfRotatedToken", sessionId: pid(a), lateByMillis: 60_000 })
      assertSome((late as SessionEvents.LateUseOfRotatedToken).ip, "203.0.113.40")

      // A changed user agent destroys the session.
      assert.strictEqual((yield* sessions.resolve(tok(a3), phone)).outcome, "anomaly")
      // Log out, then destroy.
      const b2 = yield* sessions.logOut(b1)
      yield* sessions.destroy(b2)
      expect(briefs(yield* drain(q))).toStrictEqual([
        { _tag: "Anomaly", sessionId: pid(a), userId: "alice", kind: "userAgent" },
        { _tag: "LoggedOut", sessionId: pid(b), userId: "alice" },
        { _tag: "Destroyed", sessionId: pid(b), userId: undefined }
      ])

      // An exclusive log-in ends the phone's session; alice's browser sessions are all gone, so
      // the browser is a new device again (the memory is the user's live sessions).
      const d = yield* sessions.create(browser)
      const d1 = yield* sessions.logIn(d, "alice", { exclusive: true })
      const e = yield* sessions.logIn(yield* sessions.create(browser), "alice")
      yield* sessions.endSession("alice", pid(e))
      yield* sessions.logOutEverywhere("alice")
      expect(briefs(yield* drain(q))).toStrictEqual([
        { _tag: "Created", sessionId: pid(d) },
        { _tag: "EndedByOtherSession", sessionId: pid(c1), userId: "alice", by: "exclusiveLogIn", initiator: pid(d) },
        { _tag: "LoggedIn", sessionId: pid(d), userId: "alice", newDevice: true, exclusive: true },
        { _tag: "Created", sessionId: pid(e) },
        { _tag: "LoggedIn", sessionId: pid(e), userId: "alice", newDevice: false, exclusive: false },
        { _tag: "EndedByOtherSession", sessionId: pid(e), userId: "alice", by: "endSession", initiator: undefined },
        { _tag: "EndedByOtherSession", sessionId: pid(d1), userId: "alice", by: "logOutEverywhere", initiator: undefined }
      ])

      // Idle expiry, found by a request.
      const f = yield* sessions.create(browser)
      yield* drain(q)
      yield* advance("30 minutes")
      assert.strictEqual((yield* sessions.resolve(tok(f), browser)).outcome, "expired")
      expect(briefs(yield* drain(q))).toStrictEqual([{ _tag: "Expired", sessionId: pid(f), userId: undefined, reason: "idle" }])
    }).pipe(Effect.provide(serviceLayer())))

  it.scoped("feature: session events — Expired says absolute when the session reached its absolute timeout, and a write through a handle finds it too", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const q = yield* sessions.subscribe()
      const h = yield* sessions.logIn(yield* sessions.create(browser), "bob")
      let current = h
      for (let i = 0; i < 2; i++) {
        yield* advance("25 minutes")
        current = someSession(yield* sessions.resolve(tok(current), browser))
      }
      yield* advance("11 minutes")
      assert.strictEqual((yield* sessions.resolve(tok(current), browser)).outcome, "expired")
      const events = yield* drain(q)
      expect(brief(events.at(-1)!)).toStrictEqual({ _tag: "Expired", sessionId: pid(h), userId: "bob", reason: "absolute" })

      const w = yield* sessions.create(browser)
      yield* advance("31 minutes")
      yield* drain(q)
      const gone = yield* Effect.flip(sessions.set(w, "k", 1))
      assert.strictEqual(gone._tag, "SessionGoneError")
      expect(briefs(yield* drain(q))).toStrictEqual([{ _tag: "Expired", sessionId: pid(w), userId: undefined, reason: "idle" }])
    }).pipe(Effect.provide(serviceLayer({ absoluteTimeout: "1 hour" }))))

  it.scoped("feature: session events — the stream form, and events encode and decode through the Schema union", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(browser)
      // `events` subscribes when it starts: start it in the background (it suspends on its queue), then act.
      const taken = yield* Effect.fork(Stream.runHead(sessions.events))
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
      yield* sessions.logIn(h, "alice")
      const event = Option.getOrThrow(yield* Fiber.join(taken))
      const encoded = Schema.encodeSync(SessionEvents.SessionEvent)(event)
      const json = JSON.parse(JSON.stringify(encoded)) as unknown
      const decoded = Schema.decodeUnknownSync(SessionEvents.SessionEvent)(json)
      expect(decoded).toStrictEqual(event)
      assert.isTrue(SessionEvents.isSessionEvent(decoded))
      assert.isFalse(SessionEvents.isSessionEvent({ _tag: "LoggedIn" }))
    }).pipe(Effect.provide(serviceLayer())))

  // -------------------------------------------------------------------------------------------
  // no secrets
  // -------------------------------------------------------------------------------------------

  it.effect.prop(
    "security: no event carries a token or an internal key (serialized as JSON and through the Schema)",
    [fc.array(fc.constantFrom("create", "logIn", "rotate", "follow", "regenerate", "late", "anomaly", "logOut", "destroy", "end", "expire"), { minLength: 1, maxLength: 12 })],
    ([ops]) =>
      Effect.scoped(Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const q = yield* sessions.subscribe()
        const secrets = new Set<string>()
        const note = (h: Sessions.ActiveSession) => {
          secrets.add(tok(h))
          secrets.add(h.session.key)
          secrets.add(h.session.tokenKey)
          return h
        }
        let h = note(yield* sessions.create(browser))
        let old = h
        for (const op of ops) {
          const step: Effect.Effect<unknown, unknown> = Effect.gen(function*() {
            switch (op) {
              case "create":
                old = h
                h = note(yield* sessions.create(browser))
                return
              case "logIn":
                old = h
                h = note(yield* sessions.logIn(h, "alice", { exclusive: ops.length % 2 === 0 }))
                return
              case "rotate": {
                yield* advance("15 minutes")
                const r = yield* sessions.resolve(tok(h), browser)
                if (Option.isSome(r.session)) [old, h] = [h, note(r.session.value)]
                return
              }
              case "follow":
                yield* sessions.resolve(tok(old), browser)
                return
              case "regenerate":
                old = h
                h = note(yield* sessions.regenerateId(h))
                return
              case "late":
                yield* advance("2 minutes")
                yield* sessions.resolve(tok(old), browser)
                return
              case "anomaly":
                yield* sessions.resolve(tok(h), phone)
                return
              case "logOut":
                old = h
                h = note(yield* sessions.logOut(h))
                return
              case "destroy":
                return yield* sessions.destroy(h)
              case "end":
                return yield* sessions.logOutEverywhere("alice")
              case "expire":
                yield* advance("31 minutes")
                yield* sessions.resolve(tok(h), browser)
                return
            }
          })
          // A dead handle fails (SessionGoneError): that is part of the sequence.
          yield* Effect.exit(step)
        }
        const events = yield* drain(q)
        assert.isAbove(events.length, 0)
        const text = JSON.stringify(events) + JSON.stringify(events.map((e) => Schema.encodeSync(SessionEvents.SessionEvent)(e)))
        for (const secret of secrets) assert.notInclude(text, secret)
      })).pipe(Effect.provide(serviceLayer())),
    { fastCheck: { numRuns: 30 } }
  )

  // -------------------------------------------------------------------------------------------
  // delivery
  // -------------------------------------------------------------------------------------------

  it.scoped("feature: session events — a subscriber that never reads blocks no request: its queue stays bounded, the events it misses are counted, other subscribers get every event", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const stuck = yield* sessions.subscribe({ capacity: 8 })
      const reader = yield* sessions.subscribe({ capacity: 10_000 })
      const before = yield* droppedCount
      // 500 log-ins: 1,000 events, each request completing while `stuck` is full.
      for (let i = 0; i < 500; i++) yield* sessions.logIn(yield* sessions.create(browser), `user-${i}`)
      assert.strictEqual(yield* Queue.size(stuck), 8)
      assert.strictEqual((yield* droppedCount) - before, 1000 - 8)
      assert.strictEqual((yield* drain(reader)).length, 1000)
      // The first events were kept; reading makes room again.
      expect((yield* drain(stuck)).map((e) => e._tag)).toStrictEqual(["Created", "LoggedIn", "Created", "LoggedIn", "Created", "LoggedIn", "Created", "LoggedIn"])
      yield* sessions.create(browser)
      assert.strictEqual(yield* Queue.size(stuck), 1)
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("feature: session events — a subscription ends with its scope (its queue is shut down and gets no more events)", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const q = yield* Effect.scoped(sessions.subscribe())
      yield* sessions.create(browser)
      assert.isTrue(yield* Queue.isShutdown(q))
    }).pipe(Effect.provide(serviceLayer())))

  // -------------------------------------------------------------------------------------------
  // failed and lost writes
  // -------------------------------------------------------------------------------------------

  it.scoped("feature: session events — a write that failed or lost its compare-and-set publishes nothing", () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      const failing = new Set<string>()
      const losing = { rotate: 0 }
      const store = Testing.intercept(memory, (method, call) => {
        if (failing.has(method)) return Effect.fail(new Persistence.SessionStoreError({ method, reason: "Unavailable", cause: "down" }))
        if (method === "rotate" && losing.rotate > 0) {
          losing.rotate--
          return Effect.succeed(false as never)
        }
        return call
      })
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const q = yield* sessions.subscribe()
        const h = yield* sessions.create(browser)
        const h1 = yield* sessions.logIn(h, "alice")
        yield* drain(q)

        failing.add("create")
        assert.isTrue(Exit.isFailure(yield* Effect.exit(sessions.create(browser))))
        failing.clear()

        // Three rotations lose to "another writer" (the store says the version moved on): the
        // attempt that wins publishes once.
        losing.rotate = 3
        const h2 = yield* sessions.regenerateId(h1)
        assert.strictEqual(losing.rotate, 0)
        expect(briefs(yield* drain(q))).toStrictEqual([
          { _tag: "Rotated", sessionId: pid(h), userId: "alice", cause: "regenerateId", grace: true }
        ])

        failing.add("rotate")
        assert.isTrue(Exit.isFailure(yield* Effect.exit(sessions.logIn(h2, "bob"))))
        assert.isTrue(Exit.isFailure(yield* Effect.exit(sessions.logOut(h2))))
        assert.isTrue(Exit.isFailure(yield* Effect.exit(sessions.regenerateId(h2))))
        assert.isTrue(Exit.isFailure(yield* Effect.exit(sessions.destroy(h2))))
        failing.clear()

        // Deletions that fail: an expired session, logging out everywhere.
        failing.add("delete")
        assert.isTrue(Exit.isFailure(yield* Effect.exit(sessions.logOutEverywhere("alice"))))
        yield* advance("31 minutes")
        assert.isTrue(Exit.isFailure(yield* Effect.exit(sessions.resolve(tok(h2), browser))))
        failing.clear()

        expect(yield* drain(q)).toStrictEqual([])
        // Once the store answers again, the same operation publishes.
        assert.strictEqual((yield* sessions.resolve(tok(h2), browser)).outcome, "expired")
        expect((yield* drain(q)).map((e) => e._tag)).toStrictEqual(["Expired"])
      }).pipe(Effect.provide(serviceLayer({}, store)))
    }))
})
