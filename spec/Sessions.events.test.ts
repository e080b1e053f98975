/**
 * Session events (`SessionEvents`, `Sessions.subscribe`): every kind is published after its change
 * is stored, none carries a token or an internal key, a subscriber that never reads blocks
 * nothing, a failed or lost write publishes nothing, and over random operation sequences the
 * events are exactly what a model of the timing rules predicts, in order.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { assertSome } from "@effect/vitest/utils"
import { Chunk, Context, Duration, Effect, Exit, FastCheck as fc, Fiber, Layer, Metric, Option, Queue, Redacted, Schema, Stream, TestClock } from "effect"
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
  it.scoped("feature: session events — logOutOthers ends the user's other sessions as \"logOutOthers\", naming the session it was called from (not as an exclusive log-in)", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const q = yield* sessions.subscribe()
      const g = yield* sessions.logIn(yield* sessions.create(browser), "bob")
      const h = yield* sessions.logIn(yield* sessions.create(phone), "bob")
      yield* drain(q)
      assert.strictEqual(yield* sessions.logOutOthers(h), 1)
      expect(briefs(yield* drain(q))).toStrictEqual([
        { _tag: "EndedByOtherSession", sessionId: pid(g), userId: "bob", by: "logOutOthers", initiator: pid(h) }
      ])
    }).pipe(Effect.provide(serviceLayer())))

  it.scoped("feature: session events — every kind is published after its change, with public IDs (created, logged in with newDevice, rotated — by interval, on request, by a re-authentication —, followed, late use, anomaly, logged out, destroyed, ended by another session, expired, revoked by logOutEveryone)", () =>
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
      const a2b = yield* sessions.regenerateId(a2, { grace: false })
      const a3 = yield* sessions.reauthenticated(a2b)
      expect(briefs(yield* drain(q))).toStrictEqual([
        { _tag: "Rotated", sessionId: pid(a), userId: "alice", cause: "interval", grace: true },
        { _tag: "FollowedAfterRotation", sessionId: pid(a), userId: "alice", hops: 1 },
        { _tag: "Rotated", sessionId: pid(a), userId: "alice", cause: "regenerateId", grace: false },
        { _tag: "Rotated", sessionId: pid(a), userId: "alice", cause: "reauthenticated", grace: false }
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

      // Logged out by logOutEveryone: found by a request, and by a listing of the user's sessions.
      const g = yield* sessions.logIn(yield* sessions.create(browser), "carol")
      const k = yield* sessions.create(browser)
      yield* drain(q)
      const until = yield* sessions.logOutEveryone()
      assert.strictEqual((yield* sessions.resolve(tok(k), browser)).outcome, "expired")
      assert.strictEqual((yield* sessions.listSessions("carol")).length, 0)
      expect(briefs(yield* drain(q))).toStrictEqual([
        { _tag: "Revoked", sessionId: pid(k), userId: undefined, revokedUntil: until },
        { _tag: "Revoked", sessionId: pid(g), userId: "carol", revokedUntil: until }
      ])
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

  for (const cache of [false, true] as const) {
    it.scoped(`invariant 7: cache transparency — a session the store has already forgotten (past its deadline and the retention) is gone without an Expired event, through a handle and through its token (cache ${cache ? "on" : "off"})`, () =>
      Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const q = yield* sessions.subscribe()
        const h = yield* sessions.create(browser)
        const r = yield* sessions.create(browser)
        // The idle timeout (30 minutes) and the retention (10) have both passed.
        yield* advance("41 minutes")
        yield* drain(q)
        const gone = yield* Effect.flip(sessions.set(h, "k", 1))
        assert.strictEqual(gone._tag, "SessionGoneError")
        const get = yield* Effect.flip(sessions.get(h, "k"))
        assert.strictEqual(get._tag, "SessionGoneError")
        assert.strictEqual((yield* sessions.resolve(tok(r), browser)).outcome, "missing")
        expect(briefs(yield* drain(q))).toStrictEqual([])
      }).pipe(Effect.provide(serviceLayer({ idleTimeout: "30 minutes", cache }))))
  }

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

  it.scoped("feature: session events — events are per process: two services sharing one store each publish what their own requests did", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      // Two services alive for the test's scope, as two processes would be.
      const process = (seed: string) => Effect.map(Layer.build(makeServiceLayer({}, { seed, store })), (c) => Context.get(c, Sessions.Sessions))
      const a = yield* process("process-a")
      const b = yield* process("process-b")
      const qa = yield* a.subscribe()
      const qb = yield* b.subscribe()
      const h = yield* a.logIn(yield* a.create(browser), "alice")
      expect((yield* drain(qa)).map((e) => e._tag)).toStrictEqual(["Created", "LoggedIn"])
      expect(yield* drain(qb)).toStrictEqual([])
      // The other process serves the next request: its subscriber sees the rotation it made.
      yield* advance("15 minutes")
      assert.strictEqual((yield* b.resolve(tok(h), browser)).outcome, "rotated")
      expect(yield* drain(qa)).toStrictEqual([])
      expect(briefs(yield* drain(qb))).toStrictEqual([{ _tag: "Rotated", sessionId: pid(h), userId: "alice", cause: "interval", grace: true }])
    }))

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

  // -------------------------------------------------------------------------------------------
  // the model
  // -------------------------------------------------------------------------------------------

  const IDLE = 10 * 60_000
  const ABSOLUTE = 30 * 60_000
  const ROTATION = 5 * 60_000
  const GRACE = 60_000
  const RETENTION = Duration.toMillis(Persistence.DEFAULT_RETENTION)
  const modelConfig: SessionConfig.SessionConfigInput = {
    idleTimeout: IDLE,
    absoluteTimeout: ABSOLUTE,
    idRotationInterval: ROTATION,
    gracePeriod: GRACE,
    touchInterval: 1
  }
  const clients = { browser, phone } as const
  type ClientName = keyof typeof clients

  /** A session as the model knows it. */
  interface Model {
    readonly pid: string
    readonly client: ClientName
    userId: string | undefined
    createdAt: number
    last: number
    issued: number
    alive: boolean
    /** Every token it had, the current one last; `redirects[i]` is what `tokens[i]` became. */
    readonly tokens: Array<string>
    readonly redirects: Array<{ readonly expiresAt: number }>
    handle: Sessions.ActiveSession
  }

  type Op =
    | { readonly _tag: "Create"; readonly client: ClientName }
    | { readonly _tag: "Advance"; readonly millis: number }
    | { readonly _tag: "Resolve"; readonly slot: number; readonly back: number; readonly client: ClientName | "own" }
    | { readonly _tag: "Set"; readonly slot: number }
    | { readonly _tag: "LogIn"; readonly slot: number; readonly user: string; readonly exclusive: boolean }
    | { readonly _tag: "LogOut"; readonly slot: number }
    | { readonly _tag: "Regenerate"; readonly slot: number; readonly grace: boolean }
    | { readonly _tag: "Destroy"; readonly slot: number }
    | { readonly _tag: "LogOutEverywhere"; readonly user: string }
    | { readonly _tag: "EndSession"; readonly slot: number; readonly user: string }

  const arbClient = fc.constantFrom<ClientName>("browser", "browser", "phone")
  const arbUser = fc.constantFrom("alice", "bob")
  const arbSlot = fc.nat(5)
  const arbOp: fc.Arbitrary<Op> = fc.oneof(
    arbClient.map((client) => ({ _tag: "Create", client }) as const),
    fc.constantFrom(1000, 30_000, 2 * 60_000, 6 * 60_000, 11 * 60_000).map((millis) => ({ _tag: "Advance", millis }) as const),
    fc.record({ slot: arbSlot, back: fc.nat(2), client: arbClient }).map((o) => ({ _tag: "Resolve", ...o }) as const),
    // Requests in flight during a rotation: an old token, from the session's own client.
    fc.record({ slot: arbSlot, back: fc.constantFrom(0, 1), client: fc.constant("own" as const) }).map((o) => ({ _tag: "Resolve", ...o }) as const),
    fc.record({ slot: arbSlot, back: fc.constant(1), client: fc.constant("own" as const) }).map((o) => ({ _tag: "Resolve", ...o }) as const),
    arbSlot.map((slot) => ({ _tag: "Set", slot }) as const),
    fc.record({ slot: arbSlot, user: arbUser, exclusive: fc.boolean() }).map((o) => ({ _tag: "LogIn", ...o }) as const),
    arbSlot.map((slot) => ({ _tag: "LogOut", slot }) as const),
    fc.record({ slot: arbSlot, grace: fc.boolean() }).map((o) => ({ _tag: "Regenerate", ...o }) as const),
    arbSlot.map((slot) => ({ _tag: "Destroy", slot }) as const),
    arbUser.map((user) => ({ _tag: "LogOutEverywhere", user }) as const),
    fc.record({ slot: arbSlot, user: arbUser }).map((o) => ({ _tag: "EndSession", ...o }) as const)
  )

  const deadline = (m: Model) => Math.min(m.last + IDLE, m.createdAt + ABSOLUTE)
  const stored = (m: Model, now: number) => m.alive && now < deadline(m) + RETENTION
  const expiryOf = (m: Model, now: number) => now - m.createdAt >= ABSOLUTE ? "absolute" : now - m.last >= IDLE ? "idle" : undefined
  const live = (m: Model, now: number) => stored(m, now) && expiryOf(m, now) === undefined

  /** Consecutive EndedByOtherSession events in a canonical order (a store lists a user's sessions in an order of its own). */
  const canon = (events: ReadonlyArray<Record<string, unknown>>) => {
    const out: Array<Record<string, unknown>> = []
    let run: Array<Record<string, unknown>> = []
    const flush = () => {
      out.push(...run.sort((a, b) => String(a.sessionId).localeCompare(String(b.sessionId))))
      run = []
    }
    for (const e of events) {
      if (e._tag === "EndedByOtherSession") run.push(e)
      else {
        flush()
        out.push(e)
      }
    }
    flush()
    return out
  }

  it.effect.prop(
    "feature: session events — over random operation sequences, each operation publishes exactly the events a model of the timing rules predicts, in order",
    [fc.array(arbOp, { minLength: 1, maxLength: 40 })],
    ([ops]) =>
      Effect.scoped(Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const q = yield* sessions.subscribe({ capacity: 100_000 })
        const models: Array<Model> = []
        const t0 = yield* TestClock.currentTimeMillis
        let now = t0
        const at = (slot: number) => models[slot % models.length]

        const rotateTo = (m: Model, h: Sessions.ActiveSession, expiresAt: number) => {
          m.redirects.push({ expiresAt })
          m.tokens.push(tok(h))
          m.handle = h
          m.issued = now
          m.last = now
        }

        for (const [n, op] of ops.entries()) {
          const expected: Array<Record<string, unknown>> = []
          const ev = (e: Record<string, unknown>) => expected.push(e)
          switch (op._tag) {
            case "Create": {
              const h = yield* sessions.create(clients[op.client])
              const m: Model = {
                pid: pid(h),
                client: op.client,
                userId: undefined,
                createdAt: now,
                last: now,
                issued: now,
                alive: true,
                tokens: [tok(h)],
                redirects: [],
                handle: h
              }
              models.push(m)
              ev({ _tag: "Created", sessionId: m.pid })
              break
            }
            case "Advance": {
              yield* advance(op.millis)
              now += op.millis
              break
            }
            case "Resolve": {
              const m = at(op.slot)
              if (!m) break
              const i = Math.max(0, m.tokens.length - 1 - op.back)
              const client = op.client === "own" ? m.client : op.client
              const r = yield* sessions.resolve(m.tokens[i]!, clients[client])
              let j = i
              let late = false
              let missing = false
              for (; j < m.tokens.length - 1; j++) {
                const redirect = m.redirects[j]!
                if (now >= redirect.expiresAt + RETENTION) {
                  missing = true
                  break
                }
                if (now >= redirect.expiresAt) {
                  ev({ _tag: "LateUseOfRotatedToken", sessionId: m.pid, lateByMillis: now - redirect.expiresAt })
                  late = true
                  break
                }
              }
              const hops = j - i
              if (late || missing) break
              if (!stored(m, now)) {
                m.alive = false
                break
              }
              const expiry = expiryOf(m, now)
              if (expiry !== undefined) {
                m.alive = false
                ev({ _tag: "Expired", sessionId: m.pid, userId: m.userId, reason: expiry })
                break
              }
              if (client !== m.client) {
                m.alive = false
                ev({ _tag: "Anomaly", sessionId: m.pid, userId: m.userId, kind: "userAgent" })
                break
              }
              const h = someSession(r)
              if (now - m.issued >= ROTATION) {
                rotateTo(m, h, now + GRACE)
                ev({ _tag: "Rotated", sessionId: m.pid, userId: m.userId, cause: "interval", grace: true })
              } else {
                m.handle = h
                m.last = now
              }
              if (hops > 0) ev({ _tag: "FollowedAfterRotation", sessionId: m.pid, userId: m.userId, hops })
              break
            }
            case "LogOutEverywhere": {
              yield* sessions.logOutEverywhere(op.user)
              for (const m of models) {
                if (m.userId === op.user && live(m, now)) {
                  m.alive = false
                  ev({ _tag: "EndedByOtherSession", sessionId: m.pid, userId: op.user, by: "logOutEverywhere", initiator: undefined })
                }
              }
              break
            }
            case "EndSession": {
              const m = at(op.slot)
              if (!m) break
              yield* sessions.endSession(op.user, m.pid)
              if (m.userId === op.user && live(m, now)) {
                m.alive = false
                ev({ _tag: "EndedByOtherSession", sessionId: m.pid, userId: op.user, by: "endSession", initiator: undefined })
              }
              break
            }
            default: {
              // An operation through the slot's handle (whose token is always the current one).
              const m = at(op.slot)
              if (!m) break
              const exit = yield* Effect.exit<Sessions.ActiveSession, Sessions.SessionError | Sessions.SessionLimitError, never>(
                op._tag === "Set"
                  ? Effect.as(sessions.set(m.handle, "n", n), m.handle)
                  : op._tag === "LogIn"
                  ? sessions.logIn(m.handle, op.user, { exclusive: op.exclusive })
                  : op._tag === "LogOut"
                  ? sessions.logOut(m.handle)
                  : op._tag === "Regenerate"
                  ? sessions.regenerateId(m.handle, { grace: op.grace })
                  : Effect.as(sessions.destroy(m.handle), m.handle)
              )
              if (!stored(m, now)) {
                m.alive = false
                assert.isTrue(Exit.isFailure(exit), `${op._tag} through a dead handle`)
                break
              }
              const expiry = expiryOf(m, now)
              if (expiry !== undefined) {
                assert.isTrue(Exit.isFailure(exit), `${op._tag} through an expired session`)
                // An exclusive log-in checks the handle without deleting anything.
                if (op._tag === "LogIn" && op.exclusive) break
                m.alive = false
                ev({ _tag: "Expired", sessionId: m.pid, userId: m.userId, reason: expiry })
                break
              }
              assert.isTrue(Exit.isSuccess(exit), `${op._tag} through a live session`)
              const h = Exit.isSuccess(exit) ? exit.value : m.handle
              switch (op._tag) {
                case "Set":
                  m.last = now
                  break
                case "LogIn": {
                  const known = models.filter((k) => k.userId === op.user && live(k, now))
                  if (op.exclusive) {
                    for (const k of known) {
                      if (k === m) continue
                      k.alive = false
                      ev({ _tag: "EndedByOtherSession", sessionId: k.pid, userId: op.user, by: "exclusiveLogIn", initiator: m.pid })
                    }
                  }
                  rotateTo(m, h, now)
                  m.userId = op.user
                  ev({
                    _tag: "LoggedIn",
                    sessionId: m.pid,
                    userId: op.user,
                    newDevice: !known.some((k) => k.client === m.client),
                    exclusive: op.exclusive
                  })
                  break
                }
                case "LogOut":
                  ev({ _tag: "LoggedOut", sessionId: m.pid, userId: m.userId })
                  rotateTo(m, h, now)
                  m.userId = undefined
                  break
                case "Regenerate":
                  rotateTo(m, h, now + (op.grace ? GRACE : 0))
                  ev({ _tag: "Rotated", sessionId: m.pid, userId: m.userId, cause: "regenerateId", grace: op.grace })
                  break
                case "Destroy":
                  m.alive = false
                  ev({ _tag: "Destroyed", sessionId: m.pid, userId: m.userId })
                  break
              }
            }
          }
          const actual = briefs(yield* drain(q))
          expect(canon(actual), `after operation ${n}: ${JSON.stringify(op)}`).toStrictEqual(canon(expected))
        }
      })).pipe(Effect.provide(serviceLayer(modelConfig))),
    { fastCheck: { numRuns: 100 } }
  )
})

// ---------------------------------------------------------------------------------------------
// newDevice, and what a service without subscribers does
// ---------------------------------------------------------------------------------------------

describe("Sessions events: newDevice and the cost of no subscriber", () => {
  const firefox = "Mozilla/5.0 Firefox/128.0"
  const cases: ReadonlyArray<readonly [string, Session.Client, Session.Client, boolean]> = [
    ["the same browser and IP", Session.client({ ip: "198.51.100.7", userAgent: firefox }), Session.client({ ip: "198.51.100.7", userAgent: firefox }), false],
    ["the same browser, same IPv4 /24", Session.client({ ip: "198.51.100.7", userAgent: firefox }), Session.client({ ip: "198.51.100.250", userAgent: firefox }), false],
    ["the same browser, another IPv4 /24", Session.client({ ip: "198.51.100.7", userAgent: firefox }), Session.client({ ip: "198.51.101.7", userAgent: firefox }), true],
    ["the same browser, same IPv6 /64", Session.client({ ip: "2001:db8:1:2::1", userAgent: firefox }), Session.client({ ip: "2001:db8:1:2:ffff::9", userAgent: firefox }), false],
    ["the same browser, another IPv6 /64 (same /24)", Session.client({ ip: "2001:db8:1:2::1", userAgent: firefox }), Session.client({ ip: "2001:db8:1:3::1", userAgent: firefox }), true],
    ["the same browser, IPv4 then IPv6", Session.client({ ip: "198.51.100.7", userAgent: firefox }), Session.client({ ip: "2001:db8::1", userAgent: firefox }), true],
    ["another browser, same IP", Session.client({ ip: "198.51.100.7", userAgent: firefox }), Session.client({ ip: "198.51.100.7", userAgent: "curl/8.0" }), true],
    ["no user agent either time", Session.client({ ip: "198.51.100.7" }), Session.client({ ip: "198.51.100.7" }), true],
    ["no IP, then an IP", Session.client({ userAgent: firefox }), Session.client({ ip: "198.51.100.7", userAgent: firefox }), true],
    ["an IP, then none", Session.client({ ip: "198.51.100.7", userAgent: firefox }), Session.client({ userAgent: firefox }), true],
    ["no IP either time", Session.client({ userAgent: firefox }), Session.client({ userAgent: firefox }), true],
    ["the same IP text that does not parse", Session.client({ ip: "unknown", userAgent: firefox }), Session.client({ ip: "unknown", userAgent: firefox }), false],
    ["an IP text that does not parse, then an IP", Session.client({ ip: "unknown", userAgent: firefox }), Session.client({ ip: "198.51.100.7", userAgent: firefox }), true],
    ["an IP, then an IP text that does not parse", Session.client({ ip: "198.51.100.7", userAgent: firefox }), Session.client({ ip: "unknown", userAgent: firefox }), true],
    ["two IP texts that do not parse", Session.client({ ip: "unknown", userAgent: firefox }), Session.client({ ip: "unknown-2", userAgent: firefox }), true]
  ]

  it.scoped("feature: session events — LoggedIn.newDevice: a known device has the same user agent and an IP in the same network (IPv4 /24, IPv6 /64); a missing fact makes a new device", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const q = yield* sessions.subscribe()
      const seen: Array<readonly [string, boolean]> = []
      for (const [i, [what, known, next]] of cases.entries()) {
        yield* sessions.logIn(yield* sessions.create(known), `device-${i}`)
        yield* drain(q)
        yield* sessions.logIn(yield* sessions.create(next), `device-${i}`)
        const loggedIn = (yield* drain(q)).filter((e): e is SessionEvents.LoggedIn => e._tag === "LoggedIn")
        assert.strictEqual(loggedIn.length, 1, what)
        seen.push([what, loggedIn[0]!.newDevice])
      }
      expect(seen).toStrictEqual(cases.map(([what, , , newDevice]) => [what, newDevice]))
    }).pipe(Effect.provide(serviceLayer())))

  it.scoped("feature: session events — without a subscriber a log-in does not list the user's sessions, and an ended subscription neither counts drops nor keeps the listing on", () =>
    Effect.gen(function*() {
      const { calls, store } = Testing.counted(yield* Persistence.makeMemory)
      const sessions = yield* Effect.map(Layer.build(serviceLayer({}, store)), (c) => Context.get(c, Sessions.Sessions))
      const listings = () => calls().sessionsOfUser ?? 0
      yield* sessions.logIn(yield* sessions.create(browser), "alice")
      assert.strictEqual(listings(), 0, "nobody subscribes")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* sessions.subscribe()
        yield* sessions.logIn(yield* sessions.create(browser), "alice")
        assert.strictEqual(listings(), 1, "somebody subscribes: newDevice needs the user's devices")
      }))
      const before = yield* droppedCount
      yield* sessions.logIn(yield* sessions.create(browser), "alice")
      assert.strictEqual(listings(), 1, "the subscription ended")
      assert.strictEqual((yield* droppedCount) - before, 0, "nobody to miss the events")
    }))
})
