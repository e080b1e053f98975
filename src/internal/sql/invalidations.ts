/**
 * The SQL store's invalidation listener (PostgreSQL `LISTEN/NOTIFY`): one `LISTEN` per layer on
 * the store's channel, shared by every consumer of `invalidations`. Payloads are
 * `<originId>:<tokenKey>` (a write), `<originId>:!u:<userKey>` (a user to load again) and
 * `hb:<originId>:<n>` (a heartbeat); a process never hears its own.
 *
 * `@effect/sql-pg` ignores errors of its LISTEN connection, so a dropped connection would go
 * silent for good: the store sends itself a heartbeat through the channel, and when its
 * heartbeats stop arriving it listens again on a fresh connection and tells the consumers
 * (`INVALIDATE_ALL`) that they may have missed changes meanwhile. The layer is ready only once
 * its own heartbeat has come back (or after 5 s, with a warning): from then on, no change by
 * another process can go unheard.
 *
 * @internal
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Deferred, Effect, Fiber, PubSub, Stream } from "effect"
import type { Scope } from "effect"
import { INVALIDATE_ALL, type Invalidation } from "../persistence.js"
import { parseInvalidation } from "../invalidationMessage.js"
import { sleepReal } from "../realTime.js"
import type { Notifications } from "./connection.js"

/**
 * What the listener gives the store: the stream of what other processes changed, and a way to
 * tell this process's own consumers of a change (a record it dropped as corrupt).
 *
 * @internal
 */
export interface Listener {
  readonly invalidations: Stream.Stream<Invalidation>
  readonly tellSelf: (invalidation: Invalidation) => Effect.Effect<void>
}

/**
 * A listener that hears only this process (no channel: SQLite, or notifications turned off).
 *
 * @internal
 */
export const local: Effect.Effect<Listener> = Effect.map(PubSub.unbounded<Invalidation>(), (hub) => ({
  invalidations: Stream.fromPubSub(hub),
  tellSelf: (invalidation) => Effect.asVoid(PubSub.publish(hub, invalidation))
}))

/**
 * Listens on `channel` (sending heartbeats with `send`) until the scope closes; returns once
 * listening is confirmed, or after 5 seconds.
 *
 * @internal
 */
export const listen = (
  notifications: Notifications,
  channel: string,
  originId: string,
  send: (payload: string) => Effect.Effect<void, SqlError>
): Effect.Effect<Listener, never, Scope.Scope> =>
  Effect.gen(function*() {
    const hub = yield* PubSub.unbounded<Invalidation>()
    const own = `${originId}:`
    const beatPrefix = `hb:${originId}:`
    let beats = 0
    const listenOnce = notifications.listen(channel).pipe(
      Stream.runForEach((payload) => {
        if (payload.startsWith("hb:")) {
          if (payload.startsWith(beatPrefix)) beats++
          return Effect.void
        }
        const i = payload.indexOf(":")
        if (i < 0 || payload.startsWith(own)) return Effect.void
        return PubSub.publish(hub, parseInvalidation(payload.slice(i + 1)))
      }),
      Effect.catchAllCause((cause) => Effect.logWarning("effect-sessions: SQL invalidation listener failed", cause))
    )
    const heartbeat = (n: number) => Effect.ignore(send(`${beatPrefix}${n}`))
    /** Sends heartbeats until one comes back (true) or `millis` pass (false). */
    const echoed = (millis: number) =>
      Effect.gen(function*() {
        const start = beats
        for (let waited = 0; waited < millis; waited += 100) {
          if (waited % 500 === 0) yield* heartbeat(start + waited)
          yield* sleepReal(100)
          if (beats > start) return true
        }
        return false
      })
    const listening = yield* Deferred.make<void>()
    yield* Effect.gen(function*() {
      for (let round = 0;; round++) {
        const listener = yield* Effect.fork(listenOnce)
        if (yield* echoed(5000)) {
          if (round > 0) yield* PubSub.publish(hub, INVALIDATE_ALL)
          yield* Deferred.succeed(listening, undefined)
          // Healthy while heartbeats keep coming back.
          while (yield* Effect.zipRight(sleepReal(1000), echoed(2000)));
          yield* Effect.logWarning("effect-sessions: SQL invalidation channel went silent; listening again")
        }
        yield* Fiber.interrupt(listener)
        yield* sleepReal(Math.min(5000, 100 * 2 ** Math.min(round, 6)))
      }
    }).pipe(Effect.interruptible, Effect.forkScoped)
    yield* Deferred.await(listening).pipe(
      Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "not listening" }),
      Effect.catchAll(() => Effect.logWarning("effect-sessions: SQL invalidations not confirmed within 5 s; continuing"))
    )
    return {
      invalidations: Stream.fromPubSub(hub),
      tellSelf: (invalidation) => Effect.asVoid(PubSub.publish(hub, invalidation))
    }
  })
