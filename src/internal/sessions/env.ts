/**
 * What every part of the Sessions service works with, gathered once when the service is built
 * (`make.ts`): the store, the local cache, the validated configuration, the clock in context at
 * that moment (a `TestClock` in tests), token minting, and the per-session lock — one fiber at a
 * time per session key, first come first served, in this process (other processes are held off
 * by the store's compare-and-set), the session events' subscribers, and the revocation instant
 * of "log everybody out" (`revocation.ts`).
 *
 * @internal
 */
import type { Clock, Effect } from "effect"
import type { PersistenceShape } from "../persistence.js"
import type { SessionCacheShape } from "../../SessionCache.js"
import type { SessionConfigShape } from "../../SessionConfig.js"
import type { EventHub } from "./events.js"
import type { Revocation } from "./revocation.js"
import type { Tokens } from "./tokens.js"

/** @internal */
export interface Env {
  readonly store: PersistenceShape
  readonly cache: SessionCacheShape
  readonly config: SessionConfigShape
  readonly clock: Clock.Clock
  readonly tokens: Tokens
  readonly withLock: (sessionKey: string, onAbandon?: () => void) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly events: EventHub
  /** The revocation instant of "log everybody out", as this process knows it. */
  readonly revocation: Revocation
}
