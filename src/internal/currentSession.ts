/**
 * The models and Tags of the HTTP edge: the per-request session ({@link CurrentSessionShape},
 * {@link CurrentSession}), the logged-in user ({@link CurrentUser}) and the middleware's options.
 * Defined here, below both the public `Http` module (which re-exports them) and the
 * implementation (`http.ts`), so that neither imports the other back.
 *
 * @internal
 */
import type { Duration, Effect, Either, Option } from "effect"
import { Context } from "effect"
import type { ParseError } from "effect/ParseResult"
import type { SessionStoreError } from "./persistence.js"
import type { Json, Key, KeyLike, Session } from "../Session.js"
import type {
  SessionConflictError,
  SessionDataError,
  SessionError,
  SessionLimitError,
  SessionReadError,
  SessionWriteError,
  UserLoaderError
} from "./sessions/errors.js"
import type { SessionInfo } from "./sessions/service.js"
import type { RecentLoginRequired } from "./httpApiErrors.js"
import type { Transport } from "./transport.js"

/**
 * The session of the current request. Lazy: reading never creates a session; the first write
 * (or {@link CurrentSessionShape.ensure}) does, and the response then carries the cookie.
 *
 * @since 0.1.0
 * @category models
 */
export interface CurrentSessionShape {
  /** The session's latest value, if the request has one. */
  readonly session: Effect.Effect<Option.Option<Session>, SessionStoreError>
  /** The session, created now if the request has none. */
  readonly ensure: Effect.Effect<Session, SessionStoreError>
  /** The logged-in user's ID. */
  readonly userId: Effect.Effect<Option.Option<string>, SessionStoreError>
  /**
   * The value under `key` (none without a session): JSON for a string key; for a typed key
   * ({@link Session.key}) decoded through its Schema, and a `SessionDataError` when the stored
   * value no longer decodes.
   */
  readonly get: {
    <A>(key: Key<A>): Effect.Effect<Option.Option<A>, SessionStoreError | SessionDataError>
    (key: string): Effect.Effect<Option.Option<Json>, SessionStoreError>
  }
  /** Sets `key` (creating the session if needed; a typed key encodes the value through its Schema). */
  readonly set: {
    <A>(key: Key<A>, value: NoInfer<A>): Effect.Effect<void, SessionError>
    (key: string, value: Json): Effect.Effect<void, SessionError>
  }
  /** Removes `key` (a no-op without a session or when the key is absent). */
  readonly remove: (key: KeyLike) => Effect.Effect<void, SessionWriteError>
  /** Removes `key` and returns its value (none without a session). */
  readonly pop: {
    <A>(key: Key<A>): Effect.Effect<Option.Option<A>, SessionWriteError | SessionDataError>
    (key: string): Effect.Effect<Option.Option<Json>, SessionWriteError>
  }
  /** Atomically replaces the value under `key` with `f(old)` and returns it (creating the session if needed). */
  readonly update: {
    <A>(key: Key<A>, f: (old: Option.Option<A>) => NoInfer<A>): Effect.Effect<A, SessionError>
    (key: string, f: (old: Option.Option<Json>) => Json): Effect.Effect<Json, SessionError>
  }
  /**
   * Atomically applies a pure change — several keys in one step — and returns the new session
   * (creating it if needed). `f` may return the `Either` of the typed `Session.set`.
   */
  readonly modify: (f: (session: Session) => Session | Either.Either<Session, ParseError>) => Effect.Effect<Session, SessionError>
  /**
   * Logs a user in (creating the session if needed); the token rotates, and the time is recorded
   * for {@link requireRecentLogin}. `persistent` is the "remember me" choice (`true`: a
   * persistent cookie; `false`: a browser-session cookie; absent: the configured
   * `cookie.persistent`), kept by every later `Set-Cookie` of the session. Under
   * `maxSessionsPerUser` with `onSessionLimit: "refuse"` a log-in beyond the limit fails with a
   * `SessionLimitError` and changes nothing.
   */
  readonly logIn: (
    userId: string,
    options?: { readonly exclusive?: boolean; readonly persistent?: boolean }
  ) => Effect.Effect<void, SessionWriteError | SessionLimitError>
  /**
   * The logged-in user proved who they are again (re-entered a password, passed MFA): the
   * log-in counts as recent from now, and the token rotates with no grace period. A no-op
   * without a session.
   */
  readonly reauthenticated: Effect.Effect<void, SessionWriteError>
  /**
   * The recent-login gate for sensitive operations (OWASP ASVS 7.5.1, 7.5.2): the logged-in
   * user's ID when they authenticated less than `maxAge` ago (by `Clock`), else a
   * {@link RecentLoginRequired} (403 in an HttpApi), also without a logged-in user.
   */
  readonly requireRecentLogin: (maxAge: Duration.DurationInput) => Effect.Effect<string, RecentLoginRequired | SessionStoreError>
  /**
   * Logs the user out; the token rotates with no grace period. The data stays (`keepData: true`,
   * the default, as in rivo/sessions: carts and preferences survive); `logOut({ keepData: false })`
   * clears it too.
   */
  readonly logOut: (options?: { readonly keepData?: boolean }) => Effect.Effect<void, SessionWriteError>
  /**
   * Replaces the token now. `regenerateId()` lets the old token follow for the grace period
   * (periodic hygiene: requests in flight keep the session); `regenerateId({ grace: false })` kills
   * it at once — use that after a privilege change such as a step-up (MFA, sudo mode).
   */
  readonly regenerateId: (options?: { readonly grace?: boolean }) => Effect.Effect<void, SessionWriteError>
  /** Ends the session and clears the cookie (nothing to end when the request's token was retired meanwhile). */
  readonly destroy: Effect.Effect<void, SessionStoreError | SessionConflictError>
  /** The sessions of the logged-in user (empty when nobody is logged in). */
  readonly listSessions: Effect.Effect<ReadonlyArray<SessionInfo & { readonly current: boolean }>, SessionReadError>
  /** Ends one session of the logged-in user by its public id (from `listSessions`); `false` when it is not theirs. */
  readonly endSession: (id: string) => Effect.Effect<boolean, SessionReadError>
  /** Ends every session of the logged-in user, this one included. */
  readonly logOutEverywhere: Effect.Effect<number, SessionReadError>
  /**
   * Ends every session of the logged-in user except this one (OWASP ASVS 7.4.3: after a password
   * or MFA change); returns how many ended (0 without a session or a user). This session and its
   * cookie stay as they are.
   */
  readonly logOutOthers: Effect.Effect<number, SessionReadError>
  /** The user object, through the `UserLoader` in context. */
  readonly user: Effect.Effect<Option.Option<unknown>, SessionStoreError | UserLoaderError>
}

/**
 * The current request's session, provided by `Http.middleware`.
 *
 * @since 0.1.0
 * @category tags
 */
export class CurrentSession extends Context.Tag("effect-sessions/Http/CurrentSession")<CurrentSession, CurrentSessionShape>() {}

/**
 * Options of {@link middleware}.
 *
 * @since 0.1.0
 * @category models
 */
export interface MiddlewareOptions {
  /** Create a session for every request that has none (default `false`: lazy). */
  readonly create?: boolean
  /** Status of the answer when the store fails (default 503). No cookie is set then. */
  readonly unavailableStatus?: number
  /**
   * Status of the answer when the session ended while the request was using it, or the request's
   * token was retired meanwhile (default 401).
   */
  readonly goneStatus?: number
  /**
   * Status of the answer when a handler lets through a write above `maxDataBytes` (a
   * `SessionDataError` caused by `SessionDataTooLargeError`; default 413). The session is as it
   * was; nothing else about the response changes.
   */
  readonly tooLargeStatus?: number
  /**
   * What `Clear-Site-Data` asks the browser to remove when a handler ends or logs out the
   * session (ASVS 14.3.1); `false` sends no header. Default `["cookies", "storage"]`. A response
   * that ends the session (`destroy`, `logOutEverywhere`, `endSession` of the current one) sends
   * the whole list. A response that also sets the session cookie — `logOut`, which keeps the
   * session under a fresh token, or a log-in after a destroy — sends the list without `"cookies"`
   * (`"*"` becomes `"cache", "storage", "executionContexts"`): the browser applies
   * `Clear-Site-Data: "cookies"` after the response's `Set-Cookie`, so it would remove the new
   * token and with it the data a `logOut()` keeps. `"cookies"` removes every cookie of the
   * registrable domain (sibling subdomains too); browsers honour the header only over HTTPS and
   * on `localhost`.
   */
  readonly clearSiteData?: false | ReadonlyArray<ClearSiteDataType>
  /**
   * Where the session token travels (default `"cookie"`): `"bearer"` reads
   * `Authorization: Bearer <token>` and answers in `Set-Session-Token`; `{ header: "X-Session-Token" }`
   * reads that header and answers in it. A list accepts each; when a request carries several, a
   * header wins over the cookie (headers in the order given), and the transport that carried the
   * token is the one answered (the others are neither read nor touched). A request that carries
   * none gets a new session on the first transport given. The answer on a header is the new token
   * (with `Cache-Control: no-store`) for a new, rotated or followed session, and an empty value when
   * the token is dead; `Clear-Site-Data` goes with the cookie only. The URL is never read (ASVS
   * 14.2.1). Throws a `TypeError` when the middleware is built for an empty list or a header that
   * cannot carry a token (`Cookie`, `Authorization` — use `"bearer"` —, `Host`, …).
   */
  readonly transport?: Transport | ReadonlyArray<Transport>
}

/**
 * A directive of `Clear-Site-Data` (W3C Clear Site Data).
 *
 * @since 0.1.0
 * @category models
 */
export type ClearSiteDataType = "cookies" | "storage" | "cache" | "executionContexts" | "*"

/**
 * The logged-in user of an endpoint behind `Http.RequireUser`, with the request's session.
 *
 * @since 0.1.0
 * @category tags
 */
export class CurrentUser extends Context.Tag("effect-sessions/Http/CurrentUser")<CurrentUser, {
  readonly userId: string
  readonly session: CurrentSessionShape
}>() {}
