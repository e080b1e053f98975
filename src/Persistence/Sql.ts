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
 * This module needs only `@effect/sql`; for ready-made clients see `Persistence/Pg` and
 * `Persistence/Sqlite`, or {@link layerConfig}, which loads only the driver its URL names. The
 * drivers are optional peer dependencies, loaded when a layer is built: without one, building
 * fails with a `SessionStoreError` whose message says what to install.
 *
 * @since 0.1.0
 * @module
 */
import type { SqlClient as SqlClientService } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { ConfigError } from "effect/ConfigError"
import type { Scope } from "effect"
import { Config, Effect, Layer, Redacted, Stream } from "effect"
import * as Ids from "../Ids.js"
import { drivers, loadDriver } from "../internal/driver.js"
import { makeSqlStore } from "../internal/sqlStore.js"
import { Persistence, SessionStoreError, type PersistenceShape } from "../Persistence.js"
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
export interface Notifications {
  readonly listen: (channel: string) => Stream.Stream<string, SqlError>
}

/**
 * Options of the SQL store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Prefix of the table, index and channel names (letters, digits, `_`). Default `effect_sessions_`. */
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
  /** How long records are kept past their deadline, in milliseconds (default `Persistence.DEFAULT_RETENTION_MILLIS`). */
  readonly retentionMillis?: number | undefined
}

/**
 * Builds the store on the `SqlClient` in context: creates the tables if missing and, on
 * PostgreSQL, starts listening for invalidations (until the scope closes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<PersistenceShape, SessionStoreError, SqlClientService | Scope.Scope> =>
  Effect.gen(function*() {
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
      tablePrefix: options.tablePrefix ?? DEFAULT_TABLE_PREFIX,
      originId,
      channel: options.channel,
      notifications: options.notifications,
      retentionMillis: options.retentionMillis
    })
  })

/**
 * The SQL store as a layer, on the `SqlClient` in context (any dialect).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Persistence, SessionStoreError, SqlClientService> =>
  Layer.scoped(Persistence, make(options))

/**
 * The kind of database a URL names: `sqlite:` / `file:` → SQLite (the path after the scheme;
 * `sqlite::memory:` for an in-memory database), `postgres:` / `postgresql:` → PostgreSQL.
 *
 * @since 0.1.0
 * @category utils
 */
export const parseDatabaseUrl = (
  url: string
): { readonly _tag: "Sqlite"; readonly filename: string } | { readonly _tag: "Pg"; readonly url: string } | undefined => {
  const match = /^([a-z][a-z0-9+.-]*):(.*)$/i.exec(url.trim())
  if (!match) return undefined
  const scheme = match[1]!.toLowerCase()
  const rest = match[2]!
  if (scheme === "postgres" || scheme === "postgresql") return { _tag: "Pg", url: url.trim() }
  if (scheme === "sqlite" || scheme === "file") {
    // sqlite::memory:, sqlite:relative.db, sqlite:/abs.db, sqlite:///abs.db, file:///abs.db
    const path = rest.startsWith("//") ? decodeURIComponent(rest.slice(2).replace(/^[^/]*(?=\/)/, "")) : rest
    return path === "" ? undefined : { _tag: "Sqlite", filename: path }
  }
  return undefined
}

/**
 * The SQL store on the database that `DATABASE_URL` names (see {@link parseDatabaseUrl}). Only
 * the driver that the URL needs is loaded (`@effect/sql-pg` or `@effect/sql-sqlite-node`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Options & { readonly url?: Config.Config<Redacted.Redacted> | undefined } = {}
): Layer.Layer<Persistence, SessionStoreError | ConfigError> => {
  const { url, ...storeOptions } = options
  return Layer.unwrapEffect(Effect.gen(function*() {
    const value = Redacted.value(yield* (url ?? Config.redacted("DATABASE_URL")))
    const target = parseDatabaseUrl(value)
    if (target === undefined) {
      return yield* new SessionStoreError({
        method: "layerConfig",
        reason: "Unknown",
        cause: new Error("DATABASE_URL must start with sqlite:, file:, postgres: or postgresql:")
      })
    }
    const load = <A>(f: () => Promise<A>) =>
      Effect.tryPromise({ try: f, catch: (cause) => new SessionStoreError({ method: "layerConfig", reason: "Unknown", cause }) })
    if (target._tag === "Pg") {
      const Pg = yield* load(() => import("./Pg.js"))
      return Pg.layer({ ...storeOptions, url: Redacted.make(target.url) })
    }
    const Sqlite = yield* load(() => import("./Sqlite.js"))
    return Sqlite.layer({ ...storeOptions, filename: target.filename })
  }))
}
