/**
 * The invariants of DESIGN §4 on the running service live in the store conformance suite
 * (src/internal/testing/sessionsSuite.ts), which spec/Sessions.stores.test.ts runs over the memory store and
 * every other store: one copy of each property. What stays here is independent of any store: the
 * examples of the anomaly rule at each `acceptRemoteIp` level.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as Session from "../src/Session.js"
import * as Sessions from "../src/Sessions.js"
import { serviceLayer } from "./helpers/service.js"

describe("Sessions invariants (running service)", () => {
  it.effect("invariant 6: anomaly — examples at each acceptRemoteIp level", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [level: number, from: string, to: string, rejected: boolean]> = [
        [1, "10.1.2.3", "192.168.0.1", false],
        [2, "10.1.2.3", "10.200.0.1", false],
        [2, "10.1.2.3", "11.1.2.3", true],
        [3, "10.1.2.3", "10.1.99.99", false],
        [3, "10.1.2.3", "10.2.2.3", true],
        [4, "10.1.2.3", "10.1.2.250", false],
        [4, "10.1.2.3", "10.1.3.3", true]
      ]
      for (const [level, from, to, rejected] of cases) {
        const r = yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h = yield* sessions.create(Session.client({ ip: from, userAgent: "ua" }))
          return yield* sessions.resolve(Redacted.value(h.token), Session.client({ ip: to, userAgent: "ua" }))
        }).pipe(Effect.provide(serviceLayer({ acceptRemoteIp: level }, { seed: "invariants" })))
        assert.strictEqual(r.outcome, rejected ? "anomaly" : "valid", `level ${level}: ${from} → ${to}`)
      }
    }))
})
