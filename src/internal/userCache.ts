/**
 * The cache of user objects behind `Sessions.user`: bounded (capacity, least recently used out)
 * and forgetful (a time to live, for "not found" too), and coherent across processes:
 * `refreshUser` forgets the user here and publishes a user invalidation on the store's channel,
 * and every other process's service forgets it when the message arrives. The channel carries a
 * hash of the user ID (`Persistence.userKey`), never the ID.
 *
 * @internal
 */
import { Clock, Duration, Effect, Option } from "effect"
import { type PersistenceShape, type SessionStoreError, userKey } from "./persistence.js"
import { UserLoaderError } from "./sessions/errors.js"
import type { UserLoader } from "./sessions/service.js"

/** How many users are cached at most, unless the `UserLoader` says otherwise. @internal */
export const DEFAULT_USER_CACHE_CAPACITY = 10_000

/** How long a loaded user (or "not found") is kept, unless the `UserLoader` says otherwise. @internal */
export const DEFAULT_USER_CACHE_TIME_TO_LIVE: Duration.Duration = Duration.minutes(5)

interface Entry {
  readonly user: Option.Option<unknown>
  readonly expiresAt: number
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
  Effect.sync((): UserCache => {
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
    const ttl = Duration.toMillis(Duration.decode(options?.timeToLive ?? DEFAULT_USER_CACHE_TIME_TO_LIVE))
    const capacity = Math.max(0, options?.capacity ?? DEFAULT_USER_CACHE_CAPACITY)
    // Keyed by the user's hash (what an invalidation carries), least recently used first: a `Map`
    // re-inserted on use. (Effect's `Cache` keeps a node in its LRU list for every entry it ever
    // loaded until the map exceeds its capacity, so reloads after a TTL or an invalidation grow it
    // without bound below the capacity.)
    const entries = new Map<string, Entry>()
    // Counts invalidations: a load that one overtook may answer its caller, but is not kept.
    let generation = 0
    const forget = (key: string) =>
      Effect.sync(() => {
        generation++
        entries.delete(key)
      })
    const get = (userId: string): Effect.Effect<Option.Option<unknown>, UserLoaderError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const key = userKey(userId)
        const entry = entries.get(key)
        if (entry !== undefined) {
          entries.delete(key)
          if (entry.expiresAt > now) {
            entries.set(key, entry)
            return Effect.succeed(entry.user)
          }
        }
        const seen = generation
        // A failed load is not kept: the next call tries again.
        return load(userId).pipe(
          Effect.mapError((cause) => new UserLoaderError({ userId, cause })),
          Effect.tap((user) =>
            Effect.sync(() => {
              if (generation !== seen || capacity === 0) return
              entries.delete(key)
              entries.set(key, { user, expiresAt: now + ttl })
              while (entries.size > capacity) entries.delete(entries.keys().next().value!)
            })
          )
        )
      })
    return {
      get,
      refresh: (userId) => Effect.zipRight(forget(userKey(userId)), publish(userId)),
      forgetKey: forget,
      forgetAll: Effect.sync(() => {
        generation++
        entries.clear()
      })
    }
  })
