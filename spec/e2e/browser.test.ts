/**
 * The demo in a real browser (Chromium through playwright-core): the demo server runs as a child
 * process with short timings, and a headless Chromium logs in, counts, watches its cookie rotate,
 * clicks in two tabs across rotations, and takes a screenshot of "my sessions"
 * (test-results/my-sessions.png).
 *
 * Without Chromium at /usr/bin/chromium (or $CHROMIUM_PATH) the scenario is skipped, unless
 * SESSIONS_REQUIRE_SERVICES=1, which makes it fail instead.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdirSync, statSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import type { Browser, BrowserContext, Cookie, Page } from "playwright-core"
import { chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

// Debian's Chromium; CHROMIUM_PATH points elsewhere (another OS, or to check the skip rule).
const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const screenshot = join(root, "test-results", "my-sessions.png")
const haveChromium = existsSync(CHROMIUM)
const required = process.env["SESSIONS_REQUIRE_SERVICES"] === "1"

const ROTATION_MS = 2000
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
        SESSIONS_TOUCH_INTERVAL: "1 second"
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
  (await context.cookies(url)).find((c) => c.name === "id")

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
          args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
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
  })
}
