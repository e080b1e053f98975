/**
 * effect-sessions: server-side, cookie-based web sessions for Effect.
 *
 * @since 0.1.0
 */
/** @since 0.1.0 */
export * as Codec from "./Codec.js"
/** @since 0.1.0 */
export * as Http from "./Http.js"
/** @since 0.1.0 */
export * as Ids from "./Ids.js"
/** @since 0.1.0 */
export * as Password from "./Password.js"
/** @since 0.1.0 */
export * as Persistence from "./Persistence.js"
/** @since 0.1.0 */
export * as PwnedPasswords from "./PwnedPasswords.js"
/** @since 0.1.0 */
export * as SecureRandom from "./SecureRandom.js"
/** @since 0.1.0 */
export * as Session from "./Session.js"
/** @since 0.1.0 */
export * as SessionCache from "./SessionCache.js"
/** @since 0.1.0 */
export * as SessionConfig from "./SessionConfig.js"
/** @since 0.1.0 */
export * as SessionEvents from "./SessionEvents.js"
/** @since 0.1.0 */
export * as Sessions from "./Sessions.js"
