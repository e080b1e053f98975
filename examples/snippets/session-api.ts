// The session API inside a handler (README, "The session API"): typed keys and every operation
// of CurrentSession. Type-checked with the suite, not run.
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Option, Schema } from "effect"
import { Http, Session } from "effect-sessions"

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

export const app = HttpRouter.empty.pipe(
  HttpRouter.get("/", Effect.map(visit, (text) => HttpServerResponse.text(text))),
  HttpRouter.post("/all", Effect.flatMap(operations, (body) => HttpServerResponse.json(body))),
  Http.middleware({ create: false, unavailableStatus: 503, goneStatus: 401, tooLargeStatus: 413 })
)
