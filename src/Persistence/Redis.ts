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
 * A bad option (a URL that is not `redis://` or `rediss://`, a duration that is not one) fails
 * the building of the layer with a `ConfigError` naming it.
 *
 * `ioredis` is an optional peer dependency, loaded when the layer is built: without it, building
 * fails with a `SessionStoreError` whose message says what to install.
 *
 * @since 0.1.0
 * @module
 */
import { Config, Duration, Effect, Either, Layer, Redacted } from "effect"
import type { ConfigError } from "effect/ConfigError"
import type { Scope } from "effect"
import type { Redis, RedisOptions } from "ioredis"
import * as Ids from "../Ids.js"
import { drivers, loadDriver } from "../internal/driver.js"
import { checkRedisUrl, failFastOptions } from "../internal/redis/options.js"
import { type ConfigOrValues, durationMillis, unwrapWithUrl } from "../internal/storeOptions.js"
import { DEFAULT_RETENTION, Persistence, type SessionStoreError, type PersistenceShape } from "../Persistence.js"
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
 * How long building the layer waits for the connection by default: 5 seconds.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_CONNECT_TIMEOUT: Duration.Duration = Duration.seconds(5)

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
  /**
   * Connection URL, `redis://` or `rediss://` (TLS) (default `redis://127.0.0.1:6379`); ignored
   * when `client` is given. Any other is a `ConfigError` when the layer is built.
   */
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
  /** How long building the layer waits for the connection (default {@link DEFAULT_CONNECT_TIMEOUT}). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** How long records are kept past their deadline (default `Persistence.DEFAULT_RETENTION`). */
  readonly retention?: Duration.DurationInput | undefined
}

/**
 * Builds the store: checks the options, connects, loads the scripts and subscribes to
 * invalidations; the connections are closed when the scope closes. A bad option is a
 * `ConfigError`, before anything connects.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<PersistenceShape, SessionStoreError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const url = options.client === undefined ? yield* checkRedisUrl(options.url ?? DEFAULT_URL, ["url"]) : DEFAULT_URL
    const connectTimeout = yield* durationMillis(options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT, ["connectTimeout"], { positive: true })
    const retention = yield* durationMillis(options.retention ?? DEFAULT_RETENTION, ["retention"], { positive: false })
    // The store module imports ioredis, an optional peer dependency: load both on demand.
    const { makeRedisStore } = yield* loadDriver(
      "effect-sessions/Persistence/Redis",
      "make",
      [drivers.ioredis],
      () => import("../internal/redis/store.js")
    )
    // The origin only tells this process's messages apart: the live randomness, needing nothing.
    const originId = options.originId ?? (yield* Ids.randomId(16).pipe(Effect.provide(SecureRandom.layer)))
    return yield* makeRedisStore({
      url,
      client: options.client,
      redisOptions: options.redisOptions,
      prefix: options.prefix ?? DEFAULT_PREFIX,
      originId,
      connectTimeout,
      retention
    })
  })

/**
 * The Redis store as a layer. A bad option fails the building with a `ConfigError`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Persistence, SessionStoreError | ConfigError> =>
  Layer.scoped(Persistence, make(options))

/**
 * The options {@link layerConfig} reads from configuration: the URL (a secret, so `Redacted`), the
 * prefix and the durations.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigOptions {
  /** Connection URL (default: `REDIS_URL`, else `redis://127.0.0.1:6379`). */
  readonly url?: Redacted.Redacted | undefined
  /** Key prefix (default `sess:`). */
  readonly prefix?: string | undefined
  /** How long building the layer waits for the connection (default {@link DEFAULT_CONNECT_TIMEOUT}). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** How long records are kept past their deadline (default `Persistence.DEFAULT_RETENTION`). */
  readonly retention?: Duration.DurationInput | undefined
}

/**
 * The Redis store from configuration: {@link ConfigOptions} as one `Config`, or as an object whose
 * fields are each a `Config` (as `Config.Config.Wrap`, like `Sessions.layerConfig`) or a plain
 * value. Without a `url`, `REDIS_URL` (default
 * `redis://127.0.0.1:6379`). A URL that is not `redis://` or `rediss://` is a `ConfigError` naming
 * the variable (or `url`), when the layer is built.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { Config } from "effect"
 * import * as Redis from "effect-sessions/Persistence/Redis"
 *
 * const store = Redis.layerConfig({ prefix: Config.string("SESSIONS_PREFIX").pipe(Config.withDefault("app:")) })
 * ```
 */
export const layerConfig = (
  config: ConfigOrValues<ConfigOptions> = {}
): Layer.Layer<Persistence, SessionStoreError | ConfigError> => {
  // Checked inside REDIS_URL, so that the error names the variable.
  const fromEnvironment = Config.redacted().pipe(
    Config.mapOrFail((value) => Either.map(checkRedisUrl(Redacted.value(value), []), () => value)),
    Config.nested("REDIS_URL"),
    Config.withDefault(Redacted.make(DEFAULT_URL))
  )
  return Layer.unwrapEffect(Effect.map(unwrapWithUrl(config, fromEnvironment), ({ url, ...rest }) =>
    layer({ ...rest, ...(url === undefined ? {} : { url: Redacted.value(url) }) })))
}
