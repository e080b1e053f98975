/**
 * Per-key mutual exclusion with first-in-first-out hand-over. A release passes the lock straight
 * to the next waiter (one wake-up, not a stampede of all waiters), so a thousand requests queued
 * on one session cost a thousand hand-overs, not a million wake-ups. Entries leave the table with
 * their last user, so the table never grows without bound. Interruption while waiting leaves the
 * queue; interruption right after the hand-over passes the lock on.
 *
 * @internal
 */
import { Effect } from "effect"

interface Entry {
  held: boolean
  refs: number
  readonly waiters: Array<() => void>
}

/** @internal */
export interface KeyedLock {
  /**
   * Runs `effect` holding the lock of `key`. `onAbandon` runs when the caller is interrupted
   * before it got the lock (it never ran `effect`).
   */
  readonly withLock: (key: string, onAbandon?: () => void) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Keys with a holder or a waiter (for tests: the table shrinks back to 0). */
  readonly size: () => number
}

/** @internal */
export const makeKeyedLock = (): KeyedLock => {
  const table = new Map<string, Entry>()

  const release = (entry: Entry) => {
    const next = entry.waiters.shift()
    if (next) next() // ownership passes: `held` stays true
    else entry.held = false
  }

  const withLock = (key: string, onAbandon?: () => void) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        let entry = table.get(key)
        if (entry === undefined) {
          entry = { held: false, refs: 0, waiters: [] }
          table.set(key, entry)
        }
        const e = entry
        e.refs++
        let owned = false
        const leave = () => {
          if (--e.refs === 0) table.delete(key)
        }
        const acquire: Effect.Effect<void> = !e.held
          ? Effect.sync(() => {
            e.held = true
            owned = true
          })
          : Effect.async<void>((resume) => {
            const waiter = () => {
              owned = true
              resume(Effect.void)
            }
            e.waiters.push(waiter)
            return Effect.sync(() => {
              const i = e.waiters.indexOf(waiter)
              if (i >= 0) e.waiters.splice(i, 1)
            })
          })
        return Effect.matchCauseEffect(restore(acquire), {
          onFailure: (cause) =>
            Effect.zipRight(
              Effect.sync(() => {
                // Interrupted after the hand-over: pass the lock on.
                if (owned) release(e)
                leave()
                onAbandon?.()
              }),
              Effect.failCause(cause)
            ),
          onSuccess: () =>
            Effect.ensuring(
              restore(effect),
              Effect.sync(() => {
                release(e)
                leave()
              })
            )
        })
      })
    )

  return { withLock, size: () => table.size }
}
