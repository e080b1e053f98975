/**
 * The store contract: what any backend (memory, SQL, Redis, your own) must do, its typed error,
 * and the in-memory implementation that is the default.
 *
 * Rules every store follows (checked by the conformance suite of `effect-sessions/testing`):
 * - Missing is `Option.none()`, never an error; deleting an absent key is a no-op.
 * - Errors are {@link SessionStoreError}s and are for system faults only (store down, corrupt
 *   record).
 * - `save` and `rotate` are compare-and-set on the session's `version`: they return `false`,
 *   and change nothing, when the stored version is not the expected one (or the session is
 *   gone). Of two concurrent rotations of one token exactly one wins.
 * - A record is kept until its deadline (`expiresAt`) plus a retention period
 *   ({@link DEFAULT_RETENTION_MILLIS} unless the store is configured otherwise), then hidden and
 *   removed (by TTL, or by `sweep` where the backend has none). The service decides expiry by time
 *   itself; the retention lets it still tell why a token is dead — idle, absolute, or a rotated
 *   token used after its grace period (a theft signal it reports) — rather than "unknown".
 * - A record that does not decode never fails `sessionsOfUser`: it is skipped, deleted and logged.
 * - Errors carry no secrets: no command arguments, records, user data or tokens (a corrupt
 *   record is named by a fingerprint of its key), only the method, the reason and the driver's
 *   error class and message.
 *
 * @since 0.1.0
 * @module
 */
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import { Context, Data, Duration, Effect, Layer, Option, Stream } from "effect"
import { logHash, sha256 } from "./internal/hash.js"
import { makeKeyValueStore } from "./internal/keyValueStore.js"
import { makeMemoryStore } from "./internal/memoryStore.js"
import type { Redirect, Session, TokenRecord } from "./Session.js"

/**
 * How long the built-in stores keep a record past its deadline: 10 minutes.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_RETENTION_MILLIS = 10 * 60 * 1000

/**
 * What a store tells the processes sharing it (its `invalidations`):
 *
 * - `Token`: the record under `tokenKey` changed in another process — drop it from the cache;
 * - `User`: another process asked for the user with this {@link userKey} to be loaded again
 *   (`Sessions.refreshUser`) — drop it from the user cache;
 * - `All`: the channel was interrupted (a reconnect) and messages may have been lost meanwhile —
 *   anything cached may be stale.
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
 * The store operations. Keys are token keys (the SHA-256 of a token when `hashIdsAtRest`) and
 * session keys (the stable internal key); a store never sees a raw token.
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
   * Atomic rotation: if the stored session has version `expectedVersion` and its current token
   * is `redirect.tokenKey`, store `session` (new token, next version) and turn the old token into
   * `redirect` (until `redirect.expiresAt`) in one step. `false` otherwise.
   */
  readonly rotate: (session: Session, expectedVersion: number, redirect: Redirect, expiresAt: number) => Effect.Effect<boolean, SessionStoreError>
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
   * token key they wrote, `User` for every user they refreshed, and `All` after an interruption
   * of the channel. A process never hears itself. Stores that only one process can use return
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
 * The default capacity of the memory store: 1,000,000 sessions, sized for at most about 1 GiB of
 * small sessions (about 600 bytes each with their token record and index entry).
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MEMORY_CAPACITY = 1_000_000

/**
 * Options of the memory store.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions {
  /**
   * How many sessions the store holds at most (a positive integer, or `Infinity`; default
   * {@link DEFAULT_MEMORY_CAPACITY}). When a new session would exceed it, the least recently used
   * session goes — a session counts as used when it is read (by token or by key) or written — with
   * its current token and its user-index entry; its rotated-away tokens (redirects) stay until
   * their own expiry, leading nowhere. Evictions are counted in the `effect_sessions_evicted_total`
   * metric and logged as a warning at most once a minute.
   */
  readonly capacity?: number | undefined
  /** How long records are kept past their deadline, in milliseconds (default {@link DEFAULT_RETENTION_MILLIS}; 0 hides a record at its deadline). */
  readonly retentionMillis?: number | undefined
}

/**
 * The in-memory store: the default, for one process, with the default capacity and retention.
 * It reads time from `Clock` (so `TestClock` drives its expiry) and is swept by the sweeper layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Persistence> = Layer.sync(Persistence, () => makeMemoryStore())

/**
 * Builds a fresh in-memory store with the default options (for tests that want two independent
 * stores, or to wrap).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<PersistenceShape> = Effect.sync(() => makeMemoryStore())

/**
 * Builds a fresh in-memory store with its own {@link MemoryOptions}. An invalid capacity (not a
 * positive integer nor `Infinity`) is a defect.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryWith = (options: MemoryOptions): Effect.Effect<PersistenceShape> => Effect.sync(() => makeMemoryStore(options))

/**
 * The in-memory store with its own {@link MemoryOptions}: a capacity (sessions) and a retention
 * past deadlines. An invalid capacity (not a positive integer nor `Infinity`) is a defect.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { Persistence } from "effect-sessions"
 *
 * const store = Persistence.layerMemoryWith({ capacity: 100_000 })
 * ```
 */
export const layerMemoryWith = (options: MemoryOptions): Layer.Layer<Persistence> =>
  Layer.sync(Persistence, () => makeMemoryStore(options))

/**
 * Options of {@link layerKeyValueStore}.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyValueStoreOptions {
  /** Prefix of every key the store writes (default `sess:`), so that the sessions can share a KeyValueStore with other data. */
  readonly prefix?: string | undefined
  /** How long records are kept past their deadline (default {@link DEFAULT_RETENTION_MILLIS}; 0 hides a record at its deadline). */
  readonly retention?: Duration.DurationInput | undefined
}

/**
 * A store over `@effect/platform`'s `KeyValueStore` service: `KeyValueStore.layerMemory`,
 * `KeyValueStore.layerFileSystem(directory)` (sessions that survive a restart, with no database),
 * `layerStorage` in a browser, or your own.
 *
 * For one process only. A KeyValueStore has no compare-and-set and no transactions, so every
 * operation of the store runs under one lock (per KeyValueStore instance, in this process) and is
 * not interrupted half-way: `save` and `rotate` are atomic within the process — of concurrent
 * writers exactly one wins — but two processes over one directory would lose each other's
 * updates, and a crash in the middle of a write can leave it half done. `invalidations` is empty
 * and `publishUserInvalidation` a no-op. Time comes from `Clock` (`TestClock` drives expiry);
 * expired records are hidden at once and deleted by `sweep` (the sweeper), which walks an expiry
 * index kept in the KeyValueStore itself, since a KeyValueStore cannot list its keys.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { KeyValueStore } from "@effect/platform"
 * import { NodeFileSystem, NodePath } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { Persistence } from "effect-sessions"
 *
 * const store = Persistence.layerKeyValueStore({ prefix: "sessions:" }).pipe(
 *   Layer.provide(KeyValueStore.layerFileSystem("./data/sessions")),
 *   Layer.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer))
 * )
 * ```
 */
export const layerKeyValueStore = (
  options: KeyValueStoreOptions = {}
): Layer.Layer<Persistence, never, KeyValueStore.KeyValueStore> =>
  Layer.effect(
    Persistence,
    Effect.map(KeyValueStore.KeyValueStore, (kv) =>
      makeKeyValueStore(kv, {
        prefix: options.prefix ?? "sess:",
        retentionMillis: options.retention === undefined ? DEFAULT_RETENTION_MILLIS : Duration.toMillis(Duration.decode(options.retention))
      }))
  )
