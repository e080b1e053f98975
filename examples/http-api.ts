/**
 * An HttpApi app with sessions: `POST /login` checks a password and logs the user in (the session
 * token rotates), `GET /me` requires a logged-in user, `POST /logout` logs out.
 *
 * It serves on 127.0.0.1 (port `PORT`, default 0: any free port), sends a few requests to itself
 * with `fetch` — keeping the session cookie by hand, as fetch keeps none — prints what happened,
 * and exits (0 when every answer was the expected one).
 *
 *   npx tsx examples/http-api.ts
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiError, HttpApiGroup, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Context, Effect, Layer, Option, Schema } from "effect"
import { createServer } from "node:http"
import { Http, Session, Sessions } from "../src/index.js"

const Visits = Session.key("visits", Schema.Number)

// ---- the API

class Auth extends HttpApiGroup.make("auth")
  .add(
    HttpApiEndpoint.post("login", "/login")
      .setPayload(Schema.Struct({ user: Schema.String, password: Schema.String }))
      .addError(HttpApiError.Unauthorized)
  )
  .add(HttpApiEndpoint.post("logout", "/logout"))
  .middleware(Http.SessionSecurity)
{}

class Account extends HttpApiGroup.make("account")
  .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.Struct({ userId: Schema.String, visits: Schema.Number })))
  .middleware(Http.RequireUser)
{}

class Api extends HttpApi.make("example").add(Auth).add(Account) {}

// ---- the handlers

// A stand-in for a user table with password hashes.
const passwords = new Map([["alice", "correct horse battery staple"]])

const AuthLive = HttpApiBuilder.group(Api, "auth", (handlers) =>
  handlers
    .handle("login", ({ payload }) =>
      Effect.gen(function*() {
        if (passwords.get(payload.user) !== payload.password) return yield* new HttpApiError.Unauthorized()
        const session = yield* Http.CurrentSession
        yield* Http.toApiErrors(session.logIn(payload.user))
      }))
    .handle("logout", () => Effect.flatMap(Http.CurrentSession, (session) => Http.toApiErrors(session.logOut()))))

const AccountLive = HttpApiBuilder.group(Api, "account", (handlers) =>
  handlers.handle("me", () =>
    Effect.gen(function*() {
      // RequireUser provides the user and the request's session.
      const { session, userId } = yield* Http.CurrentUser
      const visits = yield* session.update(Visits, (n) => Option.getOrElse(n, () => 0) + 1).pipe(Effect.orDie)
      return { userId, visits }
    })))

const ApiLive = HttpApiBuilder.api(Api).pipe(Layer.provide([AuthLive, AccountLive]))

// ---- the server: the security middlewares resolve the session; sessions in memory

const ServerLive = HttpApiBuilder.serve().pipe(
  Layer.provide(ApiLive),
  Layer.provide([Http.layerSessionSecurity, Http.layerRequireUser]),
  Layer.provide(Sessions.layerMemory({ idleTimeout: "30 minutes" })),
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
        const value = pair.slice(pair.indexOf("=") + 1)
        // Keep the session cookie, or drop it when the server clears it.
        cookie = /max-age=0/i.test(line) || value === "" ? undefined : pair
      }
      const text = await response.text()
      const ok = response.status === expected
      if (!ok) failures++
      console.log(`${ok ? "ok  " : "FAIL"} ${method} ${path} → ${response.status}${text === "" ? "" : ` ${text}`}${ok ? "" : ` (expected ${expected})`}`)
    })

  yield* call("GET", "/me", 401)
  yield* call("POST", "/login", 401, { user: "alice", password: "wrong" })
  yield* call("POST", "/login", 204, { user: "alice", password: "correct horse battery staple" })
  console.log(`     session cookie: ${cookie === undefined ? "none" : "set"}`)
  yield* call("GET", "/me", 200)
  yield* call("GET", "/me", 200)
  yield* call("POST", "/logout", 204)
  yield* call("GET", "/me", 401)
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
