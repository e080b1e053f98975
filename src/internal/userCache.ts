/**
 * The cache of user objects behind `Sessions.user`: bounded (capacity, least recently used out)
 * and forgetful (a time to live, for "not found" too), and coherent across processes:
 * `refreshUser` forgets the user here and publishes a user invalidation on the store's channel,
 * and every other process's service forgets it when the message arrives. The channel carries a
 * hash of the user ID (`Persistence.userKey`), never the ID.
 *
 * @internal
 */
import { Cache, Duration, Effect, Equal, Exit, Hash, Option } from "effect"
import { type PersistenceShape, type SessionStoreError, userKey } from "../Persistence.js"
import type { UserLoader } from "../Sessions.js"
import { UserLoaderError } from "../Sessions.js"

/** How many users are cached at most, unless the `UserLoader` says otherwise. @internal */
export const DEFAULT_USER_CACHE_CAPACITY = 10_000

/** How long a loaded user (or "not found") is kept, unless the `UserLoader` says otherwise. @internal */
export const DEFAULT_USER_CACHE_TIME_TO_LIVE: Duration.Duration = Duration.minutes(5)

/**
 * A cache key: the user ID (for the loader) and its hash. Equal by the hash alone, so that an
 * invalidation, which carries only the hash, finds the entry.
 */
class UserRef implements Equal.Equal {
  constructor(readonly userId: string, readonly key: string) {}
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof UserRef && that.key === this.key
  }
  [Hash.symbol](): number {
    return Hash.string(this.key)
  }
}

/** @internal */
export interface UserCache {
  /** The user object through the loader, cached. */
  readonly get: (userId: string) => Effect.Effect<Option.Option<unknown>, UserLoaderError>
  /** Forgets a user here and tells the other processes sharing the store. */
  readonly refresh: (userId: string) => Effect.Effect<void, SessionStoreError>
  /** Forgets the user with this hash (an invalidation from another process). */
  readonly forgetKey: (userKey: string) => Effect.Effect<void>
  /** Forgets every user (the invalidation channel was interrupted). */
  readonly forgetAll: Effect.Effect<void>
}

/** @internal */
export const makeUserCache = (
  loader: Option.Option<UserLoader["Type"]>,
  store: PersistenceShape
): Effect.Effect<UserCache> =>
  Effect.gen(function*() {
    const publish = (userId: string) => store.publishUserInvalidation(userKey(userId))
    if (Option.isNone(loader)) {
      return {
        get: () => Effect.succeedNone,
        refresh: publish,
        forgetKey: () => Effect.void,
        forgetAll: Effect.void
      }
    }
    const { cache: options, load } = loader.value
    const ttl = Duration.decode(options?.timeToLive ?? DEFAULT_USER_CACHE_TIME_TO_LIVE)
    const cache = yield* Cache.makeWith({
      capacity: Math.max(0, options?.capacity ?? DEFAULT_USER_CACHE_CAPACITY),
      lookup: (ref: UserRef) => Effect.mapError(load(ref.userId), (cause) => new UserLoaderError({ userId: ref.userId, cause })),
      // A failed load is not kept (see `get`); a user, or "not found", for the time to live.
      timeToLive: (exit) => (Exit.isSuccess(exit) ? ttl : Duration.zero)
    })
    // Counts invalidations. A load that an invalidation overtook may return the old user to its
    // caller, but is not kept: `Cache` stores a lookup's result when it completes, even when the
    // entry was invalidated meanwhile.
    let generation = 0
    const forget = (ref: UserRef) =>
      Effect.suspend(() => {
        generation++
        return cache.invalidate(ref)
      })
    return {
      get: (userId) =>
        Effect.suspend(() => {
          const ref = new UserRef(userId, userKey(userId))
          const seen = generation
          return cache.get(ref).pipe(
            Effect.tapError(() => cache.invalidate(ref)),
            Effect.tap(() => (generation === seen ? Effect.void : cache.invalidate(ref)))
          )
        }),
      refresh: (userId) => Effect.zipRight(forget(new UserRef(userId, userKey(userId))), publish(userId)),
      forgetKey: (key) => forget(new UserRef("", key)),
      forgetAll: Effect.suspend(() => {
        generation++
        return cache.invalidateAll
      })
    }
  })
