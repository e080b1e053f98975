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
 *   ({@link DEFAULT_RETENTION} unless the store is configured otherwise), then hidden and
 *   removed (by TTL, or by `sweep` where the backend has none). The service decides expiry by time
 *   itself; the retention lets it still tell why a token is dead — idle, absolute, or a rotated
 *   token used after its grace period (a theft signal it reports) — rather than "unknown".
 * - A record that does not decode never fails `sessionsOfUser`: it is skipped, deleted and logged.
 * - `rotateWithinLimit` (log-ins under `maxSessionsPerUser`) counts the user's live sessions,
 *   ends the least recently used ones or refuses, and rotates, all in one atomic step: concurrent
 *   log-ins of one user in several processes never leave more than the limit.
 * - Errors carry no secrets: no command arguments, records, user data or tokens (a corrupt
 *   record is named by a fingerprint of its key), only the method, the reason and the driver's
 *   error class and message.
 *
 * @since 0.1.0
 * @module
 */
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import type { ConfigError } from "effect"
import { Duration, Effect, Layer } from "effect"
import { DEFAULT_MEMORY_CAPACITY as memoryCapacity, DEFAULT_RETENTION as retention, makeMemoryStore } from "./internal/memoryStore.js"
import type { MemoryOptions } from "./internal/memoryStore.js"
import type { PersistenceShape } from "./internal/persistence.js"
import { Persistence } from "./internal/persistence.js"
import { makeKeyValueStore } from "./internal/keyValueStore.js"
import { durationMillis } from "./internal/storeOptions.js"

/**
 * How long the built-in stores keep a record past its deadline: 10 minutes.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_RETENTION: Duration.Duration = retention

/**
 * The store contract (defined in an internal module so that the built-in stores implement it
 * without importing this one back): {@link Persistence} is the Tag, `PersistenceShape` what a store
 * implements, `Rotation` the record of one atomic rotation, {@link SessionStoreError} the one error
 * (a system fault: `Unavailable`, `Corrupt`, `Unknown`), `Invalidation` what a store tells the
 * processes sharing it, `userKey` the key of a user's index, `LimitedRotation` the answer of
 * `rotateWithinLimit` (a rotation under `maxSessionsPerUser`), `sessionsToEnd` the order in which a
 * limited rotation ends sessions (for stores that decide in TypeScript).
 *
 * @since 0.1.0
 * @category models
 */
export {
  INVALIDATE_ALL,
  Invalidation,
  isSessionStoreError,
  LimitedRotation,
  Persistence,
  SessionStoreError,
  SessionStoreErrorTypeId,
  sessionsToEnd,
  userKey
} from "./internal/persistence.js"
/**
 * The shape a store implements, the record `rotate` takes, and the limit `rotateWithinLimit`
 * enforces (see the module's rules above).
 *
 * @since 0.1.0
 * @category models
 */
export type { PersistenceShape, Rotation, SessionLimit, SessionLimitPolicy } from "./internal/persistence.js"
/**
 * The argument of a store's `layerConfig` (Redis, Pg, Sqlite): its options as one `Config`, or an
 * object whose fields are each a `Config` (as `Config.Config.Wrap`) or a plain value.
 *
 * @since 0.1.0
 * @category models
 */
export type { ConfigOrValues } from "./internal/storeOptions.js"
/**
 * Options of the memory store: `capacity` (sessions held at most, the least recently used evicted
 * beyond it) and `retention` (how long records are kept past their deadline).
 *
 * @since 0.1.0
 * @category models
 */
export type { MemoryOptions } from "./internal/memoryStore.js"

/**
 * The default capacity of the memory store: 1,000,000 sessions, sized for at most about 1 GiB of
 * small sessions (about 600 bytes each with their token record and index entry).
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MEMORY_CAPACITY: number = memoryCapacity


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
  /** How long records are kept past their deadline (default {@link DEFAULT_RETENTION}; 0 hides a record at its deadline). */
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
): Layer.Layer<Persistence, ConfigError.ConfigError, KeyValueStore.KeyValueStore> =>
  Layer.effect(
    Persistence,
    Effect.gen(function*() {
      // A bad retention fails the layer with a ConfigError naming it, as the other stores do.
      const retentionMillis = yield* durationMillis(options.retention ?? DEFAULT_RETENTION, ["retention"], { positive: false })
      const kv = yield* KeyValueStore.KeyValueStore
      return makeKeyValueStore(kv, { prefix: options.prefix ?? "sess:", retentionMillis })
    })
  )
