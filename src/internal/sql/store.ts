/**
 * The SQL Persistence: one implementation for every `@effect/sql` dialect (tested on SQLite and
 * PostgreSQL) — the store operations over the statements of `queries.ts`, on the client as
 * `connection.ts` uses it, with the invalidation listener of `invalidations.ts` on PostgreSQL.
 *
 * Invalidations (PostgreSQL only): every save, rotate, delete and deleteToken notifies
 * `'<originId>:<tokenKey>'` for each token key it changed, `publishUserInvalidation` sends
 * `'<originId>:!u:<userKey>'`, `revokeUntil` sends `'<originId>:!a'`, and the layer listens on
 * the channel.
 *
 * A record that does not decode is reported without its content; the user index column holds a
 * hash of the user ID (`Persistence.userKey`).
 *
 * @internal
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import { Clock, Effect, Either, Option } from "effect"
import type { Scope } from "effect"
import * as Codec from "../../Codec.js"
import {
  Invalidation,
  LimitedRotation,
  type PersistenceShape,
  type Rotation,
  type SessionLimit,
  SessionStoreError,
  sessionsToEnd,
  userKey
} from "../persistence.js"
import type { Redirect, Session, TokenRecord } from "../../Session.js"
import { logHash } from "../hash.js"
import { allMessage, userMessage } from "../invalidationMessage.js"
import { redactCodecError } from "../storeErrors.js"
import { type Notifications, notificationsOf, run, storeClient } from "./connection.js"
import { listen, local } from "./invalidations.js"
import { makeQueries, type SessionRow } from "./queries.js"

/** @internal */
export interface SqlStoreOptions {
  readonly sql: SqlClient
  /** Checked to be an identifier by the caller. */
  readonly tablePrefix: string
  readonly originId: string
  /** The LISTEN/NOTIFY channel; defaults to `<tablePrefix>invalidate`. */
  readonly channel?: string | undefined
  /** Overrides the detection of `listen` on the client (PgClient). `false` turns it off. */
  readonly notifications?: Notifications | false | undefined
  /** How long records are kept past their deadline, in milliseconds. */
  readonly retention: number
}

/** Epoch milliseconds as stored: integers, rounded up so that `expires_at <= now` ⟺ `expiresAt <= now`. */
const ms = (n: number): number => Math.ceil(n)

/**
 * Builds the store on an `SqlClient`: creates the tables and indexes if missing and, for
 * PostgreSQL, starts listening for invalidations (in the given scope).
 *
 * @internal
 */
export const makeSqlStore = (options: SqlStoreOptions): Effect.Effect<PersistenceShape, SessionStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const retention = options.retention
    const sql = storeClient(options.sql)
    const channel = options.channel ?? `${options.tablePrefix}invalidate`
    const notifications = notificationsOf(options.sql, options.notifications)
    // Without a channel to listen on, nobody would hear the notifications: do not send them.
    const queries = makeQueries(sql, {
      tablePrefix: options.tablePrefix,
      notify: notifications === undefined ? undefined : { channel, originId: options.originId }
    })
    yield* run("init", queries.init)

    const corrupt = (method: string, key: string, cause: unknown) =>
      new SessionStoreError({ method, reason: "Corrupt", key, cause: cause instanceof Codec.CodecError ? redactCodecError(cause) : cause })

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

    // The user index column holds a hash of the user ID: any string works as an ID (PostgreSQL
    // text cannot hold NUL), and the index alone does not tell who the users are.
    const userColumn = userKey
    const row = (session: Session, expiresAt: number): SessionRow => ({
      key: session.key,
      token_key: session.tokenKey,
      user_id: Option.match(session.userId, { onNone: () => null, onSome: userColumn }),
      version: session.version,
      expires_at: ms(expiresAt + retention),
      record: Codec.encodeSession(session)
    })

    const redirectRow = (redirect: Redirect) => ({
      token_key: redirect.tokenKey,
      session_key: redirect.sessionKey,
      redirect: Codec.encode(redirect),
      expires_at: ms(redirect.expiresAt + retention)
    })

    // -- operations -----------------------------------------------------------------------------

    const load = (tokenKey: string): Effect.Effect<Option.Option<TokenRecord>, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const found = yield* run("load", queries.loadToken(tokenKey, now))
        if (found === undefined) return Option.none()
        if (found.redirect !== null) return Option.some(yield* decodeRedirect("load", tokenKey, found.redirect))
        if (found.record === null) return Option.none()
        return Option.some<TokenRecord>(yield* decodeSession("load", tokenKey, found.record))
      })

    const loadSession = (sessionKey: string): Effect.Effect<Option.Option<Session>, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const record = yield* run("loadSession", queries.loadSession(sessionKey, now))
        return record === undefined ? Option.none() : Option.some(yield* decodeSession("loadSession", sessionKey, record))
      })

    const create = (session: Session, expiresAt: number): Effect.Effect<void, SessionStoreError> =>
      run("create", queries.create(row(session, expiresAt)))

    const save = (session: Session, expectedVersion: number, expiresAt: number): Effect.Effect<boolean, SessionStoreError> =>
      run("save", queries.save(row(session, expiresAt), expectedVersion))

    const rotate = ({ expectedVersion, expiresAt, redirect, session }: Rotation): Effect.Effect<boolean, SessionStoreError> =>
      run(
        "rotate",
        queries.rotate(row(session, expiresAt), expectedVersion, redirectRow(redirect))
      )

    const rotateWithinLimit = (rotation: Rotation, limit: SessionLimit): Effect.Effect<LimitedRotation, SessionStoreError> =>
      Effect.gen(function*() {
        const { expectedVersion, expiresAt, redirect, session } = rotation
        const written = row(session, expiresAt)
        if (written.user_id === null) return (yield* rotate(rotation)) ? LimitedRotation.Rotated({ ended: [] }) : LimitedRotation.Lost()
        const userId = Option.getOrThrow(session.userId)
        const now = yield* Clock.currentTimeMillis
        let corrupt = 0
        const result = yield* run(
          "rotateWithinLimit",
          queries.rotateWithinLimit({ ...written, user_id: written.user_id }, expectedVersion, redirectRow(redirect), ms(now + retention), (rows) => {
            // A record that does not decode is ended without counting (one bad record never
            // blocks a log-in); ids that share an index entry (lone surrogates) are told apart by the record.
            const bad: Array<string> = []
            const others: Array<Session> = []
            for (const found of rows) {
              const decoded = Codec.decodeSession(found.record)
              if (Either.isLeft(decoded)) bad.push(found.key)
              else if (Option.getOrUndefined(decoded.right.userId) === userId) others.push(decoded.right)
            }
            corrupt = bad.length
            const victims = sessionsToEnd(others, limit)
            return victims === "refused" ? victims : [...bad, ...victims.map((s) => s.key)]
          })
        )
        if (corrupt > 0 && result !== "lost") {
          yield* Effect.logWarning("dropped corrupt session records").pipe(
            Effect.annotateLogs({ event: "corrupt-record", method: "rotateWithinLimit", count: corrupt })
          )
        }
        return result === "lost" ? LimitedRotation.Lost() : result === "refused" ? LimitedRotation.Refused() : LimitedRotation.Rotated({ ended: result })
      })

    const del = (sessionKey: string): Effect.Effect<void, SessionStoreError> => run("delete", queries.deleteSession(sessionKey))

    const deleteToken = (tokenKey: string): Effect.Effect<void, SessionStoreError> => run("deleteToken", queries.deleteToken(tokenKey))

    const sessionsOfUser = (userId: string): Effect.Effect<ReadonlyArray<Session>, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const rows = yield* run("sessionsOfUser", queries.sessionsOfUser(userColumn(userId), now))
        // A record that does not decode is skipped and deleted: one bad session never blocks
        // listing, logging out everywhere or an exclusive log-in. The index hashes the id's UTF-8
        // form, where every lone surrogate is U+FFFD: ids that differ only there share an entry,
        // so the records say whose they are.
        const out: Array<Session> = []
        for (const found of rows) {
          const decoded = Codec.decodeSession(found.record)
          if (Either.isLeft(decoded)) yield* dropCorrupt("sessionsOfUser", found.key, found.token_key)
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
        Effect.zipRight(Effect.suspend(() => listener.tellSelf(Invalidation.Token({ tokenKey })))),
        Effect.catchAll((e) =>
          Effect.logWarning("could not delete a corrupt session record", e).pipe(
            Effect.annotateLogs({ event: "corrupt-record", method, key: logHash(sessionKey) })
          )
        )
      )

    const publishUserInvalidation = (userKey: string): Effect.Effect<void, SessionStoreError> =>
      run("publishUserInvalidation", queries.publish(userMessage(options.originId, userKey)))

    const revokeUntil = (instant: number): Effect.Effect<void, SessionStoreError> =>
      run("revokeUntil", queries.revokeUntil(ms(instant), allMessage(options.originId)))

    const revokedUntil: Effect.Effect<Option.Option<number>, SessionStoreError> = Effect.flatMap(
      run("revokedUntil", queries.revokedUntil),
      (n) =>
        n === undefined
          ? Effect.succeed(Option.none())
          : Number.isFinite(n)
          ? Effect.succeed(Option.some(n))
          : Effect.fail(corrupt("revokedUntil", "revocations", new Error("the revocation instant is not a number")))
    )

    const sweep: Effect.Effect<number, SessionStoreError> = Effect.flatMap(
      Clock.currentTimeMillis,
      (now) => run("sweep", queries.sweep(now))
    )

    // -- invalidations --------------------------------------------------------------------------

    const listener = notifications === undefined
      ? yield* local
      : yield* listen(notifications, channel, options.originId, queries.publish)

    return {
      load,
      loadSession,
      create,
      save,
      rotate,
      rotateWithinLimit,
      delete: del,
      deleteToken,
      sessionsOfUser,
      publishUserInvalidation,
      revokeUntil,
      revokedUntil,
      sweep,
      invalidations: listener.invalidations
    } satisfies PersistenceShape
  })
