/**
 * The messages of the service's errors say which method failed and why, and carry no token (the
 * session is named by a short hash).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Schema } from "effect"
import * as Session from "../src/Session.js"
import * as Sessions from "../src/Sessions.js"
import { serviceLayer } from "./helpers/service.js"

const client = Session.client({ ip: "203.0.113.4", userAgent: "messages/1" })

describe("error messages", () => {
  it.effect("a write above maxDataBytes fails with a message naming the method, the key, the size and the limit", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(client)
      const e = yield* Effect.flip(sessions.set(h, "cart", "x".repeat(200)))
      assert.strictEqual(e._tag, "SessionDataError")
      const bytes = JSON.stringify({ cart: "x".repeat(200) }).length
      assert.strictEqual(e.message, `Sessions.set: writing "cart": the session data would be ${bytes} bytes of JSON, above maxDataBytes (100)`)
      assert.notInclude(e.message, Redacted.value(h.token))
    }).pipe(Effect.provide(serviceLayer({ maxDataBytes: 100 }, { seed: "messages" }))))

  it("a conflict names the method, the session's hash and the attempts", () => {
    const e = new Sessions.SessionConflictError({ method: "update", session: "abcd1234", attempts: 32 })
    assert.strictEqual(e.message, "Sessions.update: session abcd1234 still conflicted after 32 attempts")
  })

  it.effect("a stored value its key's Schema refuses fails with a message naming the method, the key and the schema's complaint", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(client)
      yield* sessions.set(h, "n", "not a number")
      const e = yield* Effect.flip(sessions.get(h, Session.key("n", Schema.Number)))
      assert.strictEqual(e._tag, "SessionDataError")
      assert.strictEqual(e.message, `Sessions.get: value under "n" does not match its schema: Expected number, actual "not a number"`)
    }).pipe(Effect.provide(serviceLayer({}, { seed: "messages" }))))

  it("a refused log-in names the method, the session's hash and the limit", () => {
    const e = new Sessions.SessionLimitError({ method: "logIn", session: "abcd1234", max: 3 })
    assert.strictEqual(e.message, "Sessions.logIn: session abcd1234: the user already has 3 live sessions (maxSessionsPerUser)")
  })
})
