/**
 * The SQL store on PostgreSQL (`@effect/sql-pg`): a ready-made layer that opens the connection
 * pool, creates the tables and listens for invalidations (`LISTEN/NOTIFY`). Importing this
 * module never loads the SQLite driver.
 *
 * `@effect/sql` and `@effect/sql-pg` are optional peer dependencies, loaded when the layer is
 * built: without them, building fails with a `SessionStoreError` whose message says what to
 * install.
 *
 * @since 0.1.0
 * @module
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type { ConfigError } from "effect/ConfigError"
import { Config, Effect, Layer, Redacted } from "effect"
import { drivers, loadDriver } from "../internal/driver.js"
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
  /** `postgres://user:password@host:port/database`. */
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

const clientConfig = (options: Options): PgClient.PgClientConfig => ({
  connectTimeout: "5 seconds",
  ...options.client,
  url: typeof options.url === "string" ? Redacted.make(options.url) : options.url
})

/**
 * The SQL store on a PostgreSQL database: opens its own `PgClient` (closed with the layer).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Persistence, SessionStoreError> => {
  const { client: _client, url: _url, ...storeOptions } = options
  return Layer.unwrapEffect(Effect.map(loadPg, ([PgClient, { SqlError }]) =>
    Sql.layer(storeOptions).pipe(
      Layer.provide(PgClient.layer(clientConfig(options))),
      Layer.mapError((e) => e instanceof SqlError ? new SessionStoreError({ method: "connect", reason: "Unavailable", cause: e }) : e)
    )))
}

/**
 * The SQL store on the PostgreSQL database at `DATABASE_URL` (or the `url` config given).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Sql.Options & {
    readonly url?: Config.Config<Redacted.Redacted> | undefined
    readonly client?: Omit<PgClient.PgClientConfig, "url"> | undefined
  } = {}
): Layer.Layer<Persistence, SessionStoreError | ConfigError> => {
  const { client, url, ...storeOptions } = options
  return Layer.unwrapEffect(
    Config.map(url ?? Config.redacted("DATABASE_URL"), (value) => layer({ ...storeOptions, client, url: value }))
  )
}
