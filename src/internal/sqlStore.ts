/**
 * The SQL Persistence: one implementation for every `@effect/sql` dialect (tested on SQLite and
 * PostgreSQL). Two tables:
 *
 * - `<prefix>sessions`: `key` (primary key), `token_key` (the current token), `user_id` (the user
 *   index), `version`, `expires_at` (epoch ms), `record` (the Codec JSON of the session);
 * - `<prefix>tokens`: `token_key` (primary key), `session_key`, `redirect` (NULL for a current
 *   token, the Codec JSON of the Redirect for a rotated-away one), `expires_at` (NULL for a current
 *   token, whose life is its session's; the end of the grace period for a redirect).
 *
 * `save` and `rotate` are conditional UPDATEs (`WHERE key = ? AND version = ? AND token_key = ?`)
 * whose `RETURNING` rows say whether they won. `rotate` runs the UPDATE first and touches the
 * tokens only when it won, inside one transaction: under PostgreSQL's READ COMMITTED the row lock
 * of the UPDATE serializes concurrent rotations, and the loser re-checks the WHERE clause against
 * the winner's row and updates nothing; SQLite runs one transaction at a time. Every write locks
 * the session row before the token rows, so two writers cannot deadlock.
 *
 * Invalidations (PostgreSQL only): every save, rotate, delete and deleteToken sends
 * `pg_notify(channel, '<originId>:<tokenKey>')` for each token key it changed (inside the
 * transaction, so it is delivered on commit), `publishUserInvalidation` sends
 * `'<originId>:!u:<userKey>'`, and the layer listens on the channel.
 *
 * Errors keep only the class names and messages of `SqlError` and its cause (a PostgreSQL error's
 * `detail`, `where` and `internalQuery` can quote values), and a record that does not decode is
 * reported without its content.
 *
 * @internal
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Deferred, Effect, Either, Fiber, Option, PubSub, Stream } from "effect"
import type { Scope } from "effect"
import * as Codec from "../Codec.js"
import type { Notifications } from "../Persistence/Sql.js"
import { DEFAULT_RETENTION_MILLIS, INVALIDATE_ALL, Invalidation, SessionStoreError, type PersistenceShape, userKey } from "../Persistence.js"
import { logHash } from "./hash.js"
import { parseInvalidation, userMessage } from "./invalidationMessage.js"
import { sleepReal } from "./realTime.js"
import { redactCodecError, redactDriverError } from "./storeErrors.js"
import type { Redirect, Session, TokenRecord } from "../Session.js"

/** @internal */
export interface SqlStoreOptions {
  readonly sql: SqlClient
  readonly tablePrefix: string
  readonly originId: string
  /** The LISTEN/NOTIFY channel; defaults to `<tablePrefix>invalidate`. */
  readonly channel?: string | undefined
  /** Overrides the detection of `listen` on the client (PgClient). `false` turns it off. */
  readonly notifications?: Notifications | false | undefined
  readonly retentionMillis?: number | undefined
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/

const hasNotifications = (u: unknown): u is Notifications =>
  (typeof u === "object" || typeof u === "function") && u !== null && typeof (u as Notifications).listen === "function"

/** Epoch milliseconds as stored: integers, rounded up so that `expires_at <= now` ⟺ `expiresAt <= now`. */
const ms = (n: number): number => Math.ceil(n)

interface TokenRow {
  readonly session_key: string
  readonly redirect: string | null
  readonly record: string | null
}

// By @effect/sql's own type id (a `Symbol.for` key), so that this module never loads @effect/sql
// itself: the driver is an optional peer, imported by the layer.
const SqlErrorTypeId = Symbol.for("@effect/sql/SqlError")
const isSqlError = (u: unknown): u is SqlError => typeof u === "object" && u !== null && SqlErrorTypeId in u

/**
 * Builds the store on an `SqlClient`: creates the tables and indexes if missing and, for
 * PostgreSQL, starts listening for invalidations (in the given scope).
 *
 * @internal
 */
export const makeSqlStore = (options: SqlStoreOptions): Effect.Effect<PersistenceShape, SessionStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const retention = options.retentionMillis ?? DEFAULT_RETENTION_MILLIS
    const prefix = options.tablePrefix
    if (!IDENTIFIER.test(prefix)) {
      return yield* new SessionStoreError({
        method: "init",
        reason: "Unknown",
        cause: new Error(`tablePrefix must match ${IDENTIFIER.source}, got ${JSON.stringify(prefix)}`)
      })
    }
    // Column names are ours: never let a client's name transforms (camelCase …) rename them.
    const sql = options.sql.withoutTransforms()
    const sessions = sql(`${prefix}sessions`)
    const tokens = sql(`${prefix}tokens`)
    const channel = options.channel ?? `${prefix}invalidate`
    const isPg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    const notifications: Notifications | undefined = !isPg || options.notifications === false
      ? undefined
      : options.notifications ?? (hasNotifications(options.sql) ? options.sql : undefined)
    // Without a channel to listen on, nobody would hear the notifications: do not send them.
    const notifying = notifications !== undefined

    const unavailable = (method: string) => (cause: SqlError) =>
      new SessionStoreError({ method, reason: "Unavailable", cause: redactDriverError(cause) })
    const corrupt = (method: string, key: string, cause: unknown) =>
      new SessionStoreError({ method, reason: "Corrupt", key, cause: cause instanceof Codec.CodecError ? redactCodecError(cause) : cause })
    // @effect/sql makes a failed COMMIT or ROLLBACK a defect (withTransaction uses orDie): that is
    // how a connection dropped mid-transaction surfaces, and it is an outage like any other.
    const run = <A, R>(method: string, effect: Effect.Effect<A, SqlError | SessionStoreError, R>) =>
      effect.pipe(
        Effect.catchTag("SqlError", (e) => Effect.fail(unavailable(method)(e))),
        Effect.catchSomeDefect((d) => isSqlError(d) ? Option.some(Effect.fail(unavailable(method)(d))) : Option.none())
      )

    // -- schema ---------------------------------------------------------------------------------

    const init = Effect.gen(function*() {
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
    })
    yield* run("init", sql.withTransaction(init))

    // -- helpers --------------------------------------------------------------------------------

    // Feeds `invalidations`: what the LISTEN connection hears from other processes (PostgreSQL),
    // and what this process must hear from itself (the records it dropped as corrupt).
    const hub = yield* PubSub.unbounded<Invalidation>()
    const invalidations: Stream.Stream<Invalidation> = Stream.fromPubSub(hub)

    /** Sends one notification per token key, in the current transaction if there is one. */
    const notify = (tokenKeys: ReadonlyArray<string>) =>
      !notifying || tokenKeys.length === 0
        ? Effect.void
        : Effect.asVoid(
          sql`SELECT ${sql.csv(tokenKeys.map((k) => sql`pg_notify(${channel}, ${`${options.originId}:${k}`})`))}`
        )

    const decodeSession = (method: string, key: string, text: string): Effect.Effect<Session, SessionStoreError> =>
      Either.match(Codec.decodeSession(text), {
        onLeft: (e) => Effect.fail(corrupt(method, key, e)),
        onRight: Effect.succeed
      })

    const decodeRedirect = (method: string, key: string, text: string): Effect.Effect<Redirect, SessionStoreError> =>
      Either.match(Codec.decode(text), {
        onLeft: (e) => Effect.fail(corrupt(method, key, e)),
        onRight: (r) => r._tag === "Redirect" ? Effect.succeed(r) : Effect.fail(corrupt(method, key, new Error("a session where a redirect belongs")))
      })

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

    // The user index column holds a hash of the user ID: any string works as an ID (PostgreSQL
    // text cannot hold NUL), and the index alone does not tell who the users are.
    const userColumn = userKey
    const userIdOf = (session: Session): string | null => Option.match(session.userId, { onNone: () => null, onSome: userColumn })

    // -- operations -----------------------------------------------------------------------------

    const load = (tokenKey: string): Effect.Effect<Option.Option<TokenRecord>, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const rows = yield* run(
          "load",
          sql<TokenRow>`SELECT t.session_key, t.redirect, s.record
            FROM ${tokens} t
            LEFT JOIN ${sessions} s ON t.redirect IS NULL AND s.key = t.session_key AND s.expires_at > ${now}
            WHERE t.token_key = ${tokenKey} AND (t.expires_at IS NULL OR t.expires_at > ${now})`
        )
        const row = rows[0]
        if (row === undefined) return Option.none()
        if (row.redirect !== null) return Option.some(yield* decodeRedirect("load", tokenKey, row.redirect))
        if (row.record === null) return Option.none()
        return Option.some<TokenRecord>(yield* decodeSession("load", tokenKey, row.record))
      })

    const loadSession = (sessionKey: string): Effect.Effect<Option.Option<Session>, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const rows = yield* run(
          "loadSession",
          sql<{ record: string }>`SELECT record FROM ${sessions} WHERE key = ${sessionKey} AND expires_at > ${now}`
        )
        const row = rows[0]
        return row === undefined ? Option.none() : Option.some(yield* decodeSession("loadSession", sessionKey, row.record))
      })

    const create = (session: Session, expiresAt: number): Effect.Effect<void, SessionStoreError> =>
      run(
        "create",
        sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO ${sessions} (key, token_key, user_id, version, expires_at, record)
            VALUES (${session.key}, ${session.tokenKey}, ${userIdOf(session)}, ${session.version}, ${ms(expiresAt + retention)},
                    ${Codec.encodeSession(session)})
            ON CONFLICT (key) DO UPDATE SET
              token_key = excluded.token_key, user_id = excluded.user_id, version = excluded.version,
              expires_at = excluded.expires_at, record = excluded.record`
          yield* sql`INSERT INTO ${tokens} (token_key, session_key, redirect, expires_at)
            VALUES (${session.tokenKey}, ${session.key}, ${null}, ${null})
            ON CONFLICT (token_key) DO UPDATE SET session_key = excluded.session_key, redirect = NULL, expires_at = NULL`
        }))
      )

    const save = (session: Session, expectedVersion: number, expiresAt: number): Effect.Effect<boolean, SessionStoreError> => {
      const update = sql`UPDATE ${sessions}
        SET user_id = ${userIdOf(session)}, version = ${session.version}, expires_at = ${ms(expiresAt + retention)},
            record = ${Codec.encodeSession(session)}
        WHERE key = ${session.key} AND version = ${expectedVersion} AND token_key = ${session.tokenKey}
        RETURNING key`
      // With notifications, one statement does both, so that a peer hears of exactly the writes
      // that committed (pg_notify is delivered on commit) and the hot path stays one round trip.
      const statement = notifying
        ? sql<{ key: string }>`WITH updated AS (${update})
            SELECT updated.key, pg_notify(${channel}, ${`${options.originId}:${session.tokenKey}`}) FROM updated`
        : update
      return run("save", Effect.map(statement, (rows) => rows.length > 0))
    }

    const rotate = (
      session: Session,
      expectedVersion: number,
      redirect: Redirect,
      expiresAt: number
    ): Effect.Effect<boolean, SessionStoreError> =>
      run(
        "rotate",
        sql.withTransaction(Effect.gen(function*() {
          // First the conditional UPDATE: it takes the row lock that elects one winner.
          const rows = yield* sql<{ key: string }>`UPDATE ${sessions}
            SET token_key = ${session.tokenKey}, user_id = ${userIdOf(session)}, version = ${session.version},
                expires_at = ${ms(expiresAt + retention)}, record = ${Codec.encodeSession(session)}
            WHERE key = ${session.key} AND version = ${expectedVersion} AND token_key = ${redirect.tokenKey}
            RETURNING key`
          if (rows.length === 0) return false
          yield* sql`INSERT INTO ${tokens} (token_key, session_key, redirect, expires_at)
            VALUES (${redirect.tokenKey}, ${redirect.sessionKey}, ${Codec.encode(redirect)}, ${ms(redirect.expiresAt + retention)}),
                   (${session.tokenKey}, ${session.key}, ${null}, ${null})
            ON CONFLICT (token_key) DO UPDATE SET
              session_key = excluded.session_key, redirect = excluded.redirect, expires_at = excluded.expires_at`
          yield* notify([redirect.tokenKey, session.tokenKey])
          return true
        }))
      )

    const del = (sessionKey: string): Effect.Effect<void, SessionStoreError> =>
      run(
        "delete",
        sql.withTransaction(Effect.flatMap(removeSession(sessionKey), notify))
      )

    const deleteToken = (tokenKey: string): Effect.Effect<void, SessionStoreError> =>
      run(
        "deleteToken",
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
      )

    const sessionsOfUser = (userId: string): Effect.Effect<ReadonlyArray<Session>, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const rows = yield* run(
          "sessionsOfUser",
          sql<{ key: string; record: string; token_key: string }>`SELECT key, record, token_key FROM ${sessions}
            WHERE user_id = ${userColumn(userId)} AND expires_at > ${now}`
        )
        // A record that does not decode is skipped and deleted: one bad session never blocks
        // listing, logging out everywhere or an exclusive log-in. The index hashes the id's UTF-8
        // form, where every lone surrogate is U+FFFD: ids that differ only there share an entry,
        // so the records say whose they are.
        const out: Array<Session> = []
        for (const row of rows) {
          const decoded = Codec.decodeSession(row.record)
          if (Either.isLeft(decoded)) yield* dropCorrupt("sessionsOfUser", row.key, row.token_key)
          else if (Option.getOrUndefined(decoded.right.userId) === userId) out.push(decoded.right)
        }
        return out
      })

    // The other processes hear of the deletion from its notification; this process's own cache
    // may still hold the session (as it was before it went bad): it is told through `invalidations`.
    const dropCorrupt = (method: string, sessionKey: string, tokenKey: string) =>
      Effect.logWarning("dropped a corrupt session record").pipe(
        Effect.annotateLogs({ event: "corrupt-record", method, key: logHash(sessionKey) }),
        Effect.zipRight(del(sessionKey)),
        Effect.zipRight(PubSub.publish(hub, Invalidation.Token({ tokenKey }))),
        Effect.catchAll((e) =>
          Effect.logWarning("could not delete a corrupt session record", e).pipe(
            Effect.annotateLogs({ event: "corrupt-record", method, key: logHash(sessionKey) })
          )
        )
      )

    const publishUserInvalidation = (userKey: string): Effect.Effect<void, SessionStoreError> =>
      notifying
        ? run("publishUserInvalidation", Effect.asVoid(sql`SELECT pg_notify(${channel}, ${userMessage(options.originId, userKey)})`))
        : Effect.void

    const sweep: Effect.Effect<number, SessionStoreError> = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      return yield* run(
        "sweep",
        sql.withTransaction(Effect.gen(function*() {
          // The current tokens of expired sessions go with them (not counted: one record each).
          yield* sql`DELETE FROM ${tokens} WHERE redirect IS NULL AND session_key IN (
            SELECT key FROM ${sessions} WHERE expires_at <= ${now})`
          const gone = yield* sql<{ key: string }>`DELETE FROM ${sessions} WHERE expires_at <= ${now} RETURNING key`
          const redirects = yield* sql<{ token_key: string }>`DELETE FROM ${tokens}
            WHERE expires_at IS NOT NULL AND expires_at <= ${now} RETURNING token_key`
          return gone.length + redirects.length
        }))
      )
    })

    // -- invalidations --------------------------------------------------------------------------

    if (notifications !== undefined) {
      const notifier = notifications
      // One LISTEN per layer, shared by every consumer of the stream. @effect/sql-pg ignores errors
      // of its LISTEN connection, so a dropped connection would go silent for good: the store sends
      // itself a heartbeat through the channel, and when its heartbeats stop arriving it listens
      // again on a fresh connection and tells the consumers (INVALIDATE_ALL) that they may have
      // missed changes meanwhile. The layer is ready only once its own heartbeat has come back:
      // from then on, no change by another process can go unheard.
      const own = `${options.originId}:`
      const beatPrefix = `hb:${options.originId}:`
      let beats = 0
      const listenOnce = notifier.listen(channel).pipe(
        Stream.runForEach((payload) => {
          if (payload.startsWith("hb:")) {
            if (payload.startsWith(beatPrefix)) beats++
            return Effect.void
          }
          const i = payload.indexOf(":")
          if (i < 0 || payload.startsWith(own)) return Effect.void
          return PubSub.publish(hub, parseInvalidation(payload.slice(i + 1)))
        }),
        Effect.catchAllCause((cause) => Effect.logWarning("effect-sessions: SQL invalidation listener failed", cause))
      )
      const heartbeat = (n: number) => Effect.ignore(sql`SELECT pg_notify(${channel}, ${`${beatPrefix}${n}`})`)
      /** Sends heartbeats until one comes back (true) or `millis` pass (false). */
      const echoed = (millis: number) =>
        Effect.gen(function*() {
          const start = beats
          for (let waited = 0; waited < millis; waited += 100) {
            if (waited % 500 === 0) yield* heartbeat(start + waited)
            yield* sleepReal(100)
            if (beats > start) return true
          }
          return false
        })
      const listening = yield* Deferred.make<void>()
      yield* Effect.gen(function*() {
        for (let round = 0;; round++) {
          const listener = yield* Effect.fork(listenOnce)
          if (yield* echoed(5000)) {
            if (round > 0) yield* PubSub.publish(hub, INVALIDATE_ALL)
            yield* Deferred.succeed(listening, undefined)
            // Healthy while heartbeats keep coming back.
            while (yield* Effect.zipRight(sleepReal(1000), echoed(2000)));
            yield* Effect.logWarning("effect-sessions: SQL invalidation channel went silent; listening again")
          }
          yield* Fiber.interrupt(listener)
          yield* sleepReal(Math.min(5000, 100 * 2 ** Math.min(round, 6)))
        }
      }).pipe(Effect.interruptible, Effect.forkScoped)
      yield* Deferred.await(listening).pipe(
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "not listening" }),
        Effect.catchAll(() => Effect.logWarning("effect-sessions: SQL invalidations not confirmed within 5 s; continuing"))
      )
    }

    return {
      load,
      loadSession,
      create,
      save,
      rotate,
      delete: del,
      deleteToken,
      sessionsOfUser,
      publishUserInvalidation,
      sweep,
      invalidations
    } satisfies PersistenceShape
  })
