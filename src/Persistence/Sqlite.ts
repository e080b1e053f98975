/**
 * The SQL store on SQLite (`@effect/sql-sqlite-node`, better-sqlite3): a ready-made layer for one
 * process (a file or `:memory:`). SQLite has no notification channel, so `invalidations` is empty.
 * Importing this module never loads the PostgreSQL driver.
 *
 * @since 0.1.0
 * @module
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type { ConfigError } from "effect/ConfigError"
import { Layer } from "effect"
import type { Persistence, SessionStoreError } from "../Persistence.js"
import type { SecureRandom } from "../SecureRandom.js"
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

/**
 * The SQL store on a SQLite database: opens its own connection (closed with the layer).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Persistence, SessionStoreError | ConfigError, SecureRandom> => {
  const { client, filename, ...storeOptions } = options
  return Sql.layer(storeOptions).pipe(Layer.provide(SqliteClient.layer({ ...client, filename })))
}
