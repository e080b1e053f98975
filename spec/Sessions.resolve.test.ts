/**
 * Resolution's edges that the broader specs reach only by chance: the empty token, the hot path
 * (a cached, valid session answered without a store call), the redirect chain's hop limit, and a
 * redirect whose successor does not open with the token that reached it.
 */
import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Effect, HashMap, Logger, Option, Redacted, Tracer } from "effect"
import { intercept } from "../src/internal/testing/stores.js"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import * as Sessions from "../src/Sessions.js"
import * as Testing from "../src/testing.js"
import { MAX_HOPS } from "../src/internal/sessions/tokens.js"
import { serviceLayer } from "./helpers/service.js"

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
      const logger = Logger.make(({ annotations }) => {
        events.push(Option.getOrUndefined(HashMap.get(annotations, "event")))
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
    }))

  it.effect("a redirect whose successor does not open with the token that reached it leads nowhere: no session, the cookie cleared, logged (for each hashIdsAtRest)", () =>
    Effect.gen(function*() {
      for (const hashIdsAtRest of [true, false]) {
        const logged: Array<unknown> = []
        const logger = Logger.make(({ annotations }) => {
          logged.push(Option.getOrUndefined(HashMap.get(annotations, "event")))
        })
        const memory = yield* Persistence.makeMemory
        // A store that answers a redirect with its successor swapped for another one (a tampered
        // or corrupted record): the sealed text no longer matches the successor's hash.
        let tamper = false
        const store = intercept(memory, (method, call) =>
          method !== "load" || !tamper ? call : Effect.map(call as Effect.Effect<Option.Option<Session.TokenRecord>>, Option.map((r) =>
            r._tag === "Redirect" ? { ...r, sealedSuccessor: r.sealedSuccessor.slice(0, -2) + (r.sealedSuccessor.endsWith("AA") ? "BB" : "AA") } : r)))
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
          // The session itself is untouched: its current token still resolves.
          deepStrictEqual((yield* sessions.resolve(tok(next), browser)).outcome, "valid")
        }).pipe(
          Effect.provide(serviceLayer({ gracePeriod: "1 hour", cache: false, hashIdsAtRest }, { store, seed: "bad-redirect" })),
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
      }
    }))
})
