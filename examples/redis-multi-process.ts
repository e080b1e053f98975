// Several server processes sharing sessions through Redis.
//
// Every process builds the same layer (below: `sessionsOnRedis`). Each keeps its own local cache;
// Redis pub/sub tells the others which entries to drop, and compare-and-set with retries keeps
// concurrent writers from losing updates. Here two ManagedRuntimes stand for two processes.
// Needs Redis at REDIS_URL (default redis://127.0.0.1:6379).
import { Effect, Layer, ManagedRuntime, Option, Redacted } from "effect"
import { SecureRandom, Session, Sessions } from "effect-sessions"
import * as Redis from "effect-sessions/Persistence/Redis"

const prefix = `example:${process.pid}:`

// What each server process runs.
const sessionsOnRedis = Sessions.layer({ idRotationInterval: "15 minutes" }).pipe(
  Layer.provide(Redis.layerConfig({ prefix })),
  Layer.provide(SecureRandom.layer)
)

const processA = ManagedRuntime.make(sessionsOnRedis)
const processB = ManagedRuntime.make(sessionsOnRedis)
const client = Session.client({ ip: "192.0.2.10", userAgent: "example/1.0" })

const main = async () => {
  // A request on process A creates a session and logs a user in.
  const handle = await processA.runPromise(Effect.gen(function*() {
    const sessions = yield* Sessions.Sessions
    const created = yield* sessions.create(client)
    return yield* sessions.logIn(created, "grace")
  }))
  const token = Redacted.value(handle.token)

  // Requests on both processes increment one counter at the same time: none is lost.
  const increment = Effect.gen(function*() {
    const sessions = yield* Sessions.Sessions
    const active = yield* sessions.resolve(token, client).pipe(Effect.map((r) => r.session))
    if (Option.isNone(active)) return yield* Effect.dieMessage("session lost")
    yield* sessions.update(active.value, "count", (n) => Option.getOrElse(n, () => 0) as number + 1)
  })
  await Promise.all([
    ...Array.from({ length: 100 }, () => processA.runPromise(increment)),
    ...Array.from({ length: 100 }, () => processB.runPromise(increment))
  ])
  // A read is served from the process's cache, which learns of another process's write through
  // Redis pub/sub, a moment later: give the last invalidations that moment. (Writes never wait
  // for it: each is a compare-and-set against Redis, so none is lost.)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const count = await processB.runPromise(Effect.gen(function*() {
    const sessions = yield* Sessions.Sessions
    const active = yield* sessions.resolve(token, client).pipe(Effect.map((r) => r.session))
    return Option.flatMap(active, (a) => Session.get(a.session, "count"))
  }))
  console.log("count after 200 concurrent increments on two processes:", Option.getOrNull(count))

  // Log out everywhere on process B: process A, which had the session cached, sees it at once.
  await processB.runPromise(Effect.flatMap(Sessions.Sessions, (s) => s.logOutEverywhere("grace")))
  await new Promise((resolve) => setTimeout(resolve, 100))
  const onA = await processA.runPromise(Effect.flatMap(Sessions.Sessions, (s) => s.resolve(token, client).pipe(Effect.map((r) => r.session))))
  console.log("process A after logOutEverywhere on B:", Option.isSome(onA) ? "still logged in (wrong)" : "no session")

  await processA.dispose()
  await processB.dispose()
  if (Option.getOrNull(count) !== 200 || Option.isSome(onA)) process.exit(1)
}

main().catch(async (e) => {
  console.error(e)
  process.exit(1)
})
