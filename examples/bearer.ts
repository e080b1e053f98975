// Session tokens outside cookies (docs/http.md): the same sessions for API and mobile clients.
// The JSON API accepts the session cookie or `Authorization: Bearer <token>`; `/token` logs in
// over the bearer transport only, so the token comes back in `Set-Session-Token`. Run in process
// (no socket); it exits 1 if an answer is not the expected one.
// Run: npx tsx examples/bearer.ts
import { HttpApp, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, ManagedRuntime, Option } from "effect"
import { Http, Sessions } from "effect-sessions"

const routes = HttpRouter.empty.pipe(
  HttpRouter.post("/token", Effect.flatMap(Http.CurrentSession, (session) => session.logIn("ada")).pipe(Effect.as(HttpServerResponse.empty({ status: 204 })))),
  HttpRouter.get("/me", Effect.flatMap(Http.CurrentSession, (session) => session.userId).pipe(
    Effect.flatMap((user) => HttpServerResponse.json({ user: Option.getOrNull(user) }))
  )),
  HttpRouter.post("/logout", Effect.flatMap(Http.CurrentSession, (session) => session.destroy).pipe(Effect.as(HttpServerResponse.empty({ status: 204 }))))
)

// A new session goes on the first transport listed: a request with neither credential gets a
// cookie from `api`, and a header token from `tokens`. A header wins over the cookie on `api`.
const api = routes.pipe(Http.middleware({ transport: ["cookie", "bearer"] }))
const tokens = routes.pipe(Http.middleware({ transport: "bearer" }))

const app = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => request.url.startsWith("/token") ? tokens : api)

// ---- run it: a mobile client that keeps the token of every Set-Session-Token answer

const runtime = ManagedRuntime.make(Sessions.layerMemory())

const main = async () => {
  const handler = HttpApp.toWebHandlerRuntime(await runtime.runtime())(app)
  let token = ""
  const call = async (method: string, path: string) => {
    const headers: Record<string, string> = token === "" ? {} : { authorization: `Bearer ${token}` }
    const response = await handler(new Request(`https://api.example.com${path}`, { method, headers }))
    // A token replaces the one held; an empty value means the session ended.
    const answer = response.headers.get("set-session-token")
    if (answer !== null) token = answer
    return response
  }
  const login = await call("POST", "/token")
  const me = await (await call("GET", "/me")).json()
  const viaUrl = await (await handler(new Request(`https://api.example.com/me?access_token=${token}`))).json()
  const logout = await call("POST", "/logout")
  const answers = [login.status, login.headers.get("set-cookie"), JSON.stringify(me), JSON.stringify(viaUrl), logout.status, token]
  console.log(answers.join("\n"))
  await runtime.dispose()
  const expected = [204, null, `{"user":"ada"}`, `{"user":null}`, 204, ""]
  if (JSON.stringify(answers) !== JSON.stringify(expected)) process.exit(1)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
