/**
 * The HTTP edge over real sockets: a Node server on an ephemeral loopback port serves the session
 * app of `helpers/http.ts`; requests go through `fetch` with a hand-held cookie jar. Timing rules
 * run under TestClock (the server is built in the test's fiber context, so it reads the test's
 * clock).
 */
import { PersistenceBackingError } from "@effect/experimental/Persistence"
import { HttpApp, HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Deferred, Effect, Either, Fiber, Layer, Option, TestClock } from "effect"
import * as Http from "../src/Http.js"
import * as Persistence from "../src/Persistence.js"
import * as SecureRandom from "../src/SecureRandom.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { switchable } from "../src/testing.js"
import {
  canonicalIp as canonical,
  COOKIE,
  CookieJar,
  countedMemory,
  fromWeb,
  isRemoval,
  listen,
  type Reply,
  routes,
  send,
  sessionApp,
  sessionServer,
  type SetCookie,
  totalCalls
} from "./helpers/http.js"

/** A token of the default size: 32 bytes in base64url, no padding. */
const TOKEN = /^[A-Za-z0-9]{4}[A-Za-z0-9_-]{43}$/

/** The one `Set-Cookie` for `name` that sets (not removes) it. */
const setCookie = (r: Reply, name = COOKIE): SetCookie => {
  const c = r.cookie(name)
  assert.isDefined(c, `expected a Set-Cookie for ${name}, got ${JSON.stringify(r.setCookies.map((s) => s.raw))}`)
  assert.isFalse(isRemoval(c!), `expected a set, got a removal: ${c!.raw}`)
  return c!
}

/** Asserts that the response removes cookie `name`. */
const assertCleared = (r: Reply, name = COOKIE) => {
  const c = r.cookie(name)
  assert.isDefined(c, `expected the cookie ${name} to be cleared, got no Set-Cookie`)
  assert.isTrue(isRemoval(c!), `expected a removal, got ${c!.raw}`)
  assert.strictEqual(c!.attributes.get("max-age"), "0")
}

const assertNoCookie = (r: Reply) => deepStrictEqual(r.setCookies.map((c) => c.raw), [])

/** Starts the session app over a counted memory store. */
const start = (config: SessionConfig.SessionConfigInput = {}, middleware: Http.MiddlewareOptions = {}) =>
  Effect.gen(function*() {
    const store = yield* countedMemory
    const url = yield* listen(sessionServer(store.layer, config, middleware))
    return { url, calls: store.calls }
  })

const post = (url: string, jar?: CookieJar, headers?: Record<string, string>) =>
  send(url, { method: "POST", ...(jar ? { jar } : {}), ...(headers ? { headers } : {}) })

describe("Http: the session cookie", () => {
  it.scoped("a new session: name __Host-id, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain, Cache-Control: no-store", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const r = yield* post(`${url}/count`)
      assert.strictEqual(r.status, 200)
      const c = setCookie(r)
      assert.strictEqual(c.name, COOKIE)
      assert.match(c.value, TOKEN)
      assert.isTrue(c.attributes.has("httponly"))
      assert.isTrue(c.attributes.has("secure"))
      assert.strictEqual(c.attributes.get("samesite")?.toLowerCase(), "lax")
      assert.strictEqual(c.attributes.get("path"), "/")
      assert.isFalse(c.attributes.has("domain"))
      assert.isFalse(c.attributes.has("partitioned"))
      assert.strictEqual(r.headers.get("cache-control"), "no-store")
      deepStrictEqual(r.json(), { count: 1 })
    }))

  it.scoped("a __Host- name with SameSite=Strict: only that cookie is read", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start({ cookie: { name: "__Host-sid", sameSite: "strict" } })
      const r = yield* post(`${url}/count`)
      const c = setCookie(r, "__Host-sid")
      assert.isUndefined(r.cookie(COOKIE))
      assert.match(c.value, TOKEN)
      assert.strictEqual(c.attributes.get("samesite")?.toLowerCase(), "strict")
      assert.isTrue(c.attributes.has("secure"))
      assert.isTrue(c.attributes.has("httponly"))
      assert.strictEqual(c.attributes.get("path"), "/")
      assert.isFalse(c.attributes.has("domain"))
      assert.strictEqual(r.headers.get("cache-control"), "no-store")
      // The configured name carries the session …
      const again = yield* send(`${url}/read`, { cookie: `__Host-sid=${c.value}` })
      deepStrictEqual(again.json(), { count: 1, user: null })
      assertNoCookie(again)
      // … and the default name means nothing: no store call, no session.
      const before = calls().load ?? 0
      const other = yield* send(`${url}/read`, { cookie: `${COOKIE}=${c.value}` })
      deepStrictEqual(other.json(), { count: null, user: null })
      assert.strictEqual(calls().load ?? 0, before)
    }))

  it.scoped("a configured domain and path, partitioned, and secure: false", () =>
    Effect.gen(function*() {
      const a = yield* start({ cookie: { domain: "example.com", path: "/app", partitioned: true } })
      const c = setCookie(yield* post(`${a.url}/count`), "id")
      assert.strictEqual(c.attributes.get("domain")?.replace(/^\./, ""), "example.com")
      assert.strictEqual(c.attributes.get("path"), "/app")
      assert.isTrue(c.attributes.has("partitioned"))
      const b = yield* start({ cookie: { secure: false, httpOnly: false } })
      const d = setCookie(yield* post(`${b.url}/count`), "id")
      assert.isFalse(d.attributes.has("secure"))
      assert.isFalse(d.attributes.has("httponly"))
    }))

  it.scoped("cookie removals carry the configured attributes (a browser only removes a matching cookie)", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ cookie: { domain: "example.com", path: "/app" } })
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const r = yield* post(`${url}/destroy`, jar)
      assertCleared(r, "id")
      assert.strictEqual(r.cookie("id")!.attributes.get("path"), "/app")
      assert.strictEqual(r.cookie("id")!.attributes.get("domain")?.replace(/^\./, ""), "example.com")
    }))
})

describe("Http: lazy creation", () => {
  it.scoped("a GET that only reads sets no cookie and calls no store; the first write creates", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start()
      const read = yield* send(`${url}/read`)
      assert.strictEqual(read.status, 200)
      deepStrictEqual(read.json(), { count: null, user: null })
      assertNoCookie(read)
      assert.isNull(read.headers.get("cache-control"))
      assert.strictEqual(totalCalls(calls()), 0)

      const jar = new CookieJar()
      const write = yield* post(`${url}/count`, jar)
      const c = setCookie(write)
      assert.strictEqual(calls().create, 1)

      // With the cookie: the same session, and no new cookie.
      const again = yield* send(`${url}/read`, { jar })
      deepStrictEqual(again.json(), { count: 1, user: null })
      assertNoCookie(again)
      const more = yield* post(`${url}/count`, jar)
      deepStrictEqual(more.json(), { count: 2 })
      assertNoCookie(more)
      assert.strictEqual(calls().create, 1)
      assert.strictEqual(jar.get(COOKIE), c.value)
    }))

  it.scoped("Http.middleware({ create: true }) creates eagerly, once", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start({}, { create: true })
      const jar = new CookieJar()
      const first = yield* send(`${url}/read`, { jar })
      deepStrictEqual(first.json(), { count: null, user: null })
      const c = setCookie(first)
      assert.match(c.value, TOKEN)
      assert.strictEqual(first.headers.get("cache-control"), "no-store")
      assert.strictEqual(calls().create, 1)
      const second = yield* send(`${url}/read`, { jar })
      assertNoCookie(second)
      assert.strictEqual(calls().create, 1)
    }))

  it.scoped("an unknown well-formed token: no session, nothing is created, and the cookie is left alone", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start()
      const r = yield* send(`${url}/read`, { cookie: `${COOKIE}=${"A".repeat(47)}` })
      assert.strictEqual(r.status, 200)
      deepStrictEqual(r.json(), { count: null, user: null })
      // Removing a cookie goes by name: the browser may hold a newer token already.
      assert.isUndefined(r.setCookies.find((c) => c.name === COOKIE), "no Set-Cookie for an unknown token")
      assert.strictEqual(calls().load, 1)
      assert.strictEqual(calls().create ?? 0, 0)
    }))
})

describe("Http: one request, many fibers", () => {
  it.scoped("concurrent first writes within one request create one session", () =>
    Effect.gen(function*() {
      const app = routes.pipe(
        HttpRouter.post("/fan-out", Effect.flatMap(Http.CurrentSession, (session) =>
          Effect.as(
            Effect.forEach(Array.from({ length: 10 }, (_, i) => i), (i) => session.set(`k${i}`, i), { concurrency: "unbounded" }),
            HttpServerResponse.empty({ status: 204 })
          ))),
        HttpRouter.get("/keys", Effect.flatMap(Http.CurrentSession, (session) =>
          Effect.flatMap(session.session, (s) => HttpServerResponse.json(Option.match(s, { onNone: () => null, onSome: (v) => v.data }))))),
        HttpRouter.post("/logout-clear", Effect.flatMap(Http.CurrentSession, (session) =>
          Effect.as(session.logOut({ keepData: false }), HttpServerResponse.empty({ status: 204 })))),
        HttpRouter.get("/big-size", Effect.flatMap(Http.CurrentSession, (session) =>
          Effect.flatMap(session.session, (s) =>
            HttpServerResponse.json({ bytes: Option.getOrNull(Option.map(s, (x) => JSON.stringify(x.data).length)) })))),
        Http.middleware()
      )
      const store = yield* countedMemory
      const url = yield* listen(HttpServer.serve(app).pipe(Layer.provide(Sessions.layer().pipe(Layer.provide(store.layer)))))
      const jar = new CookieJar()
      const r = yield* post(`${url}/fan-out`, jar)
      assert.strictEqual(r.status, 204)
      setCookie(r)
      assert.strictEqual(store.calls().create, 1)
      deepStrictEqual((yield* send(`${url}/keys`, { jar })).json(), Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i])))
    }))
})

describe("Http: expiry", () => {
  it.scoped("an idle session ends: the cookie is cleared and the data is gone", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ idleTimeout: "10 minutes", touchInterval: "1 minute" })
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const token = jar.get(COOKIE)!
      yield* TestClock.adjust("9 minutes")
      deepStrictEqual((yield* send(`${url}/read`, { jar })).json(), { count: 1, user: null })
      // The read touched the session: another 9 minutes are fine, 10 idle minutes are not.
      yield* TestClock.adjust("9 minutes")
      deepStrictEqual((yield* send(`${url}/read`, { jar })).json(), { count: 1, user: null })
      yield* TestClock.adjust("10 minutes")
      const r = yield* send(`${url}/read`, { jar })
      deepStrictEqual(r.json(), { count: null, user: null })
      assertCleared(r)
      // The first token was rotated away long ago: it leads nowhere, and leaves the cookie alone.
      const old = yield* send(`${url}/read`, { cookie: `${COOKIE}=${token}` })
      deepStrictEqual(old.json(), { count: null, user: null })
      assert.isUndefined(old.setCookies.find((c) => c.name === COOKIE))
    }))

  it.scoped("the absolute timeout ends an active session", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ idleTimeout: "10 minutes", absoluteTimeout: "25 minutes", idRotationInterval: "1 hour" })
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      for (let i = 0; i < 4; i++) {
        yield* TestClock.adjust("6 minutes")
        deepStrictEqual((yield* post(`${url}/count`, jar)).json(), { count: i + 2 })
      }
      yield* TestClock.adjust("1 minute") // 25 minutes after birth
      const r = yield* send(`${url}/read`, { jar })
      deepStrictEqual(r.json(), { count: null, user: null })
      assertCleared(r)
    }))
})

describe("Http: rotation and the grace period", () => {
  const config = { idRotationInterval: "1 second", gracePeriod: "30 seconds" } as const

  it.scoped("a request after idRotationInterval gets a new cookie; the data survives", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start(config)
      const jar = new CookieJar()
      const t1 = setCookie(yield* post(`${url}/count`, jar)).value
      assertNoCookie(yield* send(`${url}/read`, { jar }))
      yield* TestClock.adjust("1001 millis")
      const r = yield* send(`${url}/read`, { jar })
      deepStrictEqual(r.json(), { count: 1, user: null })
      const t2 = setCookie(r).value
      assert.match(t2, TOKEN)
      assert.notStrictEqual(t2, t1)
      assert.strictEqual(r.headers.get("cache-control"), "no-store")
      assert.strictEqual(calls().rotate, 1)
      // The new cookie carries the session on.
      const next = yield* post(`${url}/count`, jar)
      deepStrictEqual(next.json(), { count: 2 })
      assertNoCookie(next)
    }))

  it.scoped("right after a rotation, 20 concurrent requests with the OLD cookie share the session", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start(config)
      const jar = new CookieJar()
      for (let i = 0; i < 3; i++) yield* post(`${url}/count`, jar)
      const old = jar.get(COOKIE)!
      yield* TestClock.adjust("1500 millis")
      const rotation = yield* send(`${url}/read`, { jar })
      const successor = setCookie(rotation).value
      assert.notStrictEqual(successor, old)
      const before = rotation.json().count as number
      assert.strictEqual(before, 3)

      const replies = yield* Effect.forEach(
        Array.from({ length: 20 }, () => old),
        (token) => send(`${url}/count`, { method: "POST", cookie: `${COOKIE}=${token}` }),
        { concurrency: "unbounded" }
      )
      for (const r of replies) {
        assert.strictEqual(r.status, 200)
        assert.strictEqual(setCookie(r).value, successor)
      }
      const counts = replies.map((r) => r.json().count as number).sort((a, b) => a - b)
      deepStrictEqual(counts, Array.from({ length: 20 }, (_, i) => before + 1 + i))
      const final = yield* send(`${url}/read`, { cookie: `${COOKIE}=${successor}` })
      deepStrictEqual(final.json(), { count: before + 20, user: null })
      assert.strictEqual(calls().rotate, 1)
    }))

  it.scoped("20 concurrent requests that all find the token due rotate it once and share the successor", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start(config)
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const old = jar.get(COOKIE)!
      yield* TestClock.adjust("1500 millis")
      const replies = yield* Effect.forEach(
        Array.from({ length: 20 }, () => old),
        (token) => send(`${url}/count`, { method: "POST", cookie: `${COOKIE}=${token}` }),
        { concurrency: "unbounded" }
      )
      const tokens = new Set(replies.map((r) => setCookie(r).value))
      assert.strictEqual(tokens.size, 1)
      assert.isFalse(tokens.has(old))
      const counts = replies.map((r) => r.json().count as number).sort((a, b) => a - b)
      deepStrictEqual(counts, Array.from({ length: 20 }, (_, i) => 2 + i))
      assert.strictEqual(calls().rotate, 1)
    }))

  it.scoped("after the grace period the old cookie leads nowhere", () =>
    Effect.gen(function*() {
      const { url } = yield* start(config)
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const old = jar.get(COOKIE)!
      yield* TestClock.adjust("1500 millis")
      const successor = setCookie(yield* send(`${url}/read`, { jar })).value
      yield* TestClock.adjust("30 seconds")
      const late = yield* send(`${url}/read`, { cookie: `${COOKIE}=${old}` })
      deepStrictEqual(late.json(), { count: null, user: null })
      for (const c of late.setCookies) assert.isTrue(isRemoval(c), c.raw)
      // The successor lives on (it is itself due for rotation by now).
      const current = yield* send(`${url}/read`, { cookie: `${COOKIE}=${successor}` })
      deepStrictEqual(current.json(), { count: 1, user: null })
    }))

  // BUG: the middleware applies Set-Cookie only to a successful response of the wrapped app. A
  // request whose resolution rotated the token but whose handler failed (here: no such route,
  // 404) leaves without the new cookie; once the grace period ends the client's token is dead.
  it.scoped("a rotation on a request that ends in 404 still delivers the new cookie", () =>
    Effect.gen(function*() {
      const { url } = yield* start(config)
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      yield* TestClock.adjust("1500 millis")
      const r = yield* send(`${url}/no-such-route`, { jar })
      assert.strictEqual(r.status, 404)
      yield* TestClock.adjust("31 seconds") // past the grace period, far from the idle timeout
      const later = yield* send(`${url}/read`, { jar })
      deepStrictEqual(later.json(), { count: 1, user: null }, "the session was lost: the 404 did not carry the rotated cookie")
    }))

  // BUG (same cause): logIn rotates without grace, so the old token dies at once; if the handler
  // then fails, the response carries no cookie and the user is logged out of a live session.
  it.scoped("a handler that logs in and then fails still delivers the new cookie", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const r = yield* post(`${url}/login-then-fail/alice`, jar)
      assert.strictEqual(r.status, 500)
      const later = yield* send(`${url}/read`, { jar })
      deepStrictEqual(later.json(), { count: 1, user: "alice" }, "the live session is unreachable: the 500 did not carry the rotated cookie")
    }))
})

describe("Http: anomalies", () => {
  it.scoped("a changed user agent destroys the session; the old cookie with the original agent gets nothing", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start()
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar, { "user-agent": "Browser/1" })
      yield* post(`${url}/count`, jar, { "user-agent": "Browser/1" })
      const token = jar.get(COOKIE)!
      const changed = yield* send(`${url}/read`, { jar, headers: { "user-agent": "Browser/2" } })
      deepStrictEqual(changed.json(), { count: null, user: null })
      assertCleared(changed)
      assert.isAtLeast(calls().delete ?? 0, 1)
      const original = yield* send(`${url}/read`, { cookie: `${COOKIE}=${token}`, headers: { "user-agent": "Browser/1" } })
      deepStrictEqual(original.json(), { count: null, user: null })
    }))

  it.scoped("with acceptChangingUserAgent the session survives a new agent", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ acceptChangingUserAgent: true })
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar, { "user-agent": "Browser/1" })
      const r = yield* send(`${url}/read`, { jar, headers: { "user-agent": "Browser/2" } })
      deepStrictEqual(r.json(), { count: 1, user: null })
      assertNoCookie(r)
    }))

  // The client IP comes from X-Forwarded-For through the trusted proxy 127.0.0.1 (the socket).
  const origin = [203, 0, 113, 7]
  // ipBinding.ipv4Prefix 0, 8, 16, 24: rivo/sessions' AcceptRemoteIP levels 1 (as any address
  // of the family), 2, 3, 4.
  const cases = [0, 1, 2, 3].flatMap((octets) =>
    [0, 1, 2, 3].map((shared) => {
      // Keep `shared` leading octets, change the next one.
      const moved = origin.map((o, i) => (i < shared ? o : i === shared ? (o + 1) % 256 : o))
      // ipv4Prefix 8·k keeps the first k octets; 0 accepts any IPv4 address.
      const destroyed = shared < octets
      return { ipv4Prefix: octets * 8, shared, to: moved.join("."), destroyed }
    })
  )

  it.scoped.each(cases)("ipBinding.ipv4Prefix $ipv4Prefix, 203.0.113.7 → $to: destroyed = $destroyed", ({ destroyed, ipv4Prefix, to }) =>
    Effect.gen(function*() {
      const { url } = yield* start({ ipBinding: { ipv4Prefix }, trustedProxies: ["127.0.0.1"] })
      const jar = new CookieJar()
      const ua = { "user-agent": "Browser/1" }
      yield* post(`${url}/count`, jar, { ...ua, "x-forwarded-for": origin.join(".") })
      const token = jar.get(COOKIE)!
      const r = yield* send(`${url}/read`, { jar, headers: { ...ua, "x-forwarded-for": to } })
      if (destroyed) {
        deepStrictEqual(r.json(), { count: null, user: null })
        assertCleared(r)
        const back = yield* send(`${url}/read`, { cookie: `${COOKIE}=${token}`, headers: { ...ua, "x-forwarded-for": origin.join(".") } })
        deepStrictEqual(back.json(), { count: null, user: null })
      } else {
        deepStrictEqual(r.json(), { count: 1, user: null })
        assertNoCookie(r)
      }
    }))

  it.scoped("without trusted proxies X-Forwarded-For cannot trigger (or dodge) the IP check", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ ipBinding: { ipv4Prefix: 24 } })
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar, { "x-forwarded-for": "203.0.113.7" })
      const r = yield* send(`${url}/read`, { jar, headers: { "x-forwarded-for": "198.51.100.1" } })
      deepStrictEqual(r.json(), { count: 1, user: null })
      assertNoCookie(r)
    }))
})

describe("Http: the client IP over real sockets", () => {
  const ipOf = (url: string, xff?: string) =>
    Effect.map(post(`${url}/ip`, undefined, xff === undefined ? undefined : { "x-forwarded-for": xff }), (r) => r.json().ip as string | null)

  it.scoped("IPv4 loopback, with and without trusted proxies", () =>
    Effect.gen(function*() {
      const plain = (yield* start()).url
      assert.strictEqual(yield* ipOf(plain), "127.0.0.1")
      assert.strictEqual(yield* ipOf(plain, "198.51.100.9"), "127.0.0.1")
      assert.strictEqual(yield* ipOf(plain, "198.51.100.9, 203.0.113.7"), "127.0.0.1")

      const proxied = (yield* start({ trustedProxies: ["127.0.0.1", "10.0.0.0/8"] })).url
      const table: ReadonlyArray<readonly [string | undefined, string]> = [
        [undefined, "127.0.0.1"],
        ["203.0.113.7", "203.0.113.7"],
        // The leftmost entry is the client's own claim: only the rightmost untrusted hop counts.
        ["6.6.6.6, 203.0.113.7", "203.0.113.7"],
        ["6.6.6.6, 203.0.113.7, 10.1.2.3", "203.0.113.7"],
        ["6.6.6.6,203.0.113.7,10.1.2.3,10.9.9.9", "203.0.113.7"],
        ["203.0.113.7:4711", "203.0.113.7"],
        ["[2001:db8::7]:443", "2001:db8::7"],
        ["2001:DB8::7", "2001:db8::7"],
        ["::ffff:203.0.113.7", "203.0.113.7"],
        // A malformed hop ends the chain: what lies left of it is never believed.
        ["6.6.6.6, not-an-ip", "127.0.0.1"],
        ["6.6.6.6, 203.0.113.7.1", "127.0.0.1"],
        ["6.6.6.6, , 10.1.2.3", "10.1.2.3"],
        ["", "127.0.0.1"]
      ]
      for (const [xff, expected] of table) {
        const got = yield* ipOf(proxied, xff)
        assert.strictEqual(got === null ? null : canonical(got), expected, `X-Forwarded-For: ${String(xff)}`)
      }
      // Never the spoofed leftmost entry.
      for (const [xff] of table) {
        if (xff?.startsWith("6.6.6.6,") === true) assert.notStrictEqual(yield* ipOf(proxied, xff), "6.6.6.6")
      }
    }))

  // The trusted proxies are parsed once, when the configuration is made: a request compares the
  // parsed bytes and never reads the entries' text again. Shown with resolved configurations whose
  // text and parsed bytes disagree (which `make` never produces): the bytes decide.
  it.scoped("trusted proxies are matched by the ranges parsed when the configuration was made, not by their text", () =>
    Effect.gen(function*() {
      const made = Either.getOrThrow(SessionConfig.make({ trustedProxies: ["127.0.0.1"] }))
      const parsed = made.trustedProxies[0]!
      deepStrictEqual([parsed.entry, parsed.address.family, Array.from(parsed.address.bytes), parsed.prefix], ["127.0.0.1", 4, [127, 0, 0, 1], 32])
      const serve = (trustedProxies: SessionConfig.SessionConfigShape["trustedProxies"]) =>
        listen(HttpServer.serve(sessionApp()).pipe(Layer.provide(Sessions.layerFromContext.pipe(Layer.provide(Layer.mergeAll(
          Persistence.layerMemory,
          Layer.succeed(SessionConfig.SessionConfig, { ...made, trustedProxies }),
          SecureRandom.layerSeeded("proxies")
        ))))))
      const bytesOnly = yield* serve([{ ...parsed, entry: "not an address" }])
      assert.strictEqual(yield* ipOf(bytesOnly, "203.0.113.7"), "203.0.113.7")
      const textOnly = yield* serve([{ ...parsed, address: { family: 4, bytes: new Uint8Array([10, 0, 0, 1]) } }])
      assert.strictEqual(yield* ipOf(textOnly, "203.0.113.7"), "127.0.0.1")
    }))

  it.scoped("IPv6 loopback ::1", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const plain = yield* listen(sessionServer(store.layer), { host: "::1" })
      assert.strictEqual(canonical((yield* ipOf(plain, "203.0.113.7"))!), "::1")
      const trusted = yield* listen(sessionServer(store.layer, { trustedProxies: ["::1"] }), { host: "::1" })
      assert.strictEqual(yield* ipOf(trusted, "203.0.113.7"), "203.0.113.7")
      assert.strictEqual(canonical((yield* ipOf(trusted))!), "::1")
    }))

  it.scoped("an IPv4-mapped peer (::ffff:127.0.0.1) counts as IPv4", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const plain = yield* listen(sessionServer(store.layer), { host: "::ffff:127.0.0.1" })
      assert.strictEqual(yield* ipOf(plain, "203.0.113.7"), "127.0.0.1")
      const trusted = yield* listen(sessionServer(store.layer, { trustedProxies: ["127.0.0.1"] }), { host: "::ffff:127.0.0.1" })
      assert.strictEqual(yield* ipOf(trusted, "203.0.113.7"), "203.0.113.7")
    }))
})

describe("Http: a failing store", () => {
  /** The app over a store that can be switched off. */
  const startSwitchable = (config: SessionConfig.SessionConfigInput = {}, middleware: Http.MiddlewareOptions = {}) =>
    Effect.gen(function*() {
      const sw = switchable(yield* Persistence.makeMemory)
      const url = yield* listen(sessionServer(sw.layer, config, middleware))
      return { url, setDown: sw.setDown }
    })

  for (const cache of [false, true]) {
    it.scoped(`503 and no Set-Cookie while it is down, the same session afterwards (cache ${cache})`, () =>
      Effect.gen(function*() {
        const { setDown, url } = yield* startSwitchable({ cache })
        const jar = new CookieJar()
        yield* post(`${url}/count`, jar)
        yield* post(`${url}/count`, jar)
        const token = jar.get(COOKIE)!
        yield* setDown(true)

        // A write with a valid cookie: 503, no cookie.
        const write = yield* post(`${url}/count`, jar)
        assert.strictEqual(write.status, 503)
        assertNoCookie(write)
        // A read with a valid cookie: either served (from the cache) or 503, never an empty session.
        const read = yield* send(`${url}/read`, { jar })
        if (!cache) assert.strictEqual(read.status, 503)
        if (read.status === 200) deepStrictEqual(read.json(), { count: 2, user: null })
        assertNoCookie(read)
        // A first visit that writes: 503, no cookie.
        const fresh = yield* post(`${url}/count`)
        assert.strictEqual(fresh.status, 503)
        assertNoCookie(fresh)
        assert.strictEqual(jar.get(COOKIE), token)

        yield* setDown(false)
        const after = yield* send(`${url}/read`, { jar })
        assert.strictEqual(after.status, 200)
        deepStrictEqual(after.json(), { count: 2, user: null })
        assertNoCookie(after)
        const next = yield* post(`${url}/count`, jar)
        deepStrictEqual(next.json(), { count: 3 })
      }))
  }

  it.scoped("with create: true an outage never hands out a fresh session", () =>
    Effect.gen(function*() {
      const { setDown, url } = yield* startSwitchable({ cache: false }, { create: true })
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      yield* setDown(true)
      const withCookie = yield* send(`${url}/read`, { jar })
      assert.strictEqual(withCookie.status, 503)
      assertNoCookie(withCookie)
      const without = yield* send(`${url}/read`)
      assert.strictEqual(without.status, 503)
      assertNoCookie(without)
      // The 503 depends on the session too (a cache must not serve it to another cookie).
      for (const reply of [withCookie, without]) assert.strictEqual(reply.headers.get("vary"), "Cookie")
      yield* setDown(false)
      const after = yield* send(`${url}/read`, { jar })
      deepStrictEqual(after.json(), { count: 1, user: null })
      assertNoCookie(after)
    }))

  it.scoped("security: an app's own error tagged PersistenceError (@effect/experimental) is not taken for a store outage", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(Sessions.layerMemory())
      const answer = (app: HttpApp.Default<unknown>) =>
        Effect.promise(() => HttpApp.toWebHandler(Effect.provide(Http.middleware()(app), context))(new Request("http://localhost/")))
      const ownCache = PersistenceBackingError.make("get", new Error("the app's own cache is down"))
      assert.strictEqual(ownCache._tag, "PersistenceError")
      // The app's error passes through the middleware (the server renders it: 500), not a 503.
      assert.strictEqual((yield* answer(Effect.fail(ownCache))).status, 500)
      // The library's own store error is still an outage.
      const outage = new Persistence.SessionStoreError({ method: "load", reason: "Unavailable" })
      assert.strictEqual((yield* answer(Effect.fail(outage))).status, 503)
      assert.isTrue(Persistence.isSessionStoreError(outage))
      assert.isFalse(Persistence.isSessionStoreError(ownCache))
    }))

  it.scoped("unavailableStatus is configurable", () =>
    Effect.gen(function*() {
      const { setDown, url } = yield* startSwitchable({}, { unavailableStatus: 500 })
      yield* setDown(true)
      const r = yield* post(`${url}/count`)
      assert.strictEqual(r.status, 500)
      assertNoCookie(r)
    }))
})

describe("Http: users and the session's end through CurrentSession", () => {
  it.scoped("logIn rotates the cookie and kills the old one at once (no grace for a privilege change)", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const before = jar.get(COOKIE)!
      const login = yield* post(`${url}/login/alice`, jar)
      assert.strictEqual(login.status, 204)
      const after = setCookie(login).value
      assert.notStrictEqual(after, before)
      assert.strictEqual(login.headers.get("cache-control"), "no-store")
      const old = yield* send(`${url}/read`, { cookie: `${COOKIE}=${before}` })
      deepStrictEqual(old.json(), { count: null, user: null })
      for (const c of old.setCookies) assert.isTrue(isRemoval(c), c.raw)
      const current = yield* send(`${url}/read`, { jar })
      deepStrictEqual(current.json(), { count: 1, user: "alice" })
    }))

  it.scoped("logIn through an old token that was being followed kills every earlier token", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ idRotationInterval: "1 second", gracePeriod: "30 seconds" })
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const t1 = jar.get(COOKIE)!
      yield* TestClock.adjust("1500 millis")
      const t2 = setCookie(yield* send(`${url}/read`, { jar })).value
      // The old token (inside its grace period) logs in.
      const login = yield* post(`${url}/login/alice`, undefined, { cookie: `${COOKIE}=${t1}` })
      const t3 = setCookie(login).value
      assert.notStrictEqual(t3, t1)
      assert.notStrictEqual(t3, t2)
      for (const token of [t1, t2]) {
        deepStrictEqual((yield* send(`${url}/read`, { cookie: `${COOKIE}=${token}` })).json(), { count: null, user: null })
      }
      deepStrictEqual((yield* send(`${url}/read`, { cookie: `${COOKIE}=${t3}` })).json(), { count: 1, user: "alice" })
    }))

  // BUG: a request that still carries the pre-login token (sent before the login response came
  // back) finds a dead token (a zero-grace redirect, which the store already drops, so: "missing")
  // and answers `Set-Cookie: id=; Max-Age=0`. A browser removes cookies by name, not by value, so
  // that response deletes the NEW cookie: the user is logged out right after logging in. A token
  // that was rotated away (or is merely unknown) should leave the cookie alone.
  it.scoped("a late response for the pre-login token does not log the browser out", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const browser = new CookieJar()
      yield* post(`${url}/count`, browser)
      const preLogin = browser.get(COOKIE)!
      yield* post(`${url}/login/alice`, browser)
      // A request sent with the pre-login cookie is answered after the login; the browser applies its Set-Cookie.
      const late = yield* send(`${url}/read`, { cookie: `${COOKIE}=${preLogin}` })
      browser.update(late.setCookies)
      deepStrictEqual((yield* send(`${url}/read`, { jar: browser })).json(), { count: 1, user: "alice" })
    }))

  it.scoped("logIn on a first visit creates the session and sets the cookie once", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start()
      const jar = new CookieJar()
      const login = yield* post(`${url}/login/bob`, jar)
      setCookie(login)
      assert.strictEqual(calls().create, 1)
      deepStrictEqual((yield* send(`${url}/read`, { jar })).json(), { count: null, user: "bob" })
    }))

  it.scoped("logOut rotates the cookie, kills the old one, keeps the data", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      yield* post(`${url}/login/alice`, jar)
      const loggedIn = jar.get(COOKIE)!
      const out = yield* post(`${url}/logout`, jar)
      const next = setCookie(out).value
      assert.notStrictEqual(next, loggedIn)
      const old = yield* send(`${url}/read`, { cookie: `${COOKIE}=${loggedIn}` })
      deepStrictEqual(old.json(), { count: null, user: null })
      deepStrictEqual((yield* send(`${url}/read`, { jar })).json(), { count: 1, user: null })
    }))

  it.scoped("logOut without a session does nothing", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start()
      const r = yield* post(`${url}/logout`)
      assert.strictEqual(r.status, 204)
      assertNoCookie(r)
      assert.strictEqual(totalCalls(calls()), 0)
    }))

  it.scoped("regenerateId replaces the cookie; the old one follows to it during the grace period", () =>
    Effect.gen(function*() {
      const { url } = yield* start({ gracePeriod: "30 seconds" })
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const before = jar.get(COOKIE)!
      const r = yield* post(`${url}/regenerate`, jar)
      const after = setCookie(r).value
      assert.notStrictEqual(after, before)
      const old = yield* send(`${url}/read`, { cookie: `${COOKIE}=${before}` })
      deepStrictEqual(old.json(), { count: 1, user: null })
      assert.strictEqual(setCookie(old).value, after)
      yield* TestClock.adjust("31 seconds")
      const late = yield* send(`${url}/read`, { cookie: `${COOKIE}=${before}` })
      deepStrictEqual(late.json(), { count: null, user: null })
      deepStrictEqual((yield* send(`${url}/read`, { jar })).json(), { count: 1, user: null })
    }))

  it.scoped("destroy clears the cookie and ends the session", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const token = jar.get(COOKIE)!
      const r = yield* post(`${url}/destroy`, jar)
      assertCleared(r)
      assert.isUndefined(jar.get(COOKIE))
      const old = yield* send(`${url}/read`, { cookie: `${COOKIE}=${token}` })
      deepStrictEqual(old.json(), { count: null, user: null })
    }))

  it.scoped("feature: listSessions — CurrentSession lists the user's sessions by public ids (never tokens) and marks the current one; logOutEverywhere ends them all and clears the cookie", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const laptop = new CookieJar()
      const phone = new CookieJar()
      const stranger = new CookieJar()
      yield* post(`${url}/login/alice`, laptop)
      yield* post(`${url}/count`, phone)
      yield* post(`${url}/login/alice`, phone)
      yield* post(`${url}/login/mallory`, stranger)

      type Listed = ReadonlyArray<{ id: string; current: boolean }>
      const fromLaptop = (yield* send(`${url}/sessions`, { jar: laptop })).json() as Listed
      const fromPhone = (yield* send(`${url}/sessions`, { jar: phone })).json() as Listed
      assert.strictEqual(fromLaptop.length, 2)
      deepStrictEqual(fromLaptop.map((s) => s.id).sort(), fromPhone.map((s) => s.id).sort())
      assert.strictEqual(fromLaptop.filter((s) => s.current).length, 1)
      assert.strictEqual(fromPhone.filter((s) => s.current).length, 1)
      assert.notStrictEqual(fromLaptop.find((s) => s.current)!.id, fromPhone.find((s) => s.current)!.id)
      // No tokens in the listing.
      for (const s of fromLaptop) {
        assert.notStrictEqual(s.id, laptop.get(COOKIE))
        assert.notStrictEqual(s.id, phone.get(COOKIE))
      }
      deepStrictEqual((yield* send(`${url}/sessions`)).json(), [])

      const phoneToken = phone.get(COOKIE)!
      const r = yield* post(`${url}/logout-everywhere`, laptop)
      deepStrictEqual(r.json(), { ended: 2 })
      assertCleared(r)
      const phoneAfter = yield* send(`${url}/read`, { cookie: `${COOKIE}=${phoneToken}` })
      deepStrictEqual(phoneAfter.json(), { count: null, user: null })
      // Another user's session is untouched.
      deepStrictEqual((yield* send(`${url}/read`, { jar: stranger })).json(), { count: null, user: "mallory" })
    }))
})

describe("Http: a session that ends while a request holds it", () => {
  it.scoped("the holder's write answers goneStatus and leaves the cookie alone", () =>
    Effect.gen(function*() {
      const arrived = yield* Deferred.make<void>()
      const proceed = yield* Deferred.make<void>()
      // /slow resolves the session, waits, then writes.
      const app = routes.pipe(
        HttpRouter.post("/slow", Effect.flatMap(Http.CurrentSession, (session) =>
          Effect.gen(function*() {
            yield* session.get("count")
            yield* Deferred.succeed(arrived, undefined)
            yield* Deferred.await(proceed)
            yield* session.set("count", 99)
            return HttpServerResponse.empty({ status: 204 })
          }))),
        Http.middleware({ goneStatus: 419 })
      )
      const store = yield* countedMemory
      const url = yield* listen(HttpServer.serve(app).pipe(Layer.provide(Sessions.layer().pipe(Layer.provide(store.layer)))))
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const token = jar.get(COOKIE)!
      const slow = yield* Effect.fork(send(`${url}/slow`, { method: "POST", cookie: `${COOKIE}=${token}` }))
      yield* Deferred.await(arrived)
      assertCleared(yield* post(`${url}/destroy`, jar))
      yield* Deferred.succeed(proceed, undefined)
      const r = yield* Fiber.join(slow)
      assert.strictEqual(r.status, 419)
      // The browser may hold a newer token by now (a log-in's answer): a removal by name would log it out.
      assertNoCookie(r)
      // The write did not resurrect the session.
      deepStrictEqual((yield* send(`${url}/read`, { cookie: `${COOKIE}=${token}` })).json(), { count: null, user: null })
    }))
})

describe("Http: response headers", () => {
  // BUG: the middleware adds `Cache-Control: no-store` only when the handler set no
  // Cache-Control. A handler's `public, max-age=600` stays on a response that carries a fresh
  // session token, so a shared cache (CDN) may store the token and hand it to other clients.
  it.scoped("a response that sets the cookie is never cacheable by shared caches", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const r = yield* post(`${url}/cacheable`)
      setCookie(r)
      const cc = r.headers.get("cache-control") ?? ""
      assert.match(cc, /no-store|private/, `Cache-Control: ${cc}`)
      assert.notMatch(cc, /public/, `Cache-Control: ${cc}`)
    }))

  it.scoped("a response that sets no cookie keeps the handler's Cache-Control", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const r = yield* post(`${url}/cacheable`, jar)
      assertNoCookie(r)
      assert.strictEqual(r.headers.get("cache-control"), "public, max-age=600")
    }))

  // BUG: with `create: true`, a rejected Cookie header (duplicated or oversized) still creates a
  // session in the store, but the response clears the cookie instead of setting it: the session
  // is orphaned (one per such request) and the handler works on a session the client never gets.
  it.scoped("create: true with a duplicated cookie: a created session is delivered (or none is created)", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start({}, { create: true })
      const r = yield* send(`${url}/read`, { cookie: `${COOKIE}=${"A".repeat(47)}; ${COOKIE}=${"B".repeat(47)}` })
      assert.strictEqual(r.status, 200)
      assert.strictEqual(calls().load ?? 0, 0)
      const created = calls().create ?? 0
      if (created > 0) setCookie(r)
    }))
})

describe("Http: a planted cookie", () => {
  // A sibling subdomain can plant `id=…; Domain=example.com; Path=/api`: the browser then sends
  // two cookies of our name. We cannot tell which is ours, so the request gets no session — but
  // a removal (by name) could only delete ours, while the planted one survives and undoes every
  // new log-in on the next request. So the cookies are left alone.
  for (const [name, config] of [[COOKIE, {}], ["id", { cookie: { name: "id" } }]] as const) {
    it.scoped(`security: duplicated ${name} cookies get no session, no store call, and no removal`, () =>
      Effect.gen(function*() {
        const { calls, url } = yield* start(config)
        const jar = new CookieJar()
        yield* post(`${url}/count`, jar)
        yield* post(`${url}/login/alice`, jar)
        const own = jar.get(name)!
        const planted = "P".repeat(47)
        const before = totalCalls(calls())
        for (const cookie of [`${name}=${planted}; ${name}=${own}`, `${name}=${own}; other=1; ${name}=${planted}`, `${name}=${own}; ${name}=${own}`]) {
          const r = yield* send(`${url}/read`, { cookie })
          assert.strictEqual(r.status, 200)
          deepStrictEqual(r.json(), { count: null, user: null })
          assertNoCookie(r)
          assert.isNull(r.headers.get("cache-control"))
        }
        assert.strictEqual(totalCalls(calls()), before, "no store call for a duplicated cookie")
        // The own cookie, sent alone again (the planted one gone, or on a path without it), is still logged in.
        const back = yield* send(`${url}/read`, { jar })
        deepStrictEqual(back.json(), { count: 1, user: "alice" })
        assert.strictEqual(jar.get(name), own)
      }))
  }

  it.scoped("security: an oversized Cookie header gets no session, no store call, and no removal", () =>
    Effect.gen(function*() {
      const { calls, url } = yield* start()
      const jar = new CookieJar()
      yield* post(`${url}/login/alice`, jar)
      const before = totalCalls(calls())
      // Planted padding (a sibling can add a few 4 KB cookies) must not cost the user the session either.
      const cookie = `${jar.header()}; pad1=${"x".repeat(4090)}; pad2=${"y".repeat(4090)}`
      assert.isAbove(cookie.length, 8192)
      const r = yield* send(`${url}/read`, { cookie })
      assert.strictEqual(r.status, 200)
      deepStrictEqual(r.json(), { count: null, user: null })
      assertNoCookie(r)
      assert.strictEqual(totalCalls(calls()), before)
      deepStrictEqual((yield* send(`${url}/read`, { jar })).json(), { count: null, user: "alice" })
    }))
})

describe("Http: web handlers (Request → Response)", () => {
  it.scoped("HttpApp.toWebHandler", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(Sessions.layerMemory())
      const handler = HttpApp.toWebHandler(Effect.provide(sessionApp(), context))
      const jar = new CookieJar()
      const call = (path: string, method = "GET") =>
        Effect.flatMap(
          Effect.promise(() => {
            const cookie = jar.header()
            return handler(new Request(`http://localhost${path}`, { method, headers: cookie === undefined ? {} : { cookie } }))
          }),
          (response) => fromWeb(response, jar)
        )
      const read = yield* call("/read")
      assertNoCookie(read)
      const first = yield* call("/count", "POST")
      deepStrictEqual(first.json(), { count: 1 })
      const t1 = setCookie(first).value
      assert.strictEqual(first.headers.get("cache-control"), "no-store")
      deepStrictEqual((yield* call("/count", "POST")).json(), { count: 2 })
      // (toWebHandler runs on the default runtime, with the live clock: rotate by request.)
      const rotated = yield* call("/regenerate", "POST")
      assert.notStrictEqual(setCookie(rotated).value, t1)
      const followed = yield* Effect.promise(() => handler(new Request("http://localhost/read", { headers: { cookie: `${COOKIE}=${t1}` } })))
      const viaOld = yield* fromWeb(followed)
      deepStrictEqual(viaOld.json(), { count: 2, user: null })
      assert.strictEqual(setCookie(viaOld).value, jar.get(COOKIE))
      assertCleared(yield* call("/destroy", "POST"))
    }))

  it.scoped("HttpApp.toWebHandlerLayer", () =>
    Effect.gen(function*() {
      const { dispose, handler } = HttpApp.toWebHandlerLayer(sessionApp(), Sessions.layerMemory())
      yield* Effect.addFinalizer(() => Effect.promise(dispose))
      const jar = new CookieJar()
      const call = (path: string, method = "GET") =>
        Effect.flatMap(
          Effect.promise(() => {
            const cookie = jar.header()
            return handler(new Request(`http://localhost${path}`, { method, headers: cookie === undefined ? {} : { cookie } }))
          }),
          (response) => fromWeb(response, jar)
        )
      setCookie(yield* call("/count", "POST"))
      yield* call("/login/carol", "POST")
      deepStrictEqual((yield* call("/read")).json(), { count: 1, user: "carol" })
      const dup = yield* Effect.promise(() => handler(new Request("http://localhost/read", { headers: { cookie: `${COOKIE}=${jar.get(COOKIE)}; ${COOKIE}=${jar.get(COOKIE)}` } })))
      deepStrictEqual((yield* fromWeb(dup)).json(), { count: null, user: null })
    }))
})

describe("Http: types", () => {
  // After the middleware the app needs Sessions and SessionConfig, never CurrentSession: this
  // assignment compiles only if the middleware removed it.
  const served: Layer.Layer<never, never, HttpServer.HttpServer | Sessions.Sessions | SessionConfig.SessionConfig> = HttpServer.serve(
    routes.pipe(Http.middleware())
  )
  // Without the middleware CurrentSession is still required.
  // @ts-expect-error CurrentSession is not provided
  const unserved: Layer.Layer<never, never, HttpServer.HttpServer | Sessions.Sessions | SessionConfig.SessionConfig> = HttpServer.serve(routes)

  it("the middleware removes CurrentSession from the requirements", () => {
    assert.isTrue(Layer.isLayer(served))
    assert.isTrue(Layer.isLayer(unserved))
  })
})

describe("Http: dead handles, step-up and the data limit (security)", () => {
  /** Routes that hold a request between resolving its session and using it, plus the security routes. */
  const securityServer = (config: SessionConfig.SessionConfigInput = {}) =>
    Effect.gen(function*() {
      const arrived = yield* Deferred.make<void>()
      const proceed = yield* Deferred.make<void>()
      const hold = <A, E>(body: (session: Http.CurrentSessionShape) => Effect.Effect<A, E>) =>
        Effect.flatMap(Http.CurrentSession, (session) =>
          Effect.gen(function*() {
            yield* session.get("count") // the request resolved its session (the planted token)
            yield* Deferred.succeed(arrived, undefined)
            yield* Deferred.await(proceed)
            return yield* body(session)
          }))
      const app = routes.pipe(
        HttpRouter.get("/held-read", hold((session) =>
          Effect.gen(function*() {
            const user = yield* session.userId
            const count = yield* session.get("count")
            return yield* HttpServerResponse.json({ user: Option.getOrNull(user), count: Option.getOrNull(count) })
          }))),
        HttpRouter.post("/held-write", hold((session) => Effect.as(session.set("stolen", true), HttpServerResponse.empty({ status: 204 })))),
        HttpRouter.post("/held-logout-everywhere", hold((session) =>
          Effect.flatMap(session.logOutEverywhere, (ended) => HttpServerResponse.json({ ended })))),
        HttpRouter.get("/held-sessions", hold((session) => Effect.flatMap(session.listSessions, (list) => HttpServerResponse.json(list)))),
        HttpRouter.post("/held-end-all", hold((session) =>
          Effect.gen(function*() {
            // ends every listed session by id (what a "sign out other devices" page does)
            const ids = (yield* session.listSessions).map((i) => i.id)
            const ended = yield* Effect.forEach(ids, (id) => session.endSession(id))
            return yield* HttpServerResponse.json({ ended: ended.filter(Boolean).length })
          }))),
        HttpRouter.post("/held-destroy", hold((session) => Effect.as(session.destroy, HttpServerResponse.empty({ status: 204 })))),
        HttpRouter.post("/step-up", Effect.flatMap(Http.CurrentSession, (session) =>
          Effect.as(session.regenerateId({ grace: false }), HttpServerResponse.empty({ status: 204 })))),
        HttpRouter.post("/big/:bytes", Effect.flatMap(Http.CurrentSession, (session) =>
          Effect.gen(function*() {
            const { bytes } = yield* HttpRouter.params
            yield* session.set("big", "x".repeat(Number(bytes) - 10)) // {"big":"…"} is 10 bytes more
            return HttpServerResponse.empty({ status: 204 })
          }))),
        HttpRouter.post("/logout-clear", Effect.flatMap(Http.CurrentSession, (session) =>
          Effect.as(session.logOut({ keepData: false }), HttpServerResponse.empty({ status: 204 })))),
        HttpRouter.get("/big-size", Effect.flatMap(Http.CurrentSession, (session) =>
          Effect.flatMap(session.session, (s) =>
            HttpServerResponse.json({ bytes: Option.getOrNull(Option.map(s, (x) => JSON.stringify(x.data).length)) })))),
        Http.middleware()
      )
      const store = yield* countedMemory
      const url = yield* listen(HttpServer.serve(app).pipe(Layer.provide(Sessions.layer(config).pipe(Layer.provide(store.layer)))))
      return { url, arrived, proceed }
    })

  for (const path of ["/held-read", "/held-write"] as const) {
    it.scoped(`security: a request that resolved the planted token before the victim's log-in ${path === "/held-read" ? "reads no session" : "answers 401 and writes nothing"} after it; the victim's browser stays logged in`, () =>
      Effect.gen(function*() {
        const { arrived, proceed, url } = yield* securityServer()
        const victim = new CookieJar()
        yield* post(`${url}/count`, victim)
        const planted = victim.get(COOKIE)!
        const held = yield* Effect.fork(send(`${url}${path}`, { method: path === "/held-read" ? "GET" : "POST", cookie: `${COOKIE}=${planted}` }))
        yield* Deferred.await(arrived)
        const login = yield* post(`${url}/login/victim`, victim)
        assert.strictEqual(login.status, 204)
        yield* Deferred.succeed(proceed, undefined)
        const r = yield* Fiber.join(held)
        if (path === "/held-read") {
          assert.strictEqual(r.status, 200)
          deepStrictEqual(r.json(), { user: null, count: null })
        } else {
          assert.strictEqual(r.status, 401)
        }
        // Its answer leaves the cookie alone: applied by the victim's browser, it logs nobody out.
        assertNoCookie(r)
        victim.update(r.setCookies)
        deepStrictEqual((yield* send(`${url}/read`, { jar: victim })).json(), { count: 1, user: "victim" })
        const stolen = yield* send(`${url}/read`, { jar: victim })
        assert.strictEqual(stolen.status, 200)
      }))
  }

  for (const path of ["/held-logout-everywhere", "/held-sessions", "/held-end-all", "/held-destroy"] as const) {
    it.scoped(`security: through CurrentSession, a request on the planted token cannot act on the victim's user or session after the log-in (${path})`, () =>
      Effect.gen(function*() {
        const { arrived, proceed, url } = yield* securityServer()
        const victim = new CookieJar()
        yield* post(`${url}/count`, victim)
        const planted = victim.get(COOKIE)!
        const phone = new CookieJar()
        yield* post(`${url}/login/victim`, phone)
        const held = yield* Effect.fork(send(`${url}${path}`, { method: path === "/held-sessions" ? "GET" : "POST", cookie: `${COOKIE}=${planted}` }))
        yield* Deferred.await(arrived)
        yield* post(`${url}/login/victim`, victim)
        yield* Deferred.succeed(proceed, undefined)
        const r = yield* Fiber.join(held)
        if (path === "/held-destroy") assert.strictEqual(r.status, 204) // nothing to end: the request has no session
        else assert.strictEqual(r.status, 401, r.text)
        assert.notInclude(r.text, "victim")
        // both of the victim's sessions live on
        deepStrictEqual((yield* send(`${url}/read`, { jar: victim })).json(), { count: 1, user: "victim" })
        deepStrictEqual((yield* send(`${url}/read`, { jar: phone })).json(), { count: null, user: "victim" })
      }))
  }

  it.scoped("security: regenerateId({ grace: false }) kills the old cookie at once; regenerateId() lets it follow within the grace period", () =>
    Effect.gen(function*() {
      const { url } = yield* securityServer({ gracePeriod: "30 seconds" })
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const before = jar.get(COOKIE)!
      const stepUp = yield* post(`${url}/step-up`, jar)
      assert.strictEqual(stepUp.status, 204)
      const after = setCookie(stepUp).value
      assert.notStrictEqual(after, before)
      const old = yield* send(`${url}/read`, { cookie: `${COOKIE}=${before}` })
      deepStrictEqual(old.json(), { count: null, user: null })
      deepStrictEqual((yield* send(`${url}/read`, { jar })).json(), { count: 1, user: null })
      // the periodic kind: the old cookie follows to the new one
      const hygiene = yield* post(`${url}/regenerate`, jar)
      const newest = setCookie(hygiene).value
      const follows = yield* send(`${url}/read`, { cookie: `${COOKIE}=${after}` })
      deepStrictEqual(follows.json(), { count: 1, user: null })
      assert.strictEqual(setCookie(follows).value, newest)
    }))

  it.scoped("security: logOut({ keepData: false }) through CurrentSession gives a fresh token and a session without data; logOut() keeps it", () =>
    Effect.gen(function*() {
      const { url } = yield* securityServer()
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      yield* post(`${url}/login/ada`, jar)
      const loggedIn = jar.get(COOKIE)!
      const out = yield* post(`${url}/logout-clear`, jar)
      assert.strictEqual(out.status, 204)
      assert.notStrictEqual(setCookie(out).value, loggedIn)
      deepStrictEqual((yield* send(`${url}/big-size`, { jar })).json(), { bytes: 2 }) // {}
      deepStrictEqual((yield* send(`${url}/read`, { cookie: `${COOKIE}=${loggedIn}` })).json(), { count: null, user: null })
      const other = new CookieJar()
      yield* post(`${url}/count`, other)
      yield* post(`${url}/login/bob`, other)
      yield* post(`${url}/logout`, other)
      deepStrictEqual((yield* send(`${url}/read`, { jar: other })).json(), { count: 1, user: null })
    }))

  it.scoped("security: a write above maxDataBytes that a handler lets through answers 413 and changes nothing", () =>
    Effect.gen(function*() {
      const { url } = yield* securityServer({ maxDataBytes: 1_000 })
      const jar = new CookieJar()
      const ok = yield* post(`${url}/big/1000`, jar) // exactly at the limit (creates the session)
      assert.strictEqual(ok.status, 204)
      const token = jar.get(COOKIE)!
      const r = yield* post(`${url}/big/1001`, jar)
      assert.strictEqual(r.status, 413)
      assertNoCookie(r)
      // the session is as it was: the 1000 bytes of JSON
      const size = yield* send(`${url}/big-size`, { jar })
      deepStrictEqual(size.json(), { bytes: 1_000 })
      assertNoCookie(size)
      assert.strictEqual(jar.get(COOKIE), token)
    }))
})

describe("Http: Clear-Site-Data and Vary: Cookie", () => {
  const clearSite = (r: Reply) => r.headers.get("clear-site-data")

  it.scoped("feature: destroy answers Clear-Site-Data: \"cookies\", \"storage\" (and so does logOutEverywhere)", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      const r = yield* post(`${url}/destroy`, jar)
      assertCleared(r)
      assert.strictEqual(clearSite(r), `"cookies", "storage"`)
      // Not on the next response: the header belongs to the one that ended the session.
      assert.isNull(clearSite(yield* post(`${url}/count`, jar)))
      yield* post(`${url}/login/alice`, jar)
      const everywhere = yield* post(`${url}/logout-everywhere`, jar)
      assertCleared(everywhere)
      assert.strictEqual(clearSite(everywhere), `"cookies", "storage"`)
    }))

  it.scoped("feature: logOut answers Clear-Site-Data: \"storage\" only, so the fresh cookie and the kept data survive", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const jar = new CookieJar()
      yield* post(`${url}/count`, jar)
      yield* post(`${url}/login/alice`, jar)
      const r = yield* post(`${url}/logout`, jar)
      setCookie(r)
      assert.strictEqual(clearSite(r), `"storage"`)
      deepStrictEqual((yield* send(`${url}/read`, { jar })).json(), { count: 1, user: null })
      // A logOut without a session changes nothing and clears nothing.
      assert.isNull(clearSite(yield* post(`${url}/logout`)))
    }))

  it.scoped("feature: no Clear-Site-Data on responses that neither log out nor end the session (a write, a log-in, an expiry)", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const jar = new CookieJar()
      assert.isNull(clearSite(yield* post(`${url}/count`, jar)))
      assert.isNull(clearSite(yield* post(`${url}/login/alice`, jar)))
      assert.isNull(clearSite(yield* post(`${url}/regenerate`, jar)))
      yield* TestClock.adjust("31 minutes")
      const expired = yield* send(`${url}/read`, { jar })
      assertCleared(expired)
      assert.isNull(clearSite(expired))
    }))

  it.scoped("feature: clearSiteData is configurable: a list of its own, \"*\" (without cookies on a logOut), or false for none", () =>
    Effect.gen(function*() {
      const session = (middleware: Http.MiddlewareOptions) =>
        Effect.gen(function*() {
          const { url } = yield* start({}, middleware)
          const jar = new CookieJar()
          yield* post(`${url}/login/alice`, jar)
          const out = clearSite(yield* post(`${url}/logout`, jar))
          const end = clearSite(yield* post(`${url}/destroy`, jar))
          return [out, end]
        })
      deepStrictEqual(yield* session({ clearSiteData: ["cache", "cookies"] }), [`"cache"`, `"cache", "cookies"`])
      deepStrictEqual(yield* session({ clearSiteData: ["*"] }), [`"cache", "storage", "executionContexts"`, `"*"`])
      deepStrictEqual(yield* session({ clearSiteData: ["cookies"] }), [null, `"cookies"`])
      deepStrictEqual(yield* session({ clearSiteData: false }), [null, null])
    }))

  it.scoped("feature: a destroy followed by a log-in in one request sends no \"cookies\" (it would remove the new token)", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const app = HttpRouter.empty.pipe(
        HttpRouter.post("/switch", Effect.gen(function*() {
          const session = yield* Http.CurrentSession
          yield* session.destroy
          yield* session.logIn("bob")
          return HttpServerResponse.empty({ status: 204 })
        })),
        HttpRouter.concat(routes),
        Http.middleware()
      )
      const url = yield* listen(HttpServer.serve(app).pipe(Layer.provide(Sessions.layer({}).pipe(Layer.provide(store.layer)))))
      const jar = new CookieJar()
      yield* post(`${url}/login/alice`, jar)
      const r = yield* post(`${url}/switch`, jar)
      setCookie(r)
      assert.strictEqual(clearSite(r), `"storage"`)
      deepStrictEqual((yield* send(`${url}/read`, { jar })).json(), { count: null, user: "bob" })
    }))

  it.scoped("feature: every response through the middleware carries Vary: Cookie, appended to the handler's Vary", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const varying = (vary: string) => Effect.map(HttpServerResponse.text("hi"), HttpServerResponse.setHeader("vary", vary))
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/encoding", varying("Accept-Encoding, Accept-Language")),
        HttpRouter.get("/star", varying("*")),
        HttpRouter.get("/already", varying("accept, COOKIE")),
        HttpRouter.concat(routes),
        Http.middleware()
      )
      const url = yield* listen(HttpServer.serve(app).pipe(Layer.provide(Sessions.layer({}).pipe(Layer.provide(store.layer)))))
      const vary = (r: Reply) => r.headers.get("vary")
      const jar = new CookieJar()
      // Reads, writes, log-ins, log-outs, destroys, a 404, with and without a session.
      assert.strictEqual(vary(yield* send(`${url}/read`)), "Cookie")
      assert.strictEqual(vary(yield* post(`${url}/count`, jar)), "Cookie")
      assert.strictEqual(vary(yield* send(`${url}/read`, { jar })), "Cookie")
      assert.strictEqual(vary(yield* post(`${url}/login/alice`, jar)), "Cookie")
      assert.strictEqual(vary(yield* post(`${url}/logout`, jar)), "Cookie")
      assert.strictEqual(vary(yield* post(`${url}/destroy`, jar)), "Cookie")
      assert.strictEqual(vary(yield* send(`${url}/missing`)), "Cookie")
      // The handler's own Vary is kept; Cookie is added once.
      assert.strictEqual(vary(yield* send(`${url}/encoding`, { jar })), "Accept-Encoding, Accept-Language, Cookie")
      assert.strictEqual(vary(yield* send(`${url}/star`)), "*")
      assert.strictEqual(vary(yield* send(`${url}/already`)), "accept, COOKIE")
    }))
})
