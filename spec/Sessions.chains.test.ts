/**
 * Long redirect chains never fork a session: a token inside its grace period resolves however
 * many rotations lie between it and the current token (invariant 4). (Lost rotation races are
 * counted apart from hops; `spec/multiprocess.test.ts` drives them under load.)
 */
import { assert, describe, it } from "@effect/vitest"
import { assertSome } from "@effect/vitest/utils"
import { Effect, Option, Redacted } from "effect"
import * as Session from "../src/Session.js"
import * as Sessions from "../src/Sessions.js"
import { serviceLayer } from "./helpers/service.js"

const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 Firefox/128.0" })
const tok = (h: Sessions.ActiveSession): string => Redacted.value(h.token)

describe("Sessions: long redirect chains", () => {
  it.effect("invariant 4: grace — a token 40 rotations behind, all inside the grace period, still follows to the session", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const first = yield* sessions.create(browser)
      yield* sessions.set(first, "n", 1)
      let h = first
      // 40 rotations within the grace period: the first token's chain is 40 hops long (a
      // 10-second grace over a 300-millisecond rotation interval makes chains of 33).
      for (let i = 0; i < 40; i++) h = yield* sessions.regenerateId(h)
      const r = yield* sessions.resolve(tok(first), browser)
      assert.strictEqual(r.outcome, "followed")
      const followed = Option.getOrThrow(r.session)
      assert.strictEqual(tok(followed), tok(h))
      assertSome(yield* sessions.get(followed, "n"), 1)
    }).pipe(Effect.provide(serviceLayer({ gracePeriod: "1 minute" }, { seed: "chains" }))))
})
