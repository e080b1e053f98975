// The Sessions service without HTTP (docs/service.md). Type-checked with the suite, not run:
// examples/service.ts is the runnable walk-through.
import { Effect, Option, Redacted } from "effect"
import { Session, Sessions } from "effect-sessions"

const program = Effect.gen(function*() {
  const sessions = yield* Sessions.Sessions
  const client = Session.client({ ip: "203.0.113.7", userAgent: "Mozilla/5.0 …" })

  // a new session, some data in it (written through to the store)
  const handle = yield* sessions.create(client)
  yield* sessions.set(handle, "theme", "dark")

  // a later request: resolve the token it brought
  const resolution = yield* sessions.resolve(Redacted.value(handle.token), client)
  // resolution.outcome: "valid" | "rotated" | "followed" | "expired" | "anomaly" | "missing" | …
  // resolution.cookie:  "none" | "set" (send the new token) | "clear" (remove the cookie)
  const active = Option.getOrThrow(resolution.session)

  // users
  const loggedIn = yield* sessions.logIn(active, "ada") // rotates the token: send it
  const mine = yield* sessions.listSessions("ada") // public ids, never tokens
  yield* sessions.logOutEverywhere("ada")
  return { token: loggedIn.token, sessions: mine.length }
})

Effect.runPromise(Effect.provide(program, Sessions.layerMemory({ idleTimeout: "30 minutes" })))
