/**
 * The HTTP edge: a middleware for `@effect/platform` apps that resolves the session cookie,
 * provides {@link CurrentSession} to handlers and writes `Set-Cookie`, and HttpApi security
 * middlewares built on it.
 *
 * @since 0.1.0
 * @module
 */
import type { HttpApp, HttpServerRequest } from "@effect/platform"
import { HttpApiError, HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Effect, Layer, Schema } from "effect"
import { CurrentSession, type CurrentSessionShape, CurrentUser, type MiddlewareOptions } from "./internal/currentSession.js"
import { currentUserFromSession, makeMiddleware, securityCurrentSession, toApiErrors as toApiErrors_ } from "./internal/http.js"
import { SessionDataTooLarge as SessionDataTooLarge_, SessionLimitReached as SessionLimitReached_ } from "./internal/httpApiErrors.js"
import { makeOriginCheck, type OriginCheckOptions } from "./internal/originCheck.js"
import { Sessions } from "./internal/sessions/service.js"
import type { SessionConflictError, SessionGoneError } from "./internal/sessions/errors.js"
import type { SessionStoreError } from "./Persistence.js"

/**
 * The session of the current request ({@link CurrentSessionShape}, provided as
 * {@link CurrentSession} by {@link middleware} and the HttpApi security), the logged-in user of an
 * endpoint behind {@link RequireUser} ({@link CurrentUser}), and the options of {@link middleware}.
 *
 * @since 0.1.0
 * @category models
 */
export type { ClearSiteDataType, CurrentSessionShape, MiddlewareOptions } from "./internal/currentSession.js"
/**
 * The options of {@link originCheck}: the app's own origin and the other origins allowed to send
 * state-changing requests.
 *
 * @since 0.1.0
 * @category models
 */
export type { OriginCheckOptions } from "./internal/originCheck.js"

/**
 * The Tags of the current request's session and user.
 *
 * @since 0.1.0
 * @category tags
 */
export { CurrentSession, CurrentUser } from "./internal/currentSession.js"


/**
 * The session middleware. It reads the cookie (an oversized header, a duplicated cookie or a
 * malformed token never reach the store), resolves the client IP (the socket's peer, or through
 * `trustedProxies` the rightmost untrusted `X-Forwarded-For` hop), resolves the session, provides
 * {@link CurrentSession}, and writes `Set-Cookie` for a new, rotated, followed or ended session.
 * A store failure answers `unavailableStatus` and never hands out a new session.
 *
 * @since 0.1.0
 * @category middleware
 * @example
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect, Option, Schema } from "effect"
 * import { Http, Session } from "effect-sessions"
 *
 * const Count = Session.key("count", Schema.Number)
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.post("/count", Effect.gen(function*() {
 *     const session = yield* Http.CurrentSession
 *     const count = yield* session.update(Count, (n) => Option.getOrElse(n, () => 0) + 1)
 *     return yield* HttpServerResponse.json({ count })
 *   })),
 *   Http.middleware()
 * )
 * ```
 */
export const middleware: (
  options?: MiddlewareOptions
) => <E, R>(
  app: HttpApp.Default<E, R>
) => HttpApp.Default<
  Exclude<E, SessionStoreError | SessionConflictError | SessionGoneError>,
  Exclude<R, CurrentSession> | Sessions
> = makeMiddleware

/**
 * Cross-site request protection (Lucia's origin check): refuses a state-changing request (any
 * method but GET, HEAD and OPTIONS) that a browser sent for another site, with
 * `403 Forbidden` and the text body `Forbidden: cross-site request` (the app is not run; a
 * warning is logged). A request is refused when its `Origin` is `null`, malformed, or neither
 * the app's own origin nor one of `allowedOrigins`; without `Origin`, when `Sec-Fetch-Site` is
 * `cross-site` or `same-site` (a sibling subdomain, which `SameSite=Lax` lets through). A
 * request with neither header passes: browsers send one of them on every cross-site POST, so
 * such a request comes from a client that is not a browser. GET side effects stay open: keep
 * GET handlers free of them. It needs no session and goes outside or inside
 * {@link middleware}; for an HttpApi, `HttpApiBuilder.middleware(Http.originCheck())` or
 * `HttpApiBuilder.serve(Http.originCheck())`. Throws a `TypeError` when `origin` or an entry of
 * `allowedOrigins` is not an http(s) origin.
 *
 * @since 0.1.0
 * @category middleware
 */
export const originCheck: (options?: OriginCheckOptions) => <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E, R> =
  makeOriginCheck

/**
 * The options of an HttpApi security middleware that provides {@link CurrentSession}, for
 * `HttpApiMiddleware.Tag`: the session cookie (`cookieName`, default `__Host-id`) as an API-key
 * cookie scheme, so that OpenAPI documents the real name, and the errors of {@link toApiErrors}:
 * `ServiceUnavailable` (503) for a store outage, `Unauthorized` (401) for a session that ended
 * meanwhile, {@link SessionDataTooLarge} (413), {@link SessionLimitReached} (409, a log-in refused by
 * `maxSessionsPerUser`). {@link SessionSecurity} is the ready-made Tag for the default name; for another
 * name declare yours with the same name as the configuration's `cookie.name`:
 * `class MySecurity extends HttpApiMiddleware.Tag<MySecurity>()("MySecurity", Http.securityOptions("sid")) {}`
 * and implement it with `Layer.effect(MySecurity, Http.securityHandlers(MySecurity))`.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const securityOptions = <const Name extends string = "__Host-id">(cookieName?: Name) => ({
  provides: CurrentSession,
  // What the security handler (503) and toApiErrors in a handler (401, 413, 409) may answer.
  failure: Schema.Union(HttpApiError.ServiceUnavailable, HttpApiError.Unauthorized, SessionDataTooLarge_, SessionLimitReached_),
  security: { session: HttpApiSecurity.apiKey({ in: "cookie", key: cookieName ?? "__Host-id" }) }
})

/**
 * The options of an HttpApi security middleware that requires a logged-in user and provides
 * {@link CurrentUser} (see {@link securityOptions}): `Unauthorized` (401) without a user,
 * `ServiceUnavailable` (503) for a store outage.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const requireUserOptions = <const Name extends string = "__Host-id">(cookieName?: Name) => ({
  provides: CurrentUser,
  failure: Schema.Union(HttpApiError.Unauthorized, HttpApiError.ServiceUnavailable),
  security: { session: HttpApiSecurity.apiKey({ in: "cookie", key: cookieName ?? "__Host-id" }) }
})

/**
 * HttpApi security that provides {@link CurrentSession} to endpoints — the only thing an HttpApi
 * needs for sessions: it reads the configured cookie (with the middleware's rules: a duplicated
 * or oversized cookie header is no session), resolves the session, and writes `Set-Cookie` on the
 * way out. A store outage answers 503. Implemented by {@link layerSessionSecurity}. Handlers map
 * the session errors they let through with {@link toApiErrors}. Documents the cookie `__Host-id`
 * in OpenAPI; for another name see {@link securityOptions}.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export class SessionSecurity extends HttpApiMiddleware.Tag<SessionSecurity>()(
  "effect-sessions/Http/SessionSecurity",
  securityOptions()
) {}

/**
 * HttpApi security that requires a logged-in user: provides {@link CurrentUser} (the user ID and
 * the session), and fails with `HttpApiError.Unauthorized` (401) when the request's session has no
 * user — or with `HttpApiError.ServiceUnavailable` (503) when the store fails, so an outage never
 * looks like a log-out. Resolves the session itself, once per request even together with
 * {@link SessionSecurity}.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export class RequireUser extends HttpApiMiddleware.Tag<RequireUser>()("effect-sessions/Http/RequireUser", requireUserOptions()) {}

/**
 * The HttpApi error for a write above `maxDataBytes` (413), from {@link toApiErrors}.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export { SessionDataTooLarge } from "./internal/httpApiErrors.js"

/**
 * The HttpApi error for a log-in refused by `maxSessionsPerUser` with `onSessionLimit: "refuse"`
 * (409), from {@link toApiErrors}.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export { SessionLimitReached } from "./internal/httpApiErrors.js"

/**
 * Maps the session errors an HttpApi handler lets through to HttpApi errors: a store failure or
 * a lost race → `ServiceUnavailable` (503, the cookie left alone), a session that ended meanwhile
 * → `Unauthorized` (401), a write above `maxDataBytes` → {@link SessionDataTooLarge} (413), a log-in
 * refused by `maxSessionsPerUser` → {@link SessionLimitReached} (409); all four
 * are failures of the Tags made with {@link securityOptions}. A
 * stored value that no longer decodes with its key's Schema is a defect (500).
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const toApiErrors = toApiErrors_

/**
 * What the handler builders read of an `HttpApiMiddleware.Tag`: its key and its `session` scheme.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export interface SecurityTag {
  readonly key: string
  readonly security: { readonly session: HttpApiSecurity.HttpApiSecurity }
}

/**
 * The handlers of a security Tag made with {@link securityOptions} or {@link requireUserOptions}.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export interface SecurityHandlers<A, E> {
  readonly session: (_: unknown) => Effect.Effect<A, E, HttpServerRequest.HttpServerRequest>
}

const handlersOf = <A, E>(
  tag: SecurityTag,
  f: (sessions: Sessions["Type"], config: Sessions["Type"]["config"]) => Effect.Effect<A, E, HttpServerRequest.HttpServerRequest>
): Effect.Effect<SecurityHandlers<A, E>, never, Sessions> =>
  Effect.gen(function*() {
    const sessions = yield* Sessions
    const config = yield* checkedConfig(tag)
    return { session: () => f(sessions, config) }
  })

const cookieKey = (tag: SecurityTag): string | undefined => {
  const scheme = tag.security.session
  return scheme._tag === "ApiKey" && scheme.in === "cookie" ? scheme.key : undefined
}

const checkedConfig = (tag: SecurityTag) =>
  Effect.flatMap(Sessions, ({ config }) =>
    cookieKey(tag) === config.cookie.name
      ? Effect.succeed(config)
      : Effect.dieMessage(
        `effect-sessions: ${tag.key} documents the cookie ${JSON.stringify(cookieKey(tag))}, but the sessions use ${JSON.stringify(config.cookie.name)}: declare the Tag with Http.securityOptions(${JSON.stringify(config.cookie.name)})`
      ))

/**
 * The security handlers of a Tag declared with {@link securityOptions}. Dies when the Tag's
 * documented cookie is not the configured one (OpenAPI would document the wrong name).
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const securityHandlers = (tag: SecurityTag): Effect.Effect<SecurityHandlers<CurrentSessionShape, HttpApiError.ServiceUnavailable>, never, Sessions> =>
  handlersOf(tag, (sessions, config) => securityCurrentSession(sessions, config))

/**
 * The security handlers of a Tag declared with {@link requireUserOptions}.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const requireUserHandlers = (
  tag: SecurityTag
): Effect.Effect<SecurityHandlers<CurrentUser["Type"], HttpApiError.Unauthorized | HttpApiError.ServiceUnavailable>, never, Sessions> =>
  handlersOf(tag, (sessions, config) => Effect.flatMap(securityCurrentSession(sessions, config), currentUserFromSession))

/**
 * The implementation of {@link SessionSecurity}, over the `Sessions` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSessionSecurity: Layer.Layer<SessionSecurity, never, Sessions> = Layer.effect(
  SessionSecurity,
  securityHandlers(SessionSecurity)
)

/**
 * The implementation of {@link RequireUser}, over the `Sessions` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRequireUser: Layer.Layer<RequireUser, never, Sessions> = Layer.effect(
  RequireUser,
  requireUserHandlers(RequireUser)
)
