/**
 * "Log everybody out" (`logOutEveryone`): the store holds one revocation instant, and every session
 * born — and not authenticated since — at or before it counts as ended (`Session.isRevoked`). Each
 * process keeps the instant in memory, so that the request path compares two numbers and never
 * scans the store; a revoked session is deleted, and a `Revoked` event published, when the service
 * next meets it (a resolution, a read or write through a handle, a listing).
 *
 * When a process learns of a new instant: the process that set it at once; the others when the
 * store's `All` invalidation arrives (milliseconds on Redis and PostgreSQL), and after a reconnect of
 * the channel (which sends `All` too). Should a message still be lost — or on a store without a
 * channel (SQLite shared by several processes) — every process reads the instant again at most
 * {@link RELOAD_MILLIS} after its last read: the hot path (a cached session) stops answering from the
 * cache once the instant it knows is older than that, so the next request reads it from the store.
 *
 * @internal
 */
import { Effect, Metric, Option } from "effect"
import type { Clock } from "effect"
import type { PersistenceShape, SessionStoreError } from "../persistence.js"
import type { Session } from "../../Session.js"
import * as S from "../../Session.js"
import type { EventHub } from "./events.js"
import * as Ev from "./events.js"
import { metrics } from "./metrics.js"

/**
 * How long a process trusts the instant it read (Clock time): past it, the next request that needs
 * a decision reads it from the store again. Bounds how long a lost invalidation can delay
 * `logOutEveryone` in a process.
 *
 * @internal
 */
export const RELOAD_MILLIS = 60_000

/** @internal */
export interface Revocation {
  /** The instant this process knows (`-Infinity` before any). */
  readonly until: () => number
  /** Whether a session is ended by the instant this process knows. */
  readonly isRevoked: (session: Session) => boolean
  /**
   * Whether the hot path may trust the instant known here at `now`: read (or, before the first
   * read, the service started) less than {@link RELOAD_MILLIS} before, and no `All` came since.
   */
  readonly fresh: (now: number) => boolean
  /** Reads the instant from the store unless it is fresh: run before any decision on a session. */
  readonly ready: Effect.Effect<void, SessionStoreError>
  /** Another process may have moved the instant (an `All` invalidation): read it again. */
  readonly stale: Effect.Effect<void>
  /** This process stored `until`: it holds here at once. */
  readonly raise: (until: number) => void
  /** Deletes a revoked session met on the way and publishes its `Revoked` event. */
  readonly end: (session: Session, now: number, drop: (session: Session) => Effect.Effect<void, SessionStoreError>) => Effect.Effect<void, SessionStoreError>
}

/** @internal */
export const makeRevocation = (store: PersistenceShape, clock: Clock.Clock, events: EventHub): Revocation => {
  let until = Number.NEGATIVE_INFINITY
  // Whether the instant was ever read: a decision on a session read from the store waits for it.
  let everRead = false
  // Since when the instant known here is trusted. Before the first read, since the service
  // started: the only sessions the hot path can meet then are the ones this process created since
  // (nothing read from the store reached the cache yet), all born after any earlier switch.
  let trustedSince: number | undefined = clock.unsafeCurrentTimeMillis()
  // Bumped by every `All`: a read that was in flight when one arrived does not count as fresh.
  let generation = 0

  const fresh = (now: number) => trustedSince !== undefined && now - trustedSince < RELOAD_MILLIS

  const read = Effect.suspend(() => {
    const started = generation
    const at = clock.unsafeCurrentTimeMillis()
    return Effect.map(store.revokedUntil, (stored) => {
      // Never lower: a store emptied by hand must not bring revoked sessions back in this process.
      if (Option.isSome(stored)) until = Math.max(until, stored.value)
      if (generation === started) {
        everRead = true
        trustedSince = at
      }
    })
  })

  const ok = () => everRead && fresh(clock.unsafeCurrentTimeMillis())
  // One read at a time: the requests that arrive together on a fresh (or stale) instant wait for
  // the one read rather than each asking the store.
  const reading = Effect.unsafeMakeSemaphore(1)
  const readOnce = reading.withPermits(1)(Effect.suspend(() => ok() ? Effect.void : read))

  return {
    until: () => until,
    isRevoked: (session) => S.isRevoked(session, until),
    fresh,
    ready: Effect.suspend(() => ok() ? Effect.void : readOnce),
    stale: Effect.suspend(() => {
      generation++
      everRead = false
      trustedSince = undefined
      return Effect.catchAll(read, (e) => Effect.logWarning("could not read the revocation instant; the next request reads it", e))
    }),
    raise: (t) => {
      until = Math.max(until, t)
    },
    end: (session, now, drop) =>
      Effect.zipRight(
        drop(session),
        Effect.zipRight(
          Metric.increment(Metric.tagged(metrics.expired, "reason", "revoked")),
          events.emit(Ev.revoked(session, now, until))
        )
      )
  }
}
