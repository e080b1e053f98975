/**
 * A {@link Persistence} on Redis (ioredis 5), shared by any number of processes: on a single
 * server ({@link layer}) or on Redis Cluster ({@link layerCluster}), with one key layout.
 *
 * Records expire by TTL (so `sweep` is a no-op), and each step on a session (`create`, `save`,
 * `rotate`, `delete`) is one Lua script over the session's keys, which share the session's
 * routing tag and so one cluster slot: `${prefix}{tag}:s:${sessionKey}` and
 * `${prefix}{tag}:t:${tokenKey}`. A user's index, `${prefix}{u:${userKey}}`, lives in the user's
 * slot and is written before a session claims the user. Every write publishes the token keys it
 * changed, inside its script: on a single server with `PUBLISH` on `${prefix}invalidate`; on a
 * cluster of Redis 7 with `SPUBLISH` on the channel of the script's slot (`${prefix}inv{…}`, one
 * per hash slot), else with `PUBLISH`. Connections of the store's own subscribe (on a cluster with
 * sharded pub/sub, one to each primary, to the channels of its slots), and `invalidations` yields
 * the keys written by other processes — and "everything" after a subscription was interrupted.
 *
 * The client fails fast during an outage (no offline queue, a 1 s command timeout): a request
 * gets a `SessionStoreError` with reason `"Unavailable"` instead of hanging, and the client keeps
 * reconnecting in the background.
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
import type { Cluster, ClusterOptions as IORedisClusterOptions, Redis, RedisOptions } from "ioredis"
import * as Ids from "../Ids.js"
import { drivers, loadDriver } from "../internal/driver.js"
import { checkClusterNodes, checkRedisUrl, failFastOptions } from "../internal/redis/options.js"
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
  /**
   * Key prefix (default `sess:`), with no `{`. The invalidation channel is `${prefix}invalidate`
   * (on a cluster with sharded pub/sub, `${prefix}inv{…}`, one per hash slot).
   */
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

// ---------------------------------------------------------------------------------------------
// Redis Cluster
// ---------------------------------------------------------------------------------------------

/**
 * A starting node of a cluster: `"host:port"` (an IPv6 host in brackets), `"redis://host:port"`, or
 * `{ host, port }`.
 *
 * @since 0.1.0
 * @category models
 */
export type ClusterNode = string | { readonly host: string; readonly port: number }

/**
 * Options of the Redis store on a cluster: those of {@link Options} without `url` and `client`,
 * plus the starting nodes (or a cluster client).
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterOptions extends Omit<Options, "url" | "client"> {
  /**
   * Some nodes of the cluster (the client discovers the others): a non-empty list, or text
   * separated by commas (`"127.0.0.1:7000,127.0.0.1:7001"`). Ignored when `client` is given; a
   * bad list is a `ConfigError` when the layer is built.
   */
  readonly nodes?: string | ReadonlyArray<ClusterNode> | undefined
  /**
   * An existing cluster client. The store does not close it (it closes its own subscriber
   * connection); configure it to fail fast (`enableOfflineQueue: false`, and
   * {@link defaultRedisOptions} as its `redisOptions`).
   */
  readonly client?: Cluster | undefined
  /** Options of the cluster client the store creates (`redisOptions` are for each node's connection). */
  readonly clusterOptions?: IORedisClusterOptions | undefined
}

/**
 * Builds the store on a Redis Cluster: the same store as {@link make}, over a `Cluster` client.
 * Every script touches only keys in one slot, declared in `KEYS`, so it runs on any cluster of
 * Redis ≥ 6.2 (or Valkey); the user index and the session are written in two steps, the index
 * first. Invalidations use sharded pub/sub when every primary supports it (Redis 7: a channel per
 * hash slot, `SSUBSCRIBE`d on the slot's primary by a connection of the store's own to each
 * primary; 16,384 subscriptions per process, made when the layer is built), classic pub/sub
 * otherwise; a log line at start says which. A bad option is a `ConfigError`, before anything
 * connects.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCluster = (options: ClusterOptions): Effect.Effect<PersistenceShape, SessionStoreError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const nodes = options.client === undefined ? yield* checkClusterNodes(options.nodes ?? [], ["nodes"]) : []
    const connectTimeout = yield* durationMillis(options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT, ["connectTimeout"], { positive: true })
    const retention = yield* durationMillis(options.retention ?? DEFAULT_RETENTION, ["retention"], { positive: false })
    const { makeRedisStore } = yield* loadDriver(
      "effect-sessions/Persistence/Redis",
      "makeCluster",
      [drivers.ioredis],
      () => import("../internal/redis/store.js")
    )
    const originId = options.originId ?? (yield* Ids.randomId(16).pipe(Effect.provide(SecureRandom.layer)))
    return yield* makeRedisStore({
      url: DEFAULT_URL,
      nodes: options.client === undefined ? nodes : undefined,
      client: options.client,
      redisOptions: options.redisOptions,
      clusterOptions: options.clusterOptions,
      prefix: options.prefix ?? DEFAULT_PREFIX,
      originId,
      connectTimeout,
      retention
    })
  })

/**
 * The Redis store on a cluster as a layer. A bad option fails the building with a `ConfigError`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (options: ClusterOptions): Layer.Layer<Persistence, SessionStoreError | ConfigError> =>
  Layer.scoped(Persistence, makeCluster(options))

/**
 * The options {@link layerClusterConfig} reads from configuration.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterConfigOptions {
  /** Seed nodes, `host:port` separated by commas (default: `REDIS_CLUSTER_NODES`, required). */
  readonly nodes?: string | undefined
  /** Key prefix (default `sess:`). */
  readonly prefix?: string | undefined
  /** How long building the layer waits for the connection (default {@link DEFAULT_CONNECT_TIMEOUT}). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** How long records are kept past their deadline (default `Persistence.DEFAULT_RETENTION`). */
  readonly retention?: Duration.DurationInput | undefined
}

/**
 * The Redis store on a cluster from configuration: {@link ClusterConfigOptions} as one `Config`,
 * or an object whose fields are each a `Config` or a plain value. Without `nodes`,
 * `REDIS_CLUSTER_NODES` (`127.0.0.1:7000,127.0.0.1:7001,…`), which must be set; a bad list is a
 * `ConfigError` naming the variable (or `nodes`), when the layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClusterConfig = (
  config: ConfigOrValues<ClusterConfigOptions> = {}
): Layer.Layer<Persistence, SessionStoreError | ConfigError> => {
  const fromEnvironment = Config.string().pipe(
    Config.mapOrFail((value) => Either.map(checkClusterNodes(value, []), () => value)),
    Config.nested("REDIS_CLUSTER_NODES")
  )
  const options: Config.Config<ClusterConfigOptions> = Config.isConfig(config)
    ? config
    : Config.all(Object.fromEntries([
      ["nodes", fromEnvironment],
      ...Object.entries(config).flatMap(([name, value]) =>
        value === undefined ? [] : [[name, Config.isConfig(value) ? value : Config.succeed(value)]]
      )
    ])) as unknown as Config.Config<ClusterConfigOptions>
  return Layer.unwrapEffect(Effect.map(options, (o) => layerCluster({ ...o, nodes: o.nodes ?? [] })))
}
