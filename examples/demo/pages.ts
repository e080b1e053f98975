/**
 * The demo's server-rendered pages: plain HTML forms, a little inline CSS, no client script.
 *
 * Every interpolation goes through {@link html}, which escapes it unless it is already
 * {@link Html} (built by {@link html} itself): user input cannot inject markup.
 */

// ---------------------------------------------------------------------------
// an escaping template
// ---------------------------------------------------------------------------

/** Markup that is safe to emit as is (built by {@link html}). */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value
  }
}

/** What {@link html} interpolates: text is escaped, `Html` passes, arrays are joined, nothing is dropped. */
export type Part = string | number | Html | ReadonlyArray<Part> | null | undefined | false

/** Escapes text for HTML content and quoted attribute values. */
export const escapeHtml = (text: string): string =>
  text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll("\"", "&quot;")
    .replaceAll("'", "&#39;")

const render = (part: Part): string => {
  if (part === null || part === undefined || part === false) return ""
  if (part instanceof Html) return part.value
  if (typeof part === "number") return escapeHtml(String(part))
  if (typeof part === "string") return escapeHtml(part)
  return part.map(render).join("")
}

/** A tagged template that escapes every interpolated value. */
export const html = (strings: TemplateStringsArray, ...parts: ReadonlyArray<Part>): Html =>
  new Html(strings.reduce((out, s, i) => out + s + (i < parts.length ? render(parts[i]) : ""), ""))

// ---------------------------------------------------------------------------
// formatting
// ---------------------------------------------------------------------------

/** `1 h 2 min`, `3 min 4 s`, `5 s`, `0 s`. Rounded down to the second. */
export const formatDuration = (ms: number): string => {
  const total = Math.max(0, Math.floor(ms / 1000))
  const d = Math.floor(total / 86_400)
  const h = Math.floor((total % 86_400) / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = total % 60
  if (d > 0) return h > 0 ? `${d} d ${h} h` : `${d} d`
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`
  if (m > 0) return s > 0 ? `${m} min ${s} s` : `${m} min`
  return `${s} s`
}

/** `14:03:27 UTC` (the date too when it is not today's). */
export const formatTime = (epochMillis: number, now: number): string => {
  const iso = new Date(epochMillis).toISOString()
  const sameDay = iso.slice(0, 10) === new Date(now).toISOString().slice(0, 10)
  return `${sameDay ? "" : `${iso.slice(0, 10)} `}${iso.slice(11, 19)} UTC`
}

const ago = (epochMillis: number, now: number) => `${formatDuration(now - epochMillis)} ago`

// ---------------------------------------------------------------------------
// layout
// ---------------------------------------------------------------------------

const style = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5f6b7a; --line: #dde3ea; --accent: #2456c7; --bg: #f5f7fa; --ok: #1d7a46; --bad: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { background: #fff; border-bottom: 1px solid var(--line); }
header .wrap { display: flex; align-items: center; gap: 1.5rem; padding-top: .75rem; padding-bottom: .75rem; }
header .brand { font-size: 1.1rem; }
header nav { display: flex; gap: 1rem; flex: 1; }
header nav a { color: var(--muted); text-decoration: none; padding: .2rem 0; border-bottom: 2px solid transparent; }
header nav a.active { color: var(--fg); border-bottom-color: var(--accent); }
header .who { color: var(--muted); font-size: .9rem; }
.wrap { max-width: 60rem; margin: 0 auto; padding: 0 1.25rem; }
main { padding: 1.5rem 0 3rem; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; }
h2 { font-size: 1.1rem; margin: 0 0 .75rem; }
p.lead { color: var(--muted); margin: 0 0 1.5rem; max-width: 46rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(17rem, 1fr)); gap: 1rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 1.1rem 1.25rem; }
.card.wide { grid-column: 1 / -1; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .35rem .75rem; margin: 0; font-size: .95rem; }
dt { color: var(--muted); }
dd { margin: 0; font-variant-numeric: tabular-nums; white-space: nowrap; }
.count { font-size: 3rem; font-weight: 650; line-height: 1; margin: .25rem 0 1rem; font-variant-numeric: tabular-nums; }
form { margin: 0; }
form.inline { display: inline; }
label { display: block; font-size: .9rem; color: var(--muted); margin: .6rem 0 .2rem; }
label.check { display: flex; gap: .4rem; align-items: center; }
input[type=text], input[type=password] { width: 100%; padding: .5rem .6rem; font: inherit; border: 1px solid #c5cdd8; border-radius: 6px; }
button { font: inherit; padding: .45rem .95rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: #fff; color: var(--bad); border-color: var(--bad); }
.actions { display: flex; gap: .5rem; align-items: center; margin-top: 1rem; flex-wrap: wrap; }
.muted { color: var(--muted); }
.small { font-size: .875rem; }
.problems { color: var(--bad); margin: .75rem 0 0; padding-left: 1.2rem; }
.notice { background: #eef4ff; border: 1px solid #c9dafc; border-radius: 8px; padding: .6rem .9rem; margin-bottom: 1rem; }
.badge { display: inline-block; font-size: .75rem; padding: .05rem .5rem; border-radius: 999px; background: #e3f4ea; color: var(--ok); font-weight: 600; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .55rem .5rem; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-size: .85rem; color: var(--muted); font-weight: 600; }
tr.current td { background: #f3f9f5; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; background: #eef1f5; padding: .05rem .3rem; border-radius: 4px; }
ol, ul { padding-left: 1.2rem; margin: 0; }
li { margin: .25rem 0; }
`

/** The page around a body. */
export const layout = (options: {
  readonly title: string
  readonly active: "home" | "sessions" | "account" | "notices"
  readonly user: string | undefined
  readonly body: Html
}): string =>
  html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · effect-sessions demo</title>
<style>${new Html(style)}</style>
</head>
<body>
<header><div class="wrap">
<strong class="brand">effect-sessions demo</strong>
<nav>
<a href="/" class="${options.active === "home" ? "active" : ""}">Home</a>
<a href="/sessions" class="${options.active === "sessions" ? "active" : ""}">My sessions</a>
<a href="/notices" class="${options.active === "notices" ? "active" : ""}" id="notices-link">Security notices</a>
</nav>
<span class="who">${options.user === undefined ? "not logged in" : html`logged in as <strong>${options.user}</strong>`}</span>
</div></header>
<main><div class="wrap">
${options.body}
</div></main>
</body>
</html>
`.value

// ---------------------------------------------------------------------------
// home
// ---------------------------------------------------------------------------

/** The timing options the pages explain. */
export interface Timings {
  readonly idleTimeout: number
  readonly absoluteTimeout: number
  readonly idRotationInterval: number
  readonly gracePeriod: number
  readonly touchInterval: number
  readonly cookieName: string
  readonly secure: boolean
}

/** What the home page shows of the request's session. */
export interface SessionView {
  readonly createdAt: number
  readonly idIssuedAt: number
  readonly lastAccessAt: number
  readonly user: string | undefined
  readonly count: number
}

/** The home page's model. */
export interface HomeModel {
  readonly now: number
  readonly session: SessionView | undefined
  readonly timings: Timings
  readonly store: string
  /** A message after a redirect. */
  readonly notice?: string | undefined
  /** The login form as last submitted, with its problems. */
  readonly login?: { readonly user: string; readonly problems: ReadonlyArray<string> } | undefined
}

const sessionCard = (m: HomeModel): Html => {
  const t = m.timings
  const s = m.session
  if (s === undefined) {
    return html`<section class="card">
<h2>Your session</h2>
<p>Your browser holds no session cookie yet. Reading a page never creates one: the first
write does — increment the counter or log in.</p>
<p class="muted small">Store: ${m.store}</p>
</section>`
  }
  const rotation = s.idIssuedAt + t.idRotationInterval - m.now
  const idle = s.lastAccessAt + t.idleTimeout - m.now
  const absolute = s.createdAt + t.absoluteTimeout - m.now
  const justRotated = s.idIssuedAt > s.createdAt && m.now - s.idIssuedAt < 1000
  return html`<section class="card">
<h2>Your session</h2>
<dl>
<dt>Session age</dt><dd id="session-age">${formatDuration(m.now - s.createdAt)}</dd>
<dt>Token age</dt><dd id="token-age">${formatDuration(m.now - s.idIssuedAt)}${justRotated ? html` <span class="badge">new token</span>` : ""}</dd>
<dt>Next rotation</dt><dd id="next-rotation">${rotation > 0 ? `in ${formatDuration(rotation)}` : "due: the next request replaces the token"}</dd>
<dt>Idle timeout</dt><dd>in ${formatDuration(idle)}</dd>
<dt>Absolute timeout</dt><dd>in ${formatDuration(absolute)}</dd>
</dl>
<p class="muted small">Store: ${m.store}</p>
<div class="actions"><a href="/">Reload</a></div>
</section>`
}

const counterCard = (m: HomeModel): Html =>
  html`<section class="card">
<h2>Counter</h2>
<div class="count" id="count">${m.session?.count ?? 0}</div>
<form method="post" action="/counter"><button type="submit" id="increment">Increment</button></form>
<p class="muted small">The number lives in the session on the server; the cookie only holds a random token.</p>
</section>`

const accountCard = (m: HomeModel): Html => {
  const user = m.session?.user
  if (user !== undefined) {
    return html`<section class="card">
<h2>Account</h2>
<p>Logged in as <strong id="user">${user}</strong>.</p>
<p class="muted small">Logging in replaced the token (no grace period), so a token planted before the
login is worthless.</p>
<div class="actions">
<form method="post" action="/logout" class="inline"><button type="submit" class="secondary" id="logout">Log out</button></form>
<a href="/sessions">My sessions</a>
<a href="/account/password" id="change-password-link">Change password</a>
</div>
</section>`
  }
  const problems = m.login?.problems ?? []
  return html`<section class="card">
<h2>Log in</h2>
<form method="post" action="/login" id="login-form">
<label for="user-input">User name</label>
<input type="text" id="user-input" name="user" required maxlength="64" autocomplete="username" value="${m.login?.user ?? ""}">
<label for="password-input">Password</label>
<input type="password" id="password-input" name="password" required autocomplete="new-password">
${problems.length > 0 ? html`<ul class="problems" id="password-problems">${problems.map((p) => html`<li>${p}</li>`)}</ul>` : ""}
<label class="check"><input type="checkbox" id="remember-input" name="remember"> Remember me on this computer</label>
<div class="actions"><button type="submit" id="login">Log in</button></div>
</form>
<p class="muted small">There is no user database: any name works, with any password that passes the
NIST SP 800-63B checks (at least 15 characters, not common, not a single word, not your name).</p>
</section>`
}

const explainCard = (m: HomeModel): Html => {
  const t = m.timings
  return html`<section class="card wide">
<h2>What you are looking at</h2>
<p>Your browser holds one cookie, <code>${t.cookieName}</code> (HttpOnly${t.secure ? ", Secure" : ""}, SameSite=Lax).
Its value is a random token; the session itself — the counter, the user, the timestamps — is on the server.
Every <strong>${formatDuration(t.idRotationInterval)}</strong> the token is replaced on the next request, and the
old token keeps leading to the same session for <strong>${formatDuration(t.gracePeriod)}</strong>, so requests
already in flight (another tab, a slow network) lose nothing. A session unused for
${formatDuration(t.idleTimeout)} ends, and none lives longer than ${formatDuration(t.absoluteTimeout)}.</p>
<ol>
<li>Open the developer tools (Application → Cookies) and note the value of <code>${t.cookieName}</code>.</li>
<li>Wait until “Next rotation” is due, then increment: the value changes, the counter and the login stay.</li>
<li>Open this page in a second tab and click in both, across a rotation: no click is lost.</li>
<li>Log in in another browser with the same user name, then look at <a href="/sessions">My sessions</a>.</li>
</ol>
</section>`
}

/** The home page. */
export const homePage = (m: HomeModel): string =>
  layout({
    title: "Home",
    active: "home",
    user: m.session?.user,
    body: html`<h1>Server-side sessions, rotating tokens</h1>
<p class="lead">A demo of <code>effect-sessions</code>: a counter and a login kept in a server-side session,
while the cookie's token is replaced every ${formatDuration(m.timings.idRotationInterval)}.</p>
${m.notice === undefined ? "" : html`<div class="notice" id="notice">${m.notice}</div>`}
<div class="grid">
${sessionCard(m)}
${counterCard(m)}
${accountCard(m)}
${explainCard(m)}
</div>`
  })

// ---------------------------------------------------------------------------
// my sessions
// ---------------------------------------------------------------------------

/** One row of "my sessions". */
export interface SessionRow {
  readonly id: string
  readonly createdAt: number
  readonly lastAccessAt: number
  readonly idIssuedAt: number
  readonly ip: string | undefined
  readonly current: boolean
}

/** The "my sessions" page's model. */
export interface SessionsModel {
  readonly now: number
  readonly user: string | undefined
  readonly sessions: ReadonlyArray<SessionRow>
  readonly timings: Timings
  readonly notice?: string | undefined
  /** `maxSessionsPerUser` (false: no limit). */
  readonly limit?: number | false | undefined
}

/** The "my sessions" page. */
export const sessionsPage = (m: SessionsModel): string => {
  if (m.user === undefined) {
    return layout({
      title: "My sessions",
      active: "sessions",
      user: undefined,
      body: html`<h1>My sessions</h1>
<p class="lead">Log in on the <a href="/">home page</a> to see the sessions of your user.</p>`
    })
  }
  const rows = [...m.sessions].sort((a, b) => Number(b.current) - Number(a.current) || b.lastAccessAt - a.lastAccessAt)
  return layout({
    title: "My sessions",
    active: "sessions",
    user: m.user,
    body: html`<h1>My sessions</h1>
<p class="lead">Every browser where <strong>${m.user}</strong> is logged in. End the ones you do not recognise,
or all of them at once.</p>
${m.notice === undefined ? "" : html`<div class="notice" id="notice">${m.notice}</div>`}
<section class="card wide">
<table id="sessions">
<thead><tr><th>Session</th><th>Created</th><th>Last access</th><th>Token issued</th><th>IP address</th><th></th></tr></thead>
<tbody>
${rows.map((r) => html`<tr class="${r.current ? "current" : ""}" data-id="${r.id}">
<td><code>${r.id.slice(0, 8)}</code>${r.current ? html` <span class="badge">this browser</span>` : ""}</td>
<td>${formatTime(r.createdAt, m.now)}<br><span class="muted small">${ago(r.createdAt, m.now)}</span></td>
<td>${formatTime(r.lastAccessAt, m.now)}<br><span class="muted small">${ago(r.lastAccessAt, m.now)}</span></td>
<td>${formatTime(r.idIssuedAt, m.now)}<br><span class="muted small">${ago(r.idIssuedAt, m.now)}</span></td>
<td>${r.ip ?? "unknown"}</td>
<td><form method="post" action="/sessions/${r.id}/end" class="inline"><button type="submit" class="danger">${r.current ? "End (log out)" : "End"}</button></form></td>
</tr>`)}
</tbody>
</table>
<div class="actions">
<form method="post" action="/logout-everywhere" class="inline"><button type="submit" class="danger" id="logout-everywhere">Log out everywhere</button></form>
<form method="post" action="/logout-others" class="inline"><button type="submit" id="logout-others">Log out my other sessions</button></form>
<span class="muted small" id="session-count">${
      m.limit === undefined || m.limit === false
        ? rows.length === 1 ? "1 session" : `${rows.length} sessions`
        : `${rows.length} of ${m.limit} sessions in use (a new log-in beyond ${m.limit} ends the least recently used one)`
    }</span>
</div>
</section>
<p class="muted small">“Last access” is written to the store at most every ${formatDuration(m.timings.touchInterval)},
so it may lag behind by that much. The session identifiers shown here are derived from the server's internal key:
they are not tokens, and cannot be used as cookies.</p>`
  })
}

// ---------------------------------------------------------------------------
// change password, behind the recent-login gate
// ---------------------------------------------------------------------------

/** What the account pages show. */
export interface AccountModel {
  readonly user: string
  /** The gate's maximum age of the log-in, in milliseconds. */
  readonly maxAge: number
  readonly error?: string | undefined
  readonly problems?: ReadonlyArray<string> | undefined
  readonly changed?: boolean | undefined
  /** After a change: how many other sessions of the user were logged out with it. */
  readonly othersEnded?: number | undefined
}

/** The log-in is too old for the page asked for: enter the password again. */
export const reauthenticatePage = (m: AccountModel): string =>
  layout({
    title: "Confirm it is you",
    active: "account",
    user: m.user,
    body: html`<h1>Confirm it is you</h1>
<p class="lead" id="reauthenticate-reason">Changing the password needs a log-in from the last ${formatDuration(m.maxAge)}.
Enter your password again to go on.</p>
<section class="card">
<form method="post" action="/account/reauthenticate" id="reauthenticate-form">
<label for="reauthenticate-password">Password</label>
<input type="password" id="reauthenticate-password" name="password" required autocomplete="current-password">
${m.error === undefined ? "" : html`<ul class="problems" id="reauthenticate-error"><li>${m.error}</li></ul>`}
<div class="actions"><button type="submit" id="reauthenticate">Confirm</button></div>
</form>
<p class="muted small">Confirming replaces the session's token (no grace period) and restarts the
${formatDuration(m.maxAge)} window.</p>
</section>`
  })

/** The "change password" form (the log-in is recent enough). */
export const changePasswordPage = (m: AccountModel): string => {
  const problems = m.problems ?? []
  return layout({
    title: "Change password",
    active: "account",
    user: m.user,
    body: html`<h1>Change password</h1>
${m.changed ? html`<div class="notice" id="notice">Your password was changed.${m.othersEnded === undefined || m.othersEnded === 0 ? "" : html` Your ${String(m.othersEnded)} other ${m.othersEnded === 1 ? "session was" : "sessions were"} logged out.`}</div>` : ""}
<section class="card">
<form method="post" action="/account/password" id="change-password-form">
<label for="new-password">New password</label>
<input type="password" id="new-password" name="password" required autocomplete="new-password">
${problems.length > 0 ? html`<ul class="problems" id="password-problems">${problems.map((p) => html`<li>${p}</li>`)}</ul>` : ""}
<div class="actions"><button type="submit" id="change-password">Change password</button></div>
</form>
<p class="muted small">This page asks for a log-in from the last ${formatDuration(m.maxAge)}
(<code>CurrentSession.requireRecentLogin</code>); after that it asks for the password again.</p>
</section>`
  })
}

// ---------------------------------------------------------------------------
// not found
// ---------------------------------------------------------------------------

/** The 404 page. */
export const notFoundPage = (user: string | undefined): string =>
  layout({
    title: "Not found",
    active: "home",
    user,
    body: html`<h1>Not found</h1>
<p class="lead">There is no such page. Back to the <a href="/">home page</a>.</p>`
  })
