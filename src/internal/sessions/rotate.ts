/**
 * Rotations: replacing a session's token. Every rotation is one compare-and-set in the store
 * (`store.rotate`, called in one place: `commit` below) that succeeds only while the old token is
 * still current and the version unchanged, so concurrent rotations elect one winner and the losers
 * follow its redirect. Here are the periodic rotation of a resolution, `regenerateId`, the
 * privilege changes (`logIn`, `logOut`: no grace period, the old token dies now) and `destroy`,
 * which first rotates the session to a token nobody holds, so that a dead handle never deletes the
 * session someone else just logged in to.
 *
 * @internal
 */
import { Clock, Duration, Effect, Metric, Option } from "effect"
import type { SessionStoreError } from "../persistence.js"
import type { Session } from "../../Session.js"
import * as S from "../../Session.js"
import type { Env } from "./env.js"
import type { SessionWriteError } from "./errors.js"
import { destroyed } from "./events.js"
import type { Handles } from "./handles.js"
import { metrics } from "./metrics.js"
import type { Records } from "./records.js"
import { conflictError, immediately, LostRace, lostCompareAndSet, retryLostRaces } from "./retry.js"
import type { ActiveSession } from "./service.js"

/** @internal */
export interface RotateOptions {
  /** Whether the old token follows for the grace period. */
  readonly grace: boolean
  /** A change applied with the rotation (log in, log out), given the rotation's time. */
  readonly change?: (s: Session, now: number) => Session
  /** Runs once the rotation is stored (it publishes the rotation's event): the session before and after. */
  readonly onStored?: (before: Session, after: Session, now: number) => Effect.Effect<void>
}

/** @internal */
export interface Rotations {
  /**
   * Rotates the session `sessionKey` if `token` is still its current token (the caller holds the
   * lock); none when another writer rotated first (the caller follows the redirect) or kept
   * winning.
   */
  readonly rotateLocked: (sessionKey: string, token: string, options: RotateOptions) => Effect.Effect<Option.Option<ActiveSession>, SessionStoreError>
  /** Rotates the session the handle reaches, under its lock. */
  readonly rotateHandle: (method: string, handle: ActiveSession, options: RotateOptions) => Effect.Effect<ActiveSession, SessionWriteError>
  /** Ends the session the handle reaches, and only that one. */
  readonly destroyHandle: (handle: ActiveSession) => Effect.Effect<void, SessionWriteError>
}

/** @internal */
export const makeRotations = (env: Env, records: Records, handles: Handles): Rotations => {
  const { cache, config, events, store, tokens, withLock } = env
  // Privilege changes (log in, log out) rotate without a grace period: the old token must die now.
  const noGrace = { ...config, gracePeriod: Duration.zero }

  /**
   * The one compare-and-set of a rotation: `session` (changed or not) moves from `token` to
   * `successor` at the next version; the old token becomes a redirect. Some new value if it won.
   */
  const commit = (current: Session, session: Session, token: string, successor: string, now: number, grace: boolean) => {
    const rotation = S.rotate(session, {
      tokenKey: tokens.keyOf(successor),
      sealedSuccessor: tokens.sealSuccessor(successor, token),
      now,
      config: grace ? config : noGrace
    })
    const next = S.withVersion(rotation.session, current.version + 1)
    return Effect.map(
      store.rotate({ session: next, expectedVersion: current.version, redirect: rotation.redirect, expiresAt: S.expiresAt(next, config) }),
      (won) => won ? Option.some({ next, redirect: rotation.redirect }) : Option.none()
    )
  }

  const rotateLocked: Rotations["rotateLocked"] = (sessionKey, token, options) => {
    const tk = tokens.keyOf(token)
    const attempt = Effect.gen(function*() {
      // Gone, or someone else rotated first (the token is no longer current): the caller follows
      // the redirect instead. After a lost race this reads the store again.
      const current = yield* records.latest(sessionKey, tk)
      if (Option.isNone(current) || current.value.tokenKey !== tk) return Option.none<ActiveSession>()
      const now = yield* Clock.currentTimeMillis
      const successor = yield* tokens.newToken
      const changed = options.change ? options.change(current.value, now) : current.value
      const won = yield* commit(current.value, changed, token, successor, now, options.grace)
      if (Option.isNone(won)) return yield* lostCompareAndSet(cache.invalidate(tk))
      const { next, redirect } = won.value
      yield* cache.set(redirect.tokenKey, redirect)
      yield* records.remember(next)
      yield* Metric.increment(metrics.rotated)
      if (options.onStored) yield* options.onStored(current.value, next, now)
      return Option.some(handles.active(next, successor, next.tokenKey))
    })
    return retryLostRaces(attempt, () => Effect.succeedNone)
  }

  const rotateHandle: Rotations["rotateHandle"] = (method, handle, options) => {
    // The rotation itself is a compare-and-set on the current token and the version: a token
    // retired after this check loses it, and the next attempt finds the handle dead; a token
    // rotated by another writer is followed to its successor.
    const attempt = Effect.flatMap(
      handles.withReached(method, handle, (token) => rotateLocked(handle.session.key, token, options)),
      Option.match({ onNone: () => Effect.fail(new LostRace()), onSome: Effect.succeed })
    )
    return withLock(handle.session.key)(retryLostRaces(attempt, () => Effect.fail(conflictError(method, handle)), immediately))
  }

  const destroyHandle: Rotations["destroyHandle"] = (handle) => {
    const attempt = handles.withReached("destroy", handle, (token, session) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const won = yield* commit(session, session, token, yield* tokens.newToken, now, false)
        yield* cache.invalidate(session.tokenKey)
        if (Option.isNone(won)) return yield* lostCompareAndSet(Effect.void)
        yield* store.delete(session.key)
        // The zero-grace redirect goes too: a later use of the token is "missing", not a late use.
        yield* store.deleteToken(session.tokenKey)
        yield* Metric.increment(metrics.destroyed)
        yield* events.emit(destroyed(session, now))
      }))
    return withLock(handle.session.key)(retryLostRaces(attempt, () => Effect.fail(conflictError("destroy", handle))))
  }

  return { rotateLocked, rotateHandle, destroyHandle }
}
