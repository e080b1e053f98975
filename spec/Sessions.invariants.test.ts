/**
 * The ten invariants (docs/how-it-works.md) on the running service live in the store conformance suite
 * (src/internal/testing/sessionsSuite.ts), which spec/Sessions.stores.test.ts runs over the memory store and
 * every other store: one copy of each property. What stays here is independent of any store: the
 * examples of the anomaly rule at each IPv4 prefix of `ipBinding` (rivo/sessions' AcceptRemoteIP levels, and the exact address).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as Session from "../src/Session.js"
import * as Sessions from "../src/Sessions.js"
import { serviceLayer } from "./helpers/service.js"

describe("Sessions invariants (running service)", () => {
  it.effect("invariant 6: anomaly — examples at each IPv4 prefix of ipBinding", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [ipv4Prefix: number | false, from: string, to: string, rejected: boolean]> = [
        [false, "10.1.2.3", "192.168.0.1", false],
        [false, "10.1.2.3", "2001:db8::1", false],
        [0, "10.1.2.3", "192.168.0.1", false],
        [0, "10.1.2.3", "2001:db8::1", true],
        [8, "10.1.2.3", "10.200.0.1", false],
        [8, "10.1.2.3", "11.1.2.3", true],
        [16, "10.1.2.3", "10.1.99.99", false],
        [16, "10.1.2.3", "10.2.2.3", true],
        [24, "10.1.2.3", "10.1.2.250", false],
        [24, "10.1.2.3", "10.1.3.3", true],
        [32, "10.1.2.3", "10.1.2.3", false],
        [32, "10.1.2.3", "10.1.2.4", true]
      ]
      for (const [ipv4Prefix, from, to, rejected] of cases) {
        const r = yield* Effect.gen(function*() {
          const sessions = yield* Sessions.Sessions
          const h = yield* sessions.create(Session.client({ ip: from, userAgent: "ua" }))
          return yield* sessions.resolve(Redacted.value(h.token), Session.client({ ip: to, userAgent: "ua" }))
        }).pipe(Effect.provide(serviceLayer({ ipBinding: ipv4Prefix === false ? false : { ipv4Prefix } }, { seed: "invariants" })))
        assert.strictEqual(r.outcome, rejected ? "anomaly" : "valid", `ipv4Prefix ${ipv4Prefix}: ${from} → ${to}`)
      }
    }))
})
