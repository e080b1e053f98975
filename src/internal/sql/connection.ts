/**
 * The SQL store's use of its `SqlClient`: the client as the store sees it (no name transforms),
 * the dialect's abilities (PostgreSQL's notification channel), and how a driver's failure becomes
 * a `SessionStoreError` — `Unavailable`, keeping only the class names and messages of `SqlError`
 * and its cause (a PostgreSQL error's `detail`, `where` and `internalQuery` can quote values).
 *
 * This module never loads `@effect/sql` (an optional peer dependency, imported by the layer).
 *
 * @internal
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option, type Stream } from "effect"
import { SessionStoreError } from "../persistence.js"
import { redactDriverError } from "../storeErrors.js"

/**
 * Where a PostgreSQL store listens for notifications (`LISTEN`); `@effect/sql-pg`'s `PgClient`
 * has this method.
 *
 * @internal
 */
export interface Notifications {
  readonly listen: (channel: string) => Stream.Stream<string, SqlError>
}

const hasNotifications = (u: unknown): u is Notifications =>
  (typeof u === "object" || typeof u === "function") && u !== null && typeof (u as Notifications).listen === "function"

/**
 * The client as the store uses it: column names are ours, so a client's name transforms
 * (camelCase …) never rename them.
 *
 * @internal
 */
export const storeClient = (sql: SqlClient): SqlClient => sql.withoutTransforms()

/**
 * Whether the client speaks PostgreSQL (advisory locks, `pg_notify`).
 *
 * @internal
 */
export const isPostgres = (sql: SqlClient): boolean => sql.onDialectOrElse({ pg: () => true, orElse: () => false })

/**
 * Where invalidations travel: on PostgreSQL, the given channel or the client's own `listen`
 * (a `PgClient`); none on other dialects or when turned off (`false`).
 *
 * @internal
 */
export const notificationsOf = (sql: SqlClient, option: Notifications | false | undefined): Notifications | undefined =>
  !isPostgres(sql) || option === false ? undefined : option ?? (hasNotifications(sql) ? sql : undefined)

// By @effect/sql's own type id (a `Symbol.for` key), so that this module never loads @effect/sql
// itself: the driver is an optional peer, imported by the layer.
const SqlErrorTypeId = Symbol.for("@effect/sql/SqlError")
const isSqlError = (u: unknown): u is SqlError => typeof u === "object" && u !== null && SqlErrorTypeId in u

const unavailable = (method: string, cause: SqlError) =>
  new SessionStoreError({ method, reason: "Unavailable", cause: redactDriverError(cause) })

/**
 * Runs a statement for the store method `method`: a `SqlError` becomes a `SessionStoreError`
 * (`Unavailable`). `@effect/sql` makes a failed COMMIT or ROLLBACK a defect (withTransaction uses
 * orDie): that is how a connection dropped mid-transaction surfaces, and it is an outage like any
 * other, so such a defect becomes the same error.
 *
 * @internal
 */
export const run = <A, R>(method: string, effect: Effect.Effect<A, SqlError | SessionStoreError, R>): Effect.Effect<A, SessionStoreError, R> =>
  effect.pipe(
    Effect.catchTag("SqlError", (e) => Effect.fail(unavailable(method, e))),
    Effect.catchSomeDefect((d) => isSqlError(d) ? Option.some(Effect.fail(unavailable(method, d))) : Option.none())
  )
