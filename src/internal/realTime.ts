/**
 * Waiting on the event loop's timer. For scheduling only — backoff between retries, heartbeats
 * of a notification channel — never for deciding anything by time (that is `Clock`'s job): these
 * waits must also pass while a test holds a `TestClock` still.
 *
 * @internal
 */
import { Effect } from "effect"

/** @internal */
export const sleepReal = (millis: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })
