/**
 * The contract of the Sessions service: its Tag, its shape, the models it speaks in (handles,
 * resolutions, outcomes, listed sessions) and the optional `UserLoader` Tag. Defined here, below
 * both the public `Sessions` module (which re-exports all of it) and the implementation
 * (`make.ts` builds a `SessionsShape`), so that neither imports the other back.
 *
 * @internal
 */
import type { Duration, Effect, Either, Option, Queue, Redacted, Scope, Stream } from "effect"
import { Context } from "effect"
import type { ParseError } from "effect/ParseResult"
import type { SessionStoreError } from "../persistence.js"
import type { Client, Json, Key, KeyLike, Session } from "../../Session.js"
import type { SessionConfigShape } from "../../SessionConfig.js"
import type { SessionEvent } from "../../SessionEvents.js"
import type {
  SessionDataError,
  SessionError,
  SessionLimitError,
  SessionReadError,
  SessionWriteError,
  UserLoaderError
} from "./errors.js"

/**
 * A session in use by a request: the value as last seen, and the token the client holds.
 *
 * @since 0.1.0
 * @category models
 */
export interface ActiveSession {
  readonly session: Session
  readonly token: Redacted.Redacted<string>
}

/**
 * What the response must do with the session cookie: leave it, set it (new, rotated or
 * followed token), or clear it (the token is dead).
 *
 * @since 0.1.0
 * @category models
 */
export type CookieAction = "none" | "set" | "clear"

/**
 * How a request's token was resolved.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | "absent" // no token
  | "malformed" // a token of the wrong length or alphabet: the store was not asked
  | "missing" // unknown token
  | "expired" // idle, absolute, logged out by logOutEveryone, or a redirect past its grace period
  | "anomaly" // a rejected client change: the session was destroyed
  | "valid"
  | "rotated" // valid, and the token was replaced
  | "followed" // an old token inside its grace period led to the current one
  | "created" // a new session

/**
 * The full result of {@link SessionsShape.resolve}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Resolution {
  readonly session: Option.Option<ActiveSession>
  readonly cookie: CookieAction
  readonly outcome: Outcome
}

/**
 * A session of a user as listed to that user or an administrator (OWASP ASVS 7.5.2, 7.4.5): the
 * facts the store keeps about it — born (`createdAt`), last used (`lastAccessAt`, recorded at most
 * every `touchInterval`), token issued (`idIssuedAt`), last log-in or re-authentication
 * (`authenticatedAt`), and the client at its last binding (`ip`, `userAgentHash`: a hash, never
 * the user agent itself). `id` is a public identifier derived from the internal key, never a
 * token; `CurrentSession.listSessions` also marks the request's own session (`current`).
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionInfo {
  readonly id: string
  readonly createdAt: number
  readonly lastAccessAt: number
  readonly idIssuedAt: number
  readonly authenticatedAt: Option.Option<number>
  readonly ip: Option.Option<string>
  readonly userAgentHash: Option.Option<string>
}

/**
 * Optional: loads the user object for a session's user ID (rivo/sessions' `LoadUser`). Results —
 * a user, or "not found" — are cached per user ID in each process, at most `cache.capacity`
 * users (default 10,000; the least recently used go first) for at most `cache.timeToLive`
 * (default 5 minutes), and forgotten in every process that shares the store by
 * {@link SessionsShape.refreshUser}. A failed load is not cached.
 *
 * @since 0.1.0
 * @category tags
 */
export class UserLoader extends Context.Tag("effect-sessions/UserLoader")<UserLoader, {
  readonly load: (userId: string) => Effect.Effect<Option.Option<unknown>, unknown>
  /** The cache of loaded users: `capacity` (default 10,000; 0 turns it off) and `timeToLive` (default 5 minutes). */
  readonly cache?: { readonly capacity?: number | undefined; readonly timeToLive?: Duration.DurationInput | undefined } | undefined
}>() {}

/**
 * The service operations.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionsShape {
  /** The validated configuration the service runs with (the HTTP edge reads the cookie settings here). */
  readonly config: SessionConfigShape
  /**
   * Resolves a request's token by the timing rules (docs/how-it-works.md, "The timing rules") and says what to
   * do with the cookie. With `create`, a request without a valid session gets a new one. The hot
   * path — a cached, valid session whose last access needs no write — is answered without a store
   * call, a lock or a span (tracing it would cost more than the answer); every resolution that
   * reaches the store runs in a `Sessions.resolve` span.
   */
  readonly resolve: (
    token: string | undefined,
    client: Client,
    options?: { readonly create?: boolean }
  ) => Effect.Effect<Resolution, SessionStoreError>
  /** A new session for a client. */
  readonly create: (client: Client) => Effect.Effect<ActiveSession, SessionStoreError>
  /** The latest value of the session the handle's token still leads to (cache, then store). */
  readonly current: (handle: ActiveSession) => Effect.Effect<Session, SessionReadError>
  /**
   * The value under `key`: JSON for a string key; for a typed key ({@link Session.key}) decoded
   * through its Schema, and a `SessionDataError` when the stored value no longer decodes.
   */
  readonly get: {
    <A>(handle: ActiveSession, key: Key<A>): Effect.Effect<Option.Option<A>, SessionReadError | SessionDataError>
    (handle: ActiveSession, key: string): Effect.Effect<Option.Option<Json>, SessionReadError>
  }
  /** Sets `key` (written through; a typed key encodes the value through its Schema). */
  readonly set: {
    <A>(handle: ActiveSession, key: Key<A>, value: NoInfer<A>): Effect.Effect<void, SessionError>
    (handle: ActiveSession, key: string, value: Json): Effect.Effect<void, SessionError>
  }
  /** Removes `key` (a no-op when it is absent). */
  readonly remove: (handle: ActiveSession, key: KeyLike) => Effect.Effect<void, SessionWriteError>
  /** Removes `key` and returns its value (rivo/sessions' `GetAndDelete`). */
  readonly pop: {
    <A>(handle: ActiveSession, key: Key<A>): Effect.Effect<Option.Option<A>, SessionWriteError | SessionDataError>
    (handle: ActiveSession, key: string): Effect.Effect<Option.Option<Json>, SessionWriteError>
  }
  /** Atomically replaces the value under `key` with `f(old)` and returns the new value (counters). */
  readonly update: {
    <A>(handle: ActiveSession, key: Key<A>, f: (old: Option.Option<A>) => NoInfer<A>): Effect.Effect<A, SessionError>
    (handle: ActiveSession, key: string, f: (old: Option.Option<Json>) => Json): Effect.Effect<Json, SessionError>
  }
  /**
   * Atomically applies a pure change to the session (several keys in one step) and returns the
   * new session. `f` may return an `Either` (what the typed `Session.set` gives); a `ParseError`
   * fails with a `SessionDataError` and changes nothing. Re-applied on the latest value after a
   * lost race.
   */
  readonly modify: (handle: ActiveSession, f: (session: Session) => Session | Either.Either<Session, ParseError>) => Effect.Effect<Session, SessionError>
  /**
   * Replaces the token now. By default the old one follows for the grace period (periodic
   * hygiene: requests in flight keep the session); with `grace: false` it dies at once — after a
   * privilege change such as a step-up (MFA, sudo mode), where a copy of the old token must not
   * share the new privileges.
   */
  readonly regenerateId: (handle: ActiveSession, options?: { readonly grace?: boolean }) => Effect.Effect<ActiveSession, SessionWriteError>
  /**
   * Attaches a user and rotates the token with no grace period (session fixation); records the
   * time of the log-in as `authenticatedAt` (for the recent-login gate). `exclusive` ends the
   * user's other sessions first. `persistent` is the "remember me" choice: `true` gives a
   * persistent cookie, `false` a browser-session cookie, absent the configured
   * `cookie.persistent`; stored with the session, so that every later `Set-Cookie` keeps it.
   * Under `maxSessionsPerUser` the store counts the user's live sessions in the rotation's own
   * atomic step: beyond the limit, the least recently used other sessions end
   * (`onSessionLimit: "endLeastRecentlyUsed"`) or the log-in fails with a `SessionLimitError`
   * and changes nothing (`"refuse"`).
   */
  readonly logIn: (
    handle: ActiveSession,
    userId: string,
    options?: { readonly exclusive?: boolean; readonly client?: Client; readonly persistent?: boolean }
  ) => Effect.Effect<ActiveSession, SessionWriteError | SessionLimitError>
  /**
   * The logged-in user proved who they are again (re-entered a password, passed MFA): sets
   * `authenticatedAt` to now and rotates the token with no grace period, like a log-in. Without a
   * user the token still rotates and nothing is recorded.
   */
  readonly reauthenticated: (handle: ActiveSession) => Effect.Effect<ActiveSession, SessionWriteError>
  /**
   * Detaches the user and rotates the token with no grace period; forgets `authenticatedAt` and
   * the "remember me" choice. The data stays by default
   * (`keepData: true`, as in rivo/sessions): a cart or preferences survive the log-out, and
   * anything tied to the user should live in the user's records, not in the session. With
   * `keepData: false` the data is cleared too (a shared computer, data that belongs to the user).
   */
  readonly logOut: (handle: ActiveSession, options?: { readonly keepData?: boolean }) => Effect.Effect<ActiveSession, SessionWriteError>
  /** Ends every session of a user; returns how many ended. */
  readonly logOutEverywhere: (userId: string) => Effect.Effect<number, SessionStoreError>
  /**
   * Ends every session of the handle's user except the handle's own (OWASP ASVS 7.4.3: after a
   * password or MFA change); returns how many ended (0 when nobody is logged in). The ended
   * sessions' tokens die at once, in every process. Fails with `SessionGoneError` when the
   * handle's own session is gone (a dead handle ends nothing).
   */
  readonly logOutOthers: (handle: ActiveSession) => Effect.Effect<number, SessionReadError>
  /**
   * "Log everybody out" (OWASP ASVS 7.4.5): ends every session of every user, and every anonymous
   * one, born — and not authenticated since — at or before now (`Session.isRevoked`); returns that
   * instant (epoch milliseconds). Sessions born later, or logged in to afterwards, are untouched:
   * users simply log in again. No session is scanned: the store keeps the one instant
   * (`Persistence.revokeUntil`), each process keeps it in memory, and a revoked session is deleted
   * (a `Revoked` event, its cookie cleared) when it is next met — by a request, a write through a
   * handle, or a listing. In effect at once in this process; in every other process sharing the
   * store as soon as the store's invalidation reaches it (milliseconds on Redis and PostgreSQL, and
   * again after a reconnect of the channel); were that message lost, or on a store without a
   * channel, within a minute, when a process reads the instant again. Handles on revoked sessions
   * fail with `SessionGoneError`. A session born in the same millisecond as the call is ended too.
   */
  readonly logOutEveryone: () => Effect.Effect<number, SessionStoreError>
  /** The live sessions of a user (for the user's "my sessions" page, or an administrator). */
  readonly listSessions: (userId: string) => Effect.Effect<ReadonlyArray<SessionInfo>, SessionStoreError>
  /** Ends one session of a user by its public `id` (from {@link listSessions}). */
  readonly endSession: (userId: string, id: string) => Effect.Effect<boolean, SessionStoreError>
  /**
   * Ends the session the handle's token leads to. Gone (and nothing is deleted) when that token
   * was retired meanwhile: a dead handle never ends the session someone else now holds.
   */
  readonly destroy: (handle: ActiveSession) => Effect.Effect<void, SessionWriteError>
  /** Empties this process's cache (nothing is lost: every change was written through). */
  readonly clearCache: Effect.Effect<void>
  /** The user object of the session's user, through the {@link UserLoader} in context (none without one). */
  readonly user: (handle: ActiveSession) => Effect.Effect<Option.Option<unknown>, SessionReadError | UserLoaderError>
  /**
   * Drops the cached user object of a user in this process and in every other process sharing
   * the store (through its invalidation channel, which carries a hash of the ID), so that the
   * next {@link user} loads it again — after disabling a user, or changing their roles. Fails
   * when the store cannot publish (the other processes would keep the user until its time to live).
   */
  readonly refreshUser: (userId: string) => Effect.Effect<void, SessionStoreError>
  /**
   * Subscribes to this process's session events (`SessionEvents`) for the lifetime of the scope:
   * a queue of at most `capacity` unread events (default `SessionEvents.DEFAULT_CAPACITY`).
   * Publishing never waits for a subscriber: when the queue is full, new events are dropped for
   * this subscriber and counted in `effect_sessions_events_dropped_total`. Each event is published
   * after its change is stored.
   */
  readonly subscribe: (options?: { readonly capacity?: number }) => Effect.Effect<Queue.Dequeue<SessionEvent>, never, Scope.Scope>
  /** The session events as a stream: a {@link subscribe} with the default capacity, from when the stream starts. */
  readonly events: Stream.Stream<SessionEvent>
}

/**
 * The service.
 *
 * @since 0.1.0
 * @category tags
 */
export class Sessions extends Context.Tag("effect-sessions/Sessions")<Sessions, SessionsShape>() {}
