/**
 * A {@link Persistence} on `@effect/sql`: one implementation for SQLite and PostgreSQL (and any
 * `SqlClient`), shared by any number of processes.
 *
 * Two tables, created when the layer is built (`CREATE TABLE IF NOT EXISTS`), named with a
 * prefix (default `effect_sessions_`): `sessions` (key, current token key, user id, version,
 * deadline and the Codec JSON of the session) and `tokens` (current tokens and redirects).
 * `save` and `rotate` are conditional UPDATEs on the version (`rotate` in one transaction), so
 * of two concurrent rotations of one token exactly one wins. Expired rows are removed by `sweep`.
 *
 * On PostgreSQL the layer also listens for invalidations (`LISTEN/NOTIFY` on
 * `<prefix>invalidate`): every write notifies the token keys it changed, and `invalidations`
 * yields those written by other processes.
 *
 * This module needs only `@effect/sql` and knows nothing of its specialisations: for ready-made
 * clients (and `layerConfig` from `DATABASE_URL`) see `Persistence/Pg` and `Persistence/Sqlite`.
 * The drivers are optional peer dependencies, loaded when a layer is built: without one, building
 * fails with a `SessionStoreError` whose message says what to install. An invalid option (a table
 * prefix that is not an identifier, a retention that is not a duration) fails the building with a
 * `ConfigError` naming it.
 *
 * @since 0.1.0
 * @module
 */
import type { SqlClient as SqlClientService } from "@effect/sql/SqlClient"
import type { ConfigError } from "effect/ConfigError"
import type { Duration, Scope } from "effect"
import { Effect, Layer } from "effect"
import * as Ids from "../Ids.js"
import { drivers, loadDriver } from "../internal/driver.js"
import type * as Connection from "../internal/sql/connection.js"
import { makeSqlStore } from "../internal/sql/store.js"
import { checkTablePrefix, durationMillis } from "../internal/storeOptions.js"
import { DEFAULT_RETENTION, Persistence, type SessionStoreError, type PersistenceShape } from "../Persistence.js"
import * as SecureRandom from "../SecureRandom.js"

/**
 * The default table prefix.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_TABLE_PREFIX = "effect_sessions_"

/**
 * Where a PostgreSQL store listens for notifications (`LISTEN`); it sends them itself with
 * `pg_notify`. `@effect/sql-pg`'s `PgClient` has this method, and the store finds it on the
 * client by itself.
 *
 * @since 0.1.0
 * @category models
 */
export interface Notifications extends Connection.Notifications {}

/**
 * Options of the SQL store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Prefix of the table, index and channel names (letters, digits, `_`, not starting with a
   * digit). Default `effect_sessions_`. Any other is a `ConfigError` when the layer is built.
   */
  readonly tablePrefix?: string | undefined
  /**
   * This process's id in invalidation messages (so that it ignores its own). Default: 16 random
   * base62 characters from the live SecureRandom, drawn once per layer.
   */
  readonly originId?: string | undefined
  /** The PostgreSQL notification channel. Default `<tablePrefix>invalidate`. */
  readonly channel?: string | undefined
  /**
   * Where invalidations travel. By default a PostgreSQL client that has `listen`/`notify` (the
   * `PgClient`) is used; `false` turns invalidations off. Other dialects have none.
   */
  readonly notifications?: Notifications | false | undefined
  /** How long records are kept past their deadline (default `Persistence.DEFAULT_RETENTION`). */
  readonly retention?: Duration.DurationInput | undefined
}

/**
 * Builds the store on the `SqlClient` in context: checks the options (a `ConfigError` for an
 * invalid one), creates the tables if missing and, on PostgreSQL, starts listening for
 * invalidations (until the scope closes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<PersistenceShape, SessionStoreError | ConfigError, SqlClientService | Scope.Scope> =>
  Effect.gen(function*() {
    const tablePrefix = yield* checkTablePrefix(options.tablePrefix ?? DEFAULT_TABLE_PREFIX, ["tablePrefix"])
    const retention = yield* durationMillis(options.retention ?? DEFAULT_RETENTION, ["retention"], { positive: false })
    // @effect/sql is an optional peer dependency: its SqlClient tag is loaded on demand.
    const { SqlClient } = yield* loadDriver(
      "effect-sessions/Persistence/Sql",
      "make",
      [drivers.sql],
      () => import("@effect/sql/SqlClient")
    )
    const sql = yield* SqlClient
    // The origin only tells this process's messages apart: the live randomness, needing nothing.
    const originId = options.originId ?? (yield* Ids.randomId(16).pipe(Effect.provide(SecureRandom.layer)))
    return yield* makeSqlStore({
      sql,
      tablePrefix,
      originId,
      channel: options.channel,
      notifications: options.notifications,
      retention
    })
  })

/**
 * The SQL store as a layer, on the `SqlClient` in context (any dialect). An invalid option fails
 * the building with a `ConfigError`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Persistence, SessionStoreError | ConfigError, SqlClientService> =>
  Layer.scoped(Persistence, make(options))
