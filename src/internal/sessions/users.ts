/**
 * Users: logging a user in and out of a session (both rotate the token with no grace period,
 * against session fixation), the live sessions of a user (listed by a public ID derived from the
 * internal key, never a token), ending one or all of them, and the user object through the
 * optional `UserLoader` (cached by `../userCache.ts`, forgotten everywhere by `refreshUser`).
 *
 * @internal
 */
import { Effect, Metric, Option } from "effect"
import type { Client, Session } from "../../Session.js"
import * as S from "../../Session.js"
import { publicId } from "../hash.js"
import type { UserCache } from "../userCache.js"
import type { Env } from "./env.js"
import { type Handles, spanOptions, traceHandle } from "./handles.js"
import { metrics } from "./metrics.js"
import type { Records } from "./records.js"
import type { Rotations } from "./rotate.js"
import type { ActiveSession, SessionInfo, SessionsShape } from "./service.js"

/** @internal */
export type UserOperations = Pick<
  SessionsShape,
  "logIn" | "logOut" | "logOutEverywhere" | "logOutOthers" | "listSessions" | "endSession" | "user" | "refreshUser"
>

const info = (s: Session): SessionInfo => ({
  id: publicId(s.key),
  createdAt: s.createdAt,
  lastAccessAt: s.lastAccessAt,
  idIssuedAt: s.idIssuedAt,
  ip: s.ip,
  userAgentHash: s.userAgentHash
})

/** @internal */
export const makeUserOperations = (
  { clock, config, store }: Env,
  records: Records,
  handles: Handles,
  rotations: Rotations,
  users: UserCache
): UserOperations => {
  const endSessions = (sessions: ReadonlyArray<Session>) =>
    Effect.forEach(sessions, (s) => Effect.zipRight(records.drop(s), Metric.increment(metrics.destroyed)), { discard: true })

  /** The user's sessions that are still alive (stores keep dead ones for a while). */
  const liveSessionsOf = (userId: string) =>
    Effect.flatMap(store.sessionsOfUser(userId), (sessions) =>
      Effect.suspend(() => {
        const now = clock.unsafeCurrentTimeMillis()
        return Effect.succeed(sessions.filter((s) => Option.isNone(S.expiry(s, now, config))))
      }))

  const logOutEverywhere = (userId: string, except?: string) =>
    Effect.flatMap(liveSessionsOf(userId), (sessions) => {
      const victims = sessions.filter((s) => s.key !== except)
      return Effect.as(endSessions(victims), victims.length)
    })

  return {
    logIn: Effect.fn("Sessions.logIn", spanOptions)(function*(
      handle: ActiveSession,
      userId: string,
      options?: { readonly exclusive?: boolean; readonly client?: Client }
    ) {
      // A dead handle ends nobody's sessions: check it before the exclusive log-out.
      if (options?.exclusive) {
        yield* handles.currentAs("logIn")(handle)
        yield* logOutEverywhere(userId, handle.session.key)
      }
      const client = options?.client
      const change = (s: Session) => {
        const withUser = S.logIn(s, userId)
        return client ? S.bind(withUser, client) : withUser
      }
      // Under maxSessionsPerUser the store counts, ends or refuses in the rotation's own step.
      return yield* config.maxSessionsPerUser === false
        ? rotations.rotateHandle("logIn", handle, { grace: false, change })
        : rotations.rotateHandleWithinLimit("logIn", handle, {
          grace: false,
          change,
          limit: { max: config.maxSessionsPerUser, policy: config.onSessionLimit }
        })
    }, traceHandle),
    logOut: Effect.fn("Sessions.logOut", spanOptions)(
      (handle: ActiveSession, options?: { readonly keepData?: boolean }) =>
        rotations.rotateHandle("logOut", handle, {
          grace: false,
          change: options?.keepData === false ? (s) => new S.Session({ ...S.logOut(s), data: {} }) : S.logOut
        }),
      traceHandle
    ),
    logOutEverywhere: Effect.fn("Sessions.logOutEverywhere", spanOptions)((userId: string) => logOutEverywhere(userId)),
    logOutOthers: Effect.fn("Sessions.logOutOthers", spanOptions)(function*(handle: ActiveSession) {
      // A dead handle (or one without a user) ends nobody's sessions.
      const s = yield* handles.currentAs("logOutOthers")(handle)
      if (Option.isNone(s.userId)) return 0
      return yield* logOutEverywhere(s.userId.value, s.key)
    }, traceHandle),
    listSessions: (userId) => Effect.map(liveSessionsOf(userId), (sessions) => sessions.map(info)),
    endSession: (userId, id) =>
      Effect.flatMap(liveSessionsOf(userId), (sessions) => {
        const victim = sessions.find((s) => publicId(s.key) === id)
        return victim ? Effect.as(endSessions([victim]), true) : Effect.succeed(false)
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
