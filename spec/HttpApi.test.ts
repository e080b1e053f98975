/**
 * HttpApi over real sockets: a group behind `Http.SessionSecurity` (log in, log out, count
 * visits) and one behind `Http.RequireUser` (who am I), served with the session middleware.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Effect, Layer, Option, Schema } from "effect"
import * as Http from "../src/Http.js"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import type * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { COOKIE, CookieJar, countedMemory, isRemoval, listen, type Reply, send, type ServerServices, totalCalls } from "./helpers/http.js"

class Account extends HttpApiGroup.make("account")
  .add(HttpApiEndpoint.post("login", "/login").setPayload(Schema.Struct({ user: Schema.String })))
  .add(HttpApiEndpoint.post("logout", "/logout"))
  .add(HttpApiEndpoint.post("visit", "/visit").addSuccess(Schema.Struct({ visits: Schema.Number })))
  .add(HttpApiEndpoint.get("peek", "/peek").addSuccess(Schema.Struct({ visits: Schema.NullOr(Schema.Number) })))
  .middleware(Http.SessionSecurity)
{}

class Private extends HttpApiGroup.make("private")
  .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.Struct({ userId: Schema.String })))
  .middleware(Http.RequireUser)
{}

class Api extends HttpApi.make("api").add(Account).add(Private) {}

const visitsSchema = Schema.Number

const AccountLive = HttpApiBuilder.group(Api, "account", (handlers) =>
  handlers
    .handle("login", ({ payload }) => Effect.flatMap(Http.CurrentSession, (s) => s.logIn(payload.user)).pipe(Effect.orDie))
    .handle("logout", () => Effect.flatMap(Http.CurrentSession, (s) => s.logOut()).pipe(Effect.orDie))
    .handle("visit", () =>
      Effect.flatMap(Http.CurrentSession, (s) =>
        s.update("visits", (old) => Option.match(old, { onNone: () => 1, onSome: (v) => (typeof v === "number" ? v + 1 : 1) }))).pipe(
          Effect.flatMap(Schema.decodeUnknown(visitsSchema)),
          Effect.map((visits) => ({ visits })),
          Effect.orDie
        ))
    .handle("peek", () =>
      Effect.flatMap(Http.CurrentSession, (s) => s.get(Session.key("visits", visitsSchema))).pipe(
        Effect.map((visits) => ({ visits: Option.getOrNull(visits) })),
        Effect.orDie
      )))

const PrivateLive = HttpApiBuilder.group(Api, "private", (handlers) =>
  handlers.handle("me", () => Effect.map(Http.CurrentUser, (user) => ({ userId: user.userId }))))

const ApiLive = HttpApiBuilder.api(Api).pipe(Layer.provide([AccountLive, PrivateLive]))

const sessionsOver = (store: Layer.Layer<Persistence.Persistence>, config: SessionConfig.SessionConfigInput) =>
  Sessions.layer(config).pipe(Layer.provide(store))

/** The documented wiring: `HttpApiBuilder.serve(Http.middleware())`. */
type Served = (
  store: Layer.Layer<Persistence.Persistence>,
  config?: SessionConfig.SessionConfigInput
) => Layer.Layer<never, SessionConfig.SessionConfigError, ServerServices>

const servedWrapped: Served = (store, config = {}) =>
  HttpApiBuilder.serve(Http.middleware()).pipe(
    Layer.provide(ApiLive),
    Layer.provide(Layer.merge(Http.layerSessionSecurity, Http.layerRequireUser)),
    Layer.provide(sessionsOver(store, config))
  )

/** The session middleware as an HttpApi-level middleware (inside the app, around the router). */
const servedApiMiddleware: Served = (store, config = {}) =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.middleware<Sessions.Sessions>(Http.middleware(), { withContext: true })),
    Layer.provide(ApiLive),
    Layer.provide(Layer.merge(Http.layerSessionSecurity, Http.layerRequireUser)),
    Layer.provide(sessionsOver(store, config))
  )

/** SessionSecurity and RequireUser alone resolve the session (no Http.middleware around the API). */
const servedAlone: Served = (store, config = {}) =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(ApiLive),
    Layer.provide(Layer.merge(Http.layerSessionSecurity, Http.layerRequireUser)),
    Layer.provide(sessionsOver(store, config))
  )

const json = (body: unknown) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })

const sessionCookie = (r: Reply) => {
  const c = r.cookie(COOKIE)
  assert.isDefined(c, `expected a Set-Cookie for ${COOKIE} (status ${r.status}), got ${JSON.stringify(r.setCookies.map((s) => s.raw))}`)
  assert.isFalse(isRemoval(c!), c!.raw)
  return c!.value
}

const wirings = [
  // BUG: HttpServer.serve(app, middleware) — and so HttpApiBuilder.serve(middleware) — sends the
  // app's response before the middleware's result is looked at (HttpApp.toHandled), so every
  // Set-Cookie the session middleware adds there is dropped. Logging in "works" in the store but
  // the client never gets the rotated cookie.
  ["HttpApiBuilder.serve(Http.middleware())", servedWrapped],
  ["HttpApiBuilder.middleware(Http.middleware(), { withContext: true })", servedApiMiddleware],
  ["SessionSecurity alone", servedAlone]
] as const

describe.each(wirings)("HttpApi via %s", (_name, served) => {
  it.scoped("feature: logout answers Clear-Site-Data: \"storage\" (the fresh cookie stays) and every answer Vary: Cookie", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(served(store.layer))
      const jar = new CookieJar()
      const login = yield* send(`${url}/login`, { ...json({ user: "alice" }), jar })
      assert.isNull(login.headers.get("clear-site-data"))
      assert.strictEqual(login.headers.get("vary"), "Cookie")
      const logout = yield* send(`${url}/logout`, { method: "POST", jar })
      sessionCookie(logout)
      assert.strictEqual(logout.headers.get("clear-site-data"), `"storage"`)
      assert.strictEqual(logout.headers.get("vary"), "Cookie")
    }))

  it.scoped("RequireUser answers 401 without a login, and with no store call and no session", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(served(store.layer))
      const r = yield* send(`${url}/me`)
      assert.strictEqual(r.status, 401)
      deepStrictEqual(r.setCookies, [])
      assert.strictEqual(totalCalls(store.calls()), 0)
      const peek = yield* send(`${url}/peek`)
      assert.strictEqual(peek.status, 200)
      deepStrictEqual(peek.json(), { visits: null })
      deepStrictEqual(peek.setCookies, [])
    }))

  it.scoped("a write through SessionSecurity sets the cookie; the session carries on", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(served(store.layer))
      const jar = new CookieJar()
      const first = yield* send(`${url}/visit`, { method: "POST", jar })
      assert.strictEqual(first.status, 200)
      deepStrictEqual(first.json(), { visits: 1 })
      sessionCookie(first)
      assert.strictEqual(first.headers.get("cache-control"), "no-store")
      const second = yield* send(`${url}/visit`, { method: "POST", jar })
      deepStrictEqual(second.json(), { visits: 2 })
      assert.strictEqual(store.calls().create, 1)
    }))

  it.scoped("after login RequireUser answers with the user ID; logout ends that", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(served(store.layer))
      const jar = new CookieJar()
      yield* send(`${url}/visit`, { method: "POST", jar })
      const before = jar.get(COOKIE)
      const login = yield* send(`${url}/login`, { ...json({ user: "alice" }), jar })
      assert.strictEqual(login.status, 204)
      const token = sessionCookie(login)
      assert.notStrictEqual(token, before)
      const me = yield* send(`${url}/me`, { jar })
      assert.strictEqual(me.status, 200)
      deepStrictEqual(me.json(), { userId: "alice" })
      deepStrictEqual((yield* send(`${url}/peek`, { jar })).json(), { visits: 1 })
      // The pre-login token is dead.
      if (before !== undefined) assert.strictEqual((yield* send(`${url}/me`, { cookie: `${COOKIE}=${before}` })).status, 401)

      const logout = yield* send(`${url}/logout`, { method: "POST", jar })
      assert.strictEqual(logout.status, 204)
      sessionCookie(logout)
      assert.strictEqual((yield* send(`${url}/me`, { jar })).status, 401)
      assert.strictEqual((yield* send(`${url}/me`, { cookie: `${COOKIE}=${token}` })).status, 401)
    }))
})

describe("HttpApi without the session middleware", () => {
  it.scoped("SessionSecurity endpoints resolve the session themselves: no silent empty session, the cookie is set", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(servedAlone(store.layer))
      const r = yield* send(`${url}/visit`, { method: "POST" })
      assert.strictEqual(r.status, 200)
      sessionCookie(r)
      assert.strictEqual(store.calls().create, 1)
    }))
})

describe("HttpApi: a store outage", () => {
  /**
   * A memory store that, while `down`, answers the first token lookup (the request's resolve) and
   * fails every later read (a partial outage, e.g. timeouts): the handler's read of the session fails.
   */
  const flaky = Effect.gen(function*() {
    const memory = yield* Persistence.makeMemory
    let down = false
    let answered = 0
    const unavailable = (method: string) => Effect.fail(new Persistence.SessionStoreError({ method, reason: "Unavailable" }))
    const store: Persistence.PersistenceShape = {
      ...memory,
      load: (tk) => Effect.suspend(() => (down && answered++ > 0 ? unavailable("load") : memory.load(tk))),
      loadSession: (key) => (down ? unavailable("loadSession") : memory.loadSession(key))
    }
    return {
      layer: Layer.succeed(Persistence.Persistence, store),
      setDown: (value: boolean) =>
        Effect.sync(() => {
          down = value
          answered = 0
        })
    }
  })

  // BUG: RequireUser (currentUserFromSession) turns every error of reading the user ID — a
  // SessionStoreError included — into "no user" (401). During an outage a logged-in user is told
  // they are logged out instead of getting 503.
  it.scoped("RequireUser answers 503, not 401, when reading the session fails", () =>
    Effect.gen(function*() {
      const store = yield* flaky
      const url = yield* listen(servedApiMiddleware(store.layer, { cache: false }))
      const jar = new CookieJar()
      yield* send(`${url}/login`, { ...json({ user: "alice" }), jar })
      deepStrictEqual((yield* send(`${url}/me`, { jar })).json(), { userId: "alice" })
      yield* store.setDown(true)
      const r = yield* send(`${url}/me`, { jar })
      assert.strictEqual(r.status, 503)
      deepStrictEqual(r.setCookies, [])
    }))
})

describe("HttpApi: types", () => {
  // The API served behind the middleware needs Sessions and SessionConfig, never CurrentSession.
  const layer: Layer.Layer<never, never, HttpApi.Api | Sessions.Sessions | SessionConfig.SessionConfig | ServerServices> = HttpApiBuilder
    .serve(Http.middleware())
  it("HttpApiBuilder.serve(Http.middleware()) needs no CurrentSession", () => {
    assert.isTrue(Layer.isLayer(layer))
  })
})
