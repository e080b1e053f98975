/**
 * The demo app: server-rendered pages (`/`, `/sessions`) and a small JSON contract (`/api/...`)
 * for scripts and load tests, behind the session middleware.
 *
 * `app` needs `Sessions` and `SessionConfig`; `layerSessions` builds them over a store with the
 * demo's defaults and the `SESSIONS_*` environment variables on top. Tests mount `app` on their
 * own server with `Sessions.layerMemory(...)`.
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { ConfigError } from "effect/ConfigError"
import { Clock, Context, Duration, Effect, Layer, Option, Schema } from "effect"
import { randomBytes, scryptSync, timingSafeEqual } from "node:crypto"
import { Http, Password, SecureRandom, SessionConfig, Sessions } from "../../src/index.js"
import type { Json } from "../../src/Session.js"
import type { Persistence } from "../../src/index.js"
import * as Notices from "./notices.js"
import * as pages from "./pages.js"

// ---------------------------------------------------------------------------
// configuration
// ---------------------------------------------------------------------------

/**
 * The demo's defaults: short enough to watch a rotation by hand (the library's defaults are
 * 15 minutes and 1 minute). Every `SESSIONS_*` environment variable overrides them, e.g.
 * `SESSIONS_ID_ROTATION_INTERVAL="20 seconds" SESSIONS_GRACE_PERIOD="10 seconds"`.
 */
export const demoDefaults: SessionConfig.SessionConfigInput = {
  idRotationInterval: "1 minute",
  gracePeriod: "30 seconds",
  touchInterval: "10 seconds",
  // At most 3 sessions per user: a fourth log-in ends the least recently used one.
  maxSessionsPerUser: 3
}

/**
 * `Sessions` and `SessionConfig` over the store given, configured by `demoDefaults` and the
 * environment (`SessionConfig.layerConfig`).
 */
export const layerSessions = <E>(
  store: Layer.Layer<Persistence.Persistence, E, SecureRandom.SecureRandom>,
  overrides: SessionConfig.SessionConfigInput = demoDefaults
): Layer.Layer<Sessions.Sessions | SessionConfig.SessionConfig, E | SessionConfig.SessionConfigError | ConfigError> =>
  Layer.merge(Sessions.layerFromContext, Sessions.layerSweeper).pipe(
    Layer.provideMerge(Layer.unwrapEffect(Effect.map(SessionConfig.config, (fromEnv) => {
      // An idle timeout from the environment without a touch interval gets the library's
      // default touch interval (a tenth of it, at most a minute), which is always valid.
      if (fromEnv.idleTimeout === undefined || fromEnv.touchInterval !== undefined) return SessionConfig.layerConfig(overrides)
      const { touchInterval: _ignored, ...rest } = overrides
      return SessionConfig.layerConfig(rest)
    }))),
    Layer.provide(store),
    Layer.provide(SecureRandom.layer)
  )

/** The name of the store, shown on the home page (set by the server). */
export class StoreName extends Context.Reference<StoreName>()("demo/StoreName", {
  defaultValue: () => "memory"
}) {}

/**
 * How recent a log-in the "change password" page asks for (default 5 minutes; the server reads
 * `DEMO_RECENT_LOGIN_MAX_AGE`, which the browser test shortens).
 */
export class RecentLoginMaxAge extends Context.Reference<RecentLoginMaxAge>()("demo/RecentLoginMaxAge", {
  defaultValue: (): Duration.Duration => Duration.minutes(5)
}) {}

/** The service name given to the password checker (a password may not contain it). */
export const serviceName = "effect-sessions demo"

/** The longest user name accepted. */
export const MAX_USER_LENGTH = 64

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

const timings = Effect.map(Sessions.Sessions, ({ config: c }): pages.Timings => ({
  idleTimeout: Duration.toMillis(c.idleTimeout),
  absoluteTimeout: Duration.toMillis(c.absoluteTimeout),
  idRotationInterval: Duration.toMillis(c.idRotationInterval),
  gracePeriod: Duration.toMillis(c.gracePeriod),
  touchInterval: Duration.toMillis(c.touchInterval),
  cookieName: c.cookie.name,
  secure: c.cookie.secure
}))

const asCount = (value: Option.Option<Json>): number =>
  Option.match(value, { onNone: () => 0, onSome: (v) => (typeof v === "number" && Number.isFinite(v) ? v : 0) })

const increment = (old: Option.Option<Json>): Json => asCount(old) + 1

/** Headers of every HTML page: never cached, no script, no framing. */
const pageHeaders = {
  "cache-control": "no-store",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin"
}

const page = (body: string, status = 200) =>
  HttpServerResponse.text(body, { status, contentType: "text/html; charset=utf-8", headers: pageHeaders })

/** A 303 after a POST form: the browser follows with a GET. */
const seeOther = (location: string) => HttpServerResponse.redirect(location, { status: 303 })

const json = (body: unknown, status = 200) =>
  HttpServerResponse.unsafeJson(body, { status, headers: { "cache-control": "no-store" } })

const badRequest = (message: string) => json({ error: message }, 400)

/** A user name: trimmed, 1–64 code points, no control characters. */
export const validateUser = (raw: string): { readonly user: string } | { readonly error: string } => {
  const user = raw.normalize("NFKC").trim()
  if (user === "") return { error: "the user name is empty" }
  if ([...user].length > MAX_USER_LENGTH) return { error: `the user name is longer than ${MAX_USER_LENGTH} characters` }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(user)) return { error: "the user name holds control characters" }
  return { user }
}

/** A password problem as advice for the user. */
export const describeProblem: (problem: Password.PasswordProblem) => string = Password.PasswordProblem.$match({
  TooShort: ({ length, min }) => `Too short: ${length} characters, at least ${min} are needed. A few unrelated words make a good passphrase.`,
  TooLong: ({ length, max }) => `Too long: ${length} characters, at most ${max} are accepted.`,
  ContextWord: ({ word }) => `It contains “${word}”, which is your user name or this site's name.`,
  Compromised: () => "It is one of the most common passwords, found in breach corpora.",
  DictionaryWord: ({ word }) => `It is a single dictionary word or name (“${word}”), which is easy to guess. Try a phrase.`,
  Repetitive: () => "It repeats the same few characters.",
  Sequential: () => "It is a sequence such as 1234, abcd or qwerty."
})

/** Every problem of a password, as advice (empty: accepted). */
export const passwordProblems = (password: string, user: string): ReadonlyArray<string> =>
  Password.checkPassword(password, { context: { userName: user, serviceName } }).problems.map(describeProblem)

const notices: Record<string, string> = {
  "logged-in": "You are logged in. The token was replaced.",
  "logged-out": "You are logged out. The counter stayed; the token was replaced.",
  "ended": "The session was ended.",
  "ended-current": "This browser's session was ended: you have a new, empty session from now on.",
  "logged-out-everywhere": "Every session of your user was ended, this one included.",
  "logged-out-others": "Every other session of your user was ended; this one stays."
}

const noticeOf = Effect.map(
  HttpServerRequest.schemaSearchParams(Schema.Struct({ notice: Schema.optional(Schema.String) })),
  ({ notice }) => (notice === undefined ? undefined : notices[notice])
).pipe(Effect.orElseSucceed(() => undefined))

/** The home page, optionally with the login form as submitted. */
const renderHome = (login?: { readonly user: string; readonly problems: ReadonlyArray<string> }, status = 200) =>
  Effect.gen(function*() {
    const current = yield* Http.CurrentSession
    const session = yield* current.session
    const now = yield* Clock.currentTimeMillis
    const notice = yield* noticeOf
    const model: pages.HomeModel = {
      now,
      session: Option.getOrUndefined(Option.map(session, (s) => ({
        createdAt: s.createdAt,
        idIssuedAt: s.idIssuedAt,
        lastAccessAt: s.lastAccessAt,
        user: Option.getOrUndefined(s.userId),
        count: asCount(Option.fromNullable(s.data["count"]))
      }))),
      timings: yield* timings,
      store: yield* StoreName,
      notice,
      login
    }
    return page(pages.homePage(model), status)
  })

const sessionRows = Effect.gen(function*() {
  const current = yield* Http.CurrentSession
  const list = yield* current.listSessions
  return list.map((s) => ({
    id: s.id,
    createdAt: s.createdAt,
    lastAccessAt: s.lastAccessAt,
    idIssuedAt: s.idIssuedAt,
    ip: Option.getOrUndefined(s.ip),
    current: s.current
  }))
})

const LoginForm = Schema.Struct({ user: Schema.String, password: Schema.String, remember: Schema.optional(Schema.String) })
const LoginJson = Schema.Struct({ user: Schema.String, password: Schema.optional(Schema.String), remember: Schema.optional(Schema.Boolean) })
const PasswordForm = Schema.Struct({ password: Schema.String })

// ---------------------------------------------------------------------------
// the password check: there is no user database, so the session keeps a salted scrypt hash of the
// password the user logged in with, standing in for the user's record
// ---------------------------------------------------------------------------

const PASSWORD_CHECK = "passwordCheck"

const hashPassword = (password: string, salt: Buffer) => scryptSync(password.normalize("NFKC"), salt, 32)

/** A salted hash of the password (`salt.hash`, base64url), to check a re-entered one against. */
const passwordCheck = (password: string): string => {
  const salt = randomBytes(16)
  return `${salt.toString("base64url")}.${hashPassword(password, salt).toString("base64url")}`
}

/** Whether `password` is the one `check` was made of (compared in constant time). */
const passwordMatches = (password: string, check: unknown): boolean => {
  if (typeof check !== "string") return false
  const [salt, hash] = check.split(".")
  if (salt === undefined || hash === undefined) return false
  const expected = Buffer.from(hash, "base64url")
  const actual = hashPassword(password, Buffer.from(salt, "base64url"))
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

/** Logs the user in (the token rotates), with their "remember me" choice and the password check. */
const logInWith = (user: string, password: string | undefined, remember: boolean) =>
  Effect.gen(function*() {
    const current = yield* Http.CurrentSession
    yield* current.logIn(user, { persistent: remember })
    if (password === undefined) yield* current.remove(PASSWORD_CHECK)
    else yield* current.set(PASSWORD_CHECK, yield* Effect.sync(() => passwordCheck(password)))
  })

/** Logs the user out; the password check goes with the user (the counter stays). */
const logOutKeepingData = Effect.gen(function*() {
  const current = yield* Http.CurrentSession
  yield* current.remove(PASSWORD_CHECK)
  yield* current.logOut()
})
const SessionIdParams = Schema.Struct({ id: Schema.String })

/** Ends one session of the logged-in user by its public id; ending this browser's session ends the request's too. */
const endSession = (id: string) =>
  Effect.gen(function*() {
    const current = yield* Http.CurrentSession
    const sessions = yield* Sessions.Sessions
    const user = yield* current.userId
    if (Option.isNone(user)) return { ended: false, current: false }
    const list = yield* current.listSessions
    const target = list.find((s) => s.id === id)
    if (target === undefined) return { ended: false, current: false }
    if (target.current) {
      yield* current.destroy
      return { ended: true, current: true }
    }
    return { ended: yield* sessions.endSession(user.value, id), current: false }
  })

// ---------------------------------------------------------------------------
// routes
// ---------------------------------------------------------------------------

const gateMillis = Effect.map(RecentLoginMaxAge, Duration.toMillis)

/**
 * "Change password": behind the recent-login gate. A log-in older than `RecentLoginMaxAge`
 * (or none) gets the page asking for the password again (403); a recent one gets the form, and
 * with `newPassword` changes the password (checked as at log-in) and logs out the user's other
 * sessions.
 */
const accountPassword = (newPassword?: string) =>
  Effect.gen(function*() {
    const current = yield* Http.CurrentSession
    const user = yield* current.userId
    if (Option.isNone(user)) return seeOther("/")
    const maxAge = yield* gateMillis
    const recent = yield* current.requireRecentLogin(maxAge).pipe(Effect.either)
    if (recent._tag === "Left") {
      if (!(recent.left instanceof Http.RecentLoginRequired)) return yield* Effect.fail(recent.left)
      return page(pages.reauthenticatePage({ user: user.value, maxAge }), 403)
    }
    if (newPassword === undefined) return page(pages.changePasswordPage({ user: user.value, maxAge }))
    const problems = passwordProblems(newPassword, user.value)
    if (problems.length > 0) return page(pages.changePasswordPage({ user: user.value, maxAge, problems }), 422)
    yield* current.set(PASSWORD_CHECK, yield* Effect.sync(() => passwordCheck(newPassword)))
    // A new password ends the user's other sessions (OWASP ASVS 7.4.3): whoever held one with the
    // old password is out.
    const othersEnded = yield* current.logOutOthers
    return page(pages.changePasswordPage({ user: user.value, maxAge, changed: true, othersEnded }))
  })

/** The pages: POST forms answer 303 back to a page. */
const htmlRoutes = HttpRouter.empty.pipe(
  HttpRouter.get("/", renderHome()),
  HttpRouter.post(
    "/counter",
    Effect.gen(function*() {
      const current = yield* Http.CurrentSession
      yield* current.update("count", increment)
      return seeOther("/")
    })
  ),
  HttpRouter.post(
    "/login",
    Effect.gen(function*() {
      const form = yield* HttpServerRequest.schemaBodyUrlParams(LoginForm).pipe(Effect.option)
      if (Option.isNone(form)) return yield* renderHome({ user: "", problems: ["Enter a user name and a password."] }, 400)
      const checked = validateUser(form.value.user)
      if ("error" in checked) return yield* renderHome({ user: form.value.user, problems: [`Invalid user name: ${checked.error}.`] }, 422)
      const problems = passwordProblems(form.value.password, checked.user)
      if (problems.length > 0) return yield* renderHome({ user: checked.user, problems }, 422)
      yield* logInWith(checked.user, form.value.password, form.value.remember === "on")
      return seeOther("/?notice=logged-in")
    })
  ),
  HttpRouter.post(
    "/logout",
    Effect.as(logOutKeepingData, seeOther("/?notice=logged-out"))
  ),
  HttpRouter.get("/account/password", accountPassword()),
  HttpRouter.post(
    "/account/password",
    Effect.gen(function*() {
      const form = yield* HttpServerRequest.schemaBodyUrlParams(PasswordForm).pipe(Effect.option)
      return yield* accountPassword(Option.getOrElse(Option.map(form, (f) => f.password), () => ""))
    })
  ),
  HttpRouter.post(
    "/account/reauthenticate",
    Effect.gen(function*() {
      const current = yield* Http.CurrentSession
      const session = yield* current.session
      const user = Option.flatMap(session, (s) => s.userId)
      if (Option.isNone(user)) return seeOther("/")
      const form = yield* HttpServerRequest.schemaBodyUrlParams(PasswordForm).pipe(Effect.option)
      const check = Option.flatMap(session, (s) => Option.fromNullable(s.data[PASSWORD_CHECK]))
      const given = Option.getOrElse(Option.map(form, (f) => f.password), () => "")
      if (!passwordMatches(given, Option.getOrUndefined(check))) {
        return page(pages.reauthenticatePage({ user: user.value, maxAge: yield* gateMillis, error: "That is not the password you logged in with." }), 403)
      }
      // The user proved who they are again: the log-in counts as recent, and the token rotates.
      yield* current.reauthenticated
      return seeOther("/account/password")
    })
  ),
  HttpRouter.get(
    "/sessions",
    Effect.gen(function*() {
      const current = yield* Http.CurrentSession
      const user = yield* current.userId
      const model: pages.SessionsModel = {
        now: yield* Clock.currentTimeMillis,
        user: Option.getOrUndefined(user),
        sessions: yield* sessionRows,
        timings: yield* timings,
        notice: yield* noticeOf,
        limit: (yield* Sessions.Sessions).config.maxSessionsPerUser
      }
      return page(pages.sessionsPage(model))
    })
  ),
  HttpRouter.post(
    "/sessions/:id/end",
    Effect.gen(function*() {
      const { id } = yield* HttpRouter.schemaPathParams(SessionIdParams)
      const result = yield* endSession(id)
      if (result.current) return seeOther("/?notice=ended-current")
      return seeOther(result.ended ? "/sessions?notice=ended" : "/sessions")
    }).pipe(Effect.catchTag("ParseError", () => Effect.succeed(seeOther("/sessions"))))
  ),
  HttpRouter.post(
    "/logout-everywhere",
    Effect.gen(function*() {
      const current = yield* Http.CurrentSession
      yield* current.logOutEverywhere
      return seeOther("/?notice=logged-out-everywhere")
    })
  ),
  HttpRouter.post(
    "/logout-others",
    Effect.gen(function*() {
      const current = yield* Http.CurrentSession
      yield* current.logOutOthers
      return seeOther("/sessions?notice=logged-out-others")
    })
  )
)

/** `POST /api/login` (and `/api/token`): a JSON log-in, with an optional password check. */
const apiLogin = Effect.gen(function*() {
  const body = yield* HttpServerRequest.schemaBodyJson(LoginJson).pipe(Effect.option)
  if (Option.isNone(body)) return badRequest("expected a JSON body {\"user\": string, \"password\"?: string}")
  const checked = validateUser(body.value.user)
  if ("error" in checked) return badRequest(checked.error)
  if (body.value.password !== undefined) {
    const problems = passwordProblems(body.value.password, checked.user)
    if (problems.length > 0) return json({ error: "weak password", problems }, 422)
  }
  yield* logInWith(checked.user, body.value.password, body.value.remember === true)
  return json({ user: checked.user })
})

/**
 * The JSON contract scripts and load tests rely on:
 *
 * | request | answer |
 * |---|---|
 * | `GET /api/counter` | `{"count": n}` (0 without a session; creates none) |
 * | `POST /api/counter` | increments, `{"count": n}` (creates the session if needed) |
 * | `GET /api/me` | `{"user": name \| null, "count": n}` |
 * | `POST /api/login` `{"user": name, "password"?: string, "remember"?: boolean}` | `{"user": name}`; 400 bad body or name; 422 `{"error", "problems"}` weak password (checked only when given); `remember: true` makes the cookie persistent |
 * | `POST /api/token` (same body) | `/api/login` for bearer clients: the token comes back in `Set-Session-Token` |
 * | `POST /api/logout` | `{"user": null}` |
 * | `POST /api/logout-everywhere` | `{"ended": n}` |
 * | `GET /api/sessions` | `{"user": name \| null, "sessions": [{id, createdAt, lastAccessAt, idIssuedAt, ip, current}]}` (ISO times) |
 * | `DELETE /api/sessions/:id` | `{"ended": boolean}` |
 * | `POST /api/logout-others` | `{"ended": n}`: every other session of the user ends, this one stays |
 *
 * A store failure answers 503 with an empty body (the middleware). Every `/api/` route accepts the
 * session cookie or `Authorization: Bearer <token>` (a header wins when a request has both); a
 * bearer client reads rotated tokens in `Set-Session-Token` (an empty one: the session ended).
 */
const apiRoutes = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/api/counter",
    Effect.gen(function*() {
      const current = yield* Http.CurrentSession
      return json({ count: asCount(yield* current.get("count")) })
    })
  ),
  HttpRouter.post(
    "/api/counter",
    Effect.gen(function*() {
      const current = yield* Http.CurrentSession
      return json({ count: yield* current.update("count", increment) })
    })
  ),
  HttpRouter.get(
    "/api/me",
    Effect.gen(function*() {
      const current = yield* Http.CurrentSession
      const session = yield* current.session
      return json({
        user: Option.getOrNull(Option.flatMap(session, (s) => s.userId)),
        count: Option.match(session, { onNone: () => 0, onSome: (s) => asCount(Option.fromNullable(s.data["count"])) })
      })
    })
  ),
  HttpRouter.post("/api/login", apiLogin),
  // The same log-in for bearer clients: `app` serves it with the bearer transport only, so the
  // new token comes back in Set-Session-Token (a cookie client keeps using /api/login).
  HttpRouter.post("/api/token", apiLogin),
  HttpRouter.post(
    "/api/logout",
    Effect.as(logOutKeepingData, json({ user: null }))
  ),
  HttpRouter.post(
    "/api/logout-everywhere",
    Effect.gen(function*() {
      const current = yield* Http.CurrentSession
      return json({ ended: yield* current.logOutEverywhere })
    })
  ),
  HttpRouter.post(
    "/api/logout-others",
    Effect.gen(function*() {
      const current = yield* Http.CurrentSession
      return json({ ended: yield* current.logOutOthers })
    })
  ),
  HttpRouter.get(
    "/api/sessions",
    Effect.gen(function*() {
      const current = yield* Http.CurrentSession
      const user = yield* current.userId
      const rows = yield* sessionRows
      return json({
        user: Option.getOrNull(user),
        sessions: rows.map((r) => ({
          id: r.id,
          createdAt: new Date(r.createdAt).toISOString(),
          lastAccessAt: new Date(r.lastAccessAt).toISOString(),
          idIssuedAt: new Date(r.idIssuedAt).toISOString(),
          ip: r.ip ?? null,
          current: r.current
        }))
      })
    })
  ),
  HttpRouter.del(
    "/api/sessions/:id",
    Effect.gen(function*() {
      const { id } = yield* HttpRouter.schemaPathParams(SessionIdParams)
      const result = yield* endSession(id)
      return json({ ended: result.ended })
    }).pipe(Effect.catchTag("ParseError", () => Effect.succeed(badRequest("bad session id"))))
  )
)

/**
 * Any other path: a 404 answered by the app itself rather than by the server's `RouteNotFound`
 * handling, so that it passes through the session middleware and carries the session cookie when
 * this request rotated the token (the browser's automatic `/favicon.ico` request included).
 */
const notFound = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  if (request.url.startsWith("/api/")) return json({ error: "not found" }, 404)
  const current = yield* Http.CurrentSession
  return page(pages.notFoundPage(Option.getOrUndefined(yield* current.userId)), 404)
})

/** Every route, without the session middleware. */
export const router = HttpRouter.concat(htmlRoutes, apiRoutes).pipe(HttpRouter.concat(Notices.routes), HttpRouter.all("*", notFound))

// The pages take the cookie only; the JSON API the cookie or a bearer token (a new session there
// goes in a cookie, as a script in the page expects); /api/token takes a bearer token only, so
// that a log-in there answers in Set-Session-Token.
const pagesApp = router.pipe(Http.middleware())
const apiApp = router.pipe(Http.middleware({ transport: ["cookie", "bearer"] }))
const tokenApp = router.pipe(Http.middleware({ transport: "bearer" }))

/**
 * The app: the routes behind the session middleware (its transports chosen by path), and that
 * behind the cross-site request check (a form post from another site is answered 403 before any
 * session is touched). Needs `Sessions`.
 */
export const app = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
  const path = request.url.split("?")[0] ?? ""
  return path === "/api/token" ? tokenApp : path.startsWith("/api/") ? apiApp : pagesApp
}).pipe(Http.originCheck())
