/**
 * The recent-login gate over HttpApi (OWASP ASVS 7.5.1, 7.5.2): `Http.RequireRecentLogin` (the
 * security middleware) and `CurrentSession.requireRecentLogin` (in a handler) answer 403 with the
 * typed body of `Http.RecentLoginRequired` when the log-in is too old or absent; `reauthenticated`
 * makes it recent again. Time is the test's `TestClock`, which the served handlers read.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Effect, Layer, Schema, TestClock } from "effect"
import * as Http from "../src/Http.js"
import * as Persistence from "../src/Persistence.js"
import * as Sessions from "../src/Sessions.js"
import { COOKIE, CookieJar, listen, send } from "./helpers/http.js"

class Account extends HttpApiGroup.make("account")
  .add(HttpApiEndpoint.post("login", "/login").setPayload(Schema.Struct({ user: Schema.String })))
  .add(HttpApiEndpoint.post("reauthenticate", "/reauthenticate"))
  .add(HttpApiEndpoint.post("logout", "/logout"))
  // The gate inside a handler: the endpoint declares the error it may answer.
  .add(HttpApiEndpoint.post("email", "/email").addSuccess(Schema.Struct({ userId: Schema.String })).addError(Http.RecentLoginRequired))
  .middleware(Http.SessionSecurity)
{}

class Sensitive extends HttpApiGroup.make("sensitive")
  .add(HttpApiEndpoint.post("password", "/password").addSuccess(Schema.Struct({ userId: Schema.String })))
  .middleware(Http.RequireRecentLogin)
{}

class Api extends HttpApi.make("api").add(Account).add(Sensitive) {}

const AccountLive = HttpApiBuilder.group(Api, "account", (handlers) =>
  handlers
    .handle("login", ({ payload }) => Effect.flatMap(Http.CurrentSession, (s) => s.logIn(payload.user)).pipe(Effect.orDie))
    .handle("reauthenticate", () => Effect.flatMap(Http.CurrentSession, (s) => s.reauthenticated).pipe(Effect.orDie))
    .handle("logout", () => Effect.flatMap(Http.CurrentSession, (s) => s.logOut()).pipe(Effect.orDie))
    .handle("email", () =>
      Effect.flatMap(Http.CurrentSession, (s) => s.requireRecentLogin("5 minutes")).pipe(
        Effect.map((userId) => ({ userId })),
        Http.toApiErrors
      )))

const SensitiveLive = HttpApiBuilder.group(Api, "sensitive", (handlers) =>
  handlers.handle("password", () => Effect.map(Http.CurrentUser, (user) => ({ userId: user.userId }))))

const served = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide([AccountLive, SensitiveLive]))),
  Layer.provide(Layer.merge(Http.layerSessionSecurity, Http.layerRequireRecentLogin("5 minutes"))),
  Layer.provide(Sessions.layer({ idleTimeout: "1 hour", idRotationInterval: "1 hour" }).pipe(Layer.provide(Persistence.layerMemory)))
)

const json = (body: unknown) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
const MINUTE = 60_000

describe("feature: recent-login gate over HttpApi", () => {
  it.scoped("feature: recent-login gate — Http.RequireRecentLogin answers 403 with the typed body when the log-in is 5 minutes old or absent, 200 before; reauthenticated makes it recent again and rotates the token with no grace", () =>
    Effect.gen(function*() {
      const url = yield* listen(served)
      const none = yield* send(`${url}/password`, { method: "POST" })
      assert.strictEqual(none.status, 403)
      deepStrictEqual(none.json(), { _tag: "RecentLoginRequired", maxAgeMillis: 5 * MINUTE })

      const jar = new CookieJar()
      yield* TestClock.setTime(1_000_000)
      assert.strictEqual((yield* send(`${url}/login`, { ...json({ user: "ada" }), jar })).status, 204)
      const fresh = yield* send(`${url}/password`, { method: "POST", jar })
      assert.strictEqual(fresh.status, 200)
      deepStrictEqual(fresh.json(), { userId: "ada" })

      yield* TestClock.adjust(5 * MINUTE - 1)
      assert.strictEqual((yield* send(`${url}/password`, { method: "POST", jar })).status, 200)
      yield* TestClock.adjust(1)
      const stale = yield* send(`${url}/password`, { method: "POST", jar })
      assert.strictEqual(stale.status, 403)
      deepStrictEqual(stale.json(), { _tag: "RecentLoginRequired", maxAgeMillis: 5 * MINUTE, authenticatedAt: 1_000_000 })

      const before = jar.get(COOKIE)
      const again = yield* send(`${url}/reauthenticate`, { method: "POST", jar })
      assert.strictEqual(again.status, 204)
      assert.notStrictEqual(jar.get(COOKIE), before)
      assert.strictEqual((yield* send(`${url}/password`, { method: "POST", jar })).status, 200)
      // The token from before the re-authentication died at once (no grace period).
      assert.strictEqual((yield* send(`${url}/password`, { method: "POST", cookie: `${COOKIE}=${before}` })).status, 403)

      yield* send(`${url}/logout`, { method: "POST", jar })
      const out = yield* send(`${url}/password`, { method: "POST", jar })
      assert.strictEqual(out.status, 403)
      deepStrictEqual(out.json(), { _tag: "RecentLoginRequired", maxAgeMillis: 5 * MINUTE })
    }))

  it.scoped("feature: recent-login gate — CurrentSession.requireRecentLogin in a handler answers the same 403 body, and the user ID while recent", () =>
    Effect.gen(function*() {
      const url = yield* listen(served)
      const jar = new CookieJar()
      yield* TestClock.setTime(2_000_000)
      yield* send(`${url}/login`, { ...json({ user: "grace" }), jar })
      const ok = yield* send(`${url}/email`, { method: "POST", jar })
      assert.strictEqual(ok.status, 200)
      deepStrictEqual(ok.json(), { userId: "grace" })
      yield* TestClock.adjust(6 * MINUTE)
      const stale = yield* send(`${url}/email`, { method: "POST", jar })
      assert.strictEqual(stale.status, 403)
      deepStrictEqual(stale.json(), { _tag: "RecentLoginRequired", maxAgeMillis: 5 * MINUTE, authenticatedAt: 2_000_000 })
    }))

  it("feature: recent-login gate — OpenAPI documents the 403 answer and its body on the gated endpoints", () => {
    const spec = OpenApi.fromApi(Api) as any
    for (const path of ["/password", "/email"]) {
      const forbidden = spec.paths[path].post.responses["403"]
      assert.isDefined(forbidden, path)
      const schema = forbidden.content["application/json"].schema
      assert.strictEqual(schema.$ref, "#/components/schemas/RecentLoginRequired", path)
      const resolved = spec.components.schemas["RecentLoginRequired"]
      deepStrictEqual([...resolved.required].sort(), ["_tag", "maxAgeMillis"])
      deepStrictEqual(resolved.properties._tag.enum, ["RecentLoginRequired"])
      deepStrictEqual(Object.keys(resolved.properties).sort(), ["_tag", "authenticatedAt", "maxAgeMillis"])
    }
    assert.isUndefined(spec.paths["/login"].post.responses["403"])
  })
})
