/**
 * Invalidation bookkeeping and the subscriber. Other processes sharing the store announce, on its
 * `invalidations` channel, which token keys they changed and which users they refreshed ("All":
 * the channel was interrupted, or another process logged everyone out: anything cached may be
 * stale). The subscriber drops those entries from this process's session cache and user cache
 * while the service lives, and on "All" reads the revocation instant again (`revocation.ts`). The bookkeeping
 * numbers the invalidations, so that a record read from the store is cached only if no
 * invalidation of its key (nor a clear) arrived during the read: an invalidation that overtook
 * the read must not be undone by it (see `records.ts`).
 *
 * @internal
 */
import { Effect, Stream } from "effect"
import type { Scope } from "effect"
import type { PersistenceShape } from "../persistence.js"
import type { SessionCacheShape } from "../../SessionCache.js"
import type { UserCache } from "../userCache.js"
import type { Revocation } from "./revocation.js"

/** Per-key numbers kept at most; past it every read in flight counts as overtaken. */
const MAX_TRACKED_KEYS = 10_000

/** @internal */
export interface InvalidationBook {
  /** The number of the latest invalidation: taken before a read, compared after it. */
  readonly epoch: () => number
  /** Whether an invalidation of `tokenKey`, or of everything, arrived after `epoch`. */
  readonly overtaken: (tokenKey: string, epoch: number) => boolean
  /** An invalidation of one token key arrived. */
  readonly noteToken: (tokenKey: string) => void
  /** An invalidation of everything arrived. */
  readonly noteAll: () => void
}

/** @internal */
export const makeInvalidationBook = (): InvalidationBook => {
  let invalidationEpoch = 0
  let clearedAtEpoch = 0
  const invalidatedAt = new Map<string, number>()
  const clear = () => {
    // Forgetting per-key numbers is safe: every read in flight now counts as overtaken.
    invalidatedAt.clear()
    clearedAtEpoch = invalidationEpoch
  }
  return {
    epoch: () => invalidationEpoch,
    overtaken: (tk, since) => clearedAtEpoch > since || (invalidatedAt.get(tk) ?? 0) > since,
    noteToken: (tk) => {
      invalidationEpoch++
      if (invalidatedAt.size >= MAX_TRACKED_KEYS) clear()
      invalidatedAt.set(tk, invalidationEpoch)
    },
    noteAll: () => {
      invalidationEpoch++
      clear()
    }
  }
}

/**
 * Listens to the store's invalidations for as long as the scope lives (a fiber of its own). A
 * channel that ends is logged; the caches then only miss what other processes change.
 *
 * @internal
 */
export const subscribe = (deps: {
  readonly store: PersistenceShape
  readonly cache: SessionCacheShape
  readonly users: UserCache
  readonly book: InvalidationBook
  readonly revocation: Revocation
}): Effect.Effect<void, never, Scope.Scope> => {
  const { book, cache, revocation, store, users } = deps
  return store.invalidations.pipe(
    Stream.runForEach((invalidation) =>
      Effect.suspend(() => {
        switch (invalidation._tag) {
          case "Token":
            book.noteToken(invalidation.tokenKey)
            return cache.invalidate(invalidation.tokenKey)
          case "User":
            return users.forgetKey(invalidation.userKey)
          case "All":
            // Also what another process's logOutEveryone sends: read the instant again.
            book.noteAll()
            return Effect.zipRight(Effect.zipRight(cache.clear, users.forgetAll), revocation.stale)
        }
      })
    ),
    Effect.catchAllCause((cause) => Effect.logWarning("session invalidation stream ended", cause)),
    Effect.forkScoped,
    Effect.asVoid
  )
}
