/**
 * The SQL store on SQLite (`@effect/sql-sqlite-node`, better-sqlite3): a ready-made layer for one
 * process (a file or `:memory:`). SQLite has no notification channel, so `invalidations` is empty.
 * Importing this module never loads the PostgreSQL driver.
 *
 * `@effect/sql`, `@effect/sql-sqlite-node` and `better-sqlite3` are optional peer dependencies,
 * loaded when the layer is built: without them, building fails with a `SessionStoreError` whose
 * message says what to install. An invalid store option (or, for {@link layerConfig}, a URL that
 * is not a SQLite one) fails the building with a `ConfigError` naming it, before anything opens.
 *
 * @since 0.1.0
 * @module
 */
import type * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type { ConfigError } from "effect/ConfigError"
import { Config, type Duration, Effect, Either, Layer } from "effect"
import { drivers, loadDriver } from "../internal/driver.js"
import { checkSqliteUrl } from "../internal/sql/databaseUrl.js"
import { checkSqlOptions, type ConfigOrValues, unwrapWithUrl } from "../internal/storeOptions.js"
import type { Persistence, SessionStoreError } from "../Persistence.js"
import * as Sql from "./Sql.js"

/**
 * Options of {@link layer}: the store's options, the database file, and any other option
 * of `@effect/sql-sqlite-node`'s client.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Sql.Options {
  /** The database file, or `:memory:`. */
  readonly filename: string
  /** Further client options (`disableWAL`, `prepareCacheSize` …). */
  readonly client?: Omit<SqliteClient.SqliteClientConfig, "filename"> | undefined
}

// The drivers are optional peer dependencies: loaded when a layer is built, never on import.
// @effect/sql-sqlite-node loads better-sqlite3 when it is imported, so one import checks both.
const loadSqlite = loadDriver(
  "effect-sessions/Persistence/Sqlite",
  "layer",
  [drivers.sql, drivers.sqlSqliteNode, drivers.betterSqlite3],
  () => import("@effect/sql-sqlite-node/SqliteClient")
)

/**
 * The SQL store on a SQLite database: opens its own connection (closed with the layer).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Persistence, SessionStoreError | ConfigError> => {
  const { client, filename, ...storeOptions } = options
  return Layer.unwrapEffect(Effect.gen(function*() {
    yield* checkSqlOptions(storeOptions)
    const SqliteClient = yield* loadSqlite
    return Sql.layer(storeOptions).pipe(Layer.provide(SqliteClient.layer({ ...client, filename })))
  }))
}

/**
 * The options {@link layerConfig} reads from configuration: the database URL and the SQL store's
 * table prefix and retention.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigOptions {
  /** `sqlite:<file>`, `sqlite::memory:`, `sqlite:///<absolute path>` or `file:///<absolute path>` (default: `DATABASE_URL`). */
  readonly url?: string | undefined
  /** Prefix of the table and index names (default `effect_sessions_`). */
  readonly tablePrefix?: string | undefined
  /** How long records are kept past their deadline (default `Persistence.DEFAULT_RETENTION`). */
  readonly retention?: Duration.DurationInput | undefined
}

/**
 * The SQL store on the SQLite database a URL names, from configuration: {@link ConfigOptions} as
 * one `Config`, or as an object whose fields are each a `Config` (as `Config.Config.Wrap`, like
 * `Sessions.layerConfig`) or a plain value; `client` takes further client options. Without a
 * `url`, `DATABASE_URL`. Any other text than the forms above is a `ConfigError` naming the
 * variable (or `url`), when the layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: ConfigOrValues<ConfigOptions> = {},
  client?: Omit<SqliteClient.SqliteClientConfig, "filename">
): Layer.Layer<Persistence, SessionStoreError | ConfigError> => {
  // Checked inside DATABASE_URL, so that the error names the variable.
  const fromEnvironment = Config.string().pipe(
    Config.mapOrFail((value) => Either.map(checkSqliteUrl(value, []), () => value)),
    Config.nested("DATABASE_URL")
  )
  return Layer.unwrapEffect(Effect.flatMap(unwrapWithUrl(config, fromEnvironment), ({ url, ...rest }) =>
    Effect.map(checkSqliteUrl(url ?? "", ["url"]), (filename) => layer({ ...rest, client, filename }))))
}
