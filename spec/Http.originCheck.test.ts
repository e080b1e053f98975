/**
 * `Http.originCheck`: the cross-site request check, through web handlers (Request → Response) so
 * that every header is the test's to choose — a browser sets `Origin`, `Sec-Fetch-Site` and
 * `Host` itself (spec/e2e/browser.test.ts shows it in Chromium).
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApp, HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { assert, describe, expect, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Effect, Layer, Logger, Schema } from "effect"
import * as Http from "../src/Http.js"
import { verdict } from "../src/internal/originCheck.js"
import * as Sessions from "../src/Sessions.js"
import { COOKIE, CookieJar, countedMemory, fromWeb, routes, totalCalls } from "./helpers/http.js"

const APP = "app.example.com"

/** Counts the requests that reached the app. */
const counting = () => {
  let reached = 0
  const app = HttpRouter.empty.pipe(
    HttpRouter.all("*", Effect.sync(() => {
      reached++
      return HttpServerResponse.text("done")
    }))
  )
  return { app, reached: () => reached }
}

const request = (
  handler: (request: Request) => Promise<Response>,
  method: string,
  headers: Record<string, string>,
  path = "/transfer"
) => Effect.flatMap(Effect.promise(() => handler(new Request(`http://${APP}${path}`, { method, headers }))), (r) => fromWeb(r))

/** A checked app and a function that sends one request with the given headers. */
const checked = (options?: Http.OriginCheckOptions) => {
  const { app, reached } = counting()
  const handler = HttpApp.toWebHandler(app.pipe(Http.originCheck(options)))
  return { send: (method: string, headers: Record<string, string>) => request(handler, method, headers), reached }
}

const assertRefused = (r: { readonly status: number; readonly text: string }) => {
  assert.strictEqual(r.status, 403)
  assert.strictEqual(r.text, "Forbidden: cross-site request")
}

describe("Http.originCheck", () => {
  it.effect("feature: a same-origin POST passes (Origin equal to the Host it was sent to)", () =>
    Effect.gen(function*() {
      const { reached, send } = checked()
      const r = yield* send("POST", { host: APP, origin: `https://${APP}` })
      assert.strictEqual(r.status, 200)
      assert.strictEqual(r.text, "done")
      // The default port is the same origin; another port is not.
      assert.strictEqual((yield* send("POST", { host: `${APP}:443`, origin: `https://${APP}` })).status, 200)
      assertRefused(yield* send("POST", { host: `${APP}:8443`, origin: `https://${APP}` }))
      assert.strictEqual(reached(), 2)
    }))

  it.effect("feature: a cross-site POST is refused with 403 and never reaches the app (PUT, PATCH, DELETE too)", () =>
    Effect.gen(function*() {
      const { reached, send } = checked()
      for (const method of ["POST", "PUT", "PATCH", "DELETE", "post"]) {
        assertRefused(yield* send(method, { host: APP, origin: "https://evil.example.net", "sec-fetch-site": "cross-site" }))
      }
      // A malformed Origin is no origin of ours either.
      assertRefused(yield* send("POST", { host: APP, origin: "app.example.com" }))
      assert.strictEqual(reached(), 0)
    }))

  it.effect("feature: an allowed origin passes; the explicit origin replaces the Host", () =>
    Effect.gen(function*() {
      const { reached, send } = checked({ allowedOrigins: ["https://admin.example.com", "HTTPS://Partner.Example.org:443/"] })
      assert.strictEqual((yield* send("POST", { host: APP, origin: "https://admin.example.com" })).status, 200)
      assert.strictEqual((yield* send("POST", { host: APP, origin: "https://partner.example.org" })).status, 200)
      // An allowed origin is an origin: its scheme and port count.
      assertRefused(yield* send("POST", { host: APP, origin: "http://admin.example.com" }))
      assertRefused(yield* send("POST", { host: APP, origin: "https://admin.example.com:8443" }))
      assert.strictEqual(reached(), 2)

      const explicit = checked({ origin: `https://${APP}` })
      // A proxy that rewrote Host does not matter …
      assert.strictEqual((yield* explicit.send("POST", { host: "backend:8080", origin: `https://${APP}` })).status, 200)
      // … and the scheme is part of the origin.
      assertRefused(yield* explicit.send("POST", { host: APP, origin: `http://${APP}` }))
      const scheme = checked({ scheme: "https" })
      assert.strictEqual((yield* scheme.send("POST", { host: APP, origin: `https://${APP}` })).status, 200)
      assertRefused(yield* scheme.send("POST", { host: APP, origin: `http://${APP}` }))
    }))

  it.effect("feature: GET, HEAD and OPTIONS pass whatever their origin (safe methods are not checked)", () =>
    Effect.gen(function*() {
      const { reached, send } = checked()
      for (const method of ["GET", "HEAD", "OPTIONS"]) {
        const r = yield* send(method, { host: APP, origin: "https://evil.example.net", "sec-fetch-site": "cross-site" })
        assert.strictEqual(r.status, 200, method)
      }
      assert.strictEqual((yield* send("GET", { host: APP, origin: "null" })).status, 200)
      assert.strictEqual(reached(), 4)
    }))

  it.effect("feature: Origin: null is refused, even when \"null\" is listed", () =>
    Effect.gen(function*() {
      const { reached, send } = checked()
      assertRefused(yield* send("POST", { host: APP, origin: "null" }))
      assertRefused(yield* send("POST", { host: APP, origin: "null", "sec-fetch-site": "same-origin" }))
      assert.strictEqual(reached(), 0)
      expect(() => Http.originCheck({ allowedOrigins: ["null"] })).toThrow(TypeError)
      expect(() => Http.originCheck({ origin: "app.example.com" })).toThrow(TypeError)
    }))

  it.effect("feature: without Origin, Sec-Fetch-Site: cross-site is refused; same-origin and none pass", () =>
    Effect.gen(function*() {
      const { reached, send } = checked()
      assertRefused(yield* send("POST", { host: APP, "sec-fetch-site": "cross-site" }))
      assertRefused(yield* send("POST", { host: APP, "sec-fetch-site": "Cross-Site" }))
      assert.strictEqual((yield* send("POST", { host: APP, "sec-fetch-site": "same-origin" })).status, 200)
      assert.strictEqual((yield* send("POST", { host: APP, "sec-fetch-site": "none" })).status, 200)
      assert.strictEqual(reached(), 2)
    }))

  it.effect("feature: a same-site sibling subdomain is refused unless allowed (what SameSite=Lax lets through)", () =>
    Effect.gen(function*() {
      const sibling = { host: APP, origin: "https://evil.example.com", "sec-fetch-site": "same-site" }
      const strict = checked()
      assertRefused(yield* strict.send("POST", sibling))
      // Without Origin, same-site cannot name the sibling: refused.
      assertRefused(yield* strict.send("POST", { host: APP, "sec-fetch-site": "same-site" }))
      assert.strictEqual(strict.reached(), 0)
      const allowing = checked({ allowedOrigins: ["https://evil.example.com"] })
      assert.strictEqual((yield* allowing.send("POST", sibling)).status, 200)
      assertRefused(yield* allowing.send("POST", { ...sibling, origin: "https://other.example.com" }))
      assert.strictEqual(allowing.reached(), 1)
    }))

  it.effect("feature: a request with neither Origin nor Sec-Fetch-Site passes (a client that is not a browser)", () =>
    Effect.gen(function*() {
      const { reached, send } = checked()
      assert.strictEqual((yield* send("POST", { host: APP })).status, 200)
      assert.strictEqual((yield* send("DELETE", {})).status, 200)
      assert.strictEqual(reached(), 2)
    }))

  it.scoped("feature: around the session middleware a refused request touches neither the store nor the cookie", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const context = yield* Layer.build(Sessions.layer({}).pipe(Layer.provide(store.layer)))
      const handler = HttpApp.toWebHandler(Effect.provide(routes.pipe(Http.middleware(), Http.originCheck()), context))
      const jar = new CookieJar()
      const call = (path: string, headers: Record<string, string>) =>
        Effect.flatMap(
          Effect.promise(() => handler(new Request(`http://${APP}${path}`, { method: "POST", headers: { ...headers, cookie: jar.header() ?? "" } }))),
          (r) => fromWeb(r, jar)
        )
      deepStrictEqual((yield* call("/count", { host: APP, origin: `https://${APP}` })).json(), { count: 1 })
      const token = jar.get(COOKIE)
      const before = totalCalls(store.calls())
      const r = yield* call("/destroy", { host: APP, origin: "https://evil.example.com" })
      assertRefused(r)
      deepStrictEqual(r.setCookies, [])
      assert.strictEqual(totalCalls(store.calls()), before)
      assert.strictEqual(jar.get(COOKIE), token)
      deepStrictEqual((yield* call("/count", { host: APP, origin: `https://${APP}` })).json(), { count: 2 })
    }))

  it.scoped("feature: in an HttpApi, as HttpApiBuilder.middleware(Http.originCheck())", () =>
    Effect.gen(function*() {
      class Group extends HttpApiGroup.make("g").add(HttpApiEndpoint.post("act", "/act").addSuccess(Schema.String)) {}
      class Api extends HttpApi.make("api").add(Group) {}
      const GroupLive = HttpApiBuilder.group(Api, "g", (handlers) => handlers.handle("act", () => Effect.succeed("acted")))
      const { dispose, handler } = HttpApiBuilder.toWebHandler(
        Layer.mergeAll(
          HttpApiBuilder.api(Api).pipe(Layer.provide(GroupLive)),
          HttpApiBuilder.middleware(Http.originCheck()),
          HttpServer.layerContext
        )
      )
      yield* Effect.addFinalizer(() => Effect.promise(dispose))
      const ok = yield* request(handler, "POST", { host: APP, origin: `https://${APP}` }, "/act")
      assert.strictEqual(ok.status, 200)
      deepStrictEqual(ok.json(), "acted")
      assertRefused(yield* request(handler, "POST", { host: APP, origin: "https://evil.example.net" }, "/act"))
    }))

  // The verdict itself, with headers no fetch `Request` would carry (a Host with a path, no Host).
  describe("the verdict (what is refused, and the reason that is logged)", () => {
    const own = { origin: undefined, scheme: undefined, allowed: new Set<string>() }
    const post = (headers: Record<string, string>) => verdict("POST", headers, own)

    it("Origin: null, in any case and with spaces, is refused as such (not as malformed)", () => {
      assert.strictEqual(post({ host: APP, origin: "null" }), "Origin: null")
      assert.strictEqual(post({ host: APP, origin: " NULL " }), "Origin: null")
    })

    it("each refusal names its reason", () => {
      assert.strictEqual(post({ host: APP, origin: "app.example.com" }), "a malformed Origin")
      assert.strictEqual(post({ host: APP, origin: "https://evil.example.net" }), "a cross-origin Origin")
      assert.strictEqual(verdict("POST", { origin: "https://evil.example.net" }, { ...own, origin: `https://${APP}` }), "a cross-origin Origin")
      assert.strictEqual(post({ host: APP, "sec-fetch-site": "same-site" }), "Sec-Fetch-Site: same-site")
      assert.strictEqual(post({ host: APP, "sec-fetch-site": " Cross-Site " }), "Sec-Fetch-Site: cross-site")
    })

    it("an http origin is an origin (no scheme configured); any other scheme is malformed, even on the same host", () => {
      assert.strictEqual(post({ host: APP, origin: `http://${APP}` }), undefined)
      assert.strictEqual(post({ host: APP, origin: `ftp://${APP}` }), "a malformed Origin")
      assert.strictEqual(post({ host: APP, origin: `ws://${APP}` }), "a malformed Origin")
    })

    it("a port is compared with the scheme's default: :443 is not http's, :80 is not https's", () => {
      assert.strictEqual(post({ host: `${APP}:80`, origin: `http://${APP}` }), undefined)
      assert.strictEqual(post({ host: `${APP}:443`, origin: `http://${APP}` }), "a cross-origin Origin")
      assert.strictEqual(post({ host: `${APP}:80`, origin: `https://${APP}` }), "a cross-origin Origin")
    })

    it("a Host that is not a bare host[:port] (a path, user info, a query, or not parseable) names no origin", () => {
      for (const host of [`${APP}/evil`, `evil@${APP}`, `${APP}?x=1`, "app example.com", "[::1"]) {
        assert.strictEqual(post({ host, origin: `https://${APP}` }), "a cross-origin Origin", host)
      }
    })

    it("without a Host header no origin is the request's own (not even one whose host is \"undefined\")", () => {
      assert.strictEqual(post({ origin: "https://undefined" }), "a cross-origin Origin")
    })

    it("a bad origin option says which option and which text", () => {
      expect(() => Http.originCheck({ origin: "app.example.com" })).toThrow(
        "effect-sessions: Http.originCheck origin \"app.example.com\" is not an http(s) origin"
      )
      expect(() => Http.originCheck({ allowedOrigins: ["ftp://x.example"] })).toThrow(
        "effect-sessions: Http.originCheck allowedOrigins entry \"ftp://x.example\" is not an http(s) origin"
      )
    })

    it.effect("a refused request is logged with its method and reason", () =>
      Effect.gen(function*() {
        const lines: Array<unknown> = []
        const logger = Logger.make(({ message }) => {
          lines.push(message)
        })
        const { app } = counting()
        const handler = HttpApp.toWebHandler(app.pipe(Http.originCheck(), Effect.provide(Logger.replace(Logger.defaultLogger, logger))))
        assertRefused(yield* request(handler, "PUT", { host: APP, origin: "https://evil.example.net" }))
        deepStrictEqual(lines.flat(), ["cross-site request refused: PUT with a cross-origin Origin"])
      }))
  })
})
