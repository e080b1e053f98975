/**
 * The SQL store on PostgreSQL (`@effect/sql-pg`): a ready-made layer that opens the connection
 * pool, creates the tables and listens for invalidations (`LISTEN/NOTIFY`). Importing this
 * module never loads the SQLite driver.
 *
 * `@effect/sql` and `@effect/sql-pg` are optional peer dependencies, loaded when the layer is
 * built: without them, building fails with a `SessionStoreError` whose message says what to
 * install. A URL that is not `postgres:` or `postgresql:` and an invalid store option fail the
 * building with a `ConfigError` naming them, before anything connects.
 *
 * @since 0.1.0
 * @module
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type { ConfigError } from "effect/ConfigError"
import { Config, type Duration, Effect, Either, Layer, Redacted } from "effect"
import { drivers, loadDriver } from "../internal/driver.js"
import { checkPostgresUrl } from "../internal/sql/databaseUrl.js"
import { checkSqlOptions, type ConfigOrValues, unwrapWithUrl } from "../internal/storeOptions.js"
import { type Persistence, SessionStoreError } from "../Persistence.js"
import * as Sql from "./Sql.js"

/**
 * Options of {@link layer}: the store's options, the connection URL, and any other option of
 * `@effect/sql-pg`'s client (pool size, timeouts, TLS …).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Sql.Options {
  /** `postgres://user:password@host:port/database` (or `postgresql:`); any other is a `ConfigError`. */
  readonly url: string | Redacted.Redacted<string>
  /** Further client options (`maxConnections`, `connectTimeout`, `ssl` …). */
  readonly client?: Omit<PgClient.PgClientConfig, "url"> | undefined
}

// The drivers are optional peer dependencies: loaded when a layer is built, never on import.
const loadPg = loadDriver(
  "effect-sessions/Persistence/Pg",
  "layer",
  [drivers.sql, drivers.sqlPg],
  () => Promise.all([import("@effect/sql-pg/PgClient"), import("@effect/sql/SqlError")])
)

const clientConfig = (options: Options, url: Redacted.Redacted<string>): PgClient.PgClientConfig => ({
  connectTimeout: "5 seconds",
  ...options.client,
  url
})

/**
 * The SQL store on a PostgreSQL database: opens its own `PgClient` (closed with the layer). A bad
 * URL or store option fails the building with a `ConfigError`, before anything connects.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Persistence, SessionStoreError | ConfigError> => {
  const { client: _client, url: _url, ...storeOptions } = options
  return Layer.unwrapEffect(Effect.gen(function*() {
    const url = typeof options.url === "string" ? Redacted.make(options.url) : options.url
    yield* checkPostgresUrl(Redacted.value(url), ["url"])
    yield* checkSqlOptions(storeOptions)
    const [PgClient, { SqlError }] = yield* loadPg
    return Sql.layer(storeOptions).pipe(
      Layer.provide(PgClient.layer(clientConfig(options, url))),
      Layer.mapError((e) => e instanceof SqlError ? new SessionStoreError({ method: "connect", reason: "Unavailable", cause: e }) : e)
    )
  }))
}

/**
 * The options {@link layerConfig} reads from configuration: the URL (a secret, so `Redacted`) and
 * the SQL store's table prefix and retention.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigOptions {
  /** `postgres://…` or `postgresql://…` (default: `DATABASE_URL`). */
  readonly url?: Redacted.Redacted<string> | undefined
  /** Prefix of the table, index and channel names (default `effect_sessions_`). */
  readonly tablePrefix?: string | undefined
  /** How long records are kept past their deadline (default `Persistence.DEFAULT_RETENTION`). */
  readonly retention?: Duration.DurationInput | undefined
}

/**
 * The SQL store on PostgreSQL from configuration: {@link ConfigOptions} as one `Config`, or as an
 * object whose fields are each a `Config` (as `Config.Config.Wrap`, like `Sessions.layerConfig`)
 * or a plain value; `client` takes further client options. Without a `url`, `DATABASE_URL`. A URL
 * that is not `postgres:` or `postgresql:` is a `ConfigError` naming the variable (or `url`), when
 * the layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: ConfigOrValues<ConfigOptions> = {},
  client?: Omit<PgClient.PgClientConfig, "url">
): Layer.Layer<Persistence, SessionStoreError | ConfigError> => {
  // Checked inside DATABASE_URL, so that the error names the variable.
  const fromEnvironment = Config.redacted().pipe(
    Config.mapOrFail((value) => Either.map(checkPostgresUrl(Redacted.value(value), []), () => value)),
    Config.nested("DATABASE_URL")
  )
  return Layer.unwrapEffect(Effect.map(unwrapWithUrl(config, fromEnvironment), ({ url, ...rest }) =>
    layer({ ...rest, client, url: url ?? "" })))
}
