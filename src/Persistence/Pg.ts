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
import { Config, Effect, Either, Layer, Redacted } from "effect"
import { drivers, loadDriver } from "../internal/driver.js"
import { checkPostgresUrl } from "../internal/sql/databaseUrl.js"
import { checkSqlOptions } from "../internal/storeOptions.js"
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
 * The SQL store on the PostgreSQL database at `DATABASE_URL` (or the `url` config given). A URL
 * that is not `postgres:` or `postgresql:` is a `ConfigError` naming the variable.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Sql.Options & {
    readonly url?: Config.Config<Redacted.Redacted<string>> | undefined
    readonly client?: Omit<PgClient.PgClientConfig, "url"> | undefined
  } = {}
): Layer.Layer<Persistence, SessionStoreError | ConfigError> => {
  const { client, url, ...storeOptions } = options
  const check = (value: Redacted.Redacted<string>) => Either.map(checkPostgresUrl(Redacted.value(value), []), () => value)
  // Checked inside DATABASE_URL, so that the error names the variable.
  const checked = url === undefined
    ? Config.redacted().pipe(Config.mapOrFail(check), Config.nested("DATABASE_URL"))
    : Config.mapOrFail(url, check)
  return Layer.unwrapEffect(Effect.map(checked, (value) => layer({ ...storeOptions, client, url: value })))
}
