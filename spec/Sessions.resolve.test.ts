/**
 * Resolution's edges that the broader specs reach only by chance: the empty token, the hot path
 * (a cached, valid session answered without a store call, counted once as a cache hit), the
 * redirect chain's hop limit, a redirect whose successor does not open with the token that reached
 * it, a rotation reached through a redirect, a revoked session seen from another client, the
 * bound on resolving a token again, and a rotation whose every compare-and-set loses.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { assertSome, deepStrictEqual } from "@effect/vitest/utils"
import { Chunk, Effect, HashMap, Logger, Metric, Option, Queue, Redacted, TestClock, TestContext, Tracer } from "effect"
import { intercept } from "../src/internal/testing/stores.js"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import * as Sessions from "../src/Sessions.js"
import * as Testing from "../src/testing.js"
import { metrics } from "../src/internal/sessions/metrics.js"
import { MAX_RERESOLVES } from "../src/internal/sessions/resolve.js"
import { MAX_ATTEMPTS } from "../src/internal/sessions/retry.js"
import { MAX_HOPS } from "../src/internal/sessions/tokens.js"
import { flickering, serviceLayer } from "./helpers/service.js"

const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 Firefox/128.0" })
const tok = (h: Sessions.ActiveSession): string => Redacted.value(h.token)

/** Runs `effect` with a tracer that records the name of every span it makes. */
const spanNames = <A, E, R>(names: Array<string>, effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.tracer, (base) =>
    Effect.withTracer(
      effect,
      Tracer.make({
        span: (name, parent, context, links, startTime, kind, options) => {
          names.push(name)
          return base.span(name, parent, context, links, startTime, kind, options)
        },
        context: (f, fiber) => base.context(f, fiber)
      })
    ))

describe("Sessions.resolve: edges", () => {
  it.effect("an empty token is absent (not malformed): no cookie change and no store call", () =>
    Effect.gen(function*() {
      const counted = Testing.counted(yield* Persistence.makeMemory)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const r = yield* sessions.resolve("", browser)
        deepStrictEqual([r.outcome, r.cookie], ["absent", "none"])
        deepStrictEqual(counted.calls(), {})
      }).pipe(Effect.provide(serviceLayer({}, { store: counted.store, seed: "resolve" })))
    }))

  it.effect("the hot path: a cached, valid session that needs no touch is answered without a store call or a span; without the cache the store is asked", () =>
    Effect.gen(function*() {
      for (const cache of [true, false]) {
        const counted = Testing.counted(yield* Persistence.makeMemory)
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h = yield* sessions.create(browser)
          const before = counted.calls().load ?? 0
          const names: Array<string> = []
          const r = yield* spanNames(names, sessions.resolve(tok(h), browser))
          deepStrictEqual(names.filter((n) => n === "Sessions.resolve").length, cache ? 0 : 1)
          deepStrictEqual([r.outcome, r.cookie], ["valid", "none"])
          assert.strictEqual(tok(Option.getOrThrow(r.session)), tok(h))
          assert.strictEqual((counted.calls().load ?? 0) - before, cache ? 0 : 1, `cache ${cache}`)
        }).pipe(Effect.provide(serviceLayer({ cache }, { store: counted.store, seed: "resolve" })))
      }
    }))

  it.effect(`a token MAX_HOPS (${MAX_HOPS}) rotations behind is followed; one more is too far: no session, the cookie left alone, logged`, () =>
    Effect.gen(function*() {
      const events: Array<unknown> = []
      const messages: Array<unknown> = []
      const logger = Logger.make(({ annotations, message }) => {
        events.push(Option.getOrUndefined(HashMap.get(annotations, "event")))
        messages.push(message)
      })
      const behind = (rotations: number) =>
        Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const first = yield* sessions.create(browser)
          let h = first
          for (let i = 0; i < rotations; i++) h = yield* sessions.regenerateId(h)
          return [yield* sessions.resolve(tok(first), browser), h] as const
        }).pipe(
          Effect.provide(serviceLayer({ gracePeriod: "1 hour", cache: false }, { seed: "hops" })),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
      const [at, current] = yield* behind(MAX_HOPS)
      deepStrictEqual([at.outcome, at.cookie], ["followed", "set"])
      assert.strictEqual(tok(Option.getOrThrow(at.session)), tok(current))
      assert.notInclude(events, "long-redirect-chain")
      const [past] = yield* behind(MAX_HOPS + 1)
      deepStrictEqual([past.outcome, past.cookie, Option.isNone(past.session)], ["missing", "none", true])
      assert.include(events, "long-redirect-chain")
      deepStrictEqual(messages[events.indexOf("long-redirect-chain")], ["a redirect chain was longer than its limit"])
    }))

  it.effect("a redirect whose successor does not open with the token that reached it leads nowhere: no session, the cookie cleared, logged (for each hashIdsAtRest)", () =>
    Effect.gen(function*() {
      for (const hashIdsAtRest of [true, false]) {
        const logged: Array<unknown> = []
        const messages: Array<unknown> = []
        const logger = Logger.make(({ annotations, message }) => {
          logged.push(Option.getOrUndefined(HashMap.get(annotations, "event")))
          messages.push(message)
        })
        const memory = yield* Persistence.makeMemory
        // A store that answers a redirect with its successor swapped for another one (a tampered
        // or corrupted record): the sealed text no longer matches the successor's hash.
        let tamper = false
        const store = intercept(memory, (method, call) =>
          method !== "load" || !tamper ? call : Effect.map(call as unknown as Effect.Effect<Option.Option<Session.TokenRecord>>, Option.map((r) =>
            r._tag === "Redirect" ? { ...r, sealedSuccessor: r.sealedSuccessor.slice(0, -2) + (r.sealedSuccessor.endsWith("AA") ? "BB" : "AA") } : r)) as unknown as typeof call)
        yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const first = yield* sessions.create(browser)
          const next = yield* sessions.regenerateId(first)
          // Untampered, the old token follows to its successor inside the grace period.
          const followed = yield* sessions.resolve(tok(first), browser)
          deepStrictEqual([followed.outcome, followed.cookie], ["followed", "set"])
          assert.strictEqual(tok(Option.getOrThrow(followed.session)), tok(next))
          assert.notInclude(logged, "bad-redirect")
          tamper = true
          const r = yield* sessions.resolve(tok(first), browser)
          deepStrictEqual([r.outcome, r.cookie, Option.isNone(r.session)], ["missing", "clear", true], `hashIdsAtRest ${hashIdsAtRest}`)
          assert.include(logged, "bad-redirect")
          deepStrictEqual(messages[logged.indexOf("bad-redirect")], ["a redirect did not open with its token"])
          // The session itself is untouched: its current token still resolves.
          deepStrictEqual((yield* sessions.resolve(tok(next), browser)).outcome, "valid")
        }).pipe(
          Effect.provide(serviceLayer({ gracePeriod: "1 hour", cache: false, hashIdsAtRest }, { store, seed: "bad-redirect" })),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
      }
    }))

  it.effect("each answer of the hot path counts one cache hit and no miss", () =>
    Effect.gen(function*() {
      const count = (m: Metric.Metric.Counter<number>) => Effect.map(Metric.value(m), (st) => st.count)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        const [hits, misses] = [yield* count(metrics.cacheHits), yield* count(metrics.cacheMisses)]
        for (let i = 0; i < 5; i++) deepStrictEqual((yield* sessions.resolve(tok(h), browser)).outcome, "valid")
        deepStrictEqual([(yield* count(metrics.cacheHits)) - hits, (yield* count(metrics.cacheMisses)) - misses], [5, 0])
      }).pipe(Effect.provide(serviceLayer({}, { seed: "hits" })))
    }))

  it.effect("an old token whose successor is due for rotation follows and rotates: the cookie set to the new token, a FollowedAfterRotation event", () =>
    Effect.gen(function*() {
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const events = yield* sessions.subscribe()
        const first = yield* sessions.create(browser)
        const second = yield* sessions.regenerateId(first)
        // The successor is past idRotationInterval; the first token is inside its grace period.
        yield* TestClock.adjust("2 minutes")
        yield* Queue.takeAll(events)
        const r = yield* sessions.resolve(tok(first), browser)
        deepStrictEqual([r.outcome, r.cookie], ["rotated", "set"])
        const third = Option.getOrThrow(r.session)
        assert.notStrictEqual(tok(third), tok(second))
        assert.notStrictEqual(tok(third), tok(first))
        const seen = Chunk.toReadonlyArray(yield* Queue.takeAll(events))
        expect(seen.map((e) => [e._tag, "hops" in e ? e.hops : undefined])).toStrictEqual([["Rotated", undefined], ["FollowedAfterRotation", 1]])
      }).pipe(Effect.scoped, Effect.provide(serviceLayer({ idRotationInterval: "1 minute", gracePeriod: "10 minutes" }, { seed: "follow-rotate" })))
    }))

  it.effect("a session logged out by logOutEveryone is ended as logged out even from another client: expired and cleared, no anomaly reported", () =>
    Effect.gen(function*() {
      const elsewhere = Session.client({ ip: "203.0.113.9", userAgent: "Mozilla/5.0 Firefox/128.0" })
      const count = Effect.map(Metric.value(Metric.tagged(metrics.anomalies, "kind", "ip")), (st) => st.count)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        // Not revoked, the other client is an anomaly.
        const other = yield* sessions.create(browser)
        deepStrictEqual((yield* sessions.resolve(tok(other), elsewhere)).outcome, "anomaly")
        yield* TestClock.adjust("1 second")
        yield* sessions.logOutEveryone()
        const events = yield* sessions.subscribe()
        const anomalies = yield* count
        const r = yield* sessions.resolve(tok(h), elsewhere)
        deepStrictEqual([r.outcome, r.cookie, Option.isNone(r.session)], ["expired", "clear", true])
        deepStrictEqual((yield* count) - anomalies, 0)
        const seen = Chunk.toReadonlyArray(yield* Queue.takeAll(events)).map((e) => e._tag)
        assert.notInclude(seen, "AnomalyDetected")
      }).pipe(Effect.scoped, Effect.provide(serviceLayer({ ipBinding: { ipv4Prefix: 24 } }, { seed: "revoked-anomaly" })))
    }))

  it.effect(`a token whose record flickers (read as current, then as gone, as from a lagging replica) is resolved again at most MAX_RERESOLVES (${MAX_RERESOLVES}) times, then has no session and keeps its cookie`, () =>
    Effect.gen(function*() {
      const flicker = flickering(yield* Persistence.makeMemory)
      const store = flicker.store
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        yield* TestClock.adjust("2 minutes") // due for rotation
        flicker.set(true)
        const r = yield* sessions.resolve(tok(h), browser)
        // Each round: the token's record (current, due), then the rotation's own read (gone).
        deepStrictEqual([r.outcome, r.cookie, Option.isNone(r.session), flicker.loads()], ["missing", "none", true, 2 * (MAX_RERESOLVES + 1)])
        flicker.set(false)
        deepStrictEqual((yield* sessions.resolve(tok(h), browser)).outcome, "rotated")
      }).pipe(Effect.provide(serviceLayer({ idRotationInterval: "1 minute", cache: false }, { store, seed: "flicker" })))
    }))

  it.live(`a token due for rotation whose every compare-and-set loses (${MAX_ATTEMPTS} attempts) while it stays current is served unrotated, at once, not re-resolved round after round (after a redirect: with the token it followed to); the next request rotates it`, () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      const refusals = { left: 0, rotations: 0 }
      const store = intercept(memory, (method, call) =>
        method === "rotate"
          ? Effect.suspend(() => {
            refusals.rotations++
            return refusals.left-- > 0 ? Effect.succeed(false) as unknown as typeof call : call
          })
          : call)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        yield* sessions.set(h, "a", 1)
        // Due for rotation: the service's clock is the test's own (the layer below), moved on.
        yield* TestClock.adjust("2 minutes")
        refusals.left = MAX_ATTEMPTS
        const events = yield* sessions.subscribe()
        const r = yield* sessions.resolve(tok(h), browser)
        deepStrictEqual([r.outcome, r.cookie, refusals.rotations], ["valid", "none", MAX_ATTEMPTS])
        deepStrictEqual(Chunk.toReadonlyArray(yield* Queue.takeAll(events)).map((e) => e._tag), [])
        const served = Option.getOrThrow(r.session)
        assert.strictEqual(tok(served), tok(h))
        assertSome(yield* sessions.get(served, "a"), 1)
        const next = yield* sessions.resolve(tok(h), browser)
        deepStrictEqual([next.outcome, next.cookie, refusals.rotations], ["rotated", "set", MAX_ATTEMPTS + 1])
        // Reached through a redirect: the request still learns the token it followed to.
        const older = Option.getOrThrow(next.session)
        const newer = yield* sessions.regenerateId(older)
        yield* TestClock.adjust("2 minutes")
        yield* Queue.takeAll(events)
        refusals.rotations = 0
        refusals.left = MAX_ATTEMPTS
        const followed = yield* sessions.resolve(tok(older), browser)
        deepStrictEqual([followed.outcome, followed.cookie, refusals.rotations], ["followed", "set", MAX_ATTEMPTS])
        assert.strictEqual(tok(Option.getOrThrow(followed.session)), tok(newer))
        const seen = Chunk.toReadonlyArray(yield* Queue.takeAll(events))
        expect(seen.map((e) => [e._tag, "hops" in e ? e.hops : undefined])).toStrictEqual([["FollowedAfterRotation", 1]])
      }).pipe(
        Effect.scoped,
        Effect.provide(serviceLayer({ idRotationInterval: "1 minute", gracePeriod: "10 minutes", cache: false }, { store, seed: "lost-rotation" })),
        Effect.provide(TestContext.TestContext)
      )
    }))
})
