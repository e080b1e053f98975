// Session events: a "new sign-in" notice (OWASP ASVS 6.3.5) from the events the service publishes.
// Run: npx tsx examples/events.ts
import { Console, Effect, Fiber, Option, Queue, Stream } from "effect"
import { Session, type SessionEvents, Sessions } from "effect-sessions"

const laptop = Session.client({ ip: "203.0.113.7", userAgent: "Mozilla/5.0 (X11; Linux) Firefox/128.0" })
const phone = Session.client({ ip: "198.51.100.23", userAgent: "Mozilla/5.0 (iPhone) Safari/604.1" })

/** What a notifier does with an event: here, print a notice for sign-ins from a new device. */
const notify = (event: SessionEvents.SessionEvent) =>
  event._tag === "LoggedIn" && event.newDevice
    ? Console.log(`notice for ${event.userId}: new sign-in from ${Option.getOrElse(event.ip, () => "an unknown address")}`)
    : Console.log(`event: ${event._tag} (session ${event.sessionId})`)

const program = Effect.gen(function*() {
  const sessions = yield* Sessions.Sessions
  // Subscribe first (events are published after each change, to the subscribers of that moment),
  // then consume in the background: publishing never waits for this fiber.
  const events = yield* sessions.subscribe({ capacity: 1024 })
  const notifier = yield* Stream.fromQueue(events).pipe(Stream.runForEach(notify), Effect.fork)

  yield* sessions.logIn(yield* sessions.create(laptop), "ada") // a new device: the first sign-in
  yield* sessions.logIn(yield* sessions.create(laptop), "ada") // the same browser: known
  yield* sessions.logIn(yield* sessions.create(phone), "ada") // a new device
  yield* sessions.logOutEverywhere("ada")

  // Let the notifier catch up before the program ends.
  while (!(yield* Queue.isEmpty(events))) yield* Effect.sleep("10 millis")
  yield* Effect.sleep("10 millis")
  yield* Fiber.interrupt(notifier)
})

Effect.runPromise(Effect.scoped(Effect.provide(program, Sessions.layerMemory())))
