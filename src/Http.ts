/**
 * The HTTP edge: a middleware for `@effect/platform` apps that resolves the session cookie,
 * provides {@link CurrentSession} to handlers and writes `Set-Cookie`, and HttpApi security
 * middlewares built on it.
 *
 * @since 0.1.0
 * @module
 */
import type { HttpApp, HttpServerRequest } from "@effect/platform"
import { HttpApiError, HttpApiMiddleware, HttpApiSecurity, OpenApi } from "@effect/platform"
import type { Duration } from "effect"
import { Effect, Layer, Schema } from "effect"
import { CurrentSession, type CurrentSessionShape, CurrentUser, type MiddlewareOptions } from "./internal/currentSession.js"
import { currentUserFromSession, makeMiddleware, securityCurrentSession, toApiErrors as toApiErrors_ } from "./internal/http.js"
import { RecentLoginRequired as RecentLoginRequired_, SessionDataTooLarge as SessionDataTooLarge_, SessionLimitReached as SessionLimitReached_ } from "./internal/httpApiErrors.js"
import { makeOriginCheck, type OriginCheckOptions } from "./internal/originCheck.js"
import { normalizeTransports, type Transport, type Transports } from "./internal/transport.js"
import { Sessions } from "./internal/sessions/service.js"
import type { SessionConflictError, SessionGoneError } from "./internal/sessions/errors.js"
import type { SessionStoreError } from "./Persistence.js"
import { isSessionStoreError } from "./internal/persistence.js"

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
 * A way a request carries its session token (the middleware's `transport` option): the cookie,
 * `Authorization: Bearer` (answered in `Set-Session-Token`) or a named header (answered in it).
 *
 * @since 0.1.0
 * @category models
 */
export type { Transport } from "./internal/transport.js"

/**
 * The Tags of the current request's session and user.
 *
 * @since 0.1.0
 * @category tags
 */
export { CurrentSession, CurrentUser } from "./internal/currentSession.js"


/**
 * The session middleware. It reads the cookie (an oversized header, a duplicated cookie or a
 * malformed token never reach the store) — or, with the `transport` option, an
 * `Authorization: Bearer` token or a named header, never the URL —, resolves the client IP (the
 * socket's peer, or through `trustedProxies` the rightmost untrusted `X-Forwarded-For` hop),
 * resolves the session, provides {@link CurrentSession}, and writes `Set-Cookie` (or the token's
 * response header, `Set-Session-Token` for a bearer) for a new, rotated, followed or ended session.
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
 * The transports an HttpApi security Tag accepts, in the object form of {@link securityOptions}:
 * the session cookie by its name (`cookie`, documented as an API-key cookie named `session`),
 * `Authorization: Bearer` (`bearer: true`, documented as HTTP bearer named `bearer`; answered in
 * `Set-Session-Token`), a named header (`header`, documented as an API-key header named
 * `sessionHeader`; answered in that header). Only what is listed is read; when a request carries
 * several, a header wins over the cookie (the middleware's `transport` rules). A token in the
 * query string is never read (ASVS 14.2.1).
 *
 * @since 0.1.0
 * @category HttpApi
 */
export interface SecurityTransports {
  /** The session cookie's name (the configuration's `cookie.name`). */
  readonly cookie?: string
  /** `Authorization: Bearer <token>`, answered in `Set-Session-Token`. */
  readonly bearer?: boolean
  /** A request header's name (e.g. `X-Session-Token`), answered in that header. */
  readonly header?: string
}

/**
 * The security schemes of a Tag made with {@link securityOptions}: a cookie name gives
 * `{ session }`, {@link SecurityTransports} one scheme per transport listed.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export type SecuritySchemes<T extends string | SecurityTransports> = [T] extends [string] ? { readonly session: HttpApiSecurity.ApiKey }
  : & (T extends { readonly cookie: string } ? { readonly session: HttpApiSecurity.ApiKey } : unknown)
    & (T extends { readonly bearer: true } ? { readonly bearer: HttpApiSecurity.Bearer } : unknown)
    & (T extends { readonly header: string } ? { readonly sessionHeader: HttpApiSecurity.ApiKey } : unknown)

const bearerScheme = HttpApiSecurity.bearer.pipe(
  HttpApiSecurity.annotate(
    OpenApi.Description,
    "A session token. A new, rotated or followed token comes back in the Set-Session-Token response header; an empty Set-Session-Token means the token is dead."
  )
)

const schemesOf = (transports: string | SecurityTransports | undefined): Record<string, HttpApiSecurity.HttpApiSecurity> => {
  if (transports === undefined || typeof transports === "string") {
    return { session: HttpApiSecurity.apiKey({ in: "cookie", key: transports ?? "__Host-id" }) }
  }
  const schemes: Record<string, HttpApiSecurity.HttpApiSecurity> = {}
  if (transports.cookie !== undefined) schemes["session"] = HttpApiSecurity.apiKey({ in: "cookie", key: transports.cookie })
  if (transports.bearer === true) schemes["bearer"] = bearerScheme
  if (transports.header !== undefined) schemes["sessionHeader"] = HttpApiSecurity.apiKey({ in: "header", key: transports.header })
  if (Object.keys(schemes).length === 0) throw new TypeError("effect-sessions: Http.securityOptions({}) accepts no token: list a cookie, bearer or a header")
  return schemes
}

/**
 * The options of an HttpApi security middleware that provides {@link CurrentSession}, for
 * `HttpApiMiddleware.Tag`: where the token comes from — a cookie name (default `__Host-id`), or
 * {@link SecurityTransports} such as `{ bearer: true }` or `{ cookie: "__Host-id", bearer: true }` —
 * as OpenAPI security schemes, so that OpenAPI documents the real transports, and the errors of
 * {@link toApiErrors}: `ServiceUnavailable` (503) for a store outage, `Unauthorized` (401) for a
 * session that ended meanwhile, {@link SessionDataTooLarge} (413), {@link SessionLimitReached} (409, a log-in refused by `maxSessionsPerUser`). {@link SessionSecurity} is the
 * ready-made Tag for the default cookie; for another name, or a bearer token, declare yours:
 * `class MySecurity extends HttpApiMiddleware.Tag<MySecurity>()("MySecurity", Http.securityOptions({ bearer: true })) {}`
 * and implement it with `Layer.effect(MySecurity, Http.securityHandlers(MySecurity))`. A cookie
 * name must be the configuration's `cookie.name`. Throws a `TypeError` for an empty object.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const securityOptions = <const T extends string | SecurityTransports = "__Host-id">(transports?: T) => ({
  provides: CurrentSession,
  // What the security handler (503) and toApiErrors in a handler (401, 413, 409) may answer.
  failure: Schema.Union(HttpApiError.ServiceUnavailable, HttpApiError.Unauthorized, SessionDataTooLarge_, SessionLimitReached_),
  security: schemesOf(transports) as SecuritySchemes<T>
})

/**
 * The options of an HttpApi security middleware that requires a logged-in user and provides
 * {@link CurrentUser} (transports as in {@link securityOptions}): `Unauthorized` (401) without a
 * user, `ServiceUnavailable` (503) for a store outage.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const requireUserOptions = <const T extends string | SecurityTransports = "__Host-id">(transports?: T) => ({
  provides: CurrentUser,
  failure: Schema.Union(HttpApiError.Unauthorized, HttpApiError.ServiceUnavailable),
  security: schemesOf(transports) as SecuritySchemes<T>
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
 * The HttpApi error of the recent-login gate (403), from `CurrentSession.requireRecentLogin` and
 * {@link RequireRecentLogin}. Its JSON body is
 * `{ "_tag": "RecentLoginRequired", "maxAgeMillis": 300000, "authenticatedAt": 1767225600000 }`;
 * `authenticatedAt` (epoch milliseconds) is absent when nobody is logged in.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export { RecentLoginRequired } from "./internal/httpApiErrors.js"

/**
 * The options of an HttpApi security middleware that requires a recent log-in and provides
 * {@link CurrentUser} (see {@link securityOptions}): {@link RecentLoginRequired} (403) when
 * nobody is logged in or the log-in is too old, `ServiceUnavailable` (503) for a store outage.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const requireRecentLoginOptions = <const Name extends string = "__Host-id">(cookieName?: Name) => ({
  provides: CurrentUser,
  failure: Schema.Union(RecentLoginRequired_, HttpApiError.ServiceUnavailable),
  security: { session: HttpApiSecurity.apiKey({ in: "cookie", key: cookieName ?? "__Host-id" }) }
})

/**
 * HttpApi security for sensitive endpoints (OWASP ASVS 7.5.1, 7.5.2: changing a password, an
 * e-mail address, payment details): provides {@link CurrentUser} when the user authenticated —
 * logged in, or `reauthenticated` — less than the layer's maximum age ago
 * ({@link layerRequireRecentLogin}), and answers 403 with the typed body of
 * {@link RecentLoginRequired} otherwise, also without a logged-in user. The age is read from
 * `Clock`. For a second gate with another age (or another cookie name), declare a Tag of your
 * own with {@link requireRecentLoginOptions} and implement it with
 * {@link requireRecentLoginHandlers}.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export class RequireRecentLogin extends HttpApiMiddleware.Tag<RequireRecentLogin>()(
  "effect-sessions/Http/RequireRecentLogin",
  requireRecentLoginOptions()
) {}

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
 * What the handler builders read of an `HttpApiMiddleware.Tag`: its key and its security schemes.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export interface SecurityTag {
  readonly key: string
  readonly security: { readonly [name: string]: HttpApiSecurity.HttpApiSecurity }
}

/**
 * The handlers of a security Tag made with {@link securityOptions} or {@link requireUserOptions}:
 * one per scheme (`K`), all the same (each reads every transport the Tag lists).
 *
 * @since 0.1.0
 * @category HttpApi
 */
export type SecurityHandlers<A, E, K extends PropertyKey = "session"> = {
  readonly [k in K]: (_: unknown) => Effect.Effect<A, E, HttpServerRequest.HttpServerRequest>
}

const handlersOf = <T extends SecurityTag, A, E>(
  tag: T,
  f: (sessions: Sessions["Type"], config: Sessions["Type"]["config"], transports: Transports) => Effect.Effect<A, E, HttpServerRequest.HttpServerRequest>
): Effect.Effect<SecurityHandlers<A, E, keyof T["security"]>, never, Sessions> =>
  Effect.gen(function*() {
    const sessions = yield* Sessions
    const transports = yield* checkedTransports(tag, sessions.config)
    const handler = () => f(sessions, sessions.config, transports)
    // HttpApiBuilder tries the schemes in turn; each handler resolves from every listed transport
    // (once per request), so the precedence is ours, not the order of the schemes.
    return Object.fromEntries(Object.keys(tag.security).map((name) => [name, handler])) as unknown as SecurityHandlers<A, E, keyof T["security"]>
  })

const refuse = (tag: SecurityTag, why: string) => Effect.dieMessage(`effect-sessions: ${tag.key}: ${why}`)

const checkedTransports = (tag: SecurityTag, config: Sessions["Type"]["config"]): Effect.Effect<Transports> =>
  Effect.suspend(() => {
    const list: Array<Transport> = []
    for (const scheme of Object.values(tag.security)) {
      if (scheme._tag === "Bearer") list.push("bearer")
      else if (scheme._tag === "Basic") return refuse(tag, "HTTP Basic credentials carry no session token")
      else if (scheme.in === "query") return refuse(tag, "a session token is never read from the URL (ASVS 14.2.1): use a cookie, bearer or a header")
      else if (scheme.in === "header") list.push({ header: scheme.key })
      else if (scheme.key !== config.cookie.name) {
        return refuse(
          tag,
          `documents the cookie ${JSON.stringify(scheme.key)}, but the sessions use ${JSON.stringify(config.cookie.name)}: declare the Tag with Http.securityOptions(${JSON.stringify(config.cookie.name)})`
        )
      } else list.push("cookie")
    }
    try {
      return Effect.succeed(normalizeTransports(list))
    } catch (e) {
      return refuse(tag, e instanceof Error ? e.message : String(e))
    }
  })

/**
 * The security handlers of a Tag declared with {@link securityOptions}. Dies when the Tag's
 * documented cookie is not the configured one (OpenAPI would document the wrong name), or when it
 * documents a token in the query string (never read: ASVS 14.2.1) or HTTP Basic credentials.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const securityHandlers = <T extends SecurityTag>(
  tag: T
): Effect.Effect<SecurityHandlers<CurrentSessionShape, HttpApiError.ServiceUnavailable, keyof T["security"]>, never, Sessions> =>
  handlersOf(tag, (sessions, config, transports) => securityCurrentSession(sessions, config, transports))

/**
 * The security handlers of a Tag declared with {@link requireUserOptions}.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const requireUserHandlers = <T extends SecurityTag>(
  tag: T
): Effect.Effect<
  SecurityHandlers<CurrentUser["Type"], HttpApiError.Unauthorized | HttpApiError.ServiceUnavailable, keyof T["security"]>,
  never,
  Sessions
> =>
  handlersOf(
    tag,
    (sessions, config, transports) => Effect.flatMap(securityCurrentSession(sessions, config, transports), currentUserFromSession)
  )

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

/**
 * The security handlers of a Tag declared with {@link requireRecentLoginOptions}: the log-in
 * must be younger than `maxAge`.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const requireRecentLoginHandlers = (
  tag: SecurityTag,
  maxAge: Duration.DurationInput
): Effect.Effect<SecurityHandlers<CurrentUser["Type"], RecentLoginRequired_ | HttpApiError.ServiceUnavailable>, never, Sessions> =>
  handlersOf(tag, (sessions, config) =>
    Effect.flatMap(securityCurrentSession(sessions, config), (current) =>
      current.requireRecentLogin(maxAge).pipe(
        // A store that fails is an outage, not a stale log-in.
        Effect.catchIf(isSessionStoreError, (e) =>
          Effect.zipRight(Effect.logWarning("session store unavailable", e), Effect.fail(new HttpApiError.ServiceUnavailable()))),
        Effect.map((userId) => CurrentUser.of({ userId, session: current }))
      )))

/**
 * The implementation of {@link RequireRecentLogin}, over the `Sessions` in context: the log-in
 * must be younger than `maxAge` (e.g. `"5 minutes"`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRequireRecentLogin = (maxAge: Duration.DurationInput): Layer.Layer<RequireRecentLogin, never, Sessions> =>
  Layer.effect(RequireRecentLogin, requireRecentLoginHandlers(RequireRecentLogin, maxAge))
