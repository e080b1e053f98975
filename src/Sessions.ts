/**
 * The Sessions service: the effectful shell around the pure core. It resolves a request's token
 * to a session (following redirects, expiring, detecting anomalies, rotating), writes every
 * change through the local cache to the store under a per-session lock with compare-and-set
 * retries across processes, and manages users (log in, log out, log out everywhere, list) and
 * everybody at once (`logOutEveryone`: one revocation instant in the store, checked in memory).
 *
 * @since 0.1.0
 * @module
 */
import { Config, Effect, Layer, Schedule } from "effect"
import type { ConfigError } from "effect/ConfigError"
import { makeSessions } from "./internal/sessions/make.js"
import { Sessions } from "./internal/sessions/service.js"
import { Persistence } from "./Persistence.js"
import * as Persistence_ from "./Persistence.js"
import type { SecureRandom } from "./SecureRandom.js"
import * as SecureRandom_ from "./SecureRandom.js"
import * as SessionCache from "./SessionCache.js"
import { SessionConfig } from "./SessionConfig.js"
import * as SessionConfig_ from "./SessionConfig.js"

/**
 * The models of the service: a handle on a session in use ({@link ActiveSession}), what a
 * resolution says ({@link Resolution}, {@link Outcome}, {@link CookieAction}), a session as listed
 * to its user ({@link SessionInfo}) and the service's shape ({@link SessionsShape}).
 *
 * @since 0.1.0
 * @category models
 */
export type { ActiveSession, CookieAction, Outcome, Resolution, SessionInfo, SessionsShape } from "./internal/sessions/service.js"

/**
 * The service's Tag ({@link Sessions}) and the optional {@link UserLoader}.
 *
 * @since 0.1.0
 * @category tags
 */
export { Sessions, UserLoader } from "./internal/sessions/service.js"

/**
 * The errors of operations on a session, each naming the method that failed.
 *
 * @since 0.1.0
 * @category errors
 */
export {
  SessionConflictError,
  SessionDataError,
  SessionDataTooLargeError,
  SessionGoneError,
  SessionLimitError,
  UserLoaderError
} from "./internal/sessions/errors.js"

/**
 * The error unions of the service's methods.
 *
 * @since 0.1.0
 * @category errors
 */
export type { SessionError, SessionReadError, SessionWriteError } from "./internal/sessions/errors.js"

const service: Layer.Layer<Sessions, never, Persistence | SessionCache.SessionCache | SessionConfig | SecureRandom> = Layer.scoped(
  Sessions,
  makeSessions
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
