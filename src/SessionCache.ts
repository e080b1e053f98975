/**
 * The local write-through cache: an LRU of token records held in a `Ref`, with a capacity
 * (`cache.capacity`, `Infinity` for no bound; `cache: false` for no cache) and idle eviction
 * (`cache.idleTimeout`).
 *
 * Every change goes to the store first and then here, and last-access times are written through
 * whenever they move (see `Session.touch`), so the cache never holds anything fresher than the
 * store: any cache size behaves exactly like no cache (invariant 7).
 *
 * @since 0.1.0
 * @module
 */
import { Context, Effect, Layer, Option, Ref } from "effect"
import { Lru } from "./internal/lru.js"
import type { TokenRecord } from "./Session.js"
import type { CacheSettings } from "./SessionConfig.js"
import { millis, SessionConfig } from "./SessionConfig.js"

/**
 * The cache operations, by token key.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionCacheShape {
  readonly get: (tokenKey: string) => Effect.Effect<Option.Option<TokenRecord>>
  readonly set: (tokenKey: string, record: TokenRecord) => Effect.Effect<void>
  readonly invalidate: (tokenKey: string) => Effect.Effect<void>
  /** Empties the cache (rivo/sessions' PurgeSessions; nothing is pending, since every change is written through). */
  readonly clear: Effect.Effect<void>
  readonly size: Effect.Effect<number>
  /** Token keys from least to most recently used (for tests). */
  readonly keys: Effect.Effect<ReadonlyArray<string>>
  /** Whether the cache stores anything at all. */
  readonly enabled: boolean
}

/**
 * The cache service.
 *
 * @since 0.1.0
 * @category tags
 */
export class SessionCache extends Context.Tag("effect-sessions/SessionCache")<SessionCache, SessionCacheShape>() {}

/**
 * Builds a cache from its settings (the configuration's `cache`); `false` builds one that stores
 * nothing. Time for idle eviction comes from the `Clock` in context when it is built.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (settings: false | CacheSettings): Effect.Effect<SessionCacheShape> =>
  Effect.zipWith(Ref.make(settings === false ? new Lru<string, TokenRecord>(0, 0) : new Lru<string, TokenRecord>(settings.capacity, millis(settings.idleTimeout))), Effect.clock, (ref, clock): SessionCacheShape => {
    const enabled = settings !== false
    if (!enabled) {
      return {
        enabled,
        get: () => Effect.succeed(Option.none()),
        set: () => Effect.void,
        invalidate: () => Effect.void,
        clear: Effect.void,
        size: Effect.succeed(0),
        keys: Effect.succeed([])
      }
    }
    return {
      enabled,
      // The clock is the one in context when the cache was built (a TestClock in tests).
      get: (tokenKey) => Ref.modify(ref, (lru) => [Option.fromNullable(lru.get(tokenKey, clock.unsafeCurrentTimeMillis())), lru]),
      set: (tokenKey, record) =>
        Ref.update(ref, (lru) => {
          lru.set(tokenKey, record, clock.unsafeCurrentTimeMillis())
          return lru
        }),
      invalidate: (tokenKey) =>
        Ref.update(ref, (lru) => {
          lru.delete(tokenKey)
          return lru
        }),
      clear: Ref.update(ref, (lru) => {
        lru.clear()
        return lru
      }),
      size: Ref.get(ref).pipe(Effect.map((lru) => lru.size)),
      keys: Ref.get(ref).pipe(Effect.map((lru) => lru.keys()))
    }
  })

/**
 * The cache as the configuration's `cache` sets it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<SessionCache, never, SessionConfig> = Layer.effect(
  SessionCache,
  Effect.flatMap(SessionConfig, (config) => make(config.cache))
)
