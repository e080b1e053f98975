/**
 * The session middleware and the per-request CurrentSession.
 *
 * @internal
 */
import { HttpApiError, HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { Either } from "effect"
import type { ParseError } from "effect/ParseResult"
import { Clock, Duration, Effect, Option, Redacted, Ref } from "effect"
import { isSessionStoreError, type SessionStoreError } from "./persistence.js"
import type { Client, KeyLike, Session } from "../Session.js"
import { cookieMaxAge, isRecentLogin } from "../Session.js"
import { type ClearSiteDataType, CurrentSession, type CurrentSessionShape, CurrentUser, type MiddlewareOptions } from "./currentSession.js"
import type { SessionError, SessionReadError } from "./sessions/errors.js"
import { SessionConflictError, SessionDataError, SessionDataTooLargeError, SessionGoneError, SessionLimitError } from "./sessions/errors.js"
import type { ActiveSession, CookieAction, SessionInfo } from "./sessions/service.js"
import { Sessions } from "./sessions/service.js"
import { RecentLoginRequired, SessionDataTooLarge, SessionLimitReached } from "./httpApiErrors.js"
import type { SessionConfigShape } from "../SessionConfig.js"
import { resolveClientIp } from "./clientIp.js"
import { answerHeader, cookieOnly, normalizeTransports, readToken, type Transports, varyOn } from "./transport.js"
import { publicId } from "./hash.js"

interface RequestState {
  handle: Option.Option<ActiveSession>
  cookie: CookieAction
  /** A handler ended or logged out the session: the response carries `Clear-Site-Data`. */
  clearSite: boolean
}

// Recognised by class and type id, never by a `_tag` string another library may use too
// (`@effect/experimental` has a `PersistenceError` of its own): an app's own errors pass through.
const isUnavailable = (u: unknown): boolean => isSessionStoreError(u) || u instanceof SessionConflictError
const isGone = (u: unknown): u is SessionGoneError => u instanceof SessionGoneError
const isTooLarge = (u: unknown): boolean => u instanceof SessionDataError && u.cause instanceof SessionDataTooLargeError

const maxAgeMillisOf = (maxAge: Duration.DurationInput): number => Duration.toMillis(Duration.decode(maxAge))

const clearedState: RequestState = { handle: Option.none(), cookie: "clear", clearSite: true }

/**
 * The per-request CurrentSession. A class, because one is built for every request: its methods
 * live on the prototype, and an effect is built only when a handler asks for it (the creation
 * lock only when a session is created).
 */
class RequestSession implements CurrentSessionShape {
  private creating: Effect.Semaphore | undefined = undefined
  constructor(
    private readonly sessions: Sessions["Type"],
    private readonly client: Client,
    private readonly state: Ref.Ref<RequestState>
  ) {}

  private get handle(): Effect.Effect<Option.Option<ActiveSession>> {
    return Effect.map(Ref.get(this.state), (s) => s.handle)
  }
  private setHandle(h: ActiveSession) {
    return Ref.update(this.state, (s): RequestState => ({ handle: Option.some(h), cookie: "set", clearSite: s.clearSite }))
  }
  /** The session, created now if the request has none; two fibers of one request create one. */
  private get ensureHandle(): Effect.Effect<ActiveSession, SessionStoreError> {
    return Effect.flatMap(this.handle, (h) =>
      Option.isSome(h)
        ? Effect.succeed(h.value)
        : Effect.suspend(() =>
          (this.creating ??= Effect.unsafeMakeSemaphore(1)).withPermits(1)(
            Effect.flatMap(this.handle, (again) =>
              Option.isSome(again)
                ? Effect.succeed(again.value)
                : Effect.tap(this.sessions.create(this.client), (created) => this.setHandle(created)))
          )
        ))
  }
  /** Writes create the session; a write to a session that ended meanwhile fails (the middleware answers). */
  private write<A, E>(f: (h: ActiveSession) => Effect.Effect<A, E>) {
    return Effect.flatMap(this.ensureHandle, f)
  }
  /** Reads never create one. */
  private read<A, E>(f: (h: ActiveSession) => Effect.Effect<Option.Option<A>, E>): Effect.Effect<Option.Option<A>, E> {
    return Effect.flatMap(this.handle, (h) => Option.isNone(h) ? Effect.succeed(Option.none()) : f(h.value))
  }
  /** With a session at hand, else `none`. */
  private withHandle<A, E>(none: A, f: (h: ActiveSession) => Effect.Effect<A, E>): Effect.Effect<A, E> {
    return Effect.flatMap(this.handle, (h) => Option.isNone(h) ? Effect.succeed(none) : f(h.value))
  }
  private orNone<A, E>(e: Effect.Effect<Option.Option<A>, E | SessionGoneError>): Effect.Effect<Option.Option<A>, Exclude<E, SessionGoneError>> {
    return Effect.catchIf(e, isGone, () => Effect.succeed(Option.none<A>())) as any
  }
  private rotated<E>(f: (h: ActiveSession) => Effect.Effect<ActiveSession, E>) {
    return Effect.flatMap(this.ensureHandle, (h) => Effect.flatMap(f(h), (next) => this.setHandle(next)))
  }
  /** With the logged-in user's ID, else `none`. */
  private withUser<A>(none: A, f: (userId: string, s: Session) => Effect.Effect<A, SessionReadError>) {
    return this.withHandle(none, (h) =>
      Effect.flatMap(this.sessions.current(h), (s) => Option.isNone(s.userId) ? Effect.succeed(none) : f(s.userId.value, s)))
  }

  get session() {
    return this.orNone(this.read((h) => Effect.map(this.sessions.current(h), Option.some)))
  }
  get ensure() {
    return Effect.flatMap(this.ensureHandle, (h) => Effect.orElseSucceed(this.sessions.current(h), () => h.session))
  }
  get userId() {
    return this.orNone(this.read((h) => Effect.map(this.sessions.current(h), (s) => s.userId)))
  }
  // The overloads of CurrentSessionShape (string and typed keys) are checked there; here, one body.
  get(key: KeyLike): Effect.Effect<Option.Option<any>, any> {
    return this.orNone(this.read((h) => this.sessions.get(h, key as string)))
  }
  set(key: KeyLike, value: any): Effect.Effect<void, SessionError> {
    return this.write((h) => this.sessions.set(h, key as string, value))
  }
  remove(key: KeyLike) {
    return this.withHandle(undefined, (h) => this.sessions.remove(h, key))
  }
  pop(key: KeyLike): Effect.Effect<Option.Option<any>, any> {
    return this.read((h) => this.sessions.pop(h, key as string))
  }
  update(key: KeyLike, f: (old: Option.Option<any>) => any): Effect.Effect<any, SessionError> {
    return this.write((h) => this.sessions.update(h, key as string, f))
  }
  modify(f: (session: Session) => Session | Either.Either<Session, ParseError>) {
    return this.write((h) => this.sessions.modify(h, f))
  }
  logIn(userId: string, options?: { readonly exclusive?: boolean; readonly persistent?: boolean }) {
    return this.rotated((h) => this.sessions.logIn(h, userId, { ...options, client: this.client }))
  }
  get reauthenticated() {
    return this.withHandle(undefined, (h) => Effect.flatMap(this.sessions.reauthenticated(h), (next) => this.setHandle(next)))
  }
  requireRecentLogin(maxAge: Duration.DurationInput) {
    return Effect.flatMap(Effect.zip(this.session, Clock.currentTimeMillis), ([s, now]) => {
      if (Option.isSome(s) && Option.isSome(s.value.userId) && isRecentLogin(s.value, now, maxAge)) return Effect.succeed(s.value.userId.value)
      const at = Option.flatMap(s, (x) => Option.isSome(x.userId) ? x.authenticatedAt : Option.none())
      return Effect.fail(
        new RecentLoginRequired({ maxAgeMillis: maxAgeMillisOf(maxAge), ...(Option.isSome(at) ? { authenticatedAt: at.value } : {}) })
      )
    })
  }
  logOut(options?: { readonly keepData?: boolean }) {
    return this.withHandle(undefined, (h) =>
      Effect.flatMap(this.sessions.logOut(h, options), (next) =>
        Effect.zipRight(this.setHandle(next), Ref.update(this.state, (s) => ({ ...s, clearSite: true })))))
  }
  regenerateId(options?: { readonly grace?: boolean }) {
    return this.rotated((h) => this.sessions.regenerateId(h, options))
  }
  get destroy() {
    // A handle that is gone has nothing left to end (and ends nothing): the request ends up
    // without a session either way.
    return Effect.zipRight(
      this.withHandle(undefined, (h) => Effect.catchIf(this.sessions.destroy(h), isGone, () => Effect.void)),
      Ref.set(this.state, clearedState)
    )
  }
  get listSessions() {
    return this.withUser<ReadonlyArray<SessionInfo & { readonly current: boolean }>>([], (userId, s) =>
      Effect.map(this.sessions.listSessions(userId), (list) => list.map((info) => ({ ...info, current: info.id === publicId(s.key) }))))
  }
  endSession(id: string) {
    return this.withUser(false, (userId, s) =>
      Effect.tap(this.sessions.endSession(userId, id), (ended) =>
        ended && id === publicId(s.key) ? Ref.set(this.state, clearedState) : Effect.void))
  }
  get logOutEverywhere() {
    return this.withUser(0, (userId) => Effect.tap(this.sessions.logOutEverywhere(userId), () => Ref.set(this.state, clearedState)))
  }
  get logOutOthers() {
    return this.withHandle(0, (h) => this.sessions.logOutOthers(h))
  }
  get user() {
    return this.orNone(this.read((h) => this.sessions.user(h)))
  }
}

const cookieOptions = (config: SessionConfigShape) => ({
  path: config.cookie.path,
  httpOnly: config.cookie.httpOnly,
  secure: config.cookie.secure,
  sameSite: config.cookie.sameSite,
  ...(config.cookie.partitioned ? { partitioned: true } : {}),
  ...(Option.isSome(config.cookie.domain) ? { domain: config.cookie.domain.value } : {})
})

/** The default of `MiddlewareOptions.clearSiteData`. */
const defaultClearSiteData: ReadonlyArray<ClearSiteDataType> = ["cookies", "storage"]

/**
 * The `Clear-Site-Data` value of a response after a log-out or an ended session. A response that
 * also sets the session cookie (a `logOut`, which keeps the session under a fresh token) leaves
 * cookies alone: the browser clears after storing the response's `Set-Cookie`, so `"cookies"`
 * would remove the new token — and with it the session and the data `logOut()` keeps.
 */
const clearSiteValue = (types: ReadonlyArray<ClearSiteDataType>, setsCookie: boolean): string | undefined => {
  const kept = !setsCookie ? types : types.flatMap((t): ReadonlyArray<ClearSiteDataType> =>
    t === "*" ? ["cache", "storage", "executionContexts"] : t === "cookies" ? [] : [t])
  const unique = [...new Set(kept)]
  return unique.length === 0 ? undefined : unique.map((t) => `"${t}"`).join(", ")
}

const applyCookie = (
  response: HttpServerResponse.HttpServerResponse,
  config: SessionConfigShape,
  state: RequestState,
  hadCookie: boolean,
  clearSiteData: false | ReadonlyArray<ClearSiteDataType>,
  now: number
): HttpServerResponse.HttpServerResponse => {
  const clear = state.clearSite && clearSiteData !== false
    ? clearSiteValue(clearSiteData, state.cookie === "set" && Option.isSome(state.handle))
    : undefined
  return setCookieOf(clear === undefined ? response : HttpServerResponse.setHeader(response, "clear-site-data", clear), config, state, hadCookie, now)
}

const setCookieOf = (
  response: HttpServerResponse.HttpServerResponse,
  config: SessionConfigShape,
  state: RequestState,
  hadCookie: boolean,
  now: number
): HttpServerResponse.HttpServerResponse => {
  const name = config.cookie.name
  if (state.cookie === "set" && Option.isSome(state.handle)) {
    // "Remember me": the session's own choice (kept by every rotation), else the configured one;
    // a persistent cookie never outlives the absolute timeout.
    const maxAge = cookieMaxAge(state.handle.value.session, now, config)
    const withCookie = HttpServerResponse.unsafeSetCookie(response, name, Redacted.value(state.handle.value.token), {
      ...cookieOptions(config),
      ...(Option.isSome(maxAge) ? { maxAge: Duration.seconds(maxAge.value) } : {})
    })
    // A response that carries a session token must never be stored by a cache, whatever the
    // handler said: a shared cache would hand the token to other users.
    return HttpServerResponse.setHeader(withCookie, "cache-control", "no-store")
  }
  if (state.cookie === "clear" && hadCookie) return HttpServerResponse.expireCookie(response, name, cookieOptions(config))
  return response
}

/**
 * Reads the request's token (by `transports`: the cookie, a bearer or a named header) and client,
 * resolves the session, and registers the pre-response handler that answers on the transport the
 * token came from (`Set-Cookie`, or the token's response header). Shared by the middleware and the
 * HttpApi security handlers.
 */
const startRequest = (
  sessions: Sessions["Type"],
  config: SessionConfigShape,
  request: HttpServerRequest.HttpServerRequest,
  create: boolean,
  clearSiteData: false | ReadonlyArray<ClearSiteDataType> = defaultClearSiteData,
  transports: Transports = cookieOnly
): Effect.Effect<{ readonly state: Ref.Ref<RequestState>; readonly current: CurrentSessionShape }, SessionStoreError> =>
  // Plain steps rather than a generator: this runs on every request, and each Effect step costs
  // (bench/README.md, "web handler").
  Effect.suspend(() => {
    const { read, via } = readToken(transports, request.headers, config.cookie.name)
    const hadCookie = read._tag !== "Absent"
    const client: Client = {
      ip: resolveClientIp(request.remoteAddress, request.headers["x-forwarded-for"], config.trustedProxies),
      userAgent: Option.fromNullable(request.headers["user-agent"])
    }
    return Effect.flatMap(sessions.resolve(read._tag === "Present" ? read.value : undefined, client, { create }), (resolution) => {
      // A rejected header (our name twice, or too long to read) gets no session, but its cookies are
      // left alone: a removal goes by name and attributes, so it could only hit our host-only cookie,
      // while the one a sibling domain planted (Domain=…; Path=/api) would survive and undo every
      // new log-in on the next request.
      const state = Ref.unsafeMake<RequestState>({
        handle: resolution.session,
        cookie: resolution.cookie,
        clearSite: false
      })
      const answer = (s: RequestState, response: HttpServerResponse.HttpServerResponse, now: number) =>
        via._tag === "Cookie"
          ? applyCookie(varyOn(response, transports.vary), config, s, hadCookie, clearSiteData, now)
          // A header client is no browser page: Clear-Site-Data (cookies, storage) is not its business.
          : answerHeader(varyOn(response, transports.vary), via, s.cookie, Option.map(s.handle, (h) => h.token), hadCookie)
      // The cookie is written by a pre-response handler, so that it reaches the client whatever the
      // app answers — a 404, a typed error or a defect rendered by the server: a rotated token that
      // never reached its client would be lost once the grace period ends.
      const handler = HttpApp.appendPreResponseHandler((_request, response) =>
        Effect.flatMap(
          Ref.getAndUpdate(state, (s) => ({ ...s, cookie: "none" as CookieAction, clearSite: false })),
          // Only a cookie being set reads the clock (for its Max-Age).
          (s) =>
            s.cookie === "set" && via._tag === "Cookie"
              ? Effect.map(Clock.currentTimeMillis, (now) => answer(s, response, now))
              : Effect.succeed(answer(s, response, 0))
        )
      )
      return Effect.as(handler, { state, current: new RequestSession(sessions, client, state) as CurrentSessionShape })
    })
  })

/** Nothing about the session is certain after a store failure: answer without touching the cookie. */
const keepCookie = (state: Ref.Ref<RequestState>) => Ref.update(state, (s) => ({ ...s, cookie: "none" as CookieAction }))

/**
 * The cookie is left alone (as for an unknown token): the request's token may have been retired
 * by a log-in whose response already gave the browser a newer token under the same name, and
 * removing the cookie (by name) would log that browser out.
 */
const forgetGone = (state: Ref.Ref<RequestState>) =>
  Ref.update(state, (s): RequestState => ({ handle: Option.none(), cookie: s.cookie === "clear" ? "clear" : "none", clearSite: s.clearSite }))

// The transports are checked once, when the middleware is built: a bad header name throws there.
/** @internal */
export const makeMiddleware = (options: MiddlewareOptions = {}, transports: Transports = normalizeTransports(options.transport)) =>
<E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<any, any> =>
  Effect.gen(function*() {
    const sessions = yield* Sessions
    const config = sessions.config
    const request = yield* HttpServerRequest.HttpServerRequest
    // Vary here too: when the store fails before the pre-response handler is in place, nothing
    // else marks the answer as depending on the session's cookie or header.
    const unavailable = () => varyOn(HttpServerResponse.empty({ status: options.unavailableStatus ?? 503 }), transports.vary)
    const started = yield* Effect.either(
      startRequest(sessions, config, request, options.create === true, options.clearSiteData ?? defaultClearSiteData, transports)
    )
    if (started._tag === "Left") {
      yield* Effect.logWarning("session store unavailable", started.left)
      return unavailable()
    }
    const { current, state } = started.right
    const result = yield* Effect.either(Effect.provideService(app, CurrentSession, current))
    if (result._tag === "Left") {
      const error: unknown = result.left
      if (isUnavailable(error)) {
        yield* Effect.logWarning("session store unavailable", error)
        yield* keepCookie(state)
        return unavailable()
      }
      if (isGone(error)) {
        yield* forgetGone(state)
        return HttpServerResponse.empty({ status: options.goneStatus ?? 401 })
      }
      // A write above maxDataBytes changed nothing: only the status says so.
      if (isTooLarge(error)) return HttpServerResponse.empty({ status: options.tooLargeStatus ?? 413 })
      return yield* Effect.fail(error)
    }
    return result.right
  })

// One CurrentSession per request, whichever security handlers of an HttpApi endpoint ask for it
// (SessionSecurity and RequireUser on one endpoint resolve the session once).
const perRequest = new WeakMap<object, { readonly current: CurrentSessionShape; readonly state: Ref.Ref<RequestState> }>()

/**
 * The CurrentSession of an HttpApi request: the one an enclosing `Http.middleware()` provides,
 * else resolved here from the Tag's transports (once per request), with the answer (`Set-Cookie`
 * or the token's response header) written on the way out. A store failure is `ServiceUnavailable` (503), never a fresh empty session.
 *
 * @internal
 */
export const securityCurrentSession = (
  sessions: Sessions["Type"],
  config: SessionConfigShape,
  transports: Transports = cookieOnly
): Effect.Effect<CurrentSessionShape, HttpApiError.ServiceUnavailable, HttpServerRequest.HttpServerRequest> =>
  Effect.flatMap(Effect.serviceOption(CurrentSession), (provided) => {
    if (Option.isSome(provided)) return Effect.succeed(provided.value)
    return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const known = perRequest.get(request)
      if (known !== undefined) return Effect.succeed(known.current)
      return startRequest(sessions, config, request, false, defaultClearSiteData, transports).pipe(
        Effect.tap((started) => Effect.sync(() => perRequest.set(request, started))),
        Effect.map((started) => started.current),
        Effect.catchAll((e) =>
          Effect.zipRight(Effect.logWarning("session store unavailable", e), Effect.fail(new HttpApiError.ServiceUnavailable()))
        )
      )
    })
  })

/**
 * Maps the session errors a handler lets through to HttpApi errors, leaving the cookie as the
 * middleware would: a store failure or a lost race is 503 (cookie untouched), a session gone
 * meanwhile 401 (the request has no session), data above `maxDataBytes` 413, a log-in refused by
 * `maxSessionsPerUser` 409; a value that does not decode with its key's Schema is a defect.
 *
 * @internal
 */
export const toApiErrors = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<
  A,
  | Exclude<E, SessionStoreError | SessionConflictError | SessionGoneError | SessionDataError | SessionLimitError>
  | HttpApiError.ServiceUnavailable
  | HttpApiError.Unauthorized
  | SessionDataTooLarge
  | SessionLimitReached,
  R | HttpServerRequest.HttpServerRequest
> =>
  Effect.catchIf(effect, (e): e is any => isUnavailable(e) || isGone(e) || e instanceof SessionDataError || e instanceof SessionLimitError, (e: unknown) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request): Effect.Effect<never, any> => {
      const state = perRequest.get(request)?.state
      if (isUnavailable(e)) {
        return Effect.zipRight(
          Effect.zipRight(Effect.logWarning("session store unavailable", e), state ? keepCookie(state) : Effect.void),
          Effect.fail(new HttpApiError.ServiceUnavailable())
        )
      }
      if (isGone(e)) return Effect.zipRight(state ? forgetGone(state) : Effect.void, Effect.fail(new HttpApiError.Unauthorized()))
      if (isTooLarge(e)) return Effect.fail(new SessionDataTooLarge())
      if (e instanceof SessionLimitError) return Effect.fail(new SessionLimitReached())
      return Effect.die(e)
    })) as any

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
        onSome: (id) => Effect.succeed(CurrentUser.of({ userId: id, session: current }))
      })
    )
  )

