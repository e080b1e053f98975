/**
 * The one hand-moved clock of the tests, for properties that move time thousands of times.
 * `TestClock.adjust` and `TestClock.setTime` yield to the scheduler and wait for a timer tick (a
 * millisecond or more) on every call: too slow for such properties. Example tests use `TestClock`
 * itself.
 *
 * The service and the stores only read time; `sleep` is the live one, so that a driver with an
 * internal timeout (a connection pool) keeps working while the clock stands still.
 *
 * @internal
 */
import { Clock, Effect } from "effect"

/** A clock at `start` (milliseconds) that moves only when told. */
export const manualClock = (start = 0) => {
  let now = start
  const live = Clock.make()
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    currentTimeMillis: Effect.sync(() => now),
    unsafeCurrentTimeNanos: () => BigInt(now) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
    sleep: (duration) => live.sleep(duration)
  }
  return {
    clock,
    /** Moves the clock `millis` forward. */
    advance: (millis: number): Effect.Effect<void> =>
      Effect.sync(() => {
        now += millis
      }),
    /** Sets the clock to `millis`. */
    setTime: (millis: number): Effect.Effect<void> =>
      Effect.sync(() => {
        now = millis
      }),
    /** {@link advance} outside an effect (for a test driving the service from promises). */
    unsafeAdvance: (millis: number): void => {
      now += millis
    }
  }
}

/** A {@link manualClock}. */
export type ManualClock = ReturnType<typeof manualClock>
