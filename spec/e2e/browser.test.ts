/**
 * The demo in a real browser (Chromium through playwright-core): the demo server runs as a child
 * process with short timings, and a headless Chromium logs in, counts, watches its cookie rotate,
 * clicks in two tabs across rotations, and takes a screenshot of "my sessions"
 * (test-results/my-sessions.png).
 *
 * The `security:` scenarios check, in the same Chromium, what the default cookie name rests on: a
 * Secure `__Host-id` cookie of plain http://127.0.0.1 and http://localhost is kept and sent back;
 * a sibling subdomain (Chromium resolves `*.localhost` to the loopback and treats it as secure)
 * can plant a duplicate `id` cookie with a Domain and a Path, which costs the user that one
 * request's session but never the login; and it cannot plant a `__Host-id` at all. The
 * `feature:` scenario checks `Http.originCheck` against the form posts Chromium really sends: a
 * form auto-submitted from a sibling subdomain (which `SameSite=Lax` lets carry the cookie) or
 * from another site is refused, and a same-origin one, or one from an allowed origin, passes.
 *
 * Without Chromium at /usr/bin/chromium (or $CHROMIUM_PATH) the scenario is skipped, unless
 * SESSIONS_REQUIRE_SERVICES=1, which makes it fail instead.
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { Effect, Exit, Layer, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import type { Browser, BrowserContext, Cookie, Page } from "playwright-core"
import { chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Http from "../../src/Http.js"
import type * as SessionConfig from "../../src/SessionConfig.js"
import * as Sessions from "../../src/Sessions.js"
import { COOKIE, countedMemory, listen, routes, totalCalls } from "../helpers/http.js"

// Debian's Chromium; CHROMIUM_PATH points elsewhere (another OS, or to check the skip rule).
const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const screenshot = join(root, "test-results", "my-sessions.png")
const haveChromium = existsSync(CHROMIUM)
const required = process.env["SESSIONS_REQUIRE_SERVICES"] === "1"

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
const ROTATION_MS = 2000
const RECENT_LOGIN_MS = 3000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Starts the demo server (node + tsx, one process, so that killing it stops it) and waits for its URL. */
const startDemo = (): Promise<{ readonly url: string; readonly child: ChildProcess; readonly output: () => string }> =>
  new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "examples/demo/server.ts"], {
      cwd: root,
      env: {
        ...process.env,
        PORT: "0",
        SESSIONS_STORE: "memory",
        SESSIONS_ID_ROTATION_INTERVAL: "2 seconds",
        SESSIONS_GRACE_PERIOD: "5 seconds",
        SESSIONS_TOUCH_INTERVAL: "1 second",
        // The change-password page's recent-login gate (5 minutes in the demo), shortened.
        DEMO_RECENT_LOGIN_MAX_AGE: `${RECENT_LOGIN_MS} millis`
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`the demo did not print its URL within 30 s:\n${output}`))
    }, 30_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /^Listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(output)
      if (match) {
        clearTimeout(timer)
        resolvePromise({ url: match[1]!, child, output: () => output })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.on("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`the demo exited with ${code}:\n${output}`))
    })
  })

const stopDemo = (child: ChildProcess): Promise<void> =>
  new Promise((resolvePromise) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolvePromise()
    const force = setTimeout(() => child.kill("SIGKILL"), 5000)
    child.once("exit", () => {
      clearTimeout(force)
      resolvePromise()
    })
    child.kill("SIGTERM")
  })

/** Submits a form by clicking its button and waits for the page it leads to. */
const submit = async (page: Page, selector: string) => {
  await Promise.all([page.waitForNavigation({ waitUntil: "domcontentloaded" }), page.click(selector)])
}

const countOn = async (page: Page) => Number(await page.textContent("#count"))

const sessionCookie = async (context: BrowserContext, url: string): Promise<Cookie | undefined> =>
  (await context.cookies(url)).find((c) => c.name === COOKIE)

const login = async (page: Page, url: string, user: string, password: string) => {
  await page.goto(url)
  await page.fill("#user-input", user)
  await page.fill("#password-input", password)
  await submit(page, "#login")
}

const strong = "violet tractor midnight ocean"

if (!haveChromium && !required) {
  it.skip(`browser scenario skipped: Chromium not installed at ${CHROMIUM}`, () => {})
} else {
  describe("demo in Chromium", () => {
    let demo: Awaited<ReturnType<typeof startDemo>> | undefined
    let browser: Browser | undefined

    beforeAll(async () => {
      if (!haveChromium) {
        throw new Error(`SESSIONS_REQUIRE_SERVICES=1, but Chromium is not installed at ${CHROMIUM}`)
      }
      // Launching the browser and booting the demo overlap.
      // Whatever started is kept (and stopped in afterAll) even when the other failed.
      const [started, launched] = await Promise.allSettled([
        startDemo(),
        chromium.launch({
          executablePath: CHROMIUM,
          args: ARGS
        })
      ])
      if (started.status === "fulfilled") demo = started.value
      if (launched.status === "fulfilled") browser = launched.value
      if (started.status === "rejected") throw started.reason
      if (launched.status === "rejected") throw launched.reason
    }, 60_000)

    afterAll(async () => {
      await browser?.close()
      if (demo) await stopDemo(demo.child)
    })

    it("logs in, keeps the session across token rotations in two tabs, and shows my sessions", async () => {
      const url = demo!.url
      const context = await browser!.newContext({ viewport: { width: 1100, height: 600 } })
      const page = await context.newPage()

      // The login form refuses a weak password and lists every problem.
      await login(page, url, "alice", "password1")
      expect(await page.locator("#password-problems li").count()).toBe(3)
      expect(await page.inputValue("#user-input")).toBe("alice")
      expect(await sessionCookie(context, url)).toBeUndefined()

      // A strong one logs in; Chromium keeps the Secure cookie of http://127.0.0.1.
      await page.fill("#password-input", strong)
      await submit(page, "#login")
      expect(await page.textContent("#user")).toBe("alice")
      const cookie = await sessionCookie(context, url)
      expect(cookie).toBeDefined()
      expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: "Lax", path: "/" })
      const rotatedAtLogin = Date.now()

      for (let i = 1; i <= 3; i++) {
        await submit(page, "#increment")
        expect(await countOn(page)).toBe(i)
      }
      const before = (await sessionCookie(context, url))!.value
      expect(before).toBe(cookie!.value)

      // Past the rotation interval the next request gets a new token; nothing is lost.
      await sleep(Math.max(0, rotatedAtLogin + ROTATION_MS + 200 - Date.now()))
      await submit(page, "#increment")
      const after = (await sessionCookie(context, url))!.value
      expect(after).not.toBe(before)
      expect(await countOn(page)).toBe(4)
      expect(await page.textContent("#user")).toBe("alice")
      expect(await page.locator(".badge", { hasText: "new token" }).count()).toBe(1)

      // Two tabs of one browser click alternately, and at the same time, across rotations.
      const tabB = await context.newPage()
      await tabB.goto(url)
      expect(await countOn(tabB)).toBe(4)
      const tokens = new Set([after])
      let clicks = 0
      const started = Date.now()
      while (Date.now() - started < ROTATION_MS * 1.6) {
        await submit(page, "#increment")
        await submit(tabB, "#increment")
        await Promise.all([submit(page, "#increment"), submit(tabB, "#increment")])
        clicks += 4
        tokens.add((await sessionCookie(context, url))!.value)
        await sleep(300)
      }
      expect(tokens.size).toBeGreaterThan(1)
      await page.reload()
      await tabB.reload()
      expect(await countOn(page)).toBe(4 + clicks)
      expect(await countOn(tabB)).toBe(4 + clicks)
      expect(await page.textContent("#user")).toBe("alice")

      // A second browser logs in as alice too; "my sessions" shows both.
      const other = await browser!.newContext({ userAgent: "Mozilla/5.0 (X11; Linux x86_64) second browser" })
      const otherPage = await other.newPage()
      await login(otherPage, url, "alice", strong)
      expect(await otherPage.textContent("#user")).toBe("alice")

      await page.goto(`${url}/sessions`)
      expect(await page.locator("#sessions tbody tr").count()).toBe(2)
      expect(await page.locator("#sessions tbody tr.current").count()).toBe(1)
      mkdirSync(dirname(screenshot), { recursive: true })
      await page.screenshot({ path: screenshot, fullPage: true })
      expect(statSync(screenshot).size).toBeGreaterThan(10_000)

      // Log out everywhere ends both.
      await submit(page, "#logout-everywhere")
      expect(await page.locator("#login-form").count()).toBe(1)
      expect(await sessionCookie(context, url)).toBeUndefined()
      await otherPage.reload()
      expect(await otherPage.locator("#login-form").count()).toBe(1)

      await other.close()
      await context.close()
    }, 60_000)

    it("feature: recent-login gate — a log-in older than the gate is refused the change-password page until the password is entered again; feature: remember me — the checkbox makes the cookie persistent", async () => {
      const url = demo!.url
      const context = await browser!.newContext()
      const page = await context.newPage()
      await page.goto(url)
      await page.fill("#user-input", "mallory")
      await page.fill("#password-input", strong)
      await page.check("#remember-input")
      await submit(page, "#login")
      const loggedInAt = Date.now()
      // Chromium keeps a persistent cookie (an expiry date) for "remember me", about 12 hours out.
      const remembered = (await sessionCookie(context, url))!
      expect(remembered.expires * 1000).toBeGreaterThan(Date.now() + 11 * 3_600_000)

      // Right after the log-in the page is open.
      await page.click("#change-password-link")
      await page.waitForSelector("#change-password-form")

      // Once the log-in is older than the gate, the same page asks for the password instead.
      await sleep(Math.max(0, loggedInAt + RECENT_LOGIN_MS + 300 - Date.now()))
      const gated = await page.goto(`${url}/account/password`)
      expect(gated!.status()).toBe(403)
      expect(await page.locator("#change-password-form").count()).toBe(0)
      await page.fill("#reauthenticate-password", "not the password at all")
      await submit(page, "#reauthenticate")
      expect(await page.locator("#reauthenticate-error").count()).toBe(1)
      const before = (await sessionCookie(context, url))!.value
      await page.fill("#reauthenticate-password", strong)
      await submit(page, "#reauthenticate")
      await page.waitForSelector("#change-password-form")
      // Re-authenticating replaced the token.
      expect((await sessionCookie(context, url))!.value).not.toBe(before)
      await page.fill("#new-password", "another violet tractor")
      await submit(page, "#change-password")
      expect(await page.textContent("#notice")).toContain("Your password was changed.")

      // Without the checkbox the cookie is a browser-session one (no expiry).
      const plain = await browser!.newContext()
      await login(await plain.newPage(), url, "mallory", strong)
      expect((await sessionCookie(plain, url))!.expires).toBe(-1)
      await plain.close()
      await context.close()
    }, 60_000)
  })
}

/** An HTML page whose form posts itself to `action` as soon as it loads. */
const autoSubmit = (action: string) =>
  `<!doctype html><form method="POST" action="${action}"><input name="x" value="1"></form><script>document.forms[0].submit()</script>`

/**
 * The session app (helpers' routes, also under /api) over a counted memory store, on
 * 127.0.0.1:PORT for `scope`. A browser reaches it as 127.0.0.1, localhost or *.localhost.
 * With `originCheck`, the app is behind `Http.originCheck(originCheck)` and `GET /form` is a
 * page of its own that posts a form to `/count`.
 */
const serveSessions = (scope: Scope.Scope, config: SessionConfig.SessionConfigInput, originCheck?: Http.OriginCheckOptions) =>
  Effect.runPromise(Effect.gen(function*() {
    const store = yield* countedMemory
    const sessionApp = routes.pipe(HttpRouter.mount("/api", routes), Http.middleware())
    const app = originCheck === undefined ? sessionApp : routes.pipe(
      HttpRouter.get("/form", HttpServerResponse.html(autoSubmit("/count"))),
      Http.middleware(),
      Http.originCheck(originCheck)
    )
    const url = yield* listen(HttpServer.serve(app).pipe(Layer.provide(Sessions.layer(config).pipe(Layer.provide(store.layer)))))
    return { port: Number(new URL(url).port), calls: () => totalCalls(store.calls()) }
  }).pipe(Scope.extend(scope)))

/**
 * Another site's server: `GET /plant?set=<Set-Cookie line>` answers with those `Set-Cookie` lines;
 * `GET /form?action=<URL>` with a page that posts a form to that URL as soon as it loads.
 */
const startSibling = (): Promise<{ readonly port: number; readonly server: Server }> =>
  new Promise((resolvePromise) => {
    const server = createServer((request, response) => {
      const url = new URL(request.url ?? "/", "http://sibling")
      if (url.pathname === "/plant") response.setHeader("set-cookie", url.searchParams.getAll("set"))
      if (url.pathname === "/form") {
        response.setHeader("content-type", "text/html; charset=utf-8")
        return response.end(autoSubmit(url.searchParams.get("action") ?? "/"))
      }
      response.end("planted")
    }).listen(0, "127.0.0.1", () => {
      const address = server.address()
      resolvePromise({ port: typeof address === "object" && address !== null ? address.port : 0, server })
    })
  })

/** `fetch` from the page (same origin: the browser sends and stores the cookies itself). */
const call = (page: Page, path: string, method = "GET"): Promise<{ readonly status: number; readonly body: any }> =>
  page.evaluate(async ([p, m]) => {
    const r = await fetch(p!, { method: m! })
    const text = await r.text()
    return { status: r.status, body: text === "" ? null : JSON.parse(text) }
  }, [path, method] as const)

const cookiesNamed = async (context: BrowserContext, url: string, name: string) =>
  (await context.cookies(url)).filter((c) => c.name === name).map((c) => ({ value: c.value, path: c.path, domain: c.domain }))

if (haveChromium || required) {
  describe("security: the session cookie in Chromium", () => {
    let context: BrowserContext | undefined
    let profile: string | undefined
    let sibling: Awaited<ReturnType<typeof startSibling>> | undefined
    const scope = Effect.runSync(Scope.make())

    beforeAll(async () => {
      if (!haveChromium) throw new Error(`SESSIONS_REQUIRE_SERVICES=1, but Chromium is not installed at ${CHROMIUM}`)
      profile = mkdtempSync(join(tmpdir(), "sessions-chromium-"))
      context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS })
      sibling = await startSibling()
    }, 60_000)

    afterAll(async () => {
      await context?.close()
      if (profile) rmSync(profile, { recursive: true, force: true })
      await new Promise((r) => sibling ? sibling.server.close(r) : r(undefined))
      await Effect.runPromise(Scope.close(scope, Exit.void))
    })

    it("security: a Secure __Host-id cookie from http://127.0.0.1 and http://localhost is kept and sent back, as a plain Secure one", async () => {
      const page = await context!.newPage()
      for (const [name, config] of [[COOKIE, {}], ["id", { cookie: { name: "id" } }]] as const) {
        const server = await serveSessions(scope, config)
        for (const host of ["127.0.0.1", "localhost"]) {
          const base = `http://${host}:${server.port}`
          await context!.clearCookies()
          await page.goto(`${base}/read`)
          expect(await call(page, "/count", "POST")).toEqual({ status: 200, body: { count: 1 } })
          const [cookie, ...more] = (await context!.cookies(base)).filter((c) => c.name === name)
          expect(more).toEqual([])
          expect(cookie).toMatchObject({ name, secure: true, httpOnly: true, path: "/", domain: host, sameSite: "Lax" })
          // Sent back: the same session counts on.
          expect(await call(page, "/count", "POST")).toEqual({ status: 200, body: { count: 2 } })
          expect(await call(page, "/read")).toEqual({ status: 200, body: { count: 2, user: null } })
        }
      }
      await page.close()
    }, 60_000)

    it("security: a duplicate id planted by a sibling subdomain (Domain, Path=/api) costs that request its session, never the login", async () => {
      // `id` is what a configuration that cannot use the prefix gets (a domain, a path, or secure: false).
      const server = await serveSessions(scope, { cookie: { name: "id" } })
      const app = `http://app.site.localhost:${server.port}`
      const evil = `http://evil.site.localhost:${sibling!.port}`
      await context!.clearCookies()
      const page = await context!.newPage()
      await page.goto(`${app}/read`)
      expect((await call(page, "/login/alice", "POST")).status).toBe(204)
      const [own] = await cookiesNamed(context!, app, "id")
      expect(own).toEqual({ value: expect.stringMatching(/^[A-Za-z0-9]{4}[A-Za-z0-9_-]{43}$/), path: "/", domain: "app.site.localhost" })
      expect(await call(page, "/api/read")).toEqual({ status: 200, body: { count: null, user: "alice" } })

      // The sibling plants its own cookie for the whole site, on /api only.
      const planted = "E".repeat(47)
      await page.goto(`${evil}/plant?set=${encodeURIComponent(`id=${planted}; Domain=site.localhost; Path=/api; Secure; SameSite=Lax`)}`)
      expect(await cookiesNamed(context!, `${app}/api/read`, "id")).toEqual([{ value: planted, path: "/api", domain: ".site.localhost" }, own])

      await page.goto(`${app}/read`)
      const before = server.calls()
      // Two cookies of our name: no session for this request, and no store call …
      expect(await call(page, "/api/read")).toEqual({ status: 200, body: { count: null, user: null } })
      expect(server.calls()).toBe(before)
      // … but no removal either: the own cookie is still there, and a path without the planted one is logged in.
      expect(await cookiesNamed(context!, app, "id")).toEqual([own])
      expect(await call(page, "/read")).toEqual({ status: 200, body: { count: null, user: "alice" } })

      // Once the planted cookie is gone, /api is logged in again.
      await page.goto(`${evil}/plant?set=${encodeURIComponent("id=; Domain=site.localhost; Path=/api; Secure; Max-Age=0")}`)
      expect(await cookiesNamed(context!, `${app}/api/read`, "id")).toEqual([own])
      await page.goto(`${app}/read`)
      expect(await call(page, "/api/read")).toEqual({ status: 200, body: { count: null, user: "alice" } })
      await page.close()
    }, 60_000)

    it("security: Chromium refuses a __Host-id cookie with a Domain or a Path, so the default name cannot be planted", async () => {
      const server = await serveSessions(scope, {})
      const app = `http://app.site.localhost:${server.port}`
      const evil = `http://evil.site.localhost:${sibling!.port}`
      await context!.clearCookies()
      const page = await context!.newPage()
      await page.goto(`${app}/read`)
      expect((await call(page, "/login/alice", "POST")).status).toBe(204)
      const own = await cookiesNamed(context!, app, COOKIE)
      expect(own).toEqual([{ value: expect.stringMatching(/^[A-Za-z0-9]{4}[A-Za-z0-9_-]{43}$/), path: "/", domain: "app.site.localhost" }])

      const planted = "E".repeat(47)
      const attempts = [
        `${COOKIE}=${planted}; Domain=site.localhost; Path=/; Secure`,
        `${COOKIE}=${planted}; Domain=site.localhost; Path=/api; Secure`,
        `${COOKIE}=${planted}; Domain=app.site.localhost; Path=/; Secure`,
        // The prefix is matched in any case.
        `__HOST-id=${planted}; Domain=site.localhost; Path=/api; Secure`,
        // A control: the same planting under a name without the prefix works.
        `control=${planted}; Domain=site.localhost; Path=/api; Secure`
      ]
      await page.goto(`${evil}/plant?${attempts.map((a) => `set=${encodeURIComponent(a)}`).join("&")}`)
      expect(await cookiesNamed(context!, `${app}/api/read`, "control")).toEqual([{ value: planted, path: "/api", domain: ".site.localhost" }])
      // A script on the app's own host cannot give it a Path either, nor can the DevTools protocol.
      await page.goto(`${app}/read`)
      await page.evaluate((v) => {
        document.cookie = `__Host-id=${v}; Path=/api; Secure`
        document.cookie = `__host-id=${v}; Path=/api; Secure`
      }, planted)
      await expect(context!.addCookies([{ name: COOKIE, value: planted, domain: "app.site.localhost", path: "/api", secure: true }])).rejects.toThrow()
      await expect(context!.addCookies([{ name: COOKIE, value: planted, domain: ".site.localhost", path: "/", secure: true }])).rejects.toThrow()

      const sent = (await context!.cookies(`${app}/api/read`)).filter((c) => c.name.toLowerCase() === COOKIE.toLowerCase())
      expect(sent.map((c) => ({ value: c.value, path: c.path, domain: c.domain }))).toEqual(own)
      expect(await call(page, "/api/read")).toEqual({ status: 200, body: { count: null, user: "alice" } })
      await page.close()
    }, 60_000)

    it("feature: Http.originCheck refuses a form auto-submitted from a sibling subdomain or another site; a same-origin or allowed one passes", async () => {
      const admin = `http://admin.site.localhost:${sibling!.port}`
      const server = await serveSessions(scope, {}, { allowedOrigins: [admin] })
      const app = `http://app.site.localhost:${server.port}`
      await context!.clearCookies()
      const page = await context!.newPage()
      // Loads `formPage`, whose form posts to the app's /count at once; the answer to that post.
      const formPost = async (formPage: string) => {
        const [response] = await Promise.all([page.waitForResponse((r) => r.url() === `${app}/count`), page.goto(formPage)])
        return { status: response.status(), body: await response.text() }
      }
      await page.goto(`${app}/read`)
      expect(await call(page, "/count", "POST")).toEqual({ status: 200, body: { count: 1 } })

      // A sibling subdomain is the same site: SameSite=Lax lets its POST carry the cookie. Refused.
      const refused = { status: 403, body: "Forbidden: cross-site request" }
      expect(await formPost(`http://evil.site.localhost:${sibling!.port}/form?action=${encodeURIComponent(`${app}/count`)}`)).toEqual(refused)
      // Another site (127.0.0.1 is not site.localhost): refused too.
      expect(await formPost(`http://127.0.0.1:${sibling!.port}/form?action=${encodeURIComponent(`${app}/count`)}`)).toEqual(refused)
      await page.goto(`${app}/read`)
      expect(await call(page, "/read")).toEqual({ status: 200, body: { count: 1, user: null } })

      // An allowed sibling passes, and its post carried the session cookie (the count goes on) …
      expect(await formPost(`${admin}/form?action=${encodeURIComponent(`${app}/count`)}`)).toEqual({ status: 200, body: JSON.stringify({ count: 2 }) })
      // … and so does the app's own page.
      expect(await formPost(`${app}/form`)).toEqual({ status: 200, body: JSON.stringify({ count: 3 }) })
      await page.goto(`${app}/read`)
      expect(await call(page, "/read")).toEqual({ status: 200, body: { count: 3, user: null } })
      await page.close()
    }, 60_000)
  })
}
