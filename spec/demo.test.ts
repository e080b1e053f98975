/**
 * The demo app (examples/demo) over real HTTP: it is mounted on a Node server on a free port, and
 * driven with `fetch` and a one-cookie jar per simulated browser.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { ConfigProvider, Duration, Effect, Exit, Layer, ManagedRuntime } from "effect"
import { createServer } from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { app, demoDefaults, layerSessions, RecentLoginMaxAge, validateUser } from "../examples/demo/app.js"
import * as Notices from "../examples/demo/notices.js"
import * as pages from "../examples/demo/pages.js"
import * as Store from "../examples/demo/store.js"
import { Persistence, SecureRandom, SessionConfig, Sessions } from "../src/index.js"
import { COOKIE } from "./helpers/http.js"

// ---------------------------------------------------------------------------
// a server on a free port, and browsers with a cookie jar
// ---------------------------------------------------------------------------

interface Running {
  readonly url: string
  readonly close: () => Promise<void>
}

const serve = async (
  sessions: Layer.Layer<Sessions.Sessions, unknown>
): Promise<Running> => {
  const layer = HttpServer.serve(app).pipe(
    Layer.provide(sessions),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 }))
  )
  const runtime = ManagedRuntime.make(layer)
  const address = await runtime.runPromise(HttpServer.addressWith((a) => Effect.succeed(a)))
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return { url: `http://127.0.0.1:${address.port}`, close: () => runtime.dispose() }
}

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  /** The session cookie of the answer: a value, "cleared", or undefined when the answer set none. */
  readonly cookie: string | "cleared" | undefined
  json<A = any>(): A
}

/** A browser with one cookie (the session's), following nothing. */
class Browser {
  cookie: string | undefined
  constructor(readonly base: string, readonly name = COOKIE, readonly userAgent = "demo-test") {}

  async request(method: string, path: string, options: { readonly json?: unknown; readonly form?: Record<string, string>; readonly body?: string; readonly cookie?: string | undefined } = {}): Promise<Answer> {
    const headers: Record<string, string> = { "user-agent": this.userAgent }
    const cookie = "cookie" in options ? options.cookie : this.cookie
    if (cookie !== undefined) headers["cookie"] = `${this.name}=${cookie}`
    let body: string | null = null
    if (options.json !== undefined) {
      headers["content-type"] = "application/json"
      body = JSON.stringify(options.json)
    } else if (options.form !== undefined) {
      headers["content-type"] = "application/x-www-form-urlencoded"
      body = new URLSearchParams(options.form).toString()
    } else if (options.body !== undefined) {
      headers["content-type"] = "application/json"
      body = options.body
    }
    const res = await fetch(this.base + path, { method, headers, body, redirect: "manual" })
    const text = await res.text()
    let sessionCookie: Answer["cookie"]
    for (const line of res.headers.getSetCookie()) {
      const [pair = "", ...attributes] = line.split(";").map((s) => s.trim())
      const eq = pair.indexOf("=")
      if (pair.slice(0, eq) !== this.name) continue
      const value = pair.slice(eq + 1)
      const expired = value === "" || attributes.some((a) => /^max-age=0$/i.test(a)) ||
        attributes.some((a) => /^expires=/i.test(a) && Date.parse(a.slice(8)) < Date.now())
      sessionCookie = expired ? "cleared" : value
    }
    if (!("cookie" in options)) {
      if (sessionCookie === "cleared") this.cookie = undefined
      else if (sessionCookie !== undefined) this.cookie = sessionCookie
    }
    return { status: res.status, headers: res.headers, text, cookie: sessionCookie, json: () => JSON.parse(text) }
  }
  get = (path: string) => this.request("GET", path)
  post = (path: string, json?: unknown) => this.request("POST", path, json === undefined ? {} : { json })
  form = (path: string, form: Record<string, string>) => this.request("POST", path, { form })
}

const strong = "violet tractor midnight ocean"

// ---------------------------------------------------------------------------
// the JSON contract
// ---------------------------------------------------------------------------

describe("demo: the JSON contract", () => {
  let server: Running
  beforeAll(async () => {
    server = await serve(Sessions.layerMemory(demoDefaults))
  })
  afterAll(() => server.close())
  const browser = () => new Browser(server.url)

  it("GET /api/counter answers 0 without a session and creates none", async () => {
    const b = browser()
    const r = await b.get("/api/counter")
    expect(r.status).toBe(200)
    expect(r.json()).toEqual({ count: 0 })
    expect(r.cookie).toBeUndefined()
    expect((await b.get("/api/me")).json()).toEqual({ user: null, count: 0 })
    expect(b.cookie).toBeUndefined()
  })

  it("POST /api/counter creates the session, sets a safe cookie and counts", async () => {
    const b = browser()
    const first = await b.post("/api/counter")
    expect(first.json()).toEqual({ count: 1 })
    const setCookie = first.headers.getSetCookie().join("\n")
    // On plain http://127.0.0.1 too: browsers keep Secure (and so __Host-) cookies of loopback hosts.
    expect(setCookie).toMatch(/^__Host-id=[A-Za-z0-9]{4}[A-Za-z0-9_-]{43}; /)
    expect(setCookie).toMatch(/Path=\//)
    expect(setCookie).not.toMatch(/Domain=/i)
    expect(setCookie).toMatch(/HttpOnly/)
    expect(setCookie).toMatch(/Secure/)
    expect(setCookie).toMatch(/SameSite=Lax/)
    expect(first.headers.get("cache-control")).toBe("no-store")
    const token = b.cookie
    expect((await b.post("/api/counter")).json()).toEqual({ count: 2 })
    expect((await b.post("/api/counter")).json()).toEqual({ count: 3 })
    // Reading changes nothing.
    expect((await b.get("/api/counter")).json()).toEqual({ count: 3 })
    expect((await b.get("/api/counter")).json()).toEqual({ count: 3 })
    expect((await b.get("/api/me")).json()).toEqual({ user: null, count: 3 })
    expect(b.cookie).toBe(token)
    // Another browser has its own session.
    expect((await browser().post("/api/counter")).json()).toEqual({ count: 1 })
  })

  it("POST /api/login logs in, replaces the token and keeps the data; the old token is dead", async () => {
    const b = browser()
    await b.post("/api/counter")
    await b.post("/api/counter")
    const before = b.cookie
    const r = await b.post("/api/login", { user: "alice" })
    expect(r.status).toBe(200)
    expect(r.json()).toEqual({ user: "alice" })
    expect(b.cookie).toBeDefined()
    expect(b.cookie).not.toBe(before)
    expect((await b.get("/api/me")).json()).toEqual({ user: "alice", count: 2 })
    // Session fixation: the pre-login token leads nowhere (no grace period on log in).
    const stale = await b.request("GET", "/api/me", { cookie: before })
    expect(stale.json()).toEqual({ user: null, count: 0 })
    // A dead token's answer leaves the cookie alone: the browser may already hold the new one.
    expect(stale.cookie).toBeUndefined()
  })

  it("POST /api/login without a session creates one", async () => {
    const b = browser()
    expect((await b.post("/api/login", { user: "  zoë  " })).json()).toEqual({ user: "zoë" })
    expect((await b.get("/api/me")).json()).toEqual({ user: "zoë", count: 0 })
  })

  it("POST /api/login refuses bad bodies, bad names and weak passwords (all problems listed)", async () => {
    const b = browser()
    expect((await b.request("POST", "/api/login", { body: "not json" })).status).toBe(400)
    expect((await b.post("/api/login", { name: "alice" })).status).toBe(400)
    expect((await b.post("/api/login", { user: "   " })).status).toBe(400)
    expect((await b.post("/api/login", { user: "x".repeat(65) })).status).toBe(400)
    const weak = await b.post("/api/login", { user: "alice", password: "password1" })
    expect(weak.status).toBe(422)
    expect(weak.json().problems).toHaveLength(3)
    expect(b.cookie).toBeUndefined()
    expect((await b.post("/api/login", { user: "alice", password: strong })).json()).toEqual({ user: "alice" })
  })

  it("POST /api/logout logs out, replaces the token and keeps the data", async () => {
    const b = browser()
    await b.post("/api/login", { user: "bob" })
    await b.post("/api/counter")
    const before = b.cookie
    expect((await b.post("/api/logout")).json()).toEqual({ user: null })
    expect(b.cookie).not.toBe(before)
    expect((await b.get("/api/me")).json()).toEqual({ user: null, count: 1 })
    expect((await b.get("/api/sessions")).json()).toEqual({ user: null, sessions: [] })
    // Logging out without a session is harmless and creates none.
    const fresh = browser()
    expect((await fresh.post("/api/logout")).json()).toEqual({ user: null })
    expect(fresh.cookie).toBeUndefined()
  })

  it("GET /api/sessions lists the user's sessions, this one marked", async () => {
    const a = browser()
    const b = browser()
    const other = browser()
    await a.post("/api/login", { user: "carol" })
    await b.post("/api/login", { user: "carol" })
    await other.post("/api/login", { user: "dave" })
    const listed = (await a.get("/api/sessions")).json()
    expect(listed.user).toBe("carol")
    expect(listed.sessions).toHaveLength(2)
    expect(listed.sessions.filter((s: any) => s.current)).toHaveLength(1)
    for (const s of listed.sessions) {
      expect(s.id).toMatch(/^[A-Za-z0-9_-]{8,}$/)
      expect(s.ip).toBe("127.0.0.1")
      expect(Number.isNaN(Date.parse(s.createdAt))).toBe(false)
      expect(Number.isNaN(Date.parse(s.lastAccessAt))).toBe(false)
      // No token leaks into the list.
      expect(JSON.stringify(s)).not.toContain(a.cookie)
      expect(JSON.stringify(s)).not.toContain(b.cookie)
    }
    const fromB = (await b.get("/api/sessions")).json()
    const currentA = listed.sessions.find((s: any) => s.current).id
    const currentB = fromB.sessions.find((s: any) => s.current).id
    expect(currentA).not.toBe(currentB)
  })

  it("POST /api/logout-everywhere ends every session of the user and no other", async () => {
    const a = browser()
    const b = browser()
    const other = browser()
    await a.post("/api/login", { user: "erin" })
    await a.post("/api/counter")
    await b.post("/api/login", { user: "erin" })
    await other.post("/api/login", { user: "frank" })
    const ended = await a.post("/api/logout-everywhere")
    expect(ended.json()).toEqual({ ended: 2 })
    expect(ended.cookie).toBe("cleared")
    expect((await a.get("/api/me")).json()).toEqual({ user: null, count: 0 })
    const bMe = await b.get("/api/me")
    expect(bMe.json()).toEqual({ user: null, count: 0 })
    // Ended elsewhere: the token is unknown now, and an unknown token's cookie is left alone.
    expect(bMe.cookie).toBeUndefined()
    expect((await other.get("/api/me")).json()).toEqual({ user: "frank", count: 0 })
    // Without a user there is nothing to end.
    expect((await browser().post("/api/logout-everywhere")).json()).toEqual({ ended: 0 })
  })

  it("DELETE /api/sessions/:id ends one session of the user", async () => {
    const a = browser()
    const b = browser()
    const other = browser()
    await a.post("/api/login", { user: "gina" })
    await b.post("/api/login", { user: "gina" })
    await other.post("/api/login", { user: "hank" })
    const bId = (await b.get("/api/sessions")).json().sessions.find((s: any) => s.current).id
    const hankId = (await other.get("/api/sessions")).json().sessions[0].id
    // Another user's session cannot be ended.
    expect((await a.request("DELETE", `/api/sessions/${hankId}`)).json()).toEqual({ ended: false })
    expect((await a.request("DELETE", `/api/sessions/${bId}`)).json()).toEqual({ ended: true })
    expect((await b.get("/api/me")).json().user).toBeNull()
    expect((await a.get("/api/me")).json().user).toBe("gina")
    expect((await other.get("/api/me")).json().user).toBe("hank")
    expect((await a.get("/api/sessions")).json().sessions).toHaveLength(1)
  })

  it("feature: maxSessionsPerUser — the demo allows 3 sessions per user: a fourth log-in ends the least recently used one; \"my sessions\" shows how many of the 3 are used", async () => {
    const browsers = [browser(), browser(), browser(), browser()]
    for (const b of browsers) await b.post("/api/login", { user: "ivy" })
    expect((await browsers[0]!.get("/api/me")).json().user).toBeNull()
    for (const b of browsers.slice(1)) expect((await b.get("/api/me")).json().user).toBe("ivy")
    expect((await browsers[3]!.get("/api/sessions")).json().sessions).toHaveLength(3)
    const page = await browsers[3]!.get("/sessions")
    expect(page.text).toContain("3 of 3 sessions in use")
    expect(page.text).toContain("id=\"logout-others\"")
  })

  it("feature: logOutOthers — POST /api/logout-others ends every other session of the user, keeps this one and no other user's", async () => {
    const a = browser()
    const b = browser()
    const other = browser()
    await a.post("/api/login", { user: "jack" })
    await a.post("/api/counter")
    await b.post("/api/login", { user: "jack" })
    await other.post("/api/login", { user: "kate" })
    const ended = await a.post("/api/logout-others")
    expect(ended.json()).toEqual({ ended: 1 })
    expect(ended.cookie).toBeUndefined()
    expect((await a.get("/api/me")).json()).toEqual({ user: "jack", count: 1 })
    expect((await b.get("/api/me")).json().user).toBeNull()
    expect((await other.get("/api/me")).json().user).toBe("kate")
    const form = await a.post("/logout-others")
    expect(form.status).toBe(303)
    expect(form.headers.get("location")).toBe("/sessions?notice=logged-out-others")
    expect((await a.get("/api/sessions")).json().sessions).toHaveLength(1)
  })

  it("an unknown route is a 404 (JSON under /api, a page elsewhere) and creates no session", async () => {
    const b = browser()
    const api = await b.get("/api/nope")
    expect(api.status).toBe(404)
    expect(api.json()).toEqual({ error: "not found" })
    const page = await b.request("POST", "/nope")
    expect(page.status).toBe(404)
    expect(page.headers.get("content-type")).toMatch(/^text\/html/)
    expect(page.text).toContain("Not found")
    expect(b.cookie).toBeUndefined()
  })
})

// ---------------------------------------------------------------------------
// the pages
// ---------------------------------------------------------------------------

describe("demo: the pages", () => {
  let server: Running
  beforeAll(async () => {
    server = await serve(Sessions.layerMemory(demoDefaults))
  })
  afterAll(() => server.close())
  const browser = () => new Browser(server.url)

  it("GET / shows the login form and creates no session", async () => {
    const b = browser()
    const r = await b.get("/")
    expect(r.status).toBe(200)
    expect(r.headers.get("content-type")).toMatch(/^text\/html/)
    expect(r.headers.get("cache-control")).toBe("no-store")
    expect(r.headers.get("content-security-policy")).toContain("default-src 'none'")
    expect(r.text).toContain("id=\"login-form\"")
    expect(r.text).toContain("holds no session cookie yet")
    expect(r.cookie).toBeUndefined()
  })

  it("the login form checks the password and shows every problem", async () => {
    const b = browser()
    const weak = await b.form("/login", { user: "alice", password: "password1" })
    expect(weak.status).toBe(422)
    expect(weak.cookie).toBeUndefined()
    const problems = /<ul class="problems" id="password-problems">(.*?)<\/ul>/s.exec(weak.text)?.[1] ?? ""
    expect(problems.match(/<li>/g)).toHaveLength(3)
    expect(problems).toContain("Too short: 9 characters, at least 15")
    expect(problems).toContain("most common passwords")
    expect(problems).toContain("single dictionary word")
    // The form keeps the user name.
    expect(weak.text).toContain("value=\"alice\"")
    // The user name counts as context.
    const context = await b.form("/login", { user: "margaret", password: "margaret tractor ocean" })
    expect(context.status).toBe(422)
    expect(context.text).toContain("It contains “margaret”")
    // A missing field is a 400 with the form again.
    expect((await b.form("/login", { user: "alice" })).status).toBe(400)
    expect((await b.form("/login", { user: "", password: strong })).status).toBe(422)
    expect(b.cookie).toBeUndefined()
  })

  it("a strong password logs in: 303 to /, the page shows the user", async () => {
    const b = browser()
    const r = await b.form("/login", { user: "alice", password: strong })
    expect(r.status).toBe(303)
    expect(r.headers.get("location")).toBe("/?notice=logged-in")
    expect(b.cookie).toBeDefined()
    const home = await b.get("/?notice=logged-in")
    expect(home.text).toContain("Logged in as <strong id=\"user\">alice</strong>")
    expect(home.text).toContain("You are logged in.")
    expect(home.text).toContain("id=\"session-age\"")
    expect(home.text).toContain("id=\"next-rotation\"")
  })

  it("user input is escaped everywhere", async () => {
    const evil = "<img src=x onerror=alert(1)>\"'&"
    const b = browser()
    const weak = await b.form("/login", { user: evil, password: "short" })
    expect(weak.text).not.toContain("<img src=x")
    expect(weak.text).toContain("value=\"&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;\"")
    await b.form("/login", { user: evil, password: strong })
    for (const path of ["/", "/sessions"]) {
      const page = await b.get(path)
      expect(page.text).not.toContain("<img src=x")
      expect(page.text).toContain("&lt;img src=x onerror=alert(1)&gt;")
    }
    // Unknown notices are ignored, not echoed.
    expect((await b.get("/?notice=%3Cscript%3E")).text).not.toContain("script%3E")
  })

  it("the counter form increments and redirects back", async () => {
    const b = browser()
    for (let i = 1; i <= 3; i++) {
      const r = await b.form("/counter", {})
      expect(r.status).toBe(303)
      expect(r.headers.get("location")).toBe("/")
    }
    expect((await b.get("/")).text).toMatch(/<div class="count" id="count">3<\/div>/)
    expect((await b.get("/api/counter")).json()).toEqual({ count: 3 })
  })

  it("log out, my sessions, end a session, log out everywhere", async () => {
    const a = browser()
    const b = browser()
    await a.form("/login", { user: "ivan", password: strong })
    await a.form("/counter", {})
    await b.form("/login", { user: "ivan", password: strong })
    const list = await a.get("/sessions")
    expect(list.status).toBe(200)
    expect(list.text.match(/<tr class="(current)?" data-id=/g)).toHaveLength(2)
    expect(list.text).toContain("this browser")
    expect(list.text).toContain("127.0.0.1")
    // End b's session from a.
    const bId = (await b.get("/api/sessions")).json().sessions.find((s: any) => s.current).id
    const ended = await a.form(`/sessions/${bId}/end`, {})
    expect(ended.status).toBe(303)
    expect(ended.headers.get("location")).toBe("/sessions?notice=ended")
    expect((await b.get("/api/me")).json().user).toBeNull()
    expect((await a.get("/sessions")).text.match(/data-id=/g)).toHaveLength(1)
    // Log out keeps the counter.
    const out = await a.form("/logout", {})
    expect(out.status).toBe(303)
    expect((await a.get("/api/me")).json()).toEqual({ user: null, count: 1 })
    expect((await a.get("/sessions")).text).toContain("Log in on the")
    // Log out everywhere.
    await a.form("/login", { user: "ivan", password: strong })
    await b.form("/login", { user: "ivan", password: strong })
    const everywhere = await a.form("/logout-everywhere", {})
    expect(everywhere.status).toBe(303)
    expect(everywhere.headers.get("location")).toBe("/?notice=logged-out-everywhere")
    expect(everywhere.cookie).toBe("cleared")
    expect((await b.get("/api/me")).json()).toEqual({ user: null, count: 0 })
  })

  it("ending this browser's session from my sessions clears its cookie", async () => {
    const a = browser()
    await a.form("/login", { user: "judy", password: strong })
    const id = (await a.get("/api/sessions")).json().sessions[0].id
    const r = await a.form(`/sessions/${id}/end`, {})
    expect(r.status).toBe(303)
    expect(r.headers.get("location")).toBe("/?notice=ended-current")
    expect(r.cookie).toBe("cleared")
    expect((await a.get("/api/me")).json()).toEqual({ user: null, count: 0 })
  })
})

// ---------------------------------------------------------------------------
// rotation over HTTP, store failure, configuration
// ---------------------------------------------------------------------------

describe("demo: token rotation", () => {
  let server: Running
  beforeAll(async () => {
    server = await serve(Sessions.layerMemory({ idRotationInterval: "1 second", gracePeriod: "5 seconds", touchInterval: "100 millis" }))
  })
  afterAll(() => server.close())

  it("the token rotates, the session survives, and the old token follows within the grace period", async () => {
    const b = new Browser(server.url)
    await b.post("/api/login", { user: "kim" })
    expect((await b.post("/api/counter")).json()).toEqual({ count: 1 })
    const first = b.cookie
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const rotated = await b.post("/api/counter")
    expect(rotated.json()).toEqual({ count: 2 })
    expect(rotated.cookie).toBeDefined()
    expect(b.cookie).not.toBe(first)
    // A request still carrying the old token (another tab, in flight) reaches the same session
    // and is handed the new token.
    const late = await b.request("POST", "/api/counter", { cookie: first })
    expect(late.json()).toEqual({ count: 3 })
    expect(late.cookie).toBe(b.cookie)
    expect((await b.get("/api/me")).json()).toEqual({ user: "kim", count: 3 })
  })

  it("a 404 that rotates the token still hands out the new token", async () => {
    const b = new Browser(server.url)
    await b.post("/api/login", { user: "lee" })
    const first = b.cookie
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const missing = await b.get("/favicon.ico")
    expect(missing.status).toBe(404)
    expect(missing.cookie).toBeDefined()
    expect(b.cookie).not.toBe(first)
    expect((await b.get("/api/me")).json().user).toBe("lee")
  })

  it("concurrent requests across a rotation lose no increment", async () => {
    const b = new Browser(server.url)
    await b.post("/api/counter")
    const token = b.cookie
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const answers = await Promise.all(Array.from({ length: 20 }, () => b.request("POST", "/api/counter", { cookie: token })))
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200))
    expect(answers.map((a) => a.json().count).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2))
    const successors = new Set(answers.map((a) => a.cookie))
    expect(successors.size).toBe(1)
    const [successor] = successors
    expect(successor).not.toBe(token)
    expect((await b.request("GET", "/api/counter", { cookie: successor })).json()).toEqual({ count: 21 })
  })
})

describe("demo: bearer tokens", () => {
  let server: Running
  beforeAll(async () => {
    server = await serve(Sessions.layerMemory({ idRotationInterval: "1 second", gracePeriod: "5 seconds", touchInterval: "100 millis" }))
  })
  afterAll(() => server.close())

  /** A mobile client: sends its token as a bearer and applies every Set-Session-Token answer. */
  const mobile = () => {
    let token: string | undefined
    const call = async (method: string, path: string, json?: unknown, extra: Record<string, string> = {}) => {
      const headers: Record<string, string> = { "user-agent": "demo-mobile/1.0", ...extra }
      if (token !== undefined) headers["authorization"] = `Bearer ${token}`
      if (json !== undefined) headers["content-type"] = "application/json"
      const res = await fetch(server.url + path, { method, headers, body: json === undefined ? null : JSON.stringify(json) })
      const answer = res.headers.get("set-session-token")
      if (answer !== null) token = answer === "" ? undefined : answer
      return { status: res.status, headers: res.headers, json: await res.json() as any }
    }
    return { call, token: () => token }
  }

  it("feature: bearer tokens: /api/token logs in over a header; the JSON API takes the bearer token, rotates it in Set-Session-Token, and never sets a cookie", async () => {
    const m = mobile()
    const login = await m.call("POST", "/api/token", { user: "mobile-zed" })
    expect(login.json).toEqual({ user: "mobile-zed" })
    expect(m.token()).toMatch(/^[A-Za-z0-9]{4}[A-Za-z0-9_-]{43}$/)
    expect(login.headers.getSetCookie()).toEqual([])
    expect(login.headers.get("cache-control")).toBe("no-store")
    expect((await m.call("POST", "/api/counter")).json).toEqual({ count: 1 })
    const first = m.token()
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const rotated = await m.call("GET", "/api/me")
    expect(rotated.json).toEqual({ user: "mobile-zed", count: 1 })
    expect(rotated.headers.getSetCookie()).toEqual([])
    expect(rotated.headers.get("vary")).toMatch(/Authorization/)
    expect(m.token()).not.toBe(first)
    // The session lists itself as current over bearer too.
    expect((await m.call("GET", "/api/sessions")).json.sessions.map((s: any) => s.current)).toEqual([true])
    // A token in the URL is not read.
    const viaUrl = await fetch(`${server.url}/api/me?access_token=${m.token()}`)
    expect(await viaUrl.json()).toEqual({ user: null, count: 0 })
    // The pages take the cookie only: a bearer token means nothing there.
    const page = await fetch(`${server.url}/`, { headers: { authorization: `Bearer ${m.token()}` } })
    expect(await page.text()).not.toContain("mobile-zed")
    // Logging out answers a fresh token; ending every session answers an empty one.
    await m.call("POST", "/api/logout")
    expect((await m.call("GET", "/api/me")).json).toEqual({ user: null, count: 1 })
    await m.call("POST", "/api/token", { user: "mobile-zed" })
    const ended = await m.call("POST", "/api/logout-everywhere")
    expect(ended.headers.get("set-session-token")).toBe("")
    expect(m.token()).toBeUndefined()
  })

  it("security: a browser's cookie and a bearer token on one request: the bearer token decides, the cookie is left alone", async () => {
    const b = new Browser(server.url)
    await b.post("/api/login", { user: "cookie-user" })
    const m = mobile()
    await m.call("POST", "/api/token", { user: "bearer-user" })
    expect((await b.get("/api/me")).json().user).toBe("cookie-user")
    // One user agent for both (a changed agent would be an anomaly and end the session).
    const res = await fetch(`${server.url}/api/me`, {
      headers: { "user-agent": "demo-mobile/1.0", cookie: `${COOKIE}=${b.cookie}`, authorization: `Bearer ${m.token()}` }
    })
    expect((await res.json()).user).toBe("bearer-user")
    expect(res.headers.getSetCookie()).toEqual([])
    expect((await b.get("/api/me")).json().user).toBe("cookie-user")
  })
})

describe("demo: a store failure", () => {
  let server: Running
  const down = { value: false }
  beforeAll(async () => {
    const failing = new Persistence.SessionStoreError({ method: "load", reason: "Unavailable", cause: new Error("store down (test)") })
    const flaky = Layer.effect(
      Persistence.Persistence,
      Effect.map(Persistence.makeMemory, (store): Persistence.PersistenceShape => {
        const guard = <A>(e: Effect.Effect<A, Persistence.SessionStoreError>) => Effect.suspend(() => (down.value ? Effect.fail(failing) : e))
        return {
          ...store,
          load: (k) => guard(store.load(k)),
          loadSession: (k) => guard(store.loadSession(k)),
          create: (s, e) => guard(store.create(s, e)),
          save: (s, v, e) => guard(store.save(s, v, e)),
          sessionsOfUser: (u) => guard(store.sessionsOfUser(u))
        }
      })
    )
    server = await serve(Sessions.layer({ cache: false }).pipe(Layer.provide(flaky)))
  })
  afterAll(() => server.close())

  it("answers 503 and hands out no new session", async () => {
    const b = new Browser(server.url)
    expect((await b.post("/api/counter")).json()).toEqual({ count: 1 })
    const token = b.cookie
    down.value = true
    try {
      const withSession = await b.post("/api/counter")
      expect(withSession.status).toBe(503)
      expect(withSession.cookie).toBeUndefined()
      const fresh = new Browser(server.url)
      const created = await fresh.post("/api/counter")
      expect(created.status).toBe(503)
      expect(created.cookie).toBeUndefined()
      expect((await b.get("/")).status).toBe(503)
    } finally {
      down.value = false
    }
    expect(b.cookie).toBe(token)
    expect((await b.post("/api/counter")).json()).toEqual({ count: 2 })
  })
})

describe("demo: configuration and store switch", () => {
  const configOf = (env: Record<string, string>) =>
    Effect.runPromise(
      Effect.provide(
        SessionConfig.SessionConfig,
        layerSessions(Persistence.layerMemory).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }))))
      ).pipe(Effect.scoped)
    )

  it("uses the demo's defaults, with SESSIONS_* on top", async () => {
    const plain = await configOf({})
    expect(Duration.toMillis(plain.idRotationInterval)).toBe(60_000)
    expect(Duration.toMillis(plain.gracePeriod)).toBe(30_000)
    expect(plain.cookie.secure).toBe(true)
    expect(plain.cookie.name).toBe(COOKIE)
    const env = await configOf({ SESSIONS_ID_ROTATION_INTERVAL: "20 seconds", SESSIONS_GRACE_PERIOD: "10 seconds" })
    expect(Duration.toMillis(env.idRotationInterval)).toBe(20_000)
    expect(Duration.toMillis(env.gracePeriod)).toBe(10_000)
    expect(Duration.toMillis(env.touchInterval)).toBe(10_000)
    // A short idle timeout from the environment brings a valid touch interval with it.
    const idle = await configOf({ SESSIONS_IDLE_TIMEOUT: "5 seconds" })
    expect(Duration.toMillis(idle.idleTimeout)).toBe(5_000)
    expect(Duration.toMillis(idle.touchInterval)).toBe(500)
    const both = await configOf({ SESSIONS_IDLE_TIMEOUT: "1 minute", SESSIONS_TOUCH_INTERVAL: "20 seconds" })
    expect(Duration.toMillis(both.touchInterval)).toBe(20_000)
  })

  it("SESSIONS_STORE picks the store (memory by default) and refuses unknown names", async () => {
    const kindOf = (env: Record<string, string>) =>
      Effect.runPromise(Effect.either(Effect.withConfigProvider(Store.storeKind, ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }))))
    expect(await kindOf({})).toEqual(expect.objectContaining({ _tag: "Right", right: "memory" }))
    expect(await kindOf({ SESSIONS_STORE: "redis" })).toEqual(expect.objectContaining({ _tag: "Right", right: "redis" }))
    expect(await kindOf({ SESSIONS_STORE: "redis-cluster" })).toEqual(expect.objectContaining({ _tag: "Right", right: "redis-cluster" }))
    expect((await kindOf({ SESSIONS_STORE: "mongo" }))._tag).toBe("Left")
    expect(Store.describe("postgres", "postgres://user:secret@db:5432/app")).toBe("postgres (postgres://user@db:5432/app)")
  })

  it("feature: SESSIONS_STORE=redis-cluster builds the Redis store on the cluster of REDIS_CLUSTER_NODES, and refuses a bad node list", async () => {
    const build = (env: Record<string, string>) =>
      Effect.runPromise(Effect.exit(Effect.scoped(Layer.build(Store.layerFor("redis-cluster").pipe(Layer.provide(SecureRandom.layer))))).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }))
      ))
    const bad = await build({ REDIS_CLUSTER_NODES: "127.0.0.1:notaport" })
    expect(Exit.isFailure(bad) && String(bad.cause)).toContain("REDIS_CLUSTER_NODES")
    const unset = await build({})
    expect(Exit.isFailure(unset) && String(unset.cause)).toContain("REDIS_CLUSTER_NODES")
    const nodes = process.env.REDIS_CLUSTER_NODES
    if (nodes !== undefined) expect(Exit.isSuccess(await build({ REDIS_CLUSTER_NODES: nodes }))).toBe(true)
  })

  it("validates user names", () => {
    expect(validateUser(" ann ")).toEqual({ user: "ann" })
    expect("error" in validateUser("")).toBe(true)
    expect("error" in validateUser("a\u0000b")).toBe(true)
    expect(validateUser("é".repeat(64))).toEqual({ user: "é".repeat(64) })
  })

  it("pages escape what they interpolate and format durations", () => {
    expect(pages.html`<p>${"<b>&"}</p>${pages.html`<i>${1}</i>`}`.value).toBe("<p>&lt;b&gt;&amp;</p><i>1</i>")
    expect(pages.formatDuration(0)).toBe("0 s")
    expect(pages.formatDuration(61_000)).toBe("1 min 1 s")
    expect(pages.formatDuration(3_600_000 * 12)).toBe("12 h")
  })
})

describe("demo: change password behind the recent-login gate, and remember me", () => {
  const GATE_MS = 600
  let server: Running
  beforeAll(async () => {
    // The demo's gate is 5 minutes; here it is shortened through the same Reference the server sets.
    const layer = HttpServer.serve(app).pipe(
      Layer.provide(Sessions.layerMemory(demoDefaults)),
      Layer.provide(Layer.succeed(RecentLoginMaxAge, Duration.millis(GATE_MS))),
      Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 }))
    )
    const runtime = ManagedRuntime.make(layer)
    const address = await runtime.runPromise(HttpServer.addressWith((a) => Effect.succeed(a)))
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    server = { url: `http://127.0.0.1:${address.port}`, close: () => runtime.dispose() }
  })
  afterAll(() => server.close())
  const browser = () => new Browser(server.url)
  const sessionSetCookie = (r: Answer) => r.headers.getSetCookie().find((line) => line.startsWith(`${COOKIE}=`)) ?? ""

  it("feature: recent-login gate — the demo asks for a 5-minute recent log-in by default", () => {
    expect(Duration.toMillis(Effect.runSync(RecentLoginMaxAge))).toBe(5 * 60_000)
  })

  it("feature: recent-login gate — change password is open right after the log-in; once the log-in is older, it asks for the password again (403), refuses a wrong one, and a right one (reauthenticated) opens it again under a new token; the change logs out the user's other sessions (logOutOthers)", async () => {
    const b = browser()
    expect((await b.get("/account/password")).status).toBe(303)
    await b.form("/login", { user: "rosalind", password: strong })
    const open = await b.get("/account/password")
    expect(open.status).toBe(200)
    expect(open.text).toContain("id=\"change-password-form\"")
    await new Promise((r) => setTimeout(r, GATE_MS + 100))
    const gated = await b.get("/account/password")
    expect(gated.status).toBe(403)
    expect(gated.text).toContain("id=\"reauthenticate-form\"")
    expect(gated.text).not.toContain("id=\"change-password-form\"")
    // A change posted without a recent log-in changes nothing.
    expect((await b.form("/account/password", { password: "another violet tractor" })).status).toBe(403)
    const wrong = await b.form("/account/reauthenticate", { password: "not the password at all" })
    expect(wrong.status).toBe(403)
    expect(wrong.text).toContain("id=\"reauthenticate-error\"")
    const before = b.cookie
    const right = await b.form("/account/reauthenticate", { password: strong })
    expect(right.status).toBe(303)
    expect(right.headers.get("location")).toBe("/account/password")
    expect(b.cookie).not.toBe(before)
    // The token from before the re-authentication died with no grace period.
    expect((await b.request("GET", "/api/me", { cookie: before })).json()).toEqual({ user: null, count: 0 })
    expect((await b.get("/account/password")).status).toBe(200)
    // A second session of the same user (another browser), logged out by the change.
    const other = browser()
    await other.form("/login", { user: "rosalind", password: strong })
    expect((await other.request("GET", "/api/me")).json()).toEqual({ user: "rosalind", count: 0 })
    const changed = await b.form("/account/password", { password: "another violet tractor" })
    expect(changed.status).toBe(200)
    expect(changed.text).toContain("Your password was changed. Your 1 other session was logged out.")
    expect((await other.request("GET", "/api/me")).json()).toEqual({ user: null, count: 0 })
    expect((await b.request("GET", "/api/me")).json()).toMatchObject({ user: "rosalind" })
    // The new password is the one a later re-authentication checks.
    await new Promise((r) => setTimeout(r, GATE_MS + 100))
    expect((await b.form("/account/reauthenticate", { password: strong })).status).toBe(403)
    expect((await b.form("/account/reauthenticate", { password: "another violet tractor" })).status).toBe(303)
  })

  it("feature: remember me — the log-in form's checkbox makes the cookie persistent (Max-Age up to the absolute timeout); without it the cookie goes with the browser; the JSON login takes remember: true", async () => {
    const plain = browser()
    const noRemember = await plain.form("/login", { user: "ada", password: strong })
    expect(noRemember.status).toBe(303)
    expect(sessionSetCookie(noRemember)).not.toMatch(/Max-Age/i)
    expect((await browser().get("/")).text).toContain("id=\"remember-input\"")
    const remembered = browser()
    const withRemember = await remembered.form("/login", { user: "ada", password: strong, remember: "on" })
    const maxAge = Number(/Max-Age=(\d+)/i.exec(sessionSetCookie(withRemember))?.[1])
    expect(maxAge).toBeGreaterThan(12 * 3600 - 60)
    expect(maxAge).toBeLessThanOrEqual(12 * 3600)
    const api = browser()
    expect(sessionSetCookie(await api.post("/api/login", { user: "ada", remember: true }))).toMatch(/Max-Age=\d+/i)
    // Logging out forgets the choice: the fresh token is a browser-session cookie again.
    expect(sessionSetCookie(await api.post("/api/logout"))).not.toMatch(/Max-Age/i)
  })
})

describe("demo: security notices from the session events", () => {
  let server: Running
  beforeAll(async () => {
    server = await serve(Layer.provideMerge(Notices.layer, Sessions.layerMemory(demoDefaults)))
  })
  afterAll(() => server.close())

  /** The notices of the browser's user, once the background subscriber has caught up with `count`. */
  const noticesOf = async (b: Browser, count: number) => {
    for (let i = 0; i < 100; i++) {
      const answer = (await b.get("/api/notices")).json<{ notices: ReadonlyArray<{ kind: string; sessionId: string; text: string }> }>()
      if (answer.notices.length >= count) return answer.notices
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    throw new Error(`fewer than ${count} notices`)
  }

  it("feature: session events — a sign-in from a browser not seen before for the user shows a \"new sign-in\" notice; the same browser again does not", async () => {
    const laptop = new Browser(server.url, COOKIE, "Mozilla/5.0 (X11; Linux) Firefox/128.0")
    expect((await laptop.form("/login", { user: "nora", password: strong })).status).toBe(303)
    const [first] = await noticesOf(laptop, 1)
    expect(first?.kind).toBe("new-sign-in")

    // A second session in the same browser (same user agent, same network): no new notice.
    const laptopAgain = new Browser(server.url, COOKIE, "Mozilla/5.0 (X11; Linux) Firefox/128.0")
    await laptopAgain.form("/login", { user: "nora", password: strong })
    // A phone: a new device.
    const phone = new Browser(server.url, COOKIE, "Mozilla/5.0 (iPhone) Safari/604.1")
    await phone.form("/login", { user: "nora", password: strong })
    const notices = await noticesOf(laptop, 2)
    expect(notices.map((n) => n.kind)).toEqual(["new-sign-in", "new-sign-in"])
    const phoneSession = (await phone.get("/api/sessions")).json<{ sessions: ReadonlyArray<{ id: string; current: boolean }> }>()
      .sessions.find((s) => s.current)
    expect(notices[0]?.sessionId).toBe(phoneSession?.id)

    // The page lists them, and nothing on it is a token.
    const page = await laptop.get("/notices")
    expect(page.status).toBe(200)
    // Every page links to it.
    expect((await laptop.get("/")).text).toContain("id=\"notices-link\"")
    expect(page.text).toContain("New sign-in from a browser not seen before")
    for (const b of [laptop, laptopAgain, phone]) expect(page.text).not.toContain(b.cookie!)
    // Another user sees none of them.
    const other = new Browser(server.url)
    await other.form("/login", { user: "otto", password: strong })
    expect((await noticesOf(other, 1)).every((n) => n.sessionId !== phoneSession?.id)).toBe(true)
  })
})
