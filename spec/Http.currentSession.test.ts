/**
 * CurrentSession through the middleware, operation by operation (`src/internal/http.ts`): the
 * operations a handler rarely needs (`remove`, `pop`, `modify`, `endSession`, `logOutOthers`,
 * `listSessions`' current flag), what the middleware answers when the store fails or the session
 * ends while a request holds it — on the cookie and on a header transport — and what it logs;
 * and the HttpApi security handlers resolving a request's session once.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApp, HttpRouter, HttpServerResponse } from "@effect/platform"
import { assert, describe, expect, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Effect, Layer, Logger, Option, Schema } from "effect"
import * as Http from "../src/Http.js"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import type * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { switchable } from "../src/testing.js"
import { publicId } from "../src/internal/hash.js"
import { COOKIE, CookieJar, countedMemory, fromWeb, isRemoval, listen, send, totalCalls } from "./helpers/http.js"

const HOST = "http://app.example.com"

const json = (body: unknown) => HttpServerResponse.unsafeJson(body)

/** Routes over the CurrentSession operations this spec is about. */
const routes = HttpRouter.empty.pipe(
  HttpRouter.post("/set/:key/:value", Effect.gen(function*() {
    const { key, value } = yield* HttpRouter.params
    yield* (yield* Http.CurrentSession).set(key!, value!)
    return HttpServerResponse.empty({ status: 204 })
  })),
  HttpRouter.get("/get/:key", Effect.gen(function*() {
    const { key } = yield* HttpRouter.params
    return json({ value: Option.getOrNull(yield* (yield* Http.CurrentSession).get(key!)) })
  })),
  HttpRouter.post("/remove/:key", Effect.gen(function*() {
    const { key } = yield* HttpRouter.params
    yield* (yield* Http.CurrentSession).remove(key!)
    return HttpServerResponse.empty({ status: 204 })
  })),
  HttpRouter.post("/pop/:key", Effect.gen(function*() {
    const { key } = yield* HttpRouter.params
    return json({ value: Option.getOrNull(yield* (yield* Http.CurrentSession).pop(key!)) })
  })),
  HttpRouter.post("/modify", Effect.gen(function*() {
    const s = yield* (yield* Http.CurrentSession).modify((s) => s.pipe(Session.set("a", 1), Session.set("b", 2)))
    return json({ data: s.data })
  })),
  HttpRouter.post("/login/:user", Effect.gen(function*() {
    const { user } = yield* HttpRouter.params
    yield* (yield* Http.CurrentSession).logIn(user!)
    return HttpServerResponse.empty({ status: 204 })
  })),
  HttpRouter.get("/sessions", Effect.gen(function*() {
    const list = yield* (yield* Http.CurrentSession).listSessions
    return json(list.map((s) => ({ id: s.id, current: s.current })))
  })),
  HttpRouter.post("/end/:id", Effect.gen(function*() {
    const { id } = yield* HttpRouter.params
    return json({ ended: yield* (yield* Http.CurrentSession).endSession(id!) })
  })),
  HttpRouter.post("/logout-others", Effect.gen(function*() {
    return json({ ended: yield* (yield* Http.CurrentSession).logOutOthers })
  })),
  HttpRouter.get("/user", Effect.gen(function*() {
    return json({ user: Option.getOrNull(yield* (yield* Http.CurrentSession).user) })
  })),
  HttpRouter.post("/not-json", Effect.gen(function*() {
    // An untyped caller's value that is no JSON: a SessionDataError that is not "too large".
    yield* (yield* Http.CurrentSession).set("when", new Date(0) as unknown as Session.Json)
    return HttpServerResponse.empty({ status: 204 })
  })),
  HttpRouter.post("/count", Effect.gen(function*() {
    const count = yield* (yield* Http.CurrentSession).update("count", (old) => (Option.getOrElse(old, () => 0) as number) + 1)
    return json({ count })
  })),
  // The request's own session ended by someone else (another request, an admin) while the handler runs.
  HttpRouter.post("/ended-then/:what", Effect.gen(function*() {
    const { what } = yield* HttpRouter.params
    const current = yield* Http.CurrentSession
    const own = Option.getOrThrow(yield* current.session)
    const sessions = yield* Sessions.Sessions
    const ended = yield* sessions.endSession(Option.getOrThrow(own.userId), publicId(own.key))
    assert.isTrue(ended)
    if (what === "ensure") return json({ ip: Option.getOrNull((yield* current.ensure).ip) })
    const count = yield* current.update("count", () => 1)
    return json({ count })
  }))
)

type Store = Persistence.PersistenceShape

/** The routes behind the middleware, over a store, with a `Request → Reply` caller. */
const harness = (options: {
  readonly store?: Effect.Effect<Store>
  readonly config?: SessionConfig.SessionConfigInput
  readonly middleware?: Http.MiddlewareOptions
  readonly logger?: Logger.Logger<unknown, void>
} = {}) =>
  Effect.gen(function*() {
    const store = switchable(yield* (options.store ?? Persistence.makeMemory))
    const context = yield* Layer.build(Sessions.layer({ ...options.config }).pipe(
      Layer.provide(store.layer),
      Layer.provide(Layer.succeed(Sessions.UserLoader, {
        load: (id: string) => Effect.succeed(id === "ghost" ? Option.none() : Option.some({ id, name: id.toUpperCase() }))
      }))
    ))
    let app = Effect.provide(routes.pipe(Http.middleware(options.middleware)), context)
    if (options.logger !== undefined) app = Effect.provide(app, Logger.replace(Logger.defaultLogger, options.logger))
    const handler = HttpApp.toWebHandler(app)
    const call = (method: string, path: string, jar?: CookieJar, headers: Record<string, string> = {}) =>
      Effect.flatMap(
        Effect.promise(() => {
          const cookie = jar?.header()
          return handler(new Request(`${HOST}${path}`, { method, headers: { ...headers, ...(cookie === undefined ? {} : { cookie }) } }))
        }),
        (r) => fromWeb(r, jar)
      )
    return { call, store }
  })

/** Log messages at warning level and above. */
const warnings = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning" || logLevel._tag === "Error") lines.push(String(Array.isArray(message) ? message[0] : message))
  })
  return { lines, logger }
}

describe("Http: CurrentSession operations through the middleware", () => {
  it.scoped("remove and pop change the session; without a session they create none (no cookie)", () =>
    Effect.gen(function*() {
      const { call } = yield* harness()
      const jar = new CookieJar()
      assert.strictEqual((yield* call("POST", "/set/a/1", jar)).status, 204)
      yield* call("POST", "/set/b/2", jar)
      assert.strictEqual((yield* call("POST", "/remove/a", jar)).status, 204)
      deepStrictEqual((yield* call("GET", "/get/a", jar)).json(), { value: null })
      deepStrictEqual((yield* call("POST", "/pop/b", jar)).json(), { value: "2" })
      deepStrictEqual((yield* call("GET", "/get/b", jar)).json(), { value: null })
      // no session: a removal and a pop are no-ops that create nothing
      const removed = yield* call("POST", "/remove/a")
      assert.strictEqual(removed.status, 204)
      deepStrictEqual(removed.setCookies, [])
      const popped = yield* call("POST", "/pop/a")
      deepStrictEqual([popped.json(), popped.setCookies], [{ value: null }, []])
    }))

  it.scoped("modify applies several keys in one step and creates the session if needed", () =>
    Effect.gen(function*() {
      const { call } = yield* harness()
      const jar = new CookieJar()
      const r = yield* call("POST", "/modify", jar)
      deepStrictEqual(r.json(), { data: { a: 1, b: 2 } })
      assert.isDefined(jar.get(COOKIE))
      deepStrictEqual((yield* call("GET", "/get/b", jar)).json(), { value: 2 })
    }))

  it.scoped("listSessions marks the request's own session current; endSession ends another (kept here) or this one (cookie removed)", () =>
    Effect.gen(function*() {
      const { call } = yield* harness()
      const laptop = new CookieJar()
      const phone = new CookieJar()
      yield* call("POST", "/login/alice", laptop)
      yield* call("POST", "/login/alice", phone)
      const list = (yield* call("GET", "/sessions", laptop)).json() as Array<{ id: string; current: boolean }>
      assert.strictEqual(list.length, 2)
      assert.strictEqual(list.filter((s) => s.current).length, 1)
      const own = list.find((s) => s.current)!.id
      const other = list.find((s) => !s.current)!.id
      // ending the phone's session from the laptop: the laptop keeps its own, and its cookie
      const ended = yield* call("POST", `/end/${other}`, laptop)
      deepStrictEqual([ended.json(), ended.setCookies], [{ ended: true }, []])
      deepStrictEqual((yield* call("GET", "/sessions", phone)).json(), [])
      deepStrictEqual((yield* call("GET", "/sessions", laptop)).json(), [{ id: own, current: true }])
      // an id that is not the user's ends nothing
      deepStrictEqual((yield* call("POST", "/end/nobody", laptop)).json(), { ended: false })
      // ending its own: the cookie goes
      const self = yield* call("POST", `/end/${own}`, laptop)
      deepStrictEqual(self.json(), { ended: true })
      assert.isTrue(isRemoval(self.cookie(COOKIE)!))
      // without a logged-in user there is nothing to end
      deepStrictEqual((yield* call("POST", `/end/${own}`, new CookieJar())).json(), { ended: false })
    }))

  it.scoped("logOutOthers ends the user's other sessions and keeps this one (0 without a session)", () =>
    Effect.gen(function*() {
      const { call } = yield* harness()
      const [a, b, c] = [new CookieJar(), new CookieJar(), new CookieJar()]
      for (const jar of [a, b, c]) yield* call("POST", "/login/bob", jar)
      deepStrictEqual((yield* call("POST", "/logout-others", a)).json(), { ended: 2 })
      deepStrictEqual((yield* call("GET", "/sessions", a)).json().length, 1)
      deepStrictEqual((yield* call("GET", "/sessions", b)).json(), [])
      deepStrictEqual((yield* call("POST", "/logout-others")).json(), { ended: 0 })
    }))

  it.scoped("user loads the logged-in user through the UserLoader; none without a session, a user, or a record", () =>
    Effect.gen(function*() {
      const { call } = yield* harness()
      deepStrictEqual((yield* call("GET", "/user")).json(), { user: null })
      const jar = new CookieJar()
      yield* call("POST", "/set/a/1", jar)
      deepStrictEqual((yield* call("GET", "/user", jar)).json(), { user: null })
      yield* call("POST", "/login/gina", jar)
      deepStrictEqual((yield* call("GET", "/user", jar)).json(), { user: { id: "gina", name: "GINA" } })
      yield* call("POST", "/login/ghost", jar)
      deepStrictEqual((yield* call("GET", "/user", jar)).json(), { user: null })
    }))

  it.scoped("a value that is not JSON is the app's error (500), not a 413: only data above maxDataBytes is", () =>
    Effect.gen(function*() {
      const { call } = yield* harness({ config: { maxDataBytes: 64 } })
      assert.strictEqual((yield* call("POST", "/not-json")).status, 500)
      assert.strictEqual((yield* call("POST", `/set/big/${"x".repeat(100)}`)).status, 413)
    }))

  it.scoped("clearSiteData: false sends no Clear-Site-Data when a session ends", () =>
    Effect.gen(function*() {
      const plain = yield* harness()
      const jar = new CookieJar()
      yield* plain.call("POST", "/login/carol", jar)
      const own = ((yield* plain.call("GET", "/sessions", jar)).json() as Array<{ id: string }>)[0]!.id
      assert.strictEqual((yield* plain.call("POST", `/end/${own}`, jar)).headers.get("clear-site-data"), "\"cookies\", \"storage\"")
      const off = yield* harness({ middleware: { clearSiteData: false } })
      const jar2 = new CookieJar()
      yield* off.call("POST", "/login/carol", jar2)
      const id = ((yield* off.call("GET", "/sessions", jar2)).json() as Array<{ id: string }>)[0]!.id
      const r = yield* off.call("POST", `/end/${id}`, jar2)
      assert.isTrue(isRemoval(r.cookie(COOKIE)!))
      assert.isNull(r.headers.get("clear-site-data"))
    }))
})

describe("Http: a session that ends while a request holds it", () => {
  it.scoped("a write answers 401 and leaves the cookie alone; ensure answers with the session as the request resolved it", () =>
    Effect.gen(function*() {
      const { call } = yield* harness()
      const jar = new CookieJar()
      yield* call("POST", "/login/dave", jar)
      const write = yield* call("POST", "/ended-then/write", jar.copy())
      deepStrictEqual([write.status, write.setCookies], [401, []])
      const jar2 = new CookieJar()
      yield* call("POST", "/login/dave", jar2)
      const ensured = yield* call("POST", "/ended-then/ensure", jar2)
      deepStrictEqual([ensured.status, ensured.json(), ensured.setCookies], [200, { ip: null }, []])
    }))

  it.scoped("on a header transport too: 401 without a token header, and 503 without one when the store fails mid-request", () =>
    Effect.gen(function*() {
      const { call, store } = yield* harness({ middleware: { transport: { header: "x-session" } } })
      const first = yield* call("POST", "/login/erin")
      const token = first.headers.get("x-session")
      assert.isString(token)
      const gone = yield* call("POST", "/ended-then/write", undefined, { "x-session": token! })
      deepStrictEqual([gone.status, gone.headers.get("x-session")], [401, null])
      // a fresh token, then the store fails during the handler's write
      const second = yield* call("POST", "/login/erin")
      const token2 = second.headers.get("x-session")!
      yield* store.setDown(true)
      const down = yield* call("POST", "/count", undefined, { "x-session": token2 })
      deepStrictEqual([down.status, down.headers.get("x-session")], [503, null])
    }))

  it.scoped("a store outage is logged as such, at the resolution and in the handler", () =>
    Effect.gen(function*() {
      const { lines, logger } = warnings()
      const { call, store } = yield* harness({ config: { cache: false }, logger })
      const jar = new CookieJar()
      yield* call("POST", "/count", jar)
      yield* store.setDown(true)
      assert.strictEqual((yield* call("POST", "/count", jar)).status, 503)
      assert.strictEqual((yield* call("POST", "/count")).status, 503)
      deepStrictEqual(lines, ["session store unavailable", "session store unavailable"])
    }))
})

// ---- HttpApi: SessionSecurity and RequireUser without the middleware around them

class Account extends HttpApiGroup.make("account")
  .add(HttpApiEndpoint.post("login", "/login"))
  .add(HttpApiEndpoint.get("peek", "/peek").addSuccess(Schema.Struct({ n: Schema.NullOr(Schema.Number) })))
  .middleware(Http.SessionSecurity)
{}
class Private extends HttpApiGroup.make("private")
  .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.Struct({ userId: Schema.String })))
  .middleware(Http.SessionSecurity)
  .middleware(Http.RequireUser)
{}
class Who extends HttpApiGroup.make("who")
  .add(HttpApiEndpoint.get("who", "/who").addSuccess(Schema.Struct({ userId: Schema.String })))
  .middleware(Http.RequireUser)
{}
class Api extends HttpApi.make("api").add(Account).add(Private).add(Who) {}

const ApiLive = HttpApiBuilder.api(Api).pipe(Layer.provide([
  HttpApiBuilder.group(Api, "account", (handlers) =>
    handlers
      .handle("login", () => Effect.flatMap(Http.CurrentSession, (s) => s.logIn("frank")).pipe(Effect.orDie))
      .handle("peek", () =>
        Effect.flatMap(Http.CurrentSession, (s) => s.get(Session.key("n", Schema.Number))).pipe(
          Effect.map((n) => ({ n: Option.getOrNull(n) })),
          Effect.orDie
        ))),
  HttpApiBuilder.group(Api, "private", (handlers) => handlers.handle("me", () => Effect.map(Http.CurrentUser, (u) => ({ userId: u.userId })))),
  HttpApiBuilder.group(Api, "who", (handlers) => handlers.handle("who", () => Effect.map(Http.CurrentUser, (u) => ({ userId: u.userId }))))
]))

const apiServer = (store: Layer.Layer<Persistence.Persistence>, logger?: Logger.Logger<unknown, void>, options: { readonly middleware?: boolean } = {}) => {
  const served = HttpApiBuilder.serve().pipe(
    Layer.provide(options.middleware === true ? HttpApiBuilder.middleware<Sessions.Sessions>(Http.middleware(), { withContext: true }) : Layer.empty),
    Layer.provide(ApiLive),
    Layer.provide(Layer.merge(Http.layerSessionSecurity, Http.layerRequireUser)),
    Layer.provide(Sessions.layer({ cache: false }).pipe(Layer.provide(store)))
  )
  return logger === undefined ? served : served.pipe(Layer.provide(Logger.replace(Logger.defaultLogger, logger)))
}

describe("HttpApi: the security handlers", () => {
  it.scoped("SessionSecurity and RequireUser on one endpoint resolve the session once (one store read)", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(apiServer(store.layer))
      const jar = new CookieJar()
      assert.strictEqual((yield* send(`${url}/login`, { method: "POST", jar })).status, 204)
      const before = totalCalls(store.calls(), ["load"])
      const me = yield* send(`${url}/me`, { jar })
      deepStrictEqual([me.status, me.json()], [200, { userId: "frank" }])
      // one load for the resolution, one for the user's ID: not a second resolution
      assert.strictEqual(totalCalls(store.calls(), ["load"]) - before, 2)
    }))

  it.scoped("behind Http.middleware the security handlers take the middleware's session: no second resolution", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(apiServer(store.layer, undefined, { middleware: true }))
      const jar = new CookieJar()
      assert.strictEqual((yield* send(`${url}/login`, { method: "POST", jar })).status, 204)
      const before = totalCalls(store.calls(), ["load"])
      deepStrictEqual((yield* send(`${url}/peek`, { jar })).json(), { n: null })
      // the middleware's resolution and the read of `n` (the cache is off): the security handler adds none
      assert.strictEqual(totalCalls(store.calls(), ["load"]) - before, 2)
    }))

  it.scoped("a store outage in the security handler answers 503 with no cookie, and is logged", () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      const store = switchable(memory)
      const { lines, logger } = warnings()
      const url = yield* listen(apiServer(store.layer, logger))
      const jar = new CookieJar()
      yield* send(`${url}/login`, { method: "POST", jar })
      yield* store.setDown(true)
      for (const path of ["/peek", "/me"]) {
        const r = yield* send(`${url}${path}`, { jar: jar.copy() })
        deepStrictEqual([r.status, r.setCookies.length], [503, 0])
      }
      expect(lines.length).toBeGreaterThanOrEqual(2)
      deepStrictEqual([...new Set(lines)], ["session store unavailable"])
    }))

  it.scoped("RequireUser alone: a store that fails after the resolution, on the user's read, answers 503 and is logged", () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      const down = switchable(memory)
      yield* down.setDown(true)
      let loads = 0
      const failing: Store = { ...memory, load: (tk) => loads++ === 0 ? memory.load(tk) : down.store.load(tk) }
      const { lines, logger } = warnings()
      const url = yield* listen(apiServer(Layer.succeed(Persistence.Persistence, failing), logger))
      const jar = new CookieJar()
      yield* send(`${url}/login`, { method: "POST", jar })
      loads = 0
      const who = yield* send(`${url}/who`, { jar })
      deepStrictEqual([who.status, who.setCookies.length, lines], [503, 0, ["session store unavailable"]])
    }))

  it.scoped("RequireUser answers 401 when the session ended between its resolution and the user's read", () =>
    Effect.gen(function*() {
      const memory = yield* Persistence.makeMemory
      // The second load of a token finds nothing: the session ended meanwhile (another process).
      let loads = 0
      const vanishing: Store = { ...memory, load: (tk) => loads++ === 0 ? memory.load(tk) : Effect.succeed(Option.none()) }
      const url = yield* listen(apiServer(Layer.succeed(Persistence.Persistence, vanishing)))
      const jar = new CookieJar()
      yield* send(`${url}/login`, { method: "POST", jar })
      loads = 0
      const me = yield* send(`${url}/me`, { jar })
      assert.strictEqual(me.status, 401)
    }))
})
