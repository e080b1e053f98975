/**
 * The store contract's types, its error and its Tag, defined here so that the built-in stores
 * (the memory store among them) implement it without importing the public `Persistence` module,
 * which imports them back; `Persistence` re-exports every name.
 *
 * @internal
 */
import { Context, Data, Effect, Option, Stream } from "effect"
import { logHash, sha256 } from "./hash.js"
import type { Redirect, Session, TokenRecord } from "../Session.js"

/**
 * What a store tells the processes sharing it (its `invalidations`):
 *
 * - `Token`: the record under `tokenKey` changed in another process — drop it from the cache;
 * - `User`: another process asked for the user with this {@link userKey} to be loaded again
 *   (`Sessions.refreshUser`) — drop it from the user cache;
 * - `All`: anything cached may be stale — the channel was interrupted (a reconnect) and messages
 *   may have been lost meanwhile, or another process logged everyone out
 *   ({@link PersistenceShape.revokeUntil}): drop every cache and read the revocation instant again.
 *
 * Build them with the {@link Invalidation} constructors (`Invalidation.Token({ tokenKey })` …).
 *
 * @since 0.1.0
 * @category models
 */
export type Invalidation = Data.TaggedEnum<{
  readonly Token: { readonly tokenKey: string }
  readonly User: { readonly userKey: string }
  readonly All: {}
}>

/**
 * Constructors and guards of {@link Invalidation}: `Invalidation.Token({ tokenKey })`,
 * `Invalidation.User({ userKey })`, `Invalidation.All()`, `Invalidation.$is("Token")`,
 * `Invalidation.$match(…)`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Invalidation = Data.taggedEnum<Invalidation>()

/**
 * The {@link Invalidation} that means "anything cached may be stale": a store emits it when its
 * invalidation channel was interrupted (a reconnect), since messages may have been lost meanwhile.
 *
 * @since 0.1.0
 * @category constants
 */
export const INVALIDATE_ALL: Invalidation = Invalidation.All()

/**
 * The key of a user on an invalidation channel (and in the SQL store's user index): a SHA-256 of
 * the user ID, so that the channel carries no user IDs.
 *
 * @since 0.1.0
 * @category utils
 */
export const userKey = (userId: string): string => sha256(`user:${userId}`)

/**
 * The type id of {@link SessionStoreError}: how the HTTP middleware recognises a store outage.
 * A `Symbol.for` key, so that two copies of the package in one app still agree.
 *
 * @since 0.1.0
 * @category type ids
 */
export const SessionStoreErrorTypeId: unique symbol = Symbol.for("effect-sessions/SessionStoreError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type SessionStoreErrorTypeId = typeof SessionStoreErrorTypeId

/**
 * A system fault in a store: it is down, it answered garbage, or a record is corrupt.
 * `method` names the operation that failed; `reason` classifies it. Recognise it with
 * {@link isSessionStoreError} (or `instanceof`), never by its `_tag` alone: other libraries
 * (`@effect/experimental`) have persistence errors of their own.
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionStoreError extends Data.TaggedError("SessionStoreError")<{
  readonly method: string
  readonly reason: "Unavailable" | "Corrupt" | "Unknown"
  readonly cause?: unknown
  /**
   * For a corrupt record: a short fingerprint of its store key (8 characters of a SHA-256), never
   * the key itself. The constructor takes the key and keeps only the fingerprint: with
   * `hashIdsAtRest: false` a token key is the raw token, and a session key is an internal secret.
   */
  readonly key?: string
}> {
  /** @since 0.1.0 */
  readonly [SessionStoreErrorTypeId]: SessionStoreErrorTypeId = SessionStoreErrorTypeId
  constructor(args: {
    readonly method: string
    readonly reason: "Unavailable" | "Corrupt" | "Unknown"
    readonly cause?: unknown
    readonly key?: string
  }) {
    super(args.key === undefined ? args : { ...args, key: logHash(args.key) })
  }
  override get message(): string {
    const cause = this.cause instanceof Error ? `: ${this.cause.message}` : this.cause === undefined ? "" : `: ${String(this.cause)}`
    return `Persistence.${this.method} failed (${this.reason})${cause}`
  }
}

/**
 * Whether a value is a {@link SessionStoreError} of this library.
 *
 * @since 0.1.0
 * @category guards
 */
export const isSessionStoreError = (u: unknown): u is SessionStoreError =>
  typeof u === "object" && u !== null && SessionStoreErrorTypeId in u

/**
 * What {@link PersistenceShape.rotate} writes in one atomic step: the rotated `session` (its new
 * token, the next version), stored if the stored session still has version `expectedVersion`
 * and `redirect.tokenKey` as its current token; the old token turned into `redirect`, kept until
 * `redirect.expiresAt`; and `expiresAt`, the session's deadline (for stores with TTLs).
 *
 * @since 0.1.0
 * @category models
 */
export interface Rotation {
  /** The session after the rotation: its new token and the next version. */
  readonly session: Session
  /** The version the stored session must have for the rotation to win. */
  readonly expectedVersion: number
  /** What the old token (`redirect.tokenKey`, the stored session's current one) becomes. */
  readonly redirect: Redirect
  /** The session's deadline (epoch milliseconds), for stores that expire records by TTL. */
  readonly expiresAt: number
}

/**
 * What a store does when a log-in would give a user more live sessions than
 * {@link SessionLimit.max}: `"endLeastRecentlyUsed"` ends the user's other sessions with the
 * oldest `lastAccessAt` (ties: the oldest `createdAt`, then the smaller key) until the new one
 * fits; `"refuse"` writes nothing and answers `Refused`.
 *
 * @since 0.1.0
 * @category models
 */
export type SessionLimitPolicy = "endLeastRecentlyUsed" | "refuse"

/**
 * The limit {@link PersistenceShape.rotateWithinLimit} enforces: at most `max` live sessions of
 * the rotated session's user, the rotated one included.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionLimit {
  /** The most live sessions a user may have (an integer ≥ 1). */
  readonly max: number
  /** What to do when the rotation would exceed it. */
  readonly policy: SessionLimitPolicy
}

/**
 * The answer of {@link PersistenceShape.rotateWithinLimit}:
 *
 * - `Rotated`: the rotation won; `ended` holds the current token keys of the sessions the store
 *   ended to make room (empty when the user was within the limit);
 * - `Lost`: the compare-and-set failed (as `rotate` answering `false`); nothing was written or ended;
 * - `Refused`: the compare-and-set would have won, but the user already has `max` other live
 *   sessions and the policy is `"refuse"`; nothing was written or ended.
 *
 * @since 0.1.0
 * @category models
 */
export type LimitedRotation = Data.TaggedEnum<{
  readonly Rotated: { readonly ended: ReadonlyArray<string> }
  readonly Lost: {}
  readonly Refused: {}
}>

/**
 * Constructors and guards of {@link LimitedRotation}: `LimitedRotation.Rotated({ ended })`,
 * `LimitedRotation.Lost()`, `LimitedRotation.Refused()`, `LimitedRotation.$is("Refused")` …
 *
 * @since 0.1.0
 * @category constructors
 */
export const LimitedRotation = Data.taggedEnum<LimitedRotation>()

/**
 * The store operations. Keys are token keys (the SHA-256 of a token when `hashIdsAtRest`) and
 * session keys (the stable internal key); a store never sees a raw token. A session's key and
 * every token key it ever has start with the same routing tag (`Ids.routingTag`, the first
 * `Ids.ROUTING_TAG_LENGTH` characters), so a store may keep a session's records together (the
 * Redis store keeps them in one cluster slot).
 *
 * @since 0.1.0
 * @category models
 */
export interface PersistenceShape {
  /** The record under a token key: the session for its current token, or a redirect. */
  readonly load: (tokenKey: string) => Effect.Effect<Option.Option<TokenRecord>, SessionStoreError>
  /** A session by its internal key. */
  readonly loadSession: (sessionKey: string) => Effect.Effect<Option.Option<Session>, SessionStoreError>
  /** Inserts a new session (and its token); `expiresAt` is its deadline for TTL-based stores. */
  readonly create: (session: Session, expiresAt: number) => Effect.Effect<void, SessionStoreError>
  /**
   * Replaces the session if its stored version is `expectedVersion` (the new value carries the
   * next version). Keeps the user index in step. `false` when the version differs or it is gone.
   */
  readonly save: (session: Session, expectedVersion: number, expiresAt: number) => Effect.Effect<boolean, SessionStoreError>
  /**
   * Atomic rotation (see {@link Rotation}): if the stored session has version
   * `expectedVersion` and its current token is `redirect.tokenKey`, store `session` (new token,
   * next version) and turn the old token into `redirect` (until `redirect.expiresAt`) in one
   * step. `false` otherwise.
   */
  readonly rotate: (rotation: Rotation) => Effect.Effect<boolean, SessionStoreError>
  /**
   * {@link rotate} with a limit on the sessions of the rotated session's user (`maxSessionsPerUser`),
   * checked and enforced in the same atomic step as the compare-and-set, so that concurrent
   * log-ins of one user — in any number of processes — never leave more than `limit.max` live
   * sessions. A session is live while the store's clock is before the deadline it was last
   * written with (`expiresAt` of create, save or rotate); dead ones, records that do not decode,
   * and the rotated session itself are not counted among the others. If the compare-and-set
   * fails: `Lost`. Otherwise, with `others` the user's other live sessions: when
   * `others + 1 ≤ max`, the rotation is written (`Rotated`, nothing ended); else with
   * `"endLeastRecentlyUsed"` the `others + 1 − max` least recently used of them are deleted (each
   * with its current token and index entry, as {@link delete}; other processes hear of their token
   * keys through `invalidations`) and the rotation written, all in one step (`Rotated` with their
   * token keys); with `"refuse"` nothing is written (`Refused`). A rotated session without a user
   * behaves as {@link rotate}.
   */
  readonly rotateWithinLimit: (rotation: Rotation, limit: SessionLimit) => Effect.Effect<LimitedRotation, SessionStoreError>
  /** Deletes a session, its current token and its user-index entry. No-op when absent. */
  readonly delete: (sessionKey: string) => Effect.Effect<void, SessionStoreError>
  /** Deletes whatever a token key holds (used to drop a corrupt record). No-op when absent. */
  readonly deleteToken: (tokenKey: string) => Effect.Effect<void, SessionStoreError>
  /**
   * The live sessions of a user (the user index). A record that does not decode never fails the
   * listing: it is skipped, deleted (the session and its current token) and logged (the method and
   * a short hash of its key), and every session that decodes is still returned — so that logging a
   * user out everywhere works whatever one of the sessions holds.
   */
  readonly sessionsOfUser: (userId: string) => Effect.Effect<ReadonlyArray<Session>, SessionStoreError>
  /**
   * The revocation instant ("log everybody out", `Sessions.logOutEveryone`), one value per store:
   * every session whose birth (`createdAt`) and last authentication (`authenticatedAt`) are both
   * at or before it counts as ended; the service enforces it. Stores the larger of the stored
   * instant and `instant` (epoch milliseconds): it never moves back. Then tells the other
   * processes sharing the store — they receive `Invalidation.All()`, and read it again with
   * {@link revokedUntil}. One small record (a key, a row), never a scan: the sessions themselves are
   * untouched, and each is deleted when the service next meets it. Stores that only one process
   * can use tell nobody.
   */
  readonly revokeUntil: (instant: number) => Effect.Effect<void, SessionStoreError>
  /** The revocation instant stored by {@link revokeUntil}; none when nobody ever stored one. */
  readonly revokedUntil: Effect.Effect<Option.Option<number>, SessionStoreError>
  /** Removes expired sessions and redirects; returns how many records went. A no-op for stores with TTLs. */
  readonly sweep: Effect.Effect<number, SessionStoreError>
  /**
   * Tells the other processes sharing this store to forget a user they cached (`userKey` is
   * `Persistence.userKey(userId)`, never the ID): they receive `Invalidation.User({ userKey })`.
   * Stores that only one process can use make it a no-op (`Effect.void`).
   */
  readonly publishUserInvalidation: (userKey: string) => Effect.Effect<void, SessionStoreError>
  /**
   * What other processes sharing this store changed (for cache coherence): `Token` for every
   * token key they wrote, `User` for every user they refreshed, `All` for every
   * {@link revokeUntil}, and `All` after an interruption of the channel. A process never hears itself. Stores that only one process can use return
   * `Stream.empty`.
   */
  readonly invalidations: Stream.Stream<Invalidation>
}

/**
 * The store service.
 *
 * @since 0.1.0
 * @category tags
 */
export class Persistence extends Context.Tag("effect-sessions/Persistence")<Persistence, PersistenceShape>() {}

/**
 * The sessions a limited rotation ends (see {@link PersistenceShape.rotateWithinLimit}): given the
 * user's other live sessions, none when one more fits within `max`, else the `others + 1 − max`
 * least recently used (oldest `lastAccessAt`, then oldest `createdAt`, then smaller key) — or
 * `"refused"` under the `"refuse"` policy. One rule for the stores that decide in TypeScript
 * (memory, SQL, KeyValueStore); the Redis script implements the same order in Lua.
 *
 * @since 0.1.0
 * @category utils
 */
export const sessionsToEnd = <A extends Pick<Session, "key" | "lastAccessAt" | "createdAt">>(
  others: ReadonlyArray<A>,
  limit: SessionLimit
): ReadonlyArray<A> | "refused" => {
  const excess = others.length + 1 - limit.max
  if (excess <= 0) return []
  if (limit.policy === "refuse") return "refused"
  return [...others]
    .sort((a, b) => a.lastAccessAt - b.lastAccessAt || a.createdAt - b.createdAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, excess)
}
