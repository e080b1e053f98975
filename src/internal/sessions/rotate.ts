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
import { Clock, Data, Duration, Effect, Metric, Option, Redacted } from "effect"
import { logHash } from "../hash.js"
import type { SessionLimit, SessionStoreError } from "../persistence.js"
import type { Session } from "../../Session.js"
import * as S from "../../Session.js"
import type { Env } from "./env.js"
import { SessionLimitError, type SessionWriteError } from "./errors.js"
import { destroyed } from "./events.js"
import type { Handles } from "./handles.js"
import { metrics } from "./metrics.js"
import type { Records } from "./records.js"
import { conflictError, immediately, LostRace, lostCompareAndSet, retryLostRaces } from "./retry.js"
import type { ActiveSession } from "./service.js"

/**
 * The store refused a limited rotation (the user is at `maxSessionsPerUser`): ends the attempt
 * and its retries; `rotateHandle` turns it into a `SessionLimitError`.
 *
 * @internal
 */
export class Refused extends Data.TaggedError("effect-sessions/Refused")<{}> {}

/**
 * Every compare-and-set of one rotation lost (another writer kept winning while the token stayed
 * current): ends the rotation. A rotation through a handle answers it with a conflict at once —
 * its own retries are for following a token someone else rotated, and repeating 32 rounds of
 * 32 attempts made the conflict take half a minute; a resolution serves the session unrotated.
 */
class Exhausted extends Data.TaggedError("effect-sessions/Exhausted")<{}> {}
const isExhausted = (u: unknown): u is Exhausted => u instanceof Exhausted

/** @internal */
export interface RotateOptions {
  /** Whether the old token follows for the grace period. */
  readonly grace: boolean
  /** A change applied with the rotation (log in, log out), given the rotation's time. */
  readonly change?: (s: Session, now: number) => Session
  /** Runs once the rotation is stored (it publishes the rotation's event): the session before and after. */
  readonly onStored: (before: Session, after: Session, now: number) => Effect.Effect<void>
  /**
   * A limit on the live sessions of the rotated session's user (a log-in under
   * `maxSessionsPerUser`): checked and enforced by the store in the rotation's own atomic step.
   */
  readonly limit?: SessionLimit | undefined
}

/** @internal */
export interface Rotations {
  /**
   * Rotates the session `sessionKey` if `token` is still its current token (the caller holds the
   * lock); none when another writer rotated first (the caller follows the redirect);
   * `"lost"` when every compare-and-set lost while the token stayed current (the session is
   * left as it is).
   */
  readonly rotateLocked: (
    sessionKey: string,
    token: string,
    options: Omit<RotateOptions, "limit">
  ) => Effect.Effect<Option.Option<ActiveSession> | "lost", SessionStoreError>
  /** Rotates the session the handle reaches, under its lock. */
  readonly rotateHandle: (method: string, handle: ActiveSession, options: Omit<RotateOptions, "limit">) => Effect.Effect<ActiveSession, SessionWriteError>
  /** {@link rotateHandle} for a log-in under a limit (`options.limit`): a refusal is a `SessionLimitError`. */
  readonly rotateHandleWithinLimit: (
    method: string,
    handle: ActiveSession,
    options: RotateOptions & { readonly limit: SessionLimit }
  ) => Effect.Effect<ActiveSession, SessionWriteError | SessionLimitError>
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
  const commit = (
    current: Session,
    session: Session,
    token: string,
    successor: string,
    now: number,
    grace: boolean,
    limit?: SessionLimit
  ) => {
    const rotation = S.rotate(session, {
      tokenKey: tokens.keyOf(successor),
      sealedSuccessor: tokens.sealSuccessor(successor, token),
      now,
      config: grace ? config : noGrace
    })
    const next = S.withVersion(rotation.session, current.version + 1)
    const record = { session: next, expectedVersion: current.version, redirect: rotation.redirect, expiresAt: S.expiresAt(next, config) }
    const won = Option.some({ next, redirect: rotation.redirect })
    if (limit === undefined || Option.isNone(next.userId)) return Effect.map(store.rotate(record), (ok) => ok ? won : Option.none())
    return Effect.flatMap(store.rotateWithinLimit(record, limit), (answer) => {
      switch (answer._tag) {
        case "Lost":
          return Effect.succeed(Option.none())
        case "Refused":
          return Effect.fail(new Refused())
        case "Rotated":
          // The store ended these sessions; other processes hear of it from the store, this one
          // forgets them here.
          return Effect.as(
            Effect.forEach(answer.ended, (tk) => Effect.zipRight(cache.invalidate(tk), Metric.increment(metrics.destroyed)), { discard: true }),
            won
          )
      }
    })
  }

  // Only a limited rotation can be refused.
  const unrefused = <A, E>(effect: Effect.Effect<A, E | Refused>): Effect.Effect<A, Exclude<E, Refused>> =>
    Effect.catchIf(effect, (e): e is Refused => e instanceof Refused, () => Effect.dieMessage("a rotation without a limit was refused")) as any

  const attemptRotation = (
    sessionKey: string,
    token: string,
    options: RotateOptions
  ): Effect.Effect<Option.Option<ActiveSession>, SessionStoreError | Refused | Exhausted> => {
    const tk = tokens.keyOf(token)
    const attempt = Effect.gen(function*() {
      // Gone, or someone else rotated first (the token is no longer current: `latest` answers
      // only while it is): the caller follows the redirect instead. After a lost race this reads
      // the store again.
      const current = yield* records.latest(sessionKey, tk)
      if (Option.isNone(current)) return Option.none<ActiveSession>()
      const now = yield* Clock.currentTimeMillis
      const successor = yield* tokens.newToken(sessionKey)
      const changed = options.change ? options.change(current.value, now) : current.value
      const won = yield* commit(current.value, changed, token, successor, now, options.grace, options.limit)
      if (Option.isNone(won)) return yield* lostCompareAndSet(cache.invalidate(tk))
      const { next, redirect } = won.value
      yield* cache.set(redirect.tokenKey, redirect)
      yield* records.remember(next)
      yield* Metric.increment(metrics.rotated)
      yield* options.onStored(current.value, next, now)
      return Option.some(handles.active(next, successor, next.tokenKey))
    })
    return retryLostRaces(attempt, () => Effect.fail(new Exhausted()))
  }

  const rotateLocked: Rotations["rotateLocked"] = (sessionKey, token, options) =>
    unrefused(Effect.catchIf(attemptRotation(sessionKey, token, options), isExhausted, () => Effect.succeed("lost" as const)))

  const rotateHandleWith = (
    method: string,
    handle: ActiveSession,
    options: RotateOptions
  ): Effect.Effect<ActiveSession, SessionWriteError | Refused> => {
    // The rotation itself is a compare-and-set on the current token and the version: a token
    // retired after this check loses it, and the next attempt finds the handle dead; a token
    // rotated by another writer is followed to its successor.
    const attempt = Effect.flatMap(
      handles.withReached(method, handle, (token) => attemptRotation(handle.session.key, token, options)),
      Option.match({ onNone: () => Effect.fail(new LostRace()), onSome: Effect.succeed })
    )
    const conflict = () => Effect.fail(conflictError(method, handle))
    return withLock(handle.session.key)(Effect.catchIf(retryLostRaces(attempt, conflict, immediately), isExhausted, conflict))
  }

  const rotateHandle: Rotations["rotateHandle"] = (method, handle, options) => unrefused(rotateHandleWith(method, handle, options))

  const rotateHandleWithinLimit: Rotations["rotateHandleWithinLimit"] = (method, handle, options) =>
    Effect.catchIf(
      rotateHandleWith(method, handle, options),
      (e): e is Refused => e instanceof Refused,
      () => Effect.fail(new SessionLimitError({ method, session: logHash(Redacted.value(handle.token)), max: options.limit.max }))
    )

  const destroyHandle: Rotations["destroyHandle"] = (handle) => {
    const attempt = handles.withReached("destroy", handle, (token, session) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const won = yield* unrefused(commit(session, session, token, yield* tokens.newToken(session.key), now, false))
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

  return { rotateLocked, rotateHandle, rotateHandleWithinLimit, destroyHandle }
}
