/**
 * The session middleware and the per-request CurrentSession.
 *
 * @internal
 */
import { HttpApiError, HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option, Redacted, Ref } from "effect"
import type { CurrentSessionShape, MiddlewareOptions } from "../Http.js"
import { CurrentSession, CurrentUser } from "../Http.js"
import type { PersistenceError } from "../Persistence.js"
import type { Client } from "../Session.js"
import type { ActiveSession, CookieAction, SessionError } from "../Sessions.js"
import { Sessions } from "../Sessions.js"
import type { SessionConfigShape } from "../SessionConfig.js"
import { SessionConfig, trustedProxyRanges } from "../SessionConfig.js"
import { resolveClientIp } from "./clientIp.js"
import { readCookie } from "./cookieHeader.js"
import { publicId } from "./hash.js"

interface RequestState {
  handle: Option.Option<ActiveSession>
  cookie: CookieAction
}

const isTagged = (tag: string) => (u: unknown): boolean =>
  typeof u === "object" && u !== null && "_tag" in u && (u as { _tag: unknown })._tag === tag

const isUnavailable = (u: unknown) => isTagged("PersistenceError")(u) || isTagged("SessionConflictError")(u)
const isGone = isTagged("SessionGoneError")

// Built for every request, so it allocates little: the effect-valued members are getters, made
// only when a handler uses them, and the creation lock only when a session is created.
const makeCurrentSession = (
  sessions: Sessions["Type"],
  client: Client,
  state: Ref.Ref<RequestState>
): CurrentSessionShape => {
  let creating: Effect.Semaphore | undefined
  const handle = Effect.map(Ref.get(state), (s) => s.handle)
  const setHandle = (h: ActiveSession) => Ref.set(state, { handle: Option.some(h), cookie: "set" as CookieAction })
  // Two fibers of one request must not create two sessions.
  const ensureHandle: Effect.Effect<ActiveSession, PersistenceError> = Effect.flatMap(handle, (h) =>
    Option.isSome(h)
      ? Effect.succeed(h.value)
      : Effect.suspend(() => (creating ??= Effect.unsafeMakeSemaphore(1)).withPermits(1)(
        Effect.flatMap(handle, (again) =>
          Option.match(again, {
            onSome: Effect.succeed,
            onNone: () => Effect.tap(sessions.create(client), setHandle)
          }))
      )))
  // A write to a session that ended meanwhile fails; the middleware clears the cookie.
  const write = <A, E>(f: (h: ActiveSession) => Effect.Effect<A, E>) => Effect.flatMap(ensureHandle, f)
  const read = <A, E>(f: (h: ActiveSession) => Effect.Effect<Option.Option<A>, E>): Effect.Effect<Option.Option<A>, E> =>
    Effect.flatMap(handle, (h) => Option.isNone(h) ? Effect.succeed(Option.none()) : f(h.value))
  const orNone = <A>(e: Effect.Effect<Option.Option<A>, SessionError>) =>
    Effect.catchIf(e, (err) => isGone(err), () => Effect.succeed(Option.none<A>()))
  const rotated = (f: (h: ActiveSession) => Effect.Effect<ActiveSession, SessionError>) =>
    Effect.flatMap(ensureHandle, (h) => Effect.flatMap(f(h), setHandle))

  const self: CurrentSessionShape = {
    get session() {
      return orNone(read((h) => Effect.map(sessions.current(h), Option.some)))
    },
    get ensure() {
      return Effect.flatMap(ensureHandle, (h) => Effect.orElseSucceed(sessions.current(h), () => h.session))
    },
    get userId() {
      return orNone(read((h) => Effect.map(sessions.current(h), (s) => s.userId)))
    },
    get: (key) => orNone(read((h) => sessions.get(h, key))),
    getAs: (key, schema) => Effect.catchIf(read((h) => sessions.getAs(h, key, schema)), isGone, () => Effect.succeed(Option.none())),
    set: (key, value) => write((h) => Effect.asVoid(sessions.set(h, key, value))),
    setAs: (key, value, schema) => write((h) => Effect.asVoid(sessions.setAs(h, key, value, schema))),
    remove: (key) => Effect.flatMap(handle, (h) => Option.isNone(h) ? Effect.void : Effect.asVoid(sessions.remove(h.value, key))),
    pop: (key) => read((h) => sessions.pop(h, key)),
    update: (key, f) => write((h) => sessions.update(h, key, f)),
    logIn: (userId, options) => rotated((h) => sessions.logIn(h, userId, { ...options, client })),
    get logOut() {
      return Effect.flatMap(handle, (h) => Option.isNone(h) ? Effect.void : Effect.flatMap(sessions.logOut(h.value), setHandle))
    },
    get regenerateId() {
      return rotated((h) => sessions.regenerateId(h))
    },
    get destroy() {
      return Effect.flatMap(handle, (h) =>
      Effect.zipRight(
        Option.isNone(h) ? Effect.void : sessions.destroy(h.value),
        Ref.set(state, { handle: Option.none(), cookie: "clear" as CookieAction })
      ))
    },
    get listSessions() {
      return Effect.flatMap(handle, (h) => {
      if (Option.isNone(h)) return Effect.succeed([])
      return Effect.flatMap(sessions.current(h.value), (s) =>
        Option.isNone(s.userId)
          ? Effect.succeed([])
          : Effect.map(sessions.listSessions(s.userId.value), (list) =>
            list.map((info) => ({ ...info, current: info.id === publicId(s.key) }))))
    })
    },
    endSession: (id) =>
      Effect.flatMap(handle, (h) => {
        if (Option.isNone(h)) return Effect.succeed(false)
        return Effect.flatMap(sessions.current(h.value), (s) => {
          if (Option.isNone(s.userId)) return Effect.succeed(false)
          return Effect.tap(sessions.endSession(s.userId.value, id), (ended) =>
            ended && id === publicId(s.key) ? Ref.set(state, { handle: Option.none(), cookie: "clear" as CookieAction }) : Effect.void)
        })
      }),
    get logOutEverywhere() {
      return Effect.flatMap(handle, (h) => {
      if (Option.isNone(h)) return Effect.succeed(0)
      return Effect.flatMap(sessions.current(h.value), (s) =>
        Option.isNone(s.userId)
          ? Effect.succeed(0)
          : Effect.tap(sessions.logOutEverywhere(s.userId.value), () => Ref.set(state, { handle: Option.none(), cookie: "clear" as CookieAction })))
    })
    },
    get user() {
      return read((h) => sessions.user(h))
    }}
  return self
}

const cookieOptions = (config: SessionConfigShape) => ({
  path: config.cookie.path,
  httpOnly: config.cookie.httpOnly,
  secure: config.cookie.secure,
  sameSite: config.cookie.sameSite,
  ...(config.cookie.partitioned ? { partitioned: true } : {}),
  ...(Option.isSome(config.cookie.domain) ? { domain: config.cookie.domain.value } : {})
})

const applyCookie = (
  response: HttpServerResponse.HttpServerResponse,
  config: SessionConfigShape,
  state: RequestState,
  hadCookie: boolean
): HttpServerResponse.HttpServerResponse => {
  const name = config.cookie.name
  if (state.cookie === "set" && Option.isSome(state.handle)) {
    const withCookie = HttpServerResponse.unsafeSetCookie(response, name, Redacted.value(state.handle.value.token), cookieOptions(config))
    // A response that carries a session token must never be stored by a cache, whatever the
    // handler said: a shared cache would hand the token to other users.
    return HttpServerResponse.setHeader(withCookie, "cache-control", "no-store")
  }
  if (state.cookie === "clear" && hadCookie) return HttpServerResponse.expireCookie(response, name, cookieOptions(config))
  return response
}

/** @internal */
export const makeMiddleware = (options: MiddlewareOptions = {}) =>
<E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<any, any> =>
  Effect.gen(function*() {
    const sessions = yield* Sessions
    const config = yield* SessionConfig
    const request = yield* HttpServerRequest.HttpServerRequest
    const unavailable = HttpServerResponse.empty({ status: options.unavailableStatus ?? 503 })

    const read = readCookie(request.headers["cookie"], config.cookie.name)
    const hadCookie = read._tag !== "Absent"
    const client: Client = {
      ip: resolveClientIp(request.remoteAddress, request.headers["x-forwarded-for"], trustedProxyRanges(config)),
      userAgent: Option.fromNullable(request.headers["user-agent"])
    }
    const resolved = yield* Effect.either(
      sessions.resolve(read._tag === "Present" ? read.value : undefined, client, { create: options.create === true })
    )
    if (resolved._tag === "Left") {
      yield* Effect.logWarning("session store unavailable", resolved.left)
      return unavailable
    }
    const resolution = resolved.right
    const state = yield* Ref.make<RequestState>({
      handle: resolution.session,
      cookie: read._tag === "Rejected" && resolution.outcome !== "created" ? "clear" : resolution.cookie
    })
    // The cookie is written by a pre-response handler, so that it reaches the client whatever the
    // app answers — a 404, a typed error or a defect rendered by the server: a rotated token that
    // never reached its client would be lost once the grace period ends.
    yield* HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.map(Ref.getAndUpdate(state, (s) => ({ ...s, cookie: "none" as CookieAction })), (s) =>
        applyCookie(response, config, s, hadCookie))
    )
    const current = makeCurrentSession(sessions, client, state)
    const result = yield* Effect.either(Effect.provideService(app, CurrentSession, current))
    if (result._tag === "Left") {
      const error: unknown = result.left
      if (isUnavailable(error)) {
        yield* Effect.logWarning("session store unavailable", error)
        // Nothing about the session is certain now: answer without touching the cookie.
        yield* Ref.update(state, (s) => ({ ...s, cookie: "none" as CookieAction }))
        return unavailable
      }
      if (isGone(error)) {
        yield* Ref.set(state, { handle: Option.none(), cookie: "clear" })
        return HttpServerResponse.empty({ status: options.goneStatus ?? 401 })
      }
      return yield* Effect.fail(error)
    }
    return result.right
  })

/** @internal */
export const currentUserFromSession = (current: CurrentSessionShape) =>
  current.userId.pipe(
    // A session that ended meanwhile has no user; a store that fails is an outage, not a log-out.
    Effect.catchIf(isGone, () => Effect.succeed(Option.none<string>())),
    Effect.catchAll((e) =>
      Effect.zipRight(Effect.logWarning("session store unavailable", e), Effect.fail(new HttpApiError.ServiceUnavailable()))
    ),
    Effect.flatMap((userId) =>
      Option.match(userId, {
        onNone: () => Effect.fail(new HttpApiError.Unauthorized()),
        onSome: (id) => Effect.succeed(CurrentUser.of({ userId: id }))
      })
    )
  )

