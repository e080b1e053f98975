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
import * as sessions from "./internal/testing/sessionsSuite.js"
import * as stores from "./internal/testing/stores.js"

/**
 * Options of {@link persistenceConformance}: hooks into the backend that the store API cannot
 * reach. Each test left out by a missing hook is skipped or reduced, never failed.
 *
 * - `corrupt(tokenKey, garbage)`: writes `garbage` over the record under a token key, directly in
 *   the backend (the session's record for a current token, the redirect for a rotated-away one),
 *   to check that a corrupt record is a typed `Corrupt` error and never fails `sessionsOfUser`;
 * - `residue(residue)`: how many raw records of a session are still stored, expired or not, to
 *   check that delete, sweep and TTLs really remove them;
 * - `peer`: a second, independent instance on the same backend (another process), for the
 *   invalidation tests of stores that several processes share;
 * - `ttl`: the store expires records by TTLs on the backend's own clock (the expiry tests then wait
 *   in real time instead of moving a `TestClock`, and `sweep` must return 0);
 * - `numRuns`: runs of each property (default 25).
 *
 * @since 0.1.0
 * @category models
 */
export type PersistenceConformanceOptions<R = never> = persistence.SuiteOptions<R>

/**
 * What a test left behind of one session, given to the `residue` hook of
 * {@link PersistenceConformanceOptions}: its key, its token keys and its user.
 *
 * @since 0.1.0
 * @category models
 */
export type Residue = persistence.Residue

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
  options?: PersistenceConformanceOptions<R>
) => void = persistence.persistenceSuite

/**
 * Options of {@link sessionsConformance}:
 *
 * - `peer`: a second, independent instance on the same backend (another process, with its own
 *   connections). Without one, the second process is a second service over the same store
 *   instance;
 * - `numRuns`: runs of each property (default 25); `timingRuns`: of the timing properties
 *   (default twice `numRuns`); `transparencyRuns`: of the cache-transparency property (default
 *   `numRuns`).
 *
 * @since 0.1.0
 * @category models
 */
export type SessionsConformanceOptions = sessions.SessionsSuiteOptions

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
  options?: SessionsConformanceOptions
) => void = sessions.sessionsSuite

/**
 * The methods of a store that a wrapper sees (`invalidations`, a stream, passes through as it is).
 *
 * @since 0.1.0
 * @category models
 */
export type StoreMethod = stores.StoreMethod

/**
 * What runs around every call of a store (see {@link intercept}): it gets the method's name and
 * the call, and returns what to run instead — the call itself, with something before or after it,
 * or a failure.
 *
 * @since 0.1.0
 * @category models
 */
export type Interceptor = stores.Interceptor

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
 * A store wrapped by {@link counted}, and its counts.
 *
 * @since 0.1.0
 * @category models
 */
export type Counted = stores.Counted

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
 * A store wrapped by {@link switchable}: the store, its layer, and the switch.
 *
 * @since 0.1.0
 * @category models
 */
export type Switchable = stores.Switchable

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
 * Options of {@link scheduled}: `name` prefixes the labels of the scheduled steps (default
 * `"store"`); `enabled` says, at every call, whether the call waits for the scheduler (default
 * always).
 *
 * @since 0.1.0
 * @category models
 */
export type ScheduledOptions = stores.ScheduledOptions

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

