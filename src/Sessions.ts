/**
 * The Sessions service: the effectful shell around the pure core. It resolves a request's token
 * to a session (following redirects, expiring, detecting anomalies, rotating), writes every
 * change through the local cache to the store under a per-session lock with compare-and-set
 * retries across processes, and manages users (log in, log out, log out everywhere, list).
 *
 * @since 0.1.0
 * @module
 */
import type { Duration, Either, Redacted } from "effect"
import { Config, Context, Data, Effect, Layer, Option, Schedule } from "effect"
import type { ConfigError } from "effect/ConfigError"
import type { ParseError } from "effect/ParseResult"
import { makeSessions } from "./internal/sessions.js"
import { Persistence, type SessionStoreError } from "./Persistence.js"
import * as Persistence_ from "./Persistence.js"
import { SecureRandom } from "./SecureRandom.js"
import * as SecureRandom_ from "./SecureRandom.js"
import type { Client, Json, Key, KeyLike, Session } from "./Session.js"
import * as SessionCache from "./SessionCache.js"
import { SessionConfig } from "./SessionConfig.js"
import * as SessionConfig_ from "./SessionConfig.js"

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
  | "expired" // idle, absolute, or a redirect past its grace period
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
 * A session of a user as listed to that user (OWASP: users can see and end their sessions).
 * `id` is a public identifier derived from the internal key, never a token.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionInfo {
  readonly id: string
  readonly createdAt: number
  readonly lastAccessAt: number
  readonly idIssuedAt: number
  readonly ip: Option.Option<string>
  readonly userAgentHash: Option.Option<string>
}

/**
 * The handle's session is gone for it: the session ended (expired, destroyed, logged out
 * everywhere, …), or the handle's token was retired without a grace period (`logIn`, `logOut`,
 * `regenerateId({ grace: false })`, `destroy`, an anomaly) — in this process or another one. A
 * handle is only as good as its token: every read and write through it checks that the token
 * still leads to the session, so a request that resolved a planted pre-login token can never
 * read or write the session after the victim logs in. Over HTTP such a request has no session:
 * reads see none, writes answer 401.
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionGoneError extends Data.TaggedError("SessionGoneError")<{
  readonly method: string
  /** A short hash of the token, never the token. */
  readonly session: string
}> {
  override get message(): string {
    return `Sessions.${this.method}: session ${this.session} is gone`
  }
}

/**
 * A change kept losing the compare-and-set race against other processes.
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionConflictError extends Data.TaggedError("SessionConflictError")<{
  readonly method: string
  readonly session: string
  readonly attempts: number
}> {
  override get message(): string {
    return `Sessions.${this.method}: session ${this.session} still conflicted after ${this.attempts} attempts`
  }
}

/**
 * The cause of a {@link SessionDataError} when a write would make the session's data larger
 * than `maxDataBytes` (bytes of its encoded JSON, UTF-8).
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionDataTooLargeError extends Data.TaggedError("SessionDataTooLargeError")<{
  /** The size the data would have had, in bytes of encoded JSON. */
  readonly bytes: number
  /** The configured limit (`maxDataBytes`). */
  readonly maxBytes: number
}> {
  override get message(): string {
    return `the session data would be ${this.bytes} bytes of JSON, above maxDataBytes (${this.maxBytes})`
  }
}

/**
 * A value in the session did not decode with the caller's schema, a value to store is not JSON
 * that survives a round trip (a non-finite number, a class instance, nesting deeper than
 * `Session.MAX_JSON_DEPTH`) — `cause` is a `ParseError` — or a write would take the session's data
 * above `maxDataBytes` — `cause` is a {@link SessionDataTooLargeError}, and the session is left as
 * it was. `key` is the key written (empty for `modify`).
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionDataError extends Data.TaggedError("SessionDataError")<{
  readonly method: string
  readonly key: string
  readonly cause: ParseError | SessionDataTooLargeError
}> {
  override get message(): string {
    return this.cause._tag === "SessionDataTooLargeError"
      ? `Sessions.${this.method}: writing ${JSON.stringify(this.key)}: ${this.cause.message}`
      : `Sessions.${this.method}: value under ${JSON.stringify(this.key)} does not match its schema: ${this.cause.message}`
  }
}

/**
 * Loading a user object failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class UserLoaderError extends Data.TaggedError("UserLoaderError")<{
  readonly userId: string
  readonly cause: unknown
}> {}

/**
 * Errors of operations on an active session.
 *
 * @since 0.1.0
 * @category errors
 */
export type SessionError = SessionStoreError | SessionGoneError | SessionConflictError | SessionDataError

/**
 * Errors of a read through a handle: the store failed, or the handle's session is gone.
 *
 * @since 0.1.0
 * @category errors
 */
export type SessionReadError = SessionStoreError | SessionGoneError

/**
 * Errors of a write that cannot grow the data (`remove`, `pop`, `destroy`, rotations): a read's,
 * or the compare-and-set kept losing.
 *
 * @since 0.1.0
 * @category errors
 */
export type SessionWriteError = SessionStoreError | SessionGoneError | SessionConflictError

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
  readonly config: SessionConfig_.SessionConfigShape
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
  /** Attaches a user and rotates the token with no grace period (session fixation). `exclusive` ends the user's other sessions first. */
  readonly logIn: (
    handle: ActiveSession,
    userId: string,
    options?: { readonly exclusive?: boolean; readonly client?: Client }
  ) => Effect.Effect<ActiveSession, SessionWriteError>
  /**
   * Detaches the user and rotates the token with no grace period. The data stays by default
   * (`keepData: true`, as in rivo/sessions): a cart or preferences survive the log-out, and
   * anything tied to the user should live in the user's records, not in the session. With
   * `keepData: false` the data is cleared too (a shared computer, data that belongs to the user).
   */
  readonly logOut: (handle: ActiveSession, options?: { readonly keepData?: boolean }) => Effect.Effect<ActiveSession, SessionWriteError>
  /** Ends every session of a user; returns how many ended. */
  readonly logOutEverywhere: (userId: string) => Effect.Effect<number, SessionStoreError>
  /** The live sessions of a user. */
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
}

/**
 * The service.
 *
 * @since 0.1.0
 * @category tags
 */
export class Sessions extends Context.Tag("effect-sessions/Sessions")<Sessions, SessionsShape>() {}

const service: Layer.Layer<Sessions, never, Persistence | SessionCache.SessionCache | SessionConfig | SecureRandom> = Layer.scoped(
  Sessions,
  Effect.suspend(() => makeSessions) // suspended: the modules import each other
)

/**
 * The service over the `Persistence`, `SessionConfig` and `SecureRandom` in context (its cache
 * sized by the configuration), without the sweeper: for tests that swap in a seeded
 * `SecureRandom` or a configuration of their own. Scoped: it listens to the store's
 * invalidations from other processes while it lives.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromContext: Layer.Layer<Sessions, never, Persistence | SessionConfig | SecureRandom> = service.pipe(
  Layer.provide(SessionCache.layer)
)

/**
 * The service over any `Persistence` in context: its configuration from `options`, the live
 * SecureRandom, the cache and the sweeper. Needs nothing else.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Sessions } from "effect-sessions"
 * import * as Redis from "effect-sessions/Persistence/Redis"
 *
 * const SessionsLive = Sessions.layer({ idleTimeout: "20 minutes" }).pipe(Layer.provide(Redis.layer({ url: "redis://127.0.0.1:6379" })))
 * ```
 */
export const layer = (
  options: SessionConfig_.SessionConfigInput = {}
): Layer.Layer<Sessions, SessionConfig_.SessionConfigError, Persistence> =>
  Layer.merge(layerFromContext, layerSweeper).pipe(
    Layer.provide(SessionConfig_.layer(options)),
    Layer.provide(SecureRandom_.layer)
  )

/**
 * {@link layer} with its options read through Effect `Config`: each option a `Config` of its own
 * (`Config.Config.Wrap`), so that you choose which come from the environment, e.g.
 * `Sessions.layerConfig({ idleTimeout: Config.duration("IDLE_TIMEOUT") })`; `SessionConfig.config`
 * reads them all under `SESSIONS_`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<SessionConfig_.SessionConfigInput>
): Layer.Layer<Sessions, SessionConfig_.SessionConfigError | ConfigError, Persistence> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))

/**
 * Everything for one process on the in-memory store: the service configured by `options`, the
 * live SecureRandom, the memory store (with `memory`'s capacity and retention: see
 * `Persistence.MemoryOptions`) and its sweeper. Needs nothing.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Session, Sessions } from "effect-sessions"
 *
 * const program = Effect.gen(function*() {
 *   const sessions = yield* Sessions.Sessions
 *   const handle = yield* sessions.create(Session.client({ ip: "203.0.113.7", userAgent: "curl/8" }))
 *   yield* sessions.set(handle, "theme", "dark")
 * })
 * Effect.runPromise(Effect.provide(program, Sessions.layerMemory({ idleTimeout: "20 minutes" })))
 * ```
 */
export const layerMemory = (
  options: SessionConfig_.SessionConfigInput = {},
  memory: Persistence_.MemoryOptions = {}
): Layer.Layer<Sessions, SessionConfig_.SessionConfigError> => layer(options).pipe(Layer.provide(Persistence_.layerMemoryWith(memory)))

/**
 * Periodically removes expired records from stores without TTLs (every `sweepInterval`).
 * A failed sweep is logged and retried at the next interval.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSweeper: Layer.Layer<never, never, Persistence | SessionConfig> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const store = yield* Persistence
    const config = yield* SessionConfig
    yield* store.sweep.pipe(
      Effect.tap((n) => n > 0 ? Effect.logDebug(`swept ${n} expired session records`) : Effect.void),
      Effect.catchAll((e) => Effect.logWarning("session sweep failed", e)),
      Effect.repeat(Schedule.spaced(config.sweepInterval)),
      Effect.delay(config.sweepInterval),
      Effect.forkScoped
    )
  })
)
