/**
 * The HttpApi side of `maxSessionsPerUser`: a log-in refused by the limit (a `SessionLimitError`)
 * is answered by `Http.toApiErrors` with `Http.SessionLimitReached` (409), a failure the session
 * security Tags declare.
 */
import { HttpApiSchema, HttpServerRequest } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Http from "../src/Http.js"
import * as Sessions from "../src/Sessions.js"

describe("HttpApi and maxSessionsPerUser", () => {
  it.effect("feature: maxSessionsPerUser — toApiErrors answers a refused log-in with SessionLimitReached, status 409", () =>
    Effect.gen(function*() {
      const refused = new Sessions.SessionLimitError({ method: "logIn", session: "0123456789ab", max: 3 })
      const answered = yield* Effect.flip(Http.toApiErrors(Effect.fail(refused)))
      assert.instanceOf(answered, Http.SessionLimitReached)
      assert.strictEqual(HttpApiSchema.getStatusError(Http.SessionLimitReached), 409)
      assert.strictEqual(refused.message, "Sessions.logIn: session 0123456789ab: the user already has 3 live sessions (maxSessionsPerUser)")
    }).pipe(Effect.provideService(HttpServerRequest.HttpServerRequest, HttpServerRequest.fromWeb(new Request("http://127.0.0.1/login")))))
})
