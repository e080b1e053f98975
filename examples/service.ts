/**
 * Using the Sessions service directly, without HTTP: create a session, keep data in it, let its
 * token rotate (by time, and on demand), log a user in on two devices, list that user's sessions
 * and log them out everywhere. Each step prints what happened, and checks it: the program exits
 * with 1 if the service ever answers something else.
 *
 * Time comes from a TestClock so that the example can skip 15 minutes at once; a real application
 * uses the live clock (leave out `TestContext`).
 *
 *   npx tsx examples/service.ts
 */
import { Console, Effect, Layer, Option, Redacted, TestClock, TestContext } from "effect"
import { Persistence, SecureRandom, Session, SessionConfig, Sessions } from "../src/index.js"

/** The first characters of a token, for display (never log whole tokens). */
const short = (h: Sessions.ActiveSession) => `${Redacted.value(h.token).slice(0, 6)}…`

const check = (ok: boolean, what: string) => ok ? Effect.void : Effect.dieMessage(`unexpected: ${what}`)

const program = Effect.gen(function*() {
  const sessions = yield* Sessions.Sessions
  const laptop = Session.client({ ip: "203.0.113.7", userAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0" })
  const phone = Session.client({ ip: "198.51.100.23", userAgent: "Mozilla/5.0 (iPhone) Safari/604.1" })

  // 1. A new session, and some data in it (written through to the store).
  const first = yield* sessions.create(laptop)
  yield* sessions.set(first, "theme", "dark")
  yield* Console.log(`created a session, token ${short(first)}; theme = dark`)

  // 2. The next request brings the token back (from its cookie).
  const token = Redacted.value(first.token)
  const again = yield* sessions.resolve(token, laptop)
  yield* Console.log(`resolve → ${again.outcome}, cookie: ${again.cookie}`)
  yield* check(again.outcome === "valid", "a fresh token resolves as valid")

  // 3. Fifteen minutes later the token is due for rotation: same session, new token.
  yield* TestClock.adjust("15 minutes")
  const rotated = yield* sessions.resolve(token, laptop)
  const current = Option.getOrThrow(rotated.session)
  yield* Console.log(`15 minutes later: resolve → ${rotated.outcome} to ${short(current)}, cookie: ${rotated.cookie}`)
  yield* check(rotated.outcome === "rotated" && rotated.cookie === "set", "an old token rotates")
  yield* Console.log(`  the data came along: theme = ${JSON.stringify(Option.getOrNull(yield* sessions.get(current, "theme")))}`)

  // 4. A request still carrying the old token (sent before the new cookie arrived) follows it.
  const late = yield* sessions.resolve(token, laptop)
  yield* Console.log(`old token within the grace period → ${late.outcome} to ${Option.match(late.session, { onNone: () => "-", onSome: short })}`)
  yield* check(late.outcome === "followed", "the old token follows during the grace period")
  yield* TestClock.adjust("2 minutes")
  const tooLate = yield* sessions.resolve(token, laptop)
  yield* Console.log(`old token after the grace period → ${tooLate.outcome}, cookie: ${tooLate.cookie}`)
  yield* check(Option.isNone(tooLate.session), "the old token dies after the grace period")

  // 5. Logging in rotates the token again (against session fixation); the data stays.
  const ada = yield* sessions.logIn(current, "ada")
  yield* Console.log(`logged in as ada, token ${short(current)} → ${short(ada)}`)

  // 6. On demand: regenerateId (say, after a password change).
  const regenerated = yield* sessions.regenerateId(ada)
  yield* Console.log(`regenerateId: ${short(ada)} → ${short(regenerated)}`)

  // 7. Ada logs in on her phone too; she can list her sessions (public ids, never tokens).
  const adaPhone = yield* sessions.logIn(yield* sessions.create(phone), "ada")
  const list = yield* sessions.listSessions("ada")
  yield* Console.log(`ada has ${list.length} sessions:`)
  for (const info of list) {
    yield* Console.log(`  ${info.id}  from ${Option.getOrElse(info.ip, () => "?")}, created at +${info.createdAt / 60_000} min`)
  }
  yield* check(list.length === 2, "two sessions listed")

  // 8. Log out everywhere: both sessions end.
  const ended = yield* sessions.logOutEverywhere("ada")
  const laptopNow = yield* sessions.resolve(Redacted.value(regenerated.token), laptop)
  const phoneNow = yield* sessions.resolve(Redacted.value(adaPhone.token), phone)
  yield* Console.log(`logOutEverywhere ended ${ended}; laptop → ${laptopNow.outcome}, phone → ${phoneNow.outcome}`)
  yield* check(ended === 2 && Option.isNone(laptopNow.session) && Option.isNone(phoneNow.session), "every session ended")
})

// The service over the in-memory store. `Sessions.layerMemory(options)` bundles the same with the
// live SecureRandom and a sweeper; here the parts are spelled out.
const SessionsLive = Sessions.layerFromContext.pipe(
  Layer.provide(
    Layer.mergeAll(
      Persistence.layerMemory,
      SessionConfig.layer({ idleTimeout: "30 minutes", idRotationInterval: "15 minutes", gracePeriod: "1 minute" }),
      SecureRandom.layer
    )
  )
)

program.pipe(Effect.provide(SessionsLive), Effect.provide(TestContext.TestContext), Effect.runPromise).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
