/**
 * A {@link Persistence} on Redis (ioredis 5), shared by any number of processes.
 *
 * Records expire by TTL (so `sweep` is a no-op), the atomic steps (`save`, `rotate`, `create`,
 * `delete`, `deleteToken`) are Lua scripts, and a user index (a set per user) is kept in step by
 * the same scripts. Every write publishes the token keys it changed on `${prefix}invalidate`;
 * a second connection subscribes, and `invalidations` yields the keys written by other processes.
 *
 * The client fails fast during an outage (no offline queue, a 1 s command timeout): a request
 * gets a `SessionStoreError` with reason `"Unavailable"` instead of hanging, and the client keeps
 * reconnecting in the background. Needs a standalone Redis (or one primary), not Redis Cluster.
 *
 * `ioredis` is an optional peer dependency, loaded when the layer is built: without it, building
 * fails with a `SessionStoreError` whose message says what to install.
 *
 * @since 0.1.0
 * @module
 */
import { Config, Effect, Layer, Redacted } from "effect"
import type { ConfigError } from "effect/ConfigError"
import type { Scope } from "effect"
import type { Redis, RedisOptions } from "ioredis"
import * as Ids from "../Ids.js"
import { drivers, loadDriver } from "../internal/driver.js"
import { failFastOptions } from "../internal/redisOptions.js"
import { Persistence, type SessionStoreError, type PersistenceShape } from "../Persistence.js"
import * as SecureRandom from "../SecureRandom.js"

/**
 * The default key prefix.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_PREFIX = "sess:"

/**
 * The default connection URL.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_URL = "redis://127.0.0.1:6379"

/**
 * The ioredis options the store uses for the client it creates (callers may override them with
 * `redisOptions`): no offline queue, one retry, a 1 s command timeout, reconnecting forever.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRedisOptions: RedisOptions = failFastOptions

/**
 * Options of the Redis store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Connection URL (default `redis://127.0.0.1:6379`); ignored when `client` is given. */
  readonly url?: string | undefined
  /**
   * An existing client. The store does not close it (it closes its own subscriber connection);
   * configure it to fail fast (see {@link defaultRedisOptions}).
   */
  readonly client?: Redis | undefined
  /** Key prefix (default `sess:`). The invalidation channel is `${prefix}invalidate`. */
  readonly prefix?: string | undefined
  /** Options for the client the store creates, over {@link defaultRedisOptions}. */
  readonly redisOptions?: RedisOptions | undefined
  /**
   * This process's id in invalidation messages (so that it ignores its own). Default: 16 random
   * base62 characters from the live SecureRandom, drawn once per layer.
   */
  readonly originId?: string | undefined
  /** How long building the layer waits for the connection, in milliseconds (default 5000). */
  readonly connectTimeout?: number | undefined
  /** How long records are kept past their deadline, in milliseconds (default `Persistence.DEFAULT_RETENTION_MILLIS`). */
  readonly retentionMillis?: number | undefined
}

/**
 * Builds the store: connects, loads the scripts and subscribes to invalidations; the
 * connections are closed when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<PersistenceShape, SessionStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    // The store module imports ioredis, an optional peer dependency: load both on demand.
    const { makeRedisStore } = yield* loadDriver(
      "effect-sessions/Persistence/Redis",
      "make",
      [drivers.ioredis],
      () => import("../internal/redisStore.js")
    )
    // The origin only tells this process's messages apart: the live randomness, needing nothing.
    const originId = options.originId ?? (yield* Ids.randomId(16).pipe(Effect.provide(SecureRandom.layer)))
    return yield* makeRedisStore({
      url: options.url ?? DEFAULT_URL,
      client: options.client,
      redisOptions: options.redisOptions,
      prefix: options.prefix ?? DEFAULT_PREFIX,
      originId,
      connectTimeout: options.connectTimeout,
      retentionMillis: options.retentionMillis
    })
  })

/**
 * The Redis store as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Persistence, SessionStoreError> =>
  Layer.scoped(Persistence, make(options))

/**
 * The Redis store at `REDIS_URL` (default `redis://127.0.0.1:6379`), or at the `url` config given.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Omit<Options, "url" | "client"> & { readonly url?: Config.Config<Redacted.Redacted> | undefined } = {}
): Layer.Layer<Persistence, SessionStoreError | ConfigError> => {
  const { url, ...rest } = options
  return Layer.unwrapEffect(
    Effect.map(
      url ?? Config.withDefault(Config.redacted("REDIS_URL"), Redacted.make(DEFAULT_URL)),
      (value) => layer({ ...rest, url: Redacted.value(value) })
    )
  )
}
