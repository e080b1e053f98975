/**
 * The SQL store's statements, for every `@effect/sql` dialect (tested on SQLite and PostgreSQL).
 * Two tables, named with a prefix:
 *
 * - `<prefix>sessions`: `key` (primary key), `token_key` (the current token), `user_id` (the user
 *   index), `version`, `expires_at` (epoch ms), `record` (the Codec JSON of the session);
 * - `<prefix>tokens`: `token_key` (primary key), `session_key`, `redirect` (NULL for a current
 *   token, the Codec JSON of the Redirect for a rotated-away one), `expires_at` (NULL for a current
 *   token, whose life is its session's; the end of the grace period for a redirect);
 * - `<prefix>revocations`: one row (`id` 1) holding `revoked_until` (epoch ms), the revocation
 *   instant of `revokeUntil` ("log everybody out").
 *
 * `save` and `rotate` are conditional UPDATEs (`WHERE key = ? AND version = ? AND token_key = ?`)
 * whose `RETURNING` rows say whether they won. `rotate` runs the UPDATE first and touches the
 * tokens only when it won, inside one transaction: under PostgreSQL's READ COMMITTED the row lock
 * of the UPDATE serializes concurrent rotations, and the loser re-checks the WHERE clause against
 * the winner's row and updates nothing; SQLite runs one transaction at a time. Every write locks
 * the session row before the token rows, so two writers cannot deadlock.
 *
 * With notifications (PostgreSQL), every save, rotate, delete and deleteToken sends
 * `pg_notify(channel, '<originId>:<tokenKey>')` for each token key it changed, inside the
 * transaction, so that it is delivered on commit.
 *
 * @internal
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Data, Effect } from "effect"

/** Fails a limited rotation's transaction so that it rolls back, when the limit refuses the log-in. */
class RefusedRollback extends Data.TaggedError("RefusedRollback") {}

/**
 * A row of the sessions table, as written.
 *
 * @internal
 */
export interface SessionRow {
  readonly key: string
  readonly token_key: string
  readonly user_id: string | null
  readonly version: number
  readonly expires_at: number
  readonly record: string
}

/**
 * A redirect's row of the tokens table, as written.
 *
 * @internal
 */
export interface RedirectRow {
  readonly token_key: string
  readonly session_key: string
  readonly redirect: string
  readonly expires_at: number
}

/**
 * What `load` reads for a token: its session key and redirect, and the live session's record.
 *
 * @internal
 */
export interface TokenRow {
  readonly session_key: string
  readonly redirect: string | null
  readonly record: string | null
}

/** @internal */
export interface QueriesOptions {
  readonly tablePrefix: string
  /** The notification channel and this process's origin in it, when notifications are on. */
  readonly notify: { readonly channel: string; readonly originId: string } | undefined
}

/**
 * The statements over the tables of a prefix (checked to be an identifier by the caller).
 *
 * @internal
 */
export const makeQueries = (sql: SqlClient, options: QueriesOptions) => {
  const prefix = options.tablePrefix
  const sessions = sql(`${prefix}sessions`)
  const tokens = sql(`${prefix}tokens`)
  const revocations = sql(`${prefix}revocations`)
  const notifyTo = options.notify

  /** Sends one notification per token key, in the current transaction if there is one. */
  const notify = (tokenKeys: ReadonlyArray<string>): Effect.Effect<void, SqlError> =>
    notifyTo === undefined || tokenKeys.length === 0
      ? Effect.void
      : Effect.asVoid(
        sql`SELECT ${sql.csv(tokenKeys.map((k) => sql`pg_notify(${notifyTo.channel}, ${`${notifyTo.originId}:${k}`})`))}`
      )

  /** Deletes a session and its current token; the token keys it removed (for notifications). */
  const removeSession = (sessionKey: string) =>
    Effect.gen(function*() {
      const rows = yield* sql<{ token_key: string }>`DELETE FROM ${sessions} WHERE key = ${sessionKey} RETURNING token_key`
      const row = rows[0]
      if (row === undefined) return []
      yield* sql`DELETE FROM ${tokens}
                 WHERE token_key = ${row.token_key} AND session_key = ${sessionKey} AND redirect IS NULL`
      return [row.token_key]
    })

  /** Creates the tables and indexes if missing. */
  const init: Effect.Effect<void, SqlError> = sql.withTransaction(Effect.gen(function*() {
    // Two processes starting at once would race on PostgreSQL's catalog: serialize them.
    yield* sql.onDialectOrElse({
      pg: () => Effect.asVoid(sql`SELECT pg_advisory_xact_lock(hashtext(${`effect-sessions:${prefix}`}))`),
      orElse: () => Effect.void
    })
    yield* sql`CREATE TABLE IF NOT EXISTS ${sessions} (
      key TEXT PRIMARY KEY,
      token_key TEXT NOT NULL,
      user_id TEXT NULL,
      version BIGINT NOT NULL,
      expires_at BIGINT NOT NULL,
      record TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${prefix}sessions_user_id`)} ON ${sessions} (user_id) WHERE user_id IS NOT NULL`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${prefix}sessions_expires_at`)} ON ${sessions} (expires_at)`
    yield* sql`CREATE TABLE IF NOT EXISTS ${tokens} (
      token_key TEXT PRIMARY KEY,
      session_key TEXT NOT NULL,
      redirect TEXT NULL,
      expires_at BIGINT NULL
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${prefix}tokens_session_key`)} ON ${tokens} (session_key)`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${prefix}tokens_expires_at`)} ON ${tokens} (expires_at) WHERE expires_at IS NOT NULL`
    yield* sql`CREATE TABLE IF NOT EXISTS ${revocations} (
      id INTEGER PRIMARY KEY,
      revoked_until BIGINT NOT NULL
    )`
  }))

  /** The record under a token key, if live at `now`. */
  const loadToken = (tokenKey: string, now: number): Effect.Effect<TokenRow | undefined, SqlError> =>
    Effect.map(
      sql<TokenRow>`SELECT t.session_key, t.redirect, s.record
        FROM ${tokens} t
        LEFT JOIN ${sessions} s ON t.redirect IS NULL AND s.key = t.session_key AND s.expires_at > ${now}
        WHERE t.token_key = ${tokenKey} AND (t.expires_at IS NULL OR t.expires_at > ${now})`,
      (rows) => rows[0]
    )

  /** The record of a session, if live at `now`. */
  const loadSession = (sessionKey: string, now: number): Effect.Effect<string | undefined, SqlError> =>
    Effect.map(
      sql<{ record: string }>`SELECT record FROM ${sessions} WHERE key = ${sessionKey} AND expires_at > ${now}`,
      (rows) => rows[0]?.record
    )

  /** Inserts (or replaces) a session and its current token. */
  const create = (row: SessionRow): Effect.Effect<void, SqlError> =>
    sql.withTransaction(Effect.gen(function*() {
      yield* sql`INSERT INTO ${sessions} (key, token_key, user_id, version, expires_at, record)
        VALUES (${row.key}, ${row.token_key}, ${row.user_id}, ${row.version}, ${row.expires_at}, ${row.record})
        ON CONFLICT (key) DO UPDATE SET
          token_key = excluded.token_key, user_id = excluded.user_id, version = excluded.version,
          expires_at = excluded.expires_at, record = excluded.record`
      yield* sql`INSERT INTO ${tokens} (token_key, session_key, redirect, expires_at)
        VALUES (${row.token_key}, ${row.key}, ${null}, ${null})
        ON CONFLICT (token_key) DO UPDATE SET session_key = excluded.session_key, redirect = NULL, expires_at = NULL`
    }))

  /** Replaces a session whose stored version is `expectedVersion`; whether it did. */
  const save = (row: SessionRow, expectedVersion: number): Effect.Effect<boolean, SqlError> => {
    const update = sql`UPDATE ${sessions}
      SET user_id = ${row.user_id}, version = ${row.version}, expires_at = ${row.expires_at}, record = ${row.record}
      WHERE key = ${row.key} AND version = ${expectedVersion} AND token_key = ${row.token_key}
      RETURNING key`
    // With notifications, one statement does both, so that a peer hears of exactly the writes
    // that committed (pg_notify is delivered on commit) and the hot path stays one round trip.
    const statement = notifyTo !== undefined
      ? sql<{ key: string }>`WITH updated AS (${update})
          SELECT updated.key, pg_notify(${notifyTo.channel}, ${`${notifyTo.originId}:${row.token_key}`}) FROM updated`
      : update
    return Effect.map(statement, (rows) => rows.length > 0)
  }

  /**
   * Stores the rotated session if its stored version is `expectedVersion` and its current token
   * the redirect's, and turns that token into the redirect, in one transaction; whether it did.
   */
  const rotate = (row: SessionRow, expectedVersion: number, redirect: RedirectRow): Effect.Effect<boolean, SqlError> =>
    sql.withTransaction(Effect.gen(function*() {
      // First the conditional UPDATE: it takes the row lock that elects one winner.
      const rows = yield* sql<{ key: string }>`UPDATE ${sessions}
        SET token_key = ${row.token_key}, user_id = ${row.user_id}, version = ${row.version},
            expires_at = ${row.expires_at}, record = ${row.record}
        WHERE key = ${row.key} AND version = ${expectedVersion} AND token_key = ${redirect.token_key}
        RETURNING key`
      if (rows.length === 0) return false
      yield* sql`INSERT INTO ${tokens} (token_key, session_key, redirect, expires_at)
        VALUES (${redirect.token_key}, ${redirect.session_key}, ${redirect.redirect}, ${redirect.expires_at}),
               (${row.token_key}, ${row.key}, ${null}, ${null})
        ON CONFLICT (token_key) DO UPDATE SET
          session_key = excluded.session_key, redirect = excluded.redirect, expires_at = excluded.expires_at`
      yield* notify([redirect.token_key, row.token_key])
      return true
    }))

  /**
   * `rotate` under a limit on the user's sessions, in one transaction: on PostgreSQL a
   * transaction-scoped advisory lock on the user (taken first, before any row lock, so that two
   * log-ins of one user — which may end each other's sessions — cannot deadlock) serializes the
   * user's limited log-ins across processes; SQLite runs one writer at a time, and the
   * conditional UPDATE comes first so that the transaction holds the write lock from its first
   * statement. `decide` gets the user's other sessions whose deadline is after `liveAfter` (rows
   * keep `expires_at` = deadline + retention) and names the ones to end, or refuses — which rolls
   * the UPDATE back. The token keys of the ended sessions come back (they are notified too).
   */
  const rotateWithinLimit = (
    row: SessionRow & { readonly user_id: string },
    expectedVersion: number,
    redirect: RedirectRow,
    liveAfter: number,
    decide: (others: ReadonlyArray<{ key: string; record: string; token_key: string }>) => ReadonlyArray<string> | "refused"
  ): Effect.Effect<"lost" | "refused" | ReadonlyArray<string>, SqlError> =>
    sql.withTransaction(Effect.gen(function*() {
      yield* sql.onDialectOrElse({
        pg: () => Effect.asVoid(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`effect-sessions:${prefix}:user:${row.user_id}`}, 0))`),
        orElse: () => Effect.void
      })
      const won = yield* rotate(row, expectedVersion, redirect)
      if (!won) return "lost" as const
      const others = yield* sql<{ key: string; record: string; token_key: string }>`SELECT key, record, token_key FROM ${sessions}
        WHERE user_id = ${row.user_id} AND key <> ${row.key} AND expires_at > ${liveAfter}`
      const victims = decide(others)
      if (victims === "refused") return yield* Effect.fail(new RefusedRollback())
      const ended: Array<string> = []
      for (const key of victims) ended.push(...(yield* removeSession(key)))
      yield* notify(ended)
      return ended
    })).pipe(Effect.catchTag("RefusedRollback", () => Effect.succeed("refused" as const)))

  /** Deletes a session, its current token and (with it) its user-index entry. */
  const deleteSession = (sessionKey: string): Effect.Effect<void, SqlError> =>
    sql.withTransaction(Effect.flatMap(removeSession(sessionKey), notify))

  /** Deletes whatever a token key holds; a current token takes its session with it. */
  const deleteToken = (tokenKey: string): Effect.Effect<void, SqlError> =>
    sql.withTransaction(Effect.gen(function*() {
      // Read first, lock the session row before the token row (the order of every writer).
      const rows = yield* sql<{ session_key: string; redirect: string | null }>`SELECT session_key, redirect
        FROM ${tokens} WHERE token_key = ${tokenKey}`
      const row = rows[0]
      if (row === undefined) return
      const removed = row.redirect === null ? yield* removeSession(row.session_key) : []
      yield* sql`DELETE FROM ${tokens} WHERE token_key = ${tokenKey}`
      yield* notify([...new Set([tokenKey, ...removed])])
    }))

  /** The live sessions under a user-index entry. */
  const sessionsOfUser = (userColumn: string, now: number) =>
    sql<{ key: string; record: string; token_key: string }>`SELECT key, record, token_key FROM ${sessions}
      WHERE user_id = ${userColumn} AND expires_at > ${now}`

  /**
   * Raises the revocation instant to `instant` (never lowers it) and, with notifications, sends
   * `message` (the "everything" invalidation) in the same transaction: delivered on commit.
   */
  const revokeUntil = (instant: number, message: string): Effect.Effect<void, SqlError> =>
    sql.withTransaction(Effect.gen(function*() {
      yield* sql`INSERT INTO ${revocations} (id, revoked_until) VALUES (1, ${instant})
        ON CONFLICT (id) DO UPDATE SET revoked_until = CASE
          WHEN excluded.revoked_until > ${revocations}.revoked_until THEN excluded.revoked_until
          ELSE ${revocations}.revoked_until END`
      if (notifyTo !== undefined) yield* sql`SELECT pg_notify(${notifyTo.channel}, ${message})`
    }))

  /** The revocation instant, if one was ever stored (PostgreSQL answers a BIGINT as text). */
  const revokedUntil: Effect.Effect<number | undefined, SqlError> = Effect.map(
    sql<{ revoked_until: number | string }>`SELECT revoked_until FROM ${revocations} WHERE id = 1`,
    (rows) => rows[0] === undefined ? undefined : Number(rows[0].revoked_until)
  )

  /** Sends a message on the notification channel (nothing without notifications). */
  const publish = (message: string): Effect.Effect<void, SqlError> =>
    notifyTo === undefined ? Effect.void : Effect.asVoid(sql`SELECT pg_notify(${notifyTo.channel}, ${message})`)

  /** Removes the sessions and redirects expired at `now`; how many records went. */
  const sweep = (now: number): Effect.Effect<number, SqlError> =>
    sql.withTransaction(Effect.gen(function*() {
      // The current tokens of expired sessions go with them (not counted: one record each).
      yield* sql`DELETE FROM ${tokens} WHERE redirect IS NULL AND session_key IN (
        SELECT key FROM ${sessions} WHERE expires_at <= ${now})`
      const gone = yield* sql<{ key: string }>`DELETE FROM ${sessions} WHERE expires_at <= ${now} RETURNING key`
      const redirects = yield* sql<{ token_key: string }>`DELETE FROM ${tokens}
        WHERE expires_at IS NOT NULL AND expires_at <= ${now} RETURNING token_key`
      return gone.length + redirects.length
    }))

  return { init, loadToken, loadSession, create, save, rotate, rotateWithinLimit, deleteSession, deleteToken, sessionsOfUser, revokeUntil, revokedUntil, publish, sweep }
}
