/**
 * Tools for testing a store, and code that uses one: the conformance suites that every built-in
 * store passes (run them against your own store from your own vitest file), and wrappers that
 * count a store's calls, switch it off, or let fast-check interleave them.
 *
 * This entry, and only this one, loads `@effect/vitest` (hence `vitest`) and fast-check (through
 * `effect`'s `FastCheck`): install them as dev dependencies to use it.
 *
 * @example
 * ```ts
 * // my-store.test.ts
 * import { Layer } from "effect"
 * import { Persistence } from "effect-sessions"
 * import { persistenceConformance, sessionsConformance } from "effect-sessions/testing"
 *
 * const layer = Layer.effect(Persistence.Persistence, Persistence.makeMemory)
 * persistenceConformance("my store", layer)
 * sessionsConformance("my store", layer)
 * ```
 *
 * @since 0.1.0
 * @module
 */
import type { FastCheck, Layer } from "effect"
import type { Persistence, PersistenceShape } from "./Persistence.js"
import * as persistence from "./internal/testing/persistenceSuite.js"
import type { SuiteOptions } from "./internal/testing/persistenceSuite.js"
import * as sessions from "./internal/testing/sessionsSuite.js"
import type { SessionsSuiteOptions } from "./internal/testing/sessionsSuite.js"
import * as stores from "./internal/testing/stores.js"
import type { Counted, Interceptor, ScheduledOptions, Switchable } from "./internal/testing/stores.js"

/**
 * Options of {@link persistenceConformance} (the `SuiteOptions` of the suite): hooks into the
 * backend that the store API cannot reach.
 *
 * @since 0.1.0
 * @category models
 */
export type { Residue, SuiteOptions as PersistenceConformanceOptions } from "./internal/testing/persistenceSuite.js"
/**
 * Registers the Persistence conformance suite (a vitest `describe` block titled
 * `Persistence conformance: <name>`) for a store: everything the contract of
 * `effect-sessions/Persistence` promises — missing is none, compare-and-set on the version (of 50
 * concurrent writers exactly one wins), atomic rotation, expiry at the deadline and `sweep`,
 * corrupt records, invalidations between processes. Call it at the top level of a vitest file.
 *
 * `storeLayer` provides the store (and whatever the hooks need, `R`); it is built once for the
 * suite and closed after it. Every test makes its own random keys, so the tests share the store
 * without seeing each other's records. The store must read time from `Clock` (unless `ttl`): the
 * expiry tests move a `TestClock`.
 *
 * @since 0.1.0
 * @category conformance
 * @example
 * ```ts
 * import { KeyValueStore } from "@effect/platform"
 * import { Layer } from "effect"
 * import { Persistence } from "effect-sessions"
 * import { persistenceConformance } from "effect-sessions/testing"
 *
 * persistenceConformance(
 *   "KeyValueStore",
 *   Persistence.layerKeyValueStore({ retention: 0 }).pipe(Layer.provide(KeyValueStore.layerMemory))
 * )
 * ```
 */
export const persistenceConformance: <R = never>(
  name: string,
  storeLayer: Layer.Layer<Persistence | R, unknown, never>,
  options?: SuiteOptions<R>
) => void = persistence.persistenceSuite

/**
 * Options of {@link sessionsConformance}.
 *
 * @since 0.1.0
 * @category models
 */
export type { SessionsSuiteOptions as SessionsConformanceOptions } from "./internal/testing/sessionsSuite.js"
/**
 * Registers the service-level conformance suite (a vitest `describe` block titled
 * `Sessions over <name>`): the `Sessions` service over this store keeps every invariant — idle,
 * absolute and rotation timings, grace periods, a handle as good as its token, the cache
 * invisible, concurrent requests linearizable — and gives exactly the trace of the service over
 * the memory store. Call it at the top level of a vitest file.
 *
 * The store is built once; every property run builds its own service over it, on a clock that
 * moves only when told (the store must read time from `Clock`, or, with TTLs on the backend's own
 * clock, never expire a record in less than a few seconds of real time).
 *
 * @since 0.1.0
 * @category conformance
 */
export const sessionsConformance: (
  name: string,
  persistenceLayer: Layer.Layer<Persistence, unknown, never>,
  options?: SessionsSuiteOptions
) => void = sessions.sessionsSuite

/**
 * The models of the store wrappers.
 *
 * @since 0.1.0
 * @category models
 */
export type { Counted, Interceptor, ScheduledOptions, StoreMethod, Switchable } from "./internal/testing/stores.js"
/**
 * Wraps a store so that every call goes through `around`: the building block of
 * {@link counted}, {@link switchable} and {@link scheduled}.
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Persistence } from "effect-sessions"
 * import { intercept } from "effect-sessions/testing"
 *
 * // Every load takes 5 ms longer.
 * const slow = Effect.map(Persistence.makeMemory, (store) =>
 *   intercept(store, (method, call) => method === "load" ? Effect.zipRight(Effect.sleep("5 millis"), call) : call))
 * ```
 */
export const intercept: (store: PersistenceShape, around: Interceptor) => PersistenceShape = stores.intercept

/**
 * Wraps a store so that every call is counted: for tests such as "a cache hit does not touch
 * the store". `calls()` gives the counts by method name (a method never called is absent).
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Persistence } from "effect-sessions"
 * import { counted } from "effect-sessions/testing"
 *
 * const program = Effect.gen(function*() {
 *   const { calls, store } = counted(yield* Persistence.makeMemory)
 *   const layer = Layer.succeed(Persistence.Persistence, store)
 *   // … run the code under test over `layer`, then:
 *   return calls().load ?? 0
 * })
 * ```
 */
export const counted: (store: PersistenceShape) => Counted = stores.counted

/**
 * Wraps a store so that it can be switched off: while it is down (`setDown(true)`), every call
 * fails with `SessionStoreError({ method, reason: "Unavailable" })`, as a store that lost its
 * connection does. For testing what an app does during an outage.
 *
 * @since 0.1.0
 * @category combinators
 */
export const switchable: (store: PersistenceShape) => Switchable = stores.switchable

/**
 * Wraps a store so that every call waits for a fast-check scheduler (`fc.scheduler()`) before it
 * reaches the store and again before its answer goes back: a property then runs concurrent
 * operations through random interleavings of their store calls, and can check that every
 * outcome is one some sequential order explains.
 *
 * @since 0.1.0
 * @category combinators
 */
export const scheduled: (
  store: PersistenceShape,
  scheduler: Pick<FastCheck.Scheduler, "schedule">,
  options?: ScheduledOptions
) => PersistenceShape = stores.scheduled

