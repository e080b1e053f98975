/**
 * "Remember me" over HTTP: the session cookie is a browser-session cookie (no `Max-Age`) unless
 * the configuration's `cookie.persistent` or the log-in's `persistent` says otherwise; the choice
 * is stored with the session, so that rotations keep it, and `Max-Age` never reaches past the
 * absolute timeout. Served on a real socket under the test's TestClock.
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import * as Http from "../src/Http.js"
import * as Persistence from "../src/Persistence.js"
import type * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { COOKIE, CookieJar, isRemoval, listen, type Reply, send } from "./helpers/http.js"

const routes = HttpRouter.empty.pipe(
  HttpRouter.post("/login/:choice", Effect.gen(function*() {
    const { choice } = yield* HttpRouter.params
    const session = yield* Http.CurrentSession
    yield* session.logIn("ada", choice === "default" ? {} : { persistent: choice === "remember" })
    return HttpServerResponse.empty({ status: 204 })
  })),
  HttpRouter.post("/logout", Effect.flatMap(Http.CurrentSession, (s) => Effect.as(s.logOut(), HttpServerResponse.empty({ status: 204 })))),
  HttpRouter.post("/count", Effect.flatMap(Http.CurrentSession, (s) => Effect.as(s.set("n", 1), HttpServerResponse.empty({ status: 204 }))))
)

const HOUR = 3_600_000

const start = (config: SessionConfig.SessionConfigInput = {}) =>
  listen(HttpServer.serve(routes.pipe(Http.middleware())).pipe(
    Layer.provide(Sessions.layer({ absoluteTimeout: "12 hours", idleTimeout: "2 hours", idRotationInterval: "15 minutes", ...config })
      .pipe(Layer.provide(Persistence.layerMemory)))
  ))

const cookieOf = (r: Reply) => {
  const c = r.cookie(COOKIE)
  assert.isDefined(c, `no Set-Cookie for ${COOKIE} (status ${r.status})`)
  assert.isFalse(isRemoval(c!), c!.raw)
  return c!
}

const maxAgeOf = (r: Reply): string | undefined => cookieOf(r).attributes.get("max-age")

describe("feature: remember me", () => {
  it.scoped("feature: remember me — by default the cookie has no Max-Age (gone with the browser), before and after a log-in", () =>
    Effect.gen(function*() {
      const url = yield* start()
      const jar = new CookieJar()
      assert.isUndefined(maxAgeOf(yield* send(`${url}/count`, { method: "POST", jar })))
      const login = yield* send(`${url}/login/default`, { method: "POST", jar })
      assert.isUndefined(maxAgeOf(login))
      assert.isFalse(cookieOf(login).attributes.has("expires"))
    }))

  it.scoped("feature: remember me — logIn(user, { persistent: true }) sets Max-Age to the time left until the absolute timeout; a rotation keeps it, shorter; logOut goes back to a browser-session cookie", () =>
    Effect.gen(function*() {
      const url = yield* start()
      const jar = new CookieJar()
      yield* send(`${url}/count`, { method: "POST", jar }) // born at 0
      yield* TestClock.adjust(HOUR)
      const login = yield* send(`${url}/login/remember`, { method: "POST", jar })
      assert.strictEqual(maxAgeOf(login), String(11 * 3600))
      // The periodic rotation (15 minutes) sets the cookie again: still persistent, never past birth + 12 hours.
      yield* TestClock.adjust(HOUR)
      const rotated = yield* send(`${url}/count`, { method: "POST", jar })
      assert.strictEqual(maxAgeOf(rotated), String(10 * 3600))
      const logout = yield* send(`${url}/logout`, { method: "POST", jar })
      assert.isUndefined(maxAgeOf(logout))
    }))

  it.scoped("feature: remember me — cookie.persistent: true is the default a log-in may refuse ({ persistent: false }), and the refusal survives a rotation", () =>
    Effect.gen(function*() {
      const url = yield* start({ cookie: { persistent: true } })
      const jar = new CookieJar()
      assert.strictEqual(maxAgeOf(yield* send(`${url}/count`, { method: "POST", jar })), String(12 * 3600))
      const login = yield* send(`${url}/login/forget`, { method: "POST", jar })
      assert.isUndefined(maxAgeOf(login))
      yield* TestClock.adjust(HOUR)
      assert.isUndefined(maxAgeOf(yield* send(`${url}/count`, { method: "POST", jar })))
      const again = yield* send(`${url}/login/default`, { method: "POST", jar })
      assert.strictEqual(maxAgeOf(again), String(11 * 3600))
    }))
})
