/**
 * The one retry mechanism of the service, for races lost to another writer. A write is a
 * compare-and-set on the session's version (and, for a rotation, on its current token); an
 * attempt that loses fails with {@link LostRace}, and `Effect.retry` runs it again on a bounded
 * `Schedule` — after a jittered, exponential wait (0…2^n ms, at most 64) so that writers in
 * several processes stop colliding in lockstep, or at once when the next attempt simply follows
 * the winner's redirect. After {@link MAX_ATTEMPTS} attempts the caller decides what a lost race
 * means (a `SessionConflictError`, a best-effort answer, or "follow the redirect").
 *
 * The waits are scheduling, not timekeeping: they run on the event loop's timer, so that they also
 * pass under a paused `TestClock`; the jitter comes from Effect's `Random` (nothing secret depends
 * on it).
 *
 * @internal
 */
import { Data, Duration, Effect, Metric, Redacted, Schedule } from "effect"
import { logHash } from "../hash.js"
import { sleepReal } from "../realTime.js"
import { SessionConflictError } from "./errors.js"
import { metrics } from "./metrics.js"
import type { ActiveSession } from "./service.js"

/** Attempts of a compare-and-set before giving up (another process keeps winning). @internal */
export const MAX_ATTEMPTS = 32

/**
 * The signal of an attempt that lost its race: the only failure that is retried. Never leaves
 * the service.
 *
 * @internal
 */
export class LostRace extends Data.TaggedError("effect-sessions/LostRace")<{}> {}

const isLostRace = (u: unknown): u is LostRace => u instanceof LostRace

/**
 * A compare-and-set lost to another writer: counts it (`effect_sessions_conflicts_total`), runs
 * `cleanup` (drop what the cache believed) and fails with {@link LostRace}.
 *
 * @internal
 */
export const lostCompareAndSet = <E, R>(cleanup: Effect.Effect<void, E, R>): Effect.Effect<never, E | LostRace, R> =>
  Effect.zipRight(Metric.increment(metrics.conflicts), Effect.zipRight(cleanup, Effect.fail(new LostRace())))

/** Waits between compare-and-set attempts: jittered exponential, capped, bounded. @internal */
export const backoff: Schedule.Schedule<unknown, unknown> = Schedule.exponential("1 millis").pipe(
  Schedule.union(Schedule.spaced("64 millis")),
  Schedule.jitteredWith({ min: 0, max: 1 }),
  Schedule.intersect(Schedule.recurs(MAX_ATTEMPTS - 1)),
  // Waited on the event loop's timer; the Clock's schedule sees no delay.
  Schedule.modifyDelayEffect((_, delay) => Effect.as(sleepReal(Duration.toMillis(delay)), Duration.zero))
)

/** No wait: the next attempt follows the redirect the winner left. Bounded like {@link backoff}. @internal */
export const immediately: Schedule.Schedule<unknown, unknown> = Schedule.recurs(MAX_ATTEMPTS - 1)

/**
 * Runs `attempt` again after each {@link LostRace} on `schedule` (default {@link backoff}), and
 * answers `onExhausted()` when the schedule ends; every other failure ends the retries at once.
 *
 * @internal
 */
export const retryLostRaces = <A, E, R, B, E2, R2>(
  attempt: Effect.Effect<A, E, R>,
  onExhausted: () => Effect.Effect<B, E2, R2>,
  schedule: Schedule.Schedule<unknown, unknown> = backoff
): Effect.Effect<A | B, Exclude<E, LostRace> | E2, R | R2> =>
  // The first attempt runs outside `Effect.retry`: setting a retry up (a schedule driver, a
  // service provided to each attempt) costs more than a write to the memory store, and most
  // attempts win. A lost first race is replayed into the retry, so that the schedule counts it
  // and waits before the second attempt, as if the retry had run it.
  Effect.catchIf(attempt, isLostRace, (first) => {
    let replayed = false
    const again = Effect.suspend((): Effect.Effect<A, E | LostRace, R> => replayed ? attempt : (replayed = true, Effect.fail(first)))
    return Effect.retry(again, { schedule, while: isLostRace }).pipe(Effect.catchIf(isLostRace, onExhausted))
  }) as Effect.Effect<A | B, Exclude<E, LostRace> | E2, R | R2>

/** The error of a change through `handle` that kept losing the race. @internal */
export const conflictError = (method: string, handle: ActiveSession): SessionConflictError =>
  new SessionConflictError({ method, session: logHash(Redacted.value(handle.token)), attempts: MAX_ATTEMPTS })
