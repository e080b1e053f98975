/**
 * Users: logging a user in and out of a session (both rotate the token with no grace period,
 * against session fixation), the live sessions of a user (listed by a public ID derived from the
 * internal key, never a token), ending one or all of them, and the user object through the
 * optional `UserLoader` (cached by `../userCache.ts`, forgotten everywhere by `refreshUser`).
 *
 * @internal
 */
import { Clock, Effect, Metric, Option } from "effect"
import type { Client, Session } from "../../Session.js"
import * as S from "../../Session.js"
import { publicId } from "../hash.js"
import type { UserCache } from "../userCache.js"
import type { Env } from "./env.js"
import * as Ev from "./events.js"
import { type Handles, spanOptions, traceHandle } from "./handles.js"
import { metrics } from "./metrics.js"
import type { Records } from "./records.js"
import type { Rotations } from "./rotate.js"
import type { ActiveSession, SessionInfo, SessionsShape } from "./service.js"

/** @internal */
export type UserOperations = Pick<
  SessionsShape,
  | "logIn"
  | "reauthenticated"
  | "logOut"
  | "logOutEverywhere"
  | "logOutOthers"
  | "logOutEveryone"
  | "listSessions"
  | "endSession"
  | "user"
  | "refreshUser"
>

const info = (s: Session): SessionInfo => ({
  id: publicId(s.key),
  createdAt: s.createdAt,
  lastAccessAt: s.lastAccessAt,
  idIssuedAt: s.idIssuedAt,
  authenticatedAt: s.authenticatedAt,
  ip: s.ip,
  userAgentHash: s.userAgentHash
})

/** @internal */
export const makeUserOperations = (
  { cache, clock, config, events, revocation, store }: Env,
  records: Records,
  handles: Handles,
  rotations: Rotations,
  users: UserCache
): UserOperations => {
  /** Ends sessions of `userId` that were not asked through their own token (`by`, from `initiator`'s log-in). */
  const endSessions = (sessions: ReadonlyArray<Session>, userId: string, by: Ev.EndedBy, initiator = Option.none<string>()) =>
    Effect.forEach(sessions, (s) =>
      Effect.zipRight(
        records.drop(s),
        Effect.zipRight(Metric.increment(metrics.destroyed), events.emit(Ev.endedElsewhere(s, clock.unsafeCurrentTimeMillis(), userId, by, initiator)))
      ), { discard: true })

  /**
   * The user's sessions that are still alive (stores keep dead ones for a while); the ones
   * logOutEveryone ended are deleted on the way.
   */
  const liveSessionsOf = (userId: string) =>
    Effect.flatMap(Effect.zipRight(revocation.ready, store.sessionsOfUser(userId)), (sessions) =>
      Effect.suspend(() => {
        const now = clock.unsafeCurrentTimeMillis()
        const live = sessions.filter((s) => Option.isNone(S.expiry(s, now, config)))
        const revoked = live.filter(revocation.isRevoked)
        if (revoked.length === 0) return Effect.succeed(live)
        return Effect.as(
          Effect.forEach(revoked, (s) => revocation.end(s, now, records.drop), { discard: true }),
          live.filter((s) => !revocation.isRevoked(s))
        )
      }))

  /** Ends the user's sessions but `except`; `by` names the operation in their events. */
  const logOutEverywhere = (userId: string, except?: string, by: Ev.EndedBy = "logOutEverywhere") =>
    Effect.flatMap(liveSessionsOf(userId), (sessions) => {
      const victims = sessions.filter((s) => s.key !== except)
      return Effect.as(endSessions(victims, userId, by, Option.fromNullable(except)), victims.length)
    })

  /**
   * The bindings of the user's live sessions before a log-in, for `LoggedIn.newDevice`: read only
   * while somebody subscribes; a failed read knows no device (every client is new).
   */
  const knownDevices = (userId: string) =>
    events.active()
      ? liveSessionsOf(userId).pipe(
        Effect.catchAll((e) => Effect.as(Effect.logWarning("could not read the user's sessions for a log-in event", e), [])),
        Effect.map((sessions): ReadonlyArray<Session> => sessions)
      )
      : Effect.succeed<ReadonlyArray<Session>>([])

  return {
    logIn: Effect.fn("Sessions.logIn", spanOptions)(function*(
      handle: ActiveSession,
      userId: string,
      options?: { readonly exclusive?: boolean; readonly client?: Client; readonly persistent?: boolean }
    ) {
      // Before an exclusive log-in ends them: the user's other sessions tell which devices are known.
      const known = yield* knownDevices(userId)
      // A dead handle ends nobody's sessions: check it before the exclusive log-out.
      if (options?.exclusive) {
        yield* handles.currentAs("logIn")(handle)
        yield* logOutEverywhere(userId, handle.session.key, "exclusiveLogIn")
      }
      // Sessions logOutEveryone ended still sit in the store until met: meet them before the
      // store counts the user's sessions against the limit.
      if (config.maxSessionsPerUser !== false && !events.active()) {
        yield* revocation.ready
        if (revocation.until() > Number.NEGATIVE_INFINITY) yield* liveSessionsOf(userId)
      }
      const client = options?.client
      const options_ = {
        grace: false,
        change: (s: Session, now: number) => {
          const withUser = S.logIn(s, userId, { now, persistent: options?.persistent })
          return client ? S.bind(withUser, client) : withUser
        },
        onStored: (_: Session, next: Session, now: number) =>
          events.emit(Ev.loggedIn(next, now, userId, !known.some((k) => Ev.sameDevice(k, next)), options?.exclusive === true))
      }
      // Under maxSessionsPerUser the store counts, ends or refuses in the rotation's own step.
      return yield* config.maxSessionsPerUser === false
        ? rotations.rotateHandle("logIn", handle, options_)
        : rotations.rotateHandleWithinLimit("logIn", handle, {
          ...options_,
          limit: { max: config.maxSessionsPerUser, policy: config.onSessionLimit }
        })
    }, traceHandle),
    // A step-up: the old token dies now, so a copy of it never shares the fresh authentication.
    reauthenticated: Effect.fn("Sessions.reauthenticated", spanOptions)(
      (handle: ActiveSession) => rotations.rotateHandle("reauthenticated", handle, {
          grace: false,
          change: (s, now) => S.reauthenticated(s, now),
          onStored: (_, next, now) => events.emit(Ev.rotated(next, now, "reauthenticated", false))
        }),
      traceHandle
    ),
    logOut: Effect.fn("Sessions.logOut", spanOptions)(
      (handle: ActiveSession, options?: { readonly keepData?: boolean }) =>
        rotations.rotateHandle("logOut", handle, {
          grace: false,
          change: options?.keepData === false ? (s) => new S.Session({ ...S.logOut(s), data: {} }) : S.logOut,
          onStored: (before, _, now) => events.emit(Ev.loggedOut(before, now))
        }),
      traceHandle
    ),
    logOutEverywhere: Effect.fn("Sessions.logOutEverywhere", spanOptions)((userId: string) => logOutEverywhere(userId)),
    logOutOthers: Effect.fn("Sessions.logOutOthers", spanOptions)(function*(handle: ActiveSession) {
      // A dead handle (or one without a user) ends nobody's sessions.
      const s = yield* handles.currentAs("logOutOthers")(handle)
      if (Option.isNone(s.userId)) return 0
      return yield* logOutEverywhere(s.userId.value, s.key, "logOutOthers")
    }, traceHandle),
    logOutEveryone: Effect.fn("Sessions.logOutEveryone", spanOptions)(function*() {
      // Never lower than an instant this process knows (another node's clock may run ahead).
      const until = Math.max(yield* Clock.currentTimeMillis, revocation.until())
      yield* store.revokeUntil(until)
      revocation.raise(until)
      // Every cached session is checked against the instant anyway: this only frees the memory.
      yield* cache.clear
      return until
    }),
    listSessions: (userId) => Effect.map(liveSessionsOf(userId), (sessions) => sessions.map(info)),
    endSession: (userId, id) =>
      Effect.flatMap(liveSessionsOf(userId), (sessions) => {
        const victim = sessions.find((s) => publicId(s.key) === id)
        return victim ? Effect.as(endSessions([victim], userId, "endSession"), true) : Effect.succeed(false)
      }),
    user: (handle) =>
      Effect.gen(function*() {
        const s = yield* handles.currentAs("current")(handle)
        if (Option.isNone(s.userId)) return Option.none()
        return yield* users.get(s.userId.value)
      }),
    refreshUser: (userId) => users.refresh(userId)
  }
}
