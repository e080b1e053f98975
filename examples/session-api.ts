// The session API inside a handler (README, "The session API"): typed keys and every operation
// of CurrentSession. It runs the app in process (no socket): a first visit, a second one with the
// cookie the first set, then every operation; it exits 1 if an answer is not the expected one.
// Run: npx tsx examples/session-api.ts
import { HttpApp, HttpRouter, HttpServerResponse } from "@effect/platform"
import { Clock, Effect, ManagedRuntime, Option, Schema } from "effect"
import { Http, Session, Sessions } from "effect-sessions"

const LastVisit = Session.key("lastVisit", Schema.Date) // stored as an ISO string, read back as a Date
const Cart = Session.key("cart", Schema.Array(Schema.String))
const Flash = Session.key("flash", Schema.String)

const visit = Effect.gen(function*() {
  const session = yield* Http.CurrentSession
  const now = yield* Clock.currentTimeMillis
  const last = yield* session.get(LastVisit) // Option<Date>; a value that no longer decodes is a SessionDataError
  yield* session.set(LastVisit, new Date(now))
  return Option.match(last, { onNone: () => "first visit", onSome: (d) => `last visit ${d.toISOString()}` })
})

const operations = Effect.gen(function*() {
  const session = yield* Http.CurrentSession
  yield* session.set("theme", "dark") // a string key holds any JSON value
  const cart = yield* session.update(Cart, (items) => [...Option.getOrElse(items, () => []), "book"])
  const flash = yield* session.pop(Flash) // read and remove
  yield* session.remove("theme")
  // Several keys in one atomic change: f maps the pure Session value.
  yield* session.modify((s) => Session.set(Session.remove(s, "theme"), "cartSize", cart.length))
  yield* session.logIn("ada") // the token is replaced at once, no grace period
  yield* session.regenerateId({ grace: false }) // after a step-up (MFA, sudo mode)
  const mine = yield* session.listSessions // this user's sessions; `current` marks this one
  yield* session.logOut({ keepData: false })
  yield* session.destroy
  return { flash: Option.getOrNull(flash), sessions: mine.length }
})

const app = HttpRouter.empty.pipe(
  HttpRouter.get("/", Effect.map(visit, (text) => HttpServerResponse.text(text))),
  HttpRouter.post("/all", Effect.flatMap(operations, (body) => HttpServerResponse.json(body))),
  Http.middleware({ create: false, unavailableStatus: 503, goneStatus: 401, tooLargeStatus: 413 })
)

// ---- run it

const runtime = ManagedRuntime.make(Sessions.layerMemory({ cookie: { secure: false } }))

const main = async () => {
  const handler = HttpApp.toWebHandlerRuntime(await runtime.runtime())(app)
  const first = await handler(new Request("http://localhost/"))
  const cookie = first.headers.get("set-cookie")?.split(";")[0] ?? ""
  const second = await handler(new Request("http://localhost/", { headers: { cookie } }))
  const all = await handler(new Request("http://localhost/all", { method: "POST", headers: { cookie } }))
  const answers = [await first.text(), await second.text(), await all.text()]
  console.log(answers.join("\n"))
  await runtime.dispose()
  const expected = answers[0] === "first visit" && answers[1]!.startsWith("last visit ") && answers[2] === `{"flash":null,"sessions":1}`
  if (!expected || all.headers.get("set-cookie")?.includes("Max-Age=0") !== true) process.exit(1)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
