/**
 * The errors of the Sessions service, defined here so that the implementation
 * (`internal/sessions/*`) and the HTTP edge (`internal/http.ts`) can raise and recognise them
 * without importing the public `Sessions` module, which re-exports every one of them. Each says
 * which method failed; none carries a token (a short hash names the session).
 *
 * @internal
 */
import { Data } from "effect"
import type { ParseError } from "effect/ParseResult"
import type { SessionStoreError } from "../persistence.js"

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
 * A log-in refused by the limit on a user's sessions (`maxSessionsPerUser` with
 * `onSessionLimit: "refuse"`): the user already has `max` other live sessions. Nothing changed:
 * the session keeps its token, its user (if any) and its data. The app decides what to say
 * (e.g. "log out on another device first", with `listSessions` / `endSession`). Carries no user
 * ID and no token (a short hash names the session).
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionLimitError extends Data.TaggedError("SessionLimitError")<{
  readonly method: string
  /** A short hash of the token, never the token. */
  readonly session: string
  /** The configured limit (`maxSessionsPerUser`). */
  readonly max: number
}> {
  override get message(): string {
    return `Sessions.${this.method}: session ${this.session}: the user already has ${this.max} live sessions (maxSessionsPerUser)`
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
