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
import { Config, Effect, Layer } from "effect"
import { drivers, loadDriver } from "../internal/driver.js"
import { checkSqliteUrl } from "../internal/sql/databaseUrl.js"
import { checkSqlOptions } from "../internal/storeOptions.js"
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
 * The SQL store on the SQLite database that `DATABASE_URL` names (or the `url` config given):
 * `sqlite:<file>`, `sqlite::memory:`, `sqlite:///<absolute path>` or `file:///<absolute path>`.
 * Any other text is a `ConfigError` naming the variable.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Omit<Options, "filename"> & { readonly url?: Config.Config<string> | undefined } = {}
): Layer.Layer<Persistence, SessionStoreError | ConfigError> => {
  const { url, ...rest } = options
  const check = (value: string) => checkSqliteUrl(value, [])
  // Checked inside DATABASE_URL, so that the error names the variable.
  const filename = url === undefined
    ? Config.string().pipe(Config.mapOrFail(check), Config.nested("DATABASE_URL"))
    : Config.mapOrFail(url, check)
  return Layer.unwrapEffect(Effect.map(filename, (value) => layer({ ...rest, filename: value })))
}
