/**
 * Security notices for the demo: "new sign-in" (OWASP ASVS 6.3.5), from the session events. A
 * background fiber subscribes to `Sessions.events` for as long as the layer lives and keeps, per
 * user, the last few sign-ins from a device not seen before for that user (`LoggedIn.newDevice`)
 * and the sessions ended because their client changed (`Anomaly`). `GET /notices` shows them,
 * `GET /api/notices` answers them as JSON.
 *
 * The notices live in this process's memory, as the events do: a demo with several processes
 * shows each process's own. A real app would store them with the user, or send an e-mail.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { Clock, Context, Effect, Layer, Option, Stream } from "effect"
import { Http, type SessionEvents, Sessions } from "../../src/index.js"
import * as pages from "./pages.js"

/** One notice for a user. */
export interface Notice {
  readonly at: number
  readonly kind: "new-sign-in" | "client-changed"
  /** The session's public ID (as on "my sessions"), never a token. */
  readonly sessionId: string
  readonly ip: string | undefined
}

/** Notices kept per user, and users kept at most (the oldest users are forgotten first). */
export const PER_USER = 10
export const MAX_USERS = 10_000

/** The notices of this process. */
export class SecurityNotices extends Context.Tag("demo/SecurityNotices")<SecurityNotices, {
  readonly forUser: (userId: string) => Effect.Effect<ReadonlyArray<Notice>>
}>() {}

/** The notice an event makes, if any. */
export const noticeOf = (event: SessionEvents.SessionEvent): Option.Option<readonly [string, Notice]> => {
  switch (event._tag) {
    case "LoggedIn":
      return event.newDevice
        ? Option.some([event.userId, { at: event.at, kind: "new-sign-in", sessionId: event.sessionId, ip: Option.getOrUndefined(event.ip) }])
        : Option.none()
    case "Anomaly":
      return Option.map(event.userId, (user) => [user, { at: event.at, kind: "client-changed", sessionId: event.sessionId, ip: Option.getOrUndefined(event.ip) }])
    default:
      return Option.none()
  }
}

/** The notices, fed by the session events while the layer lives. Needs `Sessions`. */
export const layer: Layer.Layer<SecurityNotices, never, Sessions.Sessions> = Layer.scoped(
  SecurityNotices,
  Effect.gen(function*() {
    const sessions = yield* Sessions.Sessions
    // Insertion order is recency: a user with a new notice moves to the end.
    const byUser = new Map<string, ReadonlyArray<Notice>>()
    const keep = (user: string, notice: Notice) => {
      const before = byUser.get(user) ?? []
      byUser.delete(user)
      byUser.set(user, [notice, ...before].slice(0, PER_USER))
      if (byUser.size > MAX_USERS) byUser.delete(byUser.keys().next().value!)
    }
    // Subscribe before the layer is ready, so that no event published after start-up is missed.
    const queue = yield* sessions.subscribe()
    yield* Stream.fromQueue(queue).pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => Option.map(noticeOf(event), ([user, notice]) => keep(user, notice)))
      ),
      Effect.forkScoped
    )
    return { forUser: (userId) => Effect.sync(() => byUser.get(userId) ?? []) }
  })
)

const describe = (n: Notice): string =>
  n.kind === "new-sign-in"
    ? `New sign-in from a browser not seen before for your account${n.ip === undefined ? "" : ` (IP ${n.ip})`}.`
    : `A session was ended because its browser or network changed${n.ip === undefined ? "" : ` (request from IP ${n.ip})`}.`

/** The notices of the request's user (none without the layer, or without a user). */
const currentNotices = Effect.gen(function*() {
  const current = yield* Http.CurrentSession
  const user = yield* current.userId
  const notices = yield* Effect.serviceOption(SecurityNotices)
  if (Option.isNone(user) || Option.isNone(notices)) return { user: Option.getOrUndefined(user), notices: [] as ReadonlyArray<Notice> }
  return { user: user.value, notices: yield* notices.value.forUser(user.value) }
})

/** `GET /notices` (a page) and `GET /api/notices` (`{"user", "notices": [{at, kind, sessionId, ip, text}]}`, ISO times). */
export const routes = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/api/notices",
    Effect.map(currentNotices, ({ notices, user }) =>
      HttpServerResponse.unsafeJson({
        user: user ?? null,
        notices: notices.map((n) => ({ ...n, at: new Date(n.at).toISOString(), ip: n.ip ?? null, text: describe(n) }))
      }, { headers: { "cache-control": "no-store" } }))
  ),
  HttpRouter.get(
    "/notices",
    Effect.gen(function*() {
      const { notices, user } = yield* currentNotices
      const now = yield* Clock.currentTimeMillis
      const body = user === undefined
        ? pages.html`<h1>Security notices</h1><p class="lead">Log in on the <a href="/">home page</a> to see your notices.</p>`
        : pages.html`<h1>Security notices</h1>
<p class="lead">Sign-ins of <strong>${user}</strong> from a browser not seen before for this account, and sessions ended
because their browser changed. Not you? End the session on <a href="/sessions">my sessions</a>.</p>
<section class="card wide"><ul id="notices">
${notices.length === 0 ? pages.html`<li class="muted">No notices.</li>` : notices.map((n) =>
            pages.html`<li data-session="${n.sessionId}">${describe(n)} <span class="muted small">${pages.formatTime(n.at, now)}</span></li>`)}
</ul></section>`
      return HttpServerResponse.text(pages.layout({ title: "Security notices", active: "notices", user, body }), {
        contentType: "text/html; charset=utf-8",
        headers: {
          "cache-control": "no-store",
          "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
          "x-content-type-options": "nosniff",
          "referrer-policy": "same-origin"
        }
      })
    })
  )
)
