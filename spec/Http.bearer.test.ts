/**
 * Session tokens outside cookies: the middleware's `transport` option over real sockets. A bearer
 * client sends `Authorization: Bearer <token>` and reads the answer in `Set-Session-Token` (the new
 * token, or an empty value when its token is dead), with the cookie's timing rules, anomaly checks
 * and rotation semantics. The app is the session app of `helpers/http.ts`.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Effect, Exit, FastCheck as fc, Layer, Option, Schema, TestClock } from "effect"
import { HttpApi, HttpApiBuilder, HttpApiError, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSecurity, HttpServer, OpenApi } from "@effect/platform"
import * as Http from "../src/Http.js"
import * as Persistence from "../src/Persistence.js"
import * as SecureRandom from "../src/SecureRandom.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { COOKIE, CookieJar, countedMemory, isRemoval, listen, type Reply, send, sessionApp, sessionServer, totalCalls } from "./helpers/http.js"
import { numRuns } from "./helpers/runs.js"

/** A token of the default size: 32 bytes in base64url, no padding. */
const TOKEN = /^[A-Za-z0-9]{4}[A-Za-z0-9_-]{43}$/
const ANSWER = "set-session-token"

const start = (config: SessionConfig.SessionConfigInput = {}, middleware: Http.MiddlewareOptions = { transport: "bearer" }) =>
  Effect.gen(function*() {
    const store = yield* countedMemory
    const url = yield* listen(sessionServer(store.layer, config, middleware))
    return { url, calls: store.calls }
  })

/** A bearer client: holds one token and applies every `Set-Session-Token` answer, as a mobile client must. */
class BearerClient {
  token: string | undefined
  constructor(token?: string) {
    this.token = token
  }
  send(url: string, options: { readonly method?: string; readonly headers?: Record<string, string>; readonly body?: string } = {}) {
    return Effect.tap(
      send(url, {
        ...(options.method ? { method: options.method } : {}),
        ...(options.body === undefined ? {} : { body: options.body }),
        headers: { ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }), ...options.headers }
      }),
      (r) =>
        Effect.sync(() => {
          const answer = r.headers.get(ANSWER)
          // A token replaces the held one; an empty value means the held one is dead.
          if (answer !== null) this.token = answer === "" ? undefined : answer
        })
    )
  }
  post(url: string, headers?: Record<string, string>) {
    return this.send(url, { method: "POST", ...(headers ? { headers } : {}) })
  }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

const answered = (r: Reply): string => {
  const v = r.headers.get(ANSWER)
  assert.isNotNull(v, `expected a ${ANSWER} header`)
  assert.match(v!, TOKEN)
  return v!
}
const assertEnded = (r: Reply) => assert.strictEqual(r.headers.get(ANSWER), "", `expected an empty ${ANSWER} (the token is dead)`)
const assertNoAnswer = (r: Reply) => assert.isNull(r.headers.get(ANSWER))
const assertNoCookie = (r: Reply) => deepStrictEqual(r.setCookies.map((c) => c.raw), [])

describe("Http: bearer tokens", () => {
  it.scoped("feature: bearer tokens: a session is created and used over Authorization: Bearer, answered in Set-Session-Token, never in a cookie", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start()
      const client = new BearerClient()
      const first = yield* client.post(`${url}/count`)
      deepStrictEqual(first.json(), { count: 1 })
      const token = answered(first)
      assertNoCookie(first)
      assert.strictEqual(first.headers.get("cache-control"), "no-store")
      assert.strictEqual(first.headers.get("vary"), "Authorization")
      assert.isNull(first.headers.get("clear-site-data"))
      // The token carries the session; a request that changes no token gets no answer.
      const second = yield* client.post(`${url}/count`)
      deepStrictEqual(second.json(), { count: 2 })
      assertNoAnswer(second)
      assert.strictEqual(client.token, token)
      // The scheme is case-insensitive (RFC 9110) and several spaces are allowed (RFC 6750).
      deepStrictEqual((yield* send(`${url}/read`, { headers: { authorization: `bearer   ${token}` } })).json(), { count: 2, user: null })
      // Reads never create one; a read without a token costs no store call.
      const before = totalCalls(calls())
      const none = yield* send(`${url}/read`)
      deepStrictEqual(none.json(), { count: null, user: null })
      assertNoAnswer(none)
      assert.strictEqual(totalCalls(calls()), before)
    }))

  it.scoped("feature: bearer tokens: a named header ({ header: \"X-Session-Token\" }) is read and answered in that header", () =>
    Effect.gen(function*() {
      const { url } = yield* start({}, { transport: { header: "X-Session-Token" } })
      const first = yield* send(`${url}/count`, { method: "POST" })
      const token = first.headers.get("x-session-token")
      assert.match(token ?? "", TOKEN)
      assertNoAnswer(first)
      assertNoCookie(first)
      assert.strictEqual(first.headers.get("vary"), "X-Session-Token")
      deepStrictEqual((yield* send(`${url}/count`, { method: "POST", headers: { "x-session-token": token! } })).json(), { count: 2 })
      // Authorization is not this route's transport.
      deepStrictEqual((yield* send(`${url}/read`, { headers: bearer(token!) })).json(), { count: null, user: null })
      const ended = yield* send(`${url}/destroy`, { method: "POST", headers: { "x-session-token": token! } })
      assert.strictEqual(ended.headers.get("x-session-token"), "")
    }))

  it.scoped("feature: bearer tokens: rotation is answered in the header, and the old token follows to the successor during the grace period only", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start({ idRotationInterval: "1 second", gracePeriod: "30 seconds" })
      const client = new BearerClient()
      yield* client.post(`${url}/count`)
      const old = client.token!
      yield* TestClock.adjust("1001 millis")
      const rotation = yield* client.send(`${url}/read`)
      deepStrictEqual(rotation.json(), { count: 1, user: null })
      const successor = answered(rotation)
      assert.notStrictEqual(successor, old)
      assert.strictEqual(rotation.headers.get("cache-control"), "no-store")
      assert.strictEqual(calls().rotate, 1)
      // 10 concurrent requests in flight with the old token share the session and learn the successor.
      const replies = yield* Effect.forEach(
        Array.from({ length: 10 }, () => old),
        (t) => send(`${url}/count`, { method: "POST", headers: bearer(t) }),
        { concurrency: "unbounded" }
      )
      for (const r of replies) assert.strictEqual(answered(r), successor)
      deepStrictEqual(replies.map((r) => r.json().count as number).sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => 2 + i))
      deepStrictEqual((yield* client.send(`${url}/read`)).json(), { count: 11, user: null })
      assert.strictEqual(calls().rotate, 1)
      // After the grace period the old token leads nowhere. Like an unknown cookie it gets no answer:
      // the client may already hold a newer token, which an empty answer would make it drop.
      yield* TestClock.adjust("30 seconds")
      const late = yield* send(`${url}/read`, { headers: bearer(old) })
      deepStrictEqual(late.json(), { count: null, user: null })
      assertNoAnswer(late)
    }))

  it.scoped("feature: bearer tokens: an idle or too old session ends, and the answer says so with an empty Set-Session-Token", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ idleTimeout: "10 minutes", touchInterval: "1 minute", absoluteTimeout: "1 hour" })
      const idle = new BearerClient()
      yield* idle.post(`${url}/count`)
      yield* TestClock.adjust("10 minutes")
      const expired = yield* idle.send(`${url}/read`)
      deepStrictEqual(expired.json(), { count: null, user: null })
      assertEnded(expired)
      assert.isUndefined(idle.token)
      // Active, but past the absolute timeout.
      const active = new BearerClient()
      yield* active.post(`${url}/count`)
      for (let i = 0; i < 6; i++) {
        yield* TestClock.adjust("9 minutes")
        assert.strictEqual((yield* active.send(`${url}/read`)).json().count, 1)
      }
      yield* TestClock.adjust("7 minutes")
      assertEnded(yield* active.send(`${url}/read`))
    }))

  it.scoped("feature: bearer tokens: a changed user agent destroys the session (the anomaly check applies to bearer clients too)", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const client = new BearerClient()
      yield* client.post(`${url}/count`, { "user-agent": "app/1.0" })
      const token = client.token!
      const other = yield* send(`${url}/read`, { headers: { ...bearer(token), "user-agent": "curl/8" } })
      deepStrictEqual(other.json(), { count: null, user: null })
      assertEnded(other)
      // Destroyed: the original agent gets nothing either.
      deepStrictEqual((yield* send(`${url}/read`, { headers: { ...bearer(token), "user-agent": "app/1.0" } })).json(), { count: null, user: null })
    }))

  it.scoped("feature: bearer tokens: logIn and logOut rotate the token and kill the old one; destroy ends it; no Clear-Site-Data for a header client", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const client = new BearerClient()
      yield* client.post(`${url}/count`)
      const anonymous = client.token!
      const login = yield* client.post(`${url}/login/alice`)
      const loggedIn = answered(login)
      assert.notStrictEqual(loggedIn, anonymous)
      deepStrictEqual((yield* client.send(`${url}/read`)).json(), { count: 1, user: "alice" })
      deepStrictEqual((yield* send(`${url}/read`, { headers: bearer(anonymous) })).json(), { count: null, user: null })
      const logout = yield* client.post(`${url}/logout`)
      assert.notStrictEqual(answered(logout), loggedIn)
      assert.isNull(logout.headers.get("clear-site-data"))
      deepStrictEqual((yield* client.send(`${url}/read`)).json(), { count: 1, user: null })
      deepStrictEqual((yield* send(`${url}/read`, { headers: bearer(loggedIn) })).json(), { count: null, user: null })
      const held = client.token!
      const destroy = yield* client.post(`${url}/destroy`)
      assertEnded(destroy)
      assert.isNull(destroy.headers.get("clear-site-data"))
      assertNoCookie(destroy)
      deepStrictEqual((yield* send(`${url}/read`, { headers: bearer(held) })).json(), { count: null, user: null })
    }))

  it.scoped("feature: bearer tokens: a route accepting either serves cookie clients and bearer clients; a new session goes on the first transport given", () =>
    Effect.gen(function*() {
      const { url } = yield* start({}, { transport: ["cookie", "bearer"] })
      const jar = new CookieJar()
      const browser = yield* send(`${url}/count`, { method: "POST", jar })
      assert.match(jar.get(COOKIE) ?? "", TOKEN)
      assertNoAnswer(browser)
      assert.strictEqual(browser.headers.get("vary"), "Authorization, Cookie")
      deepStrictEqual((yield* send(`${url}/count`, { method: "POST", jar })).json(), { count: 2 })
      // A bearer client with a token from elsewhere (a bearer-first route) is answered in the header.
      const api = yield* start({}, { transport: ["bearer", "cookie"] })
      const client = new BearerClient()
      const created = yield* client.post(`${api.url}/count`)
      answered(created)
      assertNoCookie(created)
      deepStrictEqual((yield* client.post(`${api.url}/count`)).json(), { count: 2 })
    }))

  it.scoped("security: a request with both a cookie and a bearer token uses the bearer token and leaves the cookie alone, whatever the order given", () =>
    Effect.gen(function*() {
      const config = { idRotationInterval: "1 second" } as const
      for (const transport of [["cookie", "bearer"], ["bearer", "cookie"]] as const) {
        // Three servers over one store: the route under test, and one per transport to mint sessions.
        const store = yield* countedMemory
        const mixed = yield* listen(sessionServer(store.layer, config, { transport }))
        const cookieOnly = yield* listen(sessionServer(store.layer, config))
        const bearerOnly = yield* listen(sessionServer(store.layer, config, { transport: "bearer" }))
        const jar = new CookieJar()
        yield* send(`${cookieOnly}/login/cookie-user`, { method: "POST", jar })
        const client = new BearerClient()
        yield* client.post(`${bearerOnly}/login/bearer-user`)
        yield* TestClock.adjust("1001 millis")
        const both = yield* send(`${mixed}/read`, { headers: bearer(client.token!), cookie: jar.header()! })
        deepStrictEqual(both.json(), { count: null, user: "bearer-user" })
        // The rotation is answered in the header; the cookie is neither renewed nor removed.
        answered(both)
        assertNoCookie(both)
        // A malformed bearer value decides too: no session, and the cookie is not consulted.
        const bad = yield* send(`${mixed}/read`, { headers: bearer("not-a-token"), cookie: jar.header()! })
        deepStrictEqual(bad.json(), { count: null, user: null })
        assertEnded(bad)
        assertNoCookie(bad)
        // The cookie alone still carries its own session.
        deepStrictEqual((yield* send(`${mixed}/read`, { jar })).json(), { count: null, user: "cookie-user" })
      }
    }))

  it.scoped("security: a bearer-only route never reads the cookie, so a cross-site request riding it gets no session (and no store call)", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const cookieUrl = yield* listen(sessionServer(store.layer))
      const jar = new CookieJar()
      yield* send(`${cookieUrl}/login/alice`, { method: "POST", jar })
      const bearerUrl = yield* listen(sessionServer(store.layer, {}, { transport: "bearer" }))
      const before = totalCalls(store.calls())
      const ride = yield* send(`${bearerUrl}/read`, { jar, headers: { origin: "https://evil.example", "sec-fetch-site": "cross-site" } })
      deepStrictEqual(ride.json(), { count: null, user: null })
      assertNoCookie(ride)
      assertNoAnswer(ride)
      assert.strictEqual(ride.headers.get("vary"), "Authorization")
      assert.strictEqual(totalCalls(store.calls()), before)
      // A browser's cached Basic credentials are no bearer token either.
      const basic = yield* send(`${bearerUrl}/read`, { jar, headers: { authorization: "Basic YWxpY2U6c2VjcmV0" } })
      deepStrictEqual(basic.json(), { count: null, user: null })
      assertNoAnswer(basic)
      assert.strictEqual(totalCalls(store.calls()), before)
    }))

  it.scoped("security: ASVS 14.2.1 — a token in the URL (query string) is never accepted, on any transport", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start({}, { transport: ["bearer", "cookie", { header: "X-Session-Token" }] })
      const client = new BearerClient()
      yield* client.post(`${url}/login/alice`)
      const token = client.token!
      deepStrictEqual((yield* client.send(`${url}/read`)).json(), { count: null, user: "alice" })
      const before = totalCalls(calls())
      for (const name of ["token", "access_token", "session", "session_token", "sid", "id", COOKIE, "authorization", "x-session-token"]) {
        const r = yield* send(`${url}/read?${encodeURIComponent(name)}=${token}`)
        deepStrictEqual(r.json(), { count: null, user: null }, name)
        assertNoAnswer(r)
        assertNoCookie(r)
      }
      deepStrictEqual((yield* send(`${url}/read?access_token=${encodeURIComponent(`Bearer ${token}`)}`)).json(), { count: null, user: null })
      assert.strictEqual(totalCalls(calls()), before, "a token in the URL never reaches the store")
    }))

  const badBearer = fc.oneof(
    fc.string({ unit: "grapheme-ascii", maxLength: 60 }),
    fc.constantFrom("", " ", "=", "a.b.c", "x".repeat(46), "x".repeat(48), "A".repeat(47) + "=", "\"" + "A".repeat(45) + "\"")
  ).filter((v) => !TOKEN.test(v.trim()))

  it.scoped.prop(
    "security: a malformed bearer value is treated like a malformed cookie: no session, no store call, and the client is told to drop it",
    [badBearer],
    ([value]) =>
      Effect.gen(function*() {
        const { calls, url } = yield* start()
        const r = yield* send(`${url}/read`, { headers: { authorization: `Bearer ${value}` } })
        assert.strictEqual(r.status, 200)
        deepStrictEqual(r.json(), { count: null, user: null })
        assert.strictEqual(totalCalls(calls()), 0)
        assertEnded(r)
      }),
    { fastCheck: { numRuns: numRuns(25) } }
  )

  it.scoped("security: an oversized token header gets no session, no store call and no answer", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start()
      const r = yield* send(`${url}/read`, { headers: { authorization: `Bearer ${"A".repeat(5000)}` } })
      deepStrictEqual(r.json(), { count: null, user: null })
      assertNoAnswer(r)
      assert.strictEqual(totalCalls(calls()), 0)
    }))

  it("the transport option is checked when the middleware is built", () => {
    for (const transport of [[], { header: "Cookie" }, { header: "authorization" }, { header: "Host" }, { header: "bad name" }, "query"] as const) {
      expect(() => Http.middleware({ transport: transport as any })).toThrow(TypeError)
    }
    expect(() => Http.middleware({ transport: ["cookie", "bearer", { header: "X-Session-Token" }] })).not.toThrow()
  })
})

/** The operations of the model run: each a request of the session app, or time passing. */
type Step =
  | { readonly _tag: "request"; readonly method: "GET" | "POST"; readonly path: string }
  | { readonly _tag: "advance"; readonly millis: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(
    ...([["GET", "/read"], ["POST", "/count"], ["POST", "/login/alice"], ["POST", "/login/bob"], ["POST", "/logout"], ["POST", "/regenerate"], ["POST", "/destroy"]] as const)
  ).map(([method, path]): Step => ({ _tag: "request", method, path })) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 90_000 }).map((millis): Step => ({ _tag: "advance", millis })) }
)

describe("Http: bearer and cookie are one session machine", () => {
  const config: SessionConfig.SessionConfigInput = {
    idleTimeout: "2 minutes",
    touchInterval: "10 seconds",
    absoluteTimeout: "5 minutes",
    idRotationInterval: "30 seconds",
    gracePeriod: "20 seconds",
    cookie: { secure: false }
  }

  /** The session app over a fresh memory store and a seeded SecureRandom: the same seed, the same tokens. */
  const serve = (middleware: Http.MiddlewareOptions) =>
    listen(
      HttpServer.serve(sessionApp(middleware)).pipe(
        Layer.provide(Sessions.layerFromContext),
        Layer.provide(Layer.mergeAll(Persistence.layerMemory, SessionConfig.layer(config), SecureRandom.layerSeeded("bearer-vs-cookie")))
      )
    )

  it.effect.prop(
    "feature: bearer tokens: the same request sequence over the cookie and over bearer gives the same answers and the same tokens",
    [fc.array(step, { maxLength: 25 })],
    ([steps]) =>
      Effect.scoped(Effect.gen(function*() {
        const cookieUrl = yield* serve({})
        const bearerUrl = yield* serve({ transport: "bearer" })
        const jar = new CookieJar()
        const client = new BearerClient()
        for (const s of steps) {
          if (s._tag === "advance") {
            yield* TestClock.adjust(s.millis)
            continue
          }
          const viaCookie = yield* send(`${cookieUrl}${s.path}`, { method: s.method, jar })
          const viaBearer = yield* client.send(`${bearerUrl}${s.path}`, { method: s.method })
          assert.strictEqual(viaBearer.status, viaCookie.status)
          assert.strictEqual(viaBearer.text, viaCookie.text)
          // Same answer: a cookie set ⇔ a token in the header; a cookie removed ⇔ an empty header.
          const set = viaCookie.cookie("id")
          const answer = viaBearer.headers.get(ANSWER)
          if (set === undefined) assert.isNull(answer)
          else assert.strictEqual(answer, isRemoval(set) ? "" : set.value)
          assert.strictEqual(client.token, jar.get("id"))
        }
      })),
    { fastCheck: { numRuns: numRuns(20) } }
  )
})

// ---- HttpApi: a Tag that declares HttpApiSecurity.bearer

class TokenSecurity extends HttpApiMiddleware.Tag<TokenSecurity>()("TokenSecurity", Http.securityOptions({ bearer: true })) {}
class EitherSecurity extends HttpApiMiddleware.Tag<EitherSecurity>()(
  "EitherSecurity",
  Http.securityOptions({ cookie: "__Host-id", bearer: true })
) {}
class TokenUser extends HttpApiMiddleware.Tag<TokenUser>()("TokenUser", Http.requireUserOptions({ bearer: true })) {}

const visit = Effect.flatMap(Http.CurrentSession, (s) => s.update("visits", (n) => (Option.isSome(n) && typeof n.value === "number" ? n.value + 1 : 1))).pipe(
  Effect.map((visits) => ({ visits: visits as number })),
  Http.toApiErrors
)

class Tokens extends HttpApiGroup.make("tokens")
  .add(HttpApiEndpoint.post("login", "/token").setPayload(Schema.Struct({ user: Schema.String })))
  .add(HttpApiEndpoint.post("visit", "/visit").addSuccess(Schema.Struct({ visits: Schema.Number })))
  .middleware(TokenSecurity)
{}
class Mixed extends HttpApiGroup.make("mixed")
  .add(HttpApiEndpoint.post("visitEither", "/either").addSuccess(Schema.Struct({ visits: Schema.Number })))
  .middleware(EitherSecurity)
{}
class Me extends HttpApiGroup.make("me").add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.Struct({ userId: Schema.String }))).middleware(TokenUser) {}
class TokenApi extends HttpApi.make("tokens").add(Tokens).add(Mixed).add(Me) {}

const TokensLive = HttpApiBuilder.group(TokenApi, "tokens", (h) =>
  h.handle("login", ({ payload }) => Effect.flatMap(Http.CurrentSession, (s) => s.logIn(payload.user)).pipe(Http.toApiErrors))
    .handle("visit", () => visit))
const MixedLive = HttpApiBuilder.group(TokenApi, "mixed", (h) => h.handle("visitEither", () => visit))
const MeLive = HttpApiBuilder.group(TokenApi, "me", (h) => h.handle("me", () => Effect.map(Http.CurrentUser, (u) => ({ userId: u.userId }))))

const tokenApiServer = (store: Layer.Layer<Persistence.Persistence>) =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.api(TokenApi).pipe(Layer.provide([TokensLive, MixedLive, MeLive]))),
    Layer.provide([
      Layer.effect(TokenSecurity, Http.securityHandlers(TokenSecurity)),
      Layer.effect(EitherSecurity, Http.securityHandlers(EitherSecurity)),
      Layer.effect(TokenUser, Http.requireUserHandlers(TokenUser))
    ]),
    Layer.provide(Sessions.layer({ idRotationInterval: "1 second", gracePeriod: "30 seconds" }).pipe(Layer.provide(store)))
  )

describe("HttpApi: bearer tokens", () => {
  it("feature: bearer tokens: OpenAPI documents HttpApiSecurity.bearer (and the cookie beside it on a route that takes either)", () => {
    const spec = OpenApi.fromApi(TokenApi)
    expect(spec.components.securitySchemes["bearer"]).toMatchObject({ type: "http", scheme: "bearer" })
    expect(spec.components.securitySchemes["session"]).toMatchObject({ type: "apiKey", in: "cookie", name: "__Host-id" })
    expect(spec.paths["/token"]?.post?.security).toStrictEqual([{ bearer: [] }])
    // Either scheme suffices (OpenAPI lists alternatives).
    expect(spec.paths["/either"]?.post?.security).toStrictEqual([{ session: [] }, { bearer: [] }])
  })

  it.scoped("feature: bearer tokens: an HttpApi endpoint behind a bearer Tag logs in, rotates and follows over the header", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(tokenApiServer(store.layer))
      const client = new BearerClient()
      const login = yield* client.send(`${url}/token`, { method: "POST", headers: { "content-type": "application/json" }, body: "{\"user\":\"alice\"}" })
      assert.strictEqual(login.status, 204)
      const token = answered(login)
      assertNoCookie(login)
      deepStrictEqual((yield* client.send(`${url}/me`)).json(), { userId: "alice" })
      deepStrictEqual((yield* client.post(`${url}/visit`)).json(), { visits: 1 })
      yield* TestClock.adjust("1001 millis")
      const rotated = yield* client.post(`${url}/visit`)
      const successor = answered(rotated)
      assert.notStrictEqual(successor, token)
      // The old token follows during the grace period, and learns the successor.
      const followed = yield* send(`${url}/visit`, { method: "POST", headers: bearer(token) })
      deepStrictEqual(followed.json(), { visits: 3 })
      assert.strictEqual(answered(followed), successor)
      // Without a token: RequireUser answers 401; a malformed one reaches no store.
      assert.strictEqual((yield* send(`${url}/me`)).status, 401)
      const before = totalCalls(store.calls())
      const bad = yield* send(`${url}/me`, { headers: bearer("x") })
      assert.strictEqual(bad.status, 401)
      assert.strictEqual(totalCalls(store.calls()), before)
      // The cookie is not this Tag's transport, and the URL is nobody's.
      assert.strictEqual((yield* send(`${url}/me`, { cookie: `${COOKIE}=${successor}` })).status, 401)
      assert.strictEqual((yield* send(`${url}/me?access_token=${successor}`)).status, 401)
      // A Tag listing both serves the same session over either; the header wins.
      deepStrictEqual((yield* send(`${url}/either`, { method: "POST", headers: bearer(successor) })).json(), { visits: 4 })
      deepStrictEqual((yield* send(`${url}/either`, { method: "POST", cookie: `${COOKIE}=${successor}` })).json(), { visits: 5 })
      const both = yield* send(`${url}/either`, { method: "POST", cookie: `${COOKIE}=${successor}`, headers: bearer("x") })
      deepStrictEqual(both.json(), { visits: 1 })
      assert.strictEqual(both.headers.get("vary"), "Authorization, Cookie")
    }))

  it.effect("security: ASVS 14.2.1 — a Tag that documents a token in the query string (or Basic credentials) fails when its layer is built", () =>
    Effect.gen(function*() {
      class Query extends HttpApiMiddleware.Tag<Query>()("Query", {
        provides: Http.CurrentSession,
        failure: HttpApiError.ServiceUnavailable,
        security: { session: HttpApiSecurity.apiKey({ in: "query", key: "token" }) }
      }) {}
      class Basic extends HttpApiMiddleware.Tag<Basic>()("Basic", {
        provides: Http.CurrentSession,
        failure: HttpApiError.ServiceUnavailable,
        security: { session: HttpApiSecurity.basic }
      }) {}
      const build = (layer: Layer.Layer<any, never, Sessions.Sessions>) => Effect.exit(Layer.build(layer.pipe(Layer.provide(Sessions.layerMemory()))).pipe(Effect.scoped))
      const query = yield* build(Layer.effect(Query, Http.securityHandlers(Query)))
      assert.isTrue(Exit.isFailure(query))
      assert.include(String(Exit.isFailure(query) ? query.cause : ""), "ASVS 14.2.1")
      assert.isTrue(Exit.isFailure(yield* build(Layer.effect(Basic, Http.securityHandlers(Basic)))))
    }))
})
