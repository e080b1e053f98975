/**
 * A recent-login gate and "remember me" in an HttpApi app: `POST /password` (changing the
 * password) sits behind `Http.RequireRecentLogin`, which answers 403 with a typed body unless the
 * user authenticated less than 5 minutes ago; `POST /reauthenticate` checks the password again and
 * calls `reauthenticated`; `POST /login` takes `remember` for a persistent cookie.
 *
 * It serves on 127.0.0.1 (port `PORT`, default 0), sends a few requests to itself with `fetch`,
 * prints what happened, and exits (0 when every answer was the expected one).
 *
 *   npx tsx examples/recent-login.ts
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiError, HttpApiGroup, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Context, Effect, Layer, Schema } from "effect"
import { createServer } from "node:http"
import { Http, Sessions } from "../src/index.js"

// ---- the API

const Credentials = Schema.Struct({ user: Schema.String, password: Schema.String, remember: Schema.optional(Schema.Boolean) })

class Auth extends HttpApiGroup.make("auth")
  .add(HttpApiEndpoint.post("login", "/login").setPayload(Credentials).addError(HttpApiError.Unauthorized))
  .add(HttpApiEndpoint.post("reauthenticate", "/reauthenticate").setPayload(Credentials).addError(HttpApiError.Unauthorized))
  .middleware(Http.SessionSecurity)
{}

// Every endpoint of this group needs a log-in from the last 5 minutes (the layer sets the age).
class Sensitive extends HttpApiGroup.make("sensitive")
  .add(HttpApiEndpoint.post("password", "/password").addSuccess(Schema.Struct({ changed: Schema.String })))
  .middleware(Http.RequireRecentLogin)
{}

class Api extends HttpApi.make("example").add(Auth).add(Sensitive) {}

// ---- the handlers

// A stand-in for a user table with password hashes.
const passwords = new Map([["alice", "correct horse battery staple"]])

const AuthLive = HttpApiBuilder.group(Api, "auth", (handlers) =>
  handlers
    .handle("login", ({ payload }) =>
      Effect.gen(function*() {
        if (passwords.get(payload.user) !== payload.password) return yield* new HttpApiError.Unauthorized()
        const session = yield* Http.CurrentSession
        // "Remember me": a persistent cookie, kept by every rotation, never past the absolute timeout.
        yield* Http.toApiErrors(session.logIn(payload.user, { persistent: payload.remember === true }))
      }))
    .handle("reauthenticate", ({ payload }) =>
      Effect.gen(function*() {
        const session = yield* Http.CurrentSession
        const userId = yield* Http.toApiErrors(session.userId)
        if (userId._tag === "None" || userId.value !== payload.user || passwords.get(payload.user) !== payload.password) {
          return yield* new HttpApiError.Unauthorized()
        }
        // The log-in counts as recent from now; the token is replaced with no grace period.
        yield* Http.toApiErrors(session.reauthenticated)
      })))

const SensitiveLive = HttpApiBuilder.group(Api, "sensitive", (handlers) =>
  handlers.handle("password", () => Effect.map(Http.CurrentUser, ({ userId }) => ({ changed: userId }))))

const ApiLive = HttpApiBuilder.api(Api).pipe(Layer.provide([AuthLive, SensitiveLive]))

// ---- the server: the gate's layer takes the maximum age of the log-in

const ServerLive = HttpApiBuilder.serve().pipe(
  Layer.provide(ApiLive),
  Layer.provide([Http.layerSessionSecurity, Http.layerRequireRecentLogin("5 minutes")]),
  Layer.provide(Sessions.layerMemory({ absoluteTimeout: "30 days", idleTimeout: "7 days" })),
  Layer.provideMerge(
    Layer.unwrapEffect(
      Effect.map(Config.withDefault(Config.integer("PORT"), 0), (port) => NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
    )
  )
)

// ---- a tiny client

const program = Effect.gen(function*() {
  const context = yield* Layer.build(ServerLive)
  const address = Context.get(context, HttpServer.HttpServer).address
  const base = address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "http://127.0.0.1"
  console.log(`serving on ${base}`)

  let cookie: string | undefined
  let failures = 0
  const call = (method: string, path: string, expected: number, body?: unknown) =>
    Effect.promise(async () => {
      const headers: Record<string, string> = {}
      if (cookie !== undefined) headers["cookie"] = cookie
      if (body !== undefined) headers["content-type"] = "application/json"
      const response = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
      for (const line of response.headers.getSetCookie()) {
        const [pair = ""] = line.split(";")
        cookie = pair
        const maxAge = /max-age=(\d+)/i.exec(line)?.[1]
        console.log(`     Set-Cookie: ${maxAge === undefined ? "a browser-session cookie" : `persistent, Max-Age=${maxAge}`}`)
      }
      const text = await response.text()
      const ok = response.status === expected
      if (!ok) failures++
      console.log(`${ok ? "ok  " : "FAIL"} ${method} ${path} → ${response.status}${text === "" ? "" : ` ${text}`}${ok ? "" : ` (expected ${expected})`}`)
    })

  const alice = { user: "alice", password: "correct horse battery staple" }
  yield* call("POST", "/password", 403) // nobody logged in: {"_tag":"RecentLoginRequired","maxAgeMillis":300000}
  yield* call("POST", "/login", 204, { ...alice, remember: true })
  yield* call("POST", "/password", 200)
  yield* call("POST", "/reauthenticate", 401, { ...alice, password: "wrong" })
  yield* call("POST", "/reauthenticate", 204, alice)
  yield* call("POST", "/password", 200)
  return failures
})

Effect.runPromise(Effect.scoped(program)).then(
  (failures) => {
    console.log(failures === 0 ? "all answers as expected" : `${failures} unexpected answers`)
    process.exit(failures === 0 ? 0 : 1)
  },
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
