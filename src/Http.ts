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
import type { Either, Option } from "effect"
import type { ParseError } from "effect/ParseResult"
import { Context, Effect, Layer, Schema } from "effect"
import { currentUserFromSession, makeMiddleware, securityCurrentSession, toApiErrors as toApiErrors_ } from "./internal/http.js"
import { SessionDataTooLarge as SessionDataTooLarge_ } from "./internal/httpApiErrors.js"
import { makeOriginCheck } from "./internal/originCheck.js"
import type { SessionStoreError } from "./Persistence.js"
import type { Json, Key, KeyLike, Session } from "./Session.js"
import type {
  SessionConflictError,
  SessionDataError,
  SessionError,
  SessionGoneError,
  SessionInfo,
  SessionReadError,
  SessionWriteError,
  UserLoaderError
} from "./Sessions.js"
import { Sessions } from "./Sessions.js"

/**
 * The session of the current request. Lazy: reading never creates a session; the first write
 * (or {@link CurrentSessionShape.ensure}) does, and the response then carries the cookie.
 *
 * @since 0.1.0
 * @category models
 */
export interface CurrentSessionShape {
  /** The session's latest value, if the request has one. */
  readonly session: Effect.Effect<Option.Option<Session>, SessionStoreError>
  /** The session, created now if the request has none. */
  readonly ensure: Effect.Effect<Session, SessionStoreError>
  /** The logged-in user's ID. */
  readonly userId: Effect.Effect<Option.Option<string>, SessionStoreError>
  /**
   * The value under `key` (none without a session): JSON for a string key; for a typed key
   * ({@link Session.key}) decoded through its Schema, and a `SessionDataError` when the stored
   * value no longer decodes.
   */
  readonly get: {
    <A>(key: Key<A>): Effect.Effect<Option.Option<A>, SessionStoreError | SessionDataError>
    (key: string): Effect.Effect<Option.Option<Json>, SessionStoreError>
  }
  /** Sets `key` (creating the session if needed; a typed key encodes the value through its Schema). */
  readonly set: {
    <A>(key: Key<A>, value: NoInfer<A>): Effect.Effect<void, SessionError>
    (key: string, value: Json): Effect.Effect<void, SessionError>
  }
  /** Removes `key` (a no-op without a session or when the key is absent). */
  readonly remove: (key: KeyLike) => Effect.Effect<void, SessionWriteError>
  /** Removes `key` and returns its value (none without a session). */
  readonly pop: {
    <A>(key: Key<A>): Effect.Effect<Option.Option<A>, SessionWriteError | SessionDataError>
    (key: string): Effect.Effect<Option.Option<Json>, SessionWriteError>
  }
  /** Atomically replaces the value under `key` with `f(old)` and returns it (creating the session if needed). */
  readonly update: {
    <A>(key: Key<A>, f: (old: Option.Option<A>) => NoInfer<A>): Effect.Effect<A, SessionError>
    (key: string, f: (old: Option.Option<Json>) => Json): Effect.Effect<Json, SessionError>
  }
  /**
   * Atomically applies a pure change — several keys in one step — and returns the new session
   * (creating it if needed). `f` may return the `Either` of the typed `Session.set`.
   */
  readonly modify: (f: (session: Session) => Session | Either.Either<Session, ParseError>) => Effect.Effect<Session, SessionError>
  /** Logs a user in (creating the session if needed); the token rotates. */
  readonly logIn: (userId: string, options?: { readonly exclusive?: boolean }) => Effect.Effect<void, SessionWriteError>
  /**
   * Logs the user out; the token rotates with no grace period. The data stays (`keepData: true`,
   * the default, as in rivo/sessions: carts and preferences survive); `logOut({ keepData: false })`
   * clears it too.
   */
  readonly logOut: (options?: { readonly keepData?: boolean }) => Effect.Effect<void, SessionWriteError>
  /**
   * Replaces the token now. `regenerateId()` lets the old token follow for the grace period
   * (periodic hygiene: requests in flight keep the session); `regenerateId({ grace: false })` kills
   * it at once — use that after a privilege change such as a step-up (MFA, sudo mode).
   */
  readonly regenerateId: (options?: { readonly grace?: boolean }) => Effect.Effect<void, SessionWriteError>
  /** Ends the session and clears the cookie (nothing to end when the request's token was retired meanwhile). */
  readonly destroy: Effect.Effect<void, SessionStoreError | SessionConflictError>
  /** The sessions of the logged-in user (empty when nobody is logged in). */
  readonly listSessions: Effect.Effect<ReadonlyArray<SessionInfo & { readonly current: boolean }>, SessionReadError>
  /** Ends one session of the logged-in user by its public id (from `listSessions`); `false` when it is not theirs. */
  readonly endSession: (id: string) => Effect.Effect<boolean, SessionReadError>
  /** Ends every session of the logged-in user, this one included. */
  readonly logOutEverywhere: Effect.Effect<number, SessionReadError>
  /** The user object, through the `UserLoader` in context. */
  readonly user: Effect.Effect<Option.Option<unknown>, SessionStoreError | UserLoaderError>
}

/**
 * The current request's session, provided by {@link middleware}.
 *
 * @since 0.1.0
 * @category tags
 */
export class CurrentSession extends Context.Tag("effect-sessions/Http/CurrentSession")<CurrentSession, CurrentSessionShape>() {}

/**
 * Options of {@link middleware}.
 *
 * @since 0.1.0
 * @category models
 */
export interface MiddlewareOptions {
  /** Create a session for every request that has none (default `false`: lazy). */
  readonly create?: boolean
  /** Status of the answer when the store fails (default 503). No cookie is set then. */
  readonly unavailableStatus?: number
  /**
   * Status of the answer when the session ended while the request was using it, or the request's
   * token was retired meanwhile (default 401).
   */
  readonly goneStatus?: number
  /**
   * Status of the answer when a handler lets through a write above `maxDataBytes` (a
   * `SessionDataError` caused by `SessionDataTooLargeError`; default 413). The session is as it
   * was; nothing else about the response changes.
   */
  readonly tooLargeStatus?: number
  /**
   * What `Clear-Site-Data` asks the browser to remove when a handler ends or logs out the
   * session (ASVS 14.3.1); `false` sends no header. Default `["cookies", "storage"]`. A response
   * that ends the session (`destroy`, `logOutEverywhere`, `endSession` of the current one) sends
   * the whole list. A response that also sets the session cookie — `logOut`, which keeps the
   * session under a fresh token, or a log-in after a destroy — sends the list without `"cookies"`
   * (`"*"` becomes `"cache", "storage", "executionContexts"`): the browser applies
   * `Clear-Site-Data: "cookies"` after the response's `Set-Cookie`, so it would remove the new
   * token and with it the data a `logOut()` keeps. `"cookies"` removes every cookie of the
   * registrable domain (sibling subdomains too); browsers honour the header only over HTTPS and
   * on `localhost`.
   */
  readonly clearSiteData?: false | ReadonlyArray<ClearSiteDataType>
}

/**
 * A directive of `Clear-Site-Data` (W3C Clear Site Data).
 *
 * @since 0.1.0
 * @category models
 */
export type ClearSiteDataType = "cookies" | "storage" | "cache" | "executionContexts" | "*"

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
 * Options of {@link originCheck}.
 *
 * @since 0.1.0
 * @category models
 */
export interface OriginCheckOptions {
  /**
   * The app's own origin (`https://app.example.com`). Default: the origin the request was sent
   * to, from its `Host` header — with {@link scheme} when given, else host and port only.
   * Behind a proxy that rewrites `Host`, set it.
   */
  readonly origin?: string
  /** The scheme of the app's own origin when it is derived from `Host` (default: any). */
  readonly scheme?: "http" | "https"
  /** Other origins allowed to send state-changing requests (`https://admin.example.com`). Default none. */
  readonly allowedOrigins?: ReadonlyArray<string>
}

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
 * meanwhile, {@link SessionDataTooLarge} (413). {@link SessionSecurity} is the ready-made Tag for the default name; for another
 * name declare yours with the same name as the configuration's `cookie.name`:
 * `class MySecurity extends HttpApiMiddleware.Tag<MySecurity>()("MySecurity", Http.securityOptions("sid")) {}`
 * and implement it with `Layer.effect(MySecurity, Http.securityHandlers(MySecurity))`.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export const securityOptions = <const Name extends string = "__Host-id">(cookieName?: Name) => ({
  provides: CurrentSession,
  // What the security handler (503) and toApiErrors in a handler (401, 413) may answer.
  failure: Schema.Union(HttpApiError.ServiceUnavailable, HttpApiError.Unauthorized, SessionDataTooLarge_),
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
 * The logged-in user of an endpoint behind {@link RequireUser}, with the request's session.
 *
 * @since 0.1.0
 * @category tags
 */
export class CurrentUser extends Context.Tag("effect-sessions/Http/CurrentUser")<CurrentUser, {
  readonly userId: string
  readonly session: CurrentSessionShape
}>() {}

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
 * Maps the session errors an HttpApi handler lets through to HttpApi errors: a store failure or
 * a lost race → `ServiceUnavailable` (503, the cookie left alone), a session that ended meanwhile
 * → `Unauthorized` (401), a write above `maxDataBytes` → {@link SessionDataTooLarge} (413); all three
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
