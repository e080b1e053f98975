/**
 * The store contract: what any backend (memory, SQL, Redis, your own) must do, its typed error,
 * and the in-memory implementation that is the default.
 *
 * Rules every store follows (checked by the shared conformance suite, `spec/conformance/`):
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
 * - Errors carry no secrets: no command arguments, records, user data or tokens (a corrupt
 *   record is named by a fingerprint of its key), only the method, the reason and the driver's
 *   error class and message.
 *
 * @since 0.1.0
 * @module
 */
import type { Duration } from "effect"
import { Effect, Layer } from "effect"
import { DEFAULT_MEMORY_CAPACITY as memoryCapacity, DEFAULT_RETENTION as retention, makeMemoryStore } from "./internal/memoryStore.js"
import type { MemoryOptions } from "./internal/memoryStore.js"
import type { PersistenceShape } from "./internal/persistence.js"
import { Persistence } from "./internal/persistence.js"

/**
 * How long the built-in stores keep a record past its deadline: 10 minutes.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_RETENTION: Duration.Duration = retention

export {
  INVALIDATE_ALL,
  Invalidation,
  isSessionStoreError,
  Persistence,
  SessionStoreError,
  SessionStoreErrorTypeId,
  userKey
} from "./internal/persistence.js"
export type { PersistenceShape, Rotation } from "./internal/persistence.js"
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
 * Wraps a store so that every call is counted (for tests and diagnostics: "a cache hit does not
 * touch the store").
 *
 * @since 0.1.0
 * @category combinators
 */
export const counted = (store: PersistenceShape): { readonly store: PersistenceShape; readonly calls: () => Record<string, number> } => {
  const counts: Record<string, number> = {}
  const tick = (name: string) => {
    counts[name] = (counts[name] ?? 0) + 1
  }
  const wrap = <Args extends ReadonlyArray<unknown>, A, E>(name: string, f: (...args: Args) => Effect.Effect<A, E>) =>
  (...args: Args) => Effect.suspend(() => {
    tick(name)
    return f(...args)
  })
  return {
    calls: () => ({ ...counts }),
    store: {
      load: wrap("load", store.load),
      loadSession: wrap("loadSession", store.loadSession),
      create: wrap("create", store.create),
      save: wrap("save", store.save),
      rotate: wrap("rotate", store.rotate),
      delete: wrap("delete", store.delete),
      deleteToken: wrap("deleteToken", store.deleteToken),
      sessionsOfUser: wrap("sessionsOfUser", store.sessionsOfUser),
      publishUserInvalidation: wrap("publishUserInvalidation", store.publishUserInvalidation),
      sweep: Effect.suspend(() => {
        tick("sweep")
        return store.sweep
      }),
      invalidations: store.invalidations
    }
  }
}
