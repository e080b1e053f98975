/**
 * HttpApi with one security middleware and nothing around the API: a Tag declared with
 * `Http.securityOptions(name)` documents the configured cookie in OpenAPI, resolves the session
 * from that cookie, writes `Set-Cookie` on the way out, answers 503 on a store outage, and
 * `Http.toApiErrors` maps the session errors a handler lets through.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, OpenApi } from "@effect/platform"
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Schema } from "effect"
import * as Http from "../src/Http.js"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import * as Sessions from "../src/Sessions.js"
import { switchable } from "../src/testing.js"
import { CookieJar, listen, send } from "./helpers/http.js"

class SidSecurity extends HttpApiMiddleware.Tag<SidSecurity>()("SidSecurity", Http.securityOptions("sid")) {}

const Visits = Session.key("visits", Schema.Number)

class Counter extends HttpApiGroup.make("counter")
  .add(HttpApiEndpoint.post("visit", "/visit").addSuccess(Schema.Struct({ visits: Schema.Number })))
  .add(HttpApiEndpoint.post("login", "/login"))
  .middleware(SidSecurity)
{}

class Api extends HttpApi.make("api").add(Counter) {}

const CounterLive = HttpApiBuilder.group(Api, "counter", (handlers) =>
  handlers
    .handle("visit", () =>
      Effect.flatMap(Http.CurrentSession, (s) => s.update(Visits, (n) => Option.getOrElse(n, () => 0) + 1)).pipe(
        Effect.map((visits) => ({ visits })),
        Http.toApiErrors
      ))
    .handle("login", () => Effect.flatMap(Http.CurrentSession, (s) => s.logIn("alice")).pipe(Http.toApiErrors)))

const served = (store: Layer.Layer<Persistence.Persistence>, cookieName = "sid") =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(CounterLive))),
    Layer.provide(Layer.effect(SidSecurity, Http.securityHandlers(SidSecurity))),
    Layer.provide(Sessions.layer({ cookie: { name: cookieName, secure: false } }).pipe(Layer.provide(store)))
  )

describe("HttpApi: one security middleware", () => {
  it("OpenAPI documents the Tag's cookie name", () => {
    const spec = OpenApi.fromApi(Api)
    expect(spec.components.securitySchemes["SidSecurity/session"] ?? Object.values(spec.components.securitySchemes)[0]).toMatchObject({
      type: "apiKey",
      in: "cookie",
      name: "sid"
    })
    const def = OpenApi.fromApi(HttpApi.make("d").add(HttpApiGroup.make("g").add(HttpApiEndpoint.get("x", "/x")).middleware(Http.SessionSecurity)))
    expect(Object.values(def.components.securitySchemes)[0]).toMatchObject({ in: "cookie", name: "__Host-id" })
  })

  it.scoped("it reads the configured cookie, resolves the session and sets the cookie on the way out", () =>
    Effect.gen(function*() {
      const url = yield* listen(served(Persistence.layerMemory))
      const jar = new CookieJar()
      const first = yield* send(`${url}/visit`, { method: "POST", jar })
      assert.strictEqual(first.status, 200)
      expect(first.json()).toStrictEqual({ visits: 1 })
      const token = jar.get("sid")
      assert.isDefined(token)
      expect((yield* send(`${url}/visit`, { method: "POST", jar })).json()).toStrictEqual({ visits: 2 })
      const login = yield* send(`${url}/login`, { method: "POST", jar })
      assert.strictEqual(login.status, 204)
      assert.notStrictEqual(jar.get("sid"), token, "the log-in rotated the cookie")
      expect((yield* send(`${url}/visit`, { method: "POST", jar })).json()).toStrictEqual({ visits: 3 })
      // the old token is dead: a request carrying it gets a fresh session
      expect((yield* send(`${url}/visit`, { method: "POST", cookie: `sid=${token}` })).json()).toStrictEqual({ visits: 1 })
      // a duplicated cookie is no session (the middleware's rules), never the first or the last one
      const dup = yield* send(`${url}/visit`, { method: "POST", cookie: `sid=${jar.get("sid")}; sid=${jar.get("sid")}` })
      expect(dup.json()).toStrictEqual({ visits: 1 })
    }))

  it.scoped("a store outage answers 503 with no cookie, in the security handler and in a handler", () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      const store = switchable(memory)
      const url = yield* listen(served(store.layer))
      const jar = new CookieJar()
      yield* send(`${url}/visit`, { method: "POST", jar })
      yield* store.setDown(true)
      // resolving fails (the cookie's token must be looked up)
      const r = yield* send(`${url}/visit`, { method: "POST", jar: jar.copy() })
      assert.strictEqual(r.status, 503)
      assert.strictEqual(r.setCookies.length, 0)
      // without a cookie nothing is resolved: the handler's write fails, and toApiErrors makes it a 503
      const fresh = yield* send(`${url}/visit`, { method: "POST" })
      assert.strictEqual(fresh.status, 503)
      assert.strictEqual(fresh.setCookies.length, 0)
    }))

  it.effect("a Tag that documents another cookie than the configured one fails when the layer is built", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(
        Layer.effect(SidSecurity, Http.securityHandlers(SidSecurity)).pipe(Layer.provide(Sessions.layerMemory()))
      ).pipe(Effect.scoped))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "Http.securityOptions(\"__Host-id\")")
    }))
})
