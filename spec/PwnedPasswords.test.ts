import { FetchHttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Cause, Effect, Exit, Redacted } from "effect"
import { createHash } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import * as PwnedPasswords from "../src/PwnedPasswords.js"

// ---------------------------------------------------------------------------
// a local fake of api.pwnedpasswords.com — the tests never reach the internet
// ---------------------------------------------------------------------------

interface Seen {
  readonly method: string
  readonly url: string
  readonly padding: string | undefined
}

let server: Server
let baseUrl: string
let seen: Array<Seen> = []
let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end()

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", padding: header(req, "add-padding") })
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(",") : value
}

const sha1 = (s: string) => {
  const hex = createHash("sha1").update(s, "utf8").digest("hex").toUpperCase()
  return { prefix: hex.slice(0, 5), suffix: hex.slice(5) }
}

/** A fake range body: `count` lines of other suffixes, then the given extra lines, CRLF-separated. */
const rangeBody = (extra: ReadonlyArray<string>): string => {
  const lines: Array<string> = []
  for (let i = 0; i < 20; i++) lines.push(`${createHash("sha1").update(`other-${i}`).digest("hex").toUpperCase().slice(5)}:${i + 1}`)
  // padding entries as the real service sends them with Add-Padding: true
  for (let i = 0; i < 5; i++) lines.push(`${createHash("sha1").update(`pad-${i}`).digest("hex").toUpperCase().slice(5)}:0`)
  return [...lines, ...extra].join("\r\n")
}

/** Serves `body` on `/range/<prefix>` and 404 elsewhere. */
const serveRange = (prefix: string, body: string) => (req: IncomingMessage, res: ServerResponse) => {
  if (req.url === `/range/${prefix}`) {
    res.writeHead(200, { "content-type": "text/plain" })
    res.end(body)
  } else {
    res.writeHead(404)
    res.end()
  }
}

const PASSWORD = "correct horse battery staple"
const { prefix, suffix } = sha1(PASSWORD)

/** Asserts that the fake saw exactly one request, carrying only the 5-hex prefix and Add-Padding. */
const assertOneRangeRequest = () => {
  assert.strictEqual(seen.length, 1)
  const request = seen[0]!
  assert.strictEqual(request.method, "GET")
  assert.match(request.url, /^\/range\/[0-9A-F]{5}$/)
  assert.strictEqual(request.url, `/range/${prefix}`)
  assert.notInclude(request.url, suffix)
  assert.strictEqual(request.padding, "true")
}

const reset = (h: typeof handler) =>
  Effect.sync(() => {
    seen = []
    handler = h
  })

describe("PwnedPasswords (undici client, local fake server)", () => {
  const client = NodeHttpClient.layerUndici

  it.effect("a password found with count > 0 is breached", () =>
    Effect.gen(function*() {
      yield* reset(serveRange(prefix, rangeBody([`${suffix}:42`])))
      const result = yield* PwnedPasswords.check(PASSWORD, { baseUrl })
      deepStrictEqual(result, PwnedPasswords.PwnedCheck.Breached({ count: 42 }))
      assert.isTrue(PwnedPasswords.isRejected(result))
      assertOneRangeRequest()
    }).pipe(Effect.provide(client)))

  it.effect("a password not in the range is ok", () =>
    Effect.gen(function*() {
      yield* reset(serveRange(prefix, rangeBody([])))
      const result = yield* PwnedPasswords.check(PASSWORD, { baseUrl })
      deepStrictEqual(result, PwnedPasswords.PwnedCheck.NotFound())
      assert.isFalse(PwnedPasswords.isRejected(result))
      assertOneRangeRequest()
    }).pipe(Effect.provide(client)))

  it.effect("a padding line (count 0) for the very suffix is ignored", () =>
    Effect.gen(function*() {
      yield* reset(serveRange(prefix, rangeBody([`${suffix}:0`])))
      const result = yield* PwnedPasswords.check(PASSWORD, { baseUrl })
      assert.strictEqual(result._tag, "NotFound")
      const range = yield* PwnedPasswords.range(prefix, { baseUrl })
      assert.strictEqual(range.size, 20) // the 5 padding lines and ours are gone
      assert.isFalse(range.has(suffix))
    }).pipe(Effect.provide(client)))

  it.effect("count returns the number of occurrences; Redacted input; trailing slash in baseUrl", () =>
    Effect.gen(function*() {
      yield* reset(serveRange(prefix, `${rangeBody([])}\n${suffix}:7\n`))
      const n = yield* PwnedPasswords.count(Redacted.make(PASSWORD), { baseUrl: `${baseUrl}/` })
      assert.strictEqual(n, 7)
      assertOneRangeRequest()
    }).pipe(Effect.provide(client)))

  it.effect("a server error is a typed PwnedPasswordsError (onError: fail, the default)", () =>
    Effect.gen(function*() {
      yield* reset((_req, res) => {
        res.writeHead(500)
        res.end("oops")
      })
      const error = yield* Effect.flip(PwnedPasswords.check(PASSWORD, { baseUrl }))
      assert.strictEqual(error._tag, "PwnedPasswordsError")
      assert.strictEqual(error.reason, "StatusCode")
      assert.strictEqual(error.status, 500)
      assert.notInclude(error.message, suffix)
      assertOneRangeRequest()
    }).pipe(Effect.provide(client)))

  it.effect("a refused connection is a typed PwnedPasswordsError", () =>
    Effect.gen(function*() {
      const closedUrl = yield* Effect.promise(async () => {
        const s = createServer()
        await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve))
        const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`
        await new Promise<void>((resolve) => s.close(() => resolve()))
        return url
      })
      const error = yield* Effect.flip(PwnedPasswords.check(PASSWORD, { baseUrl: closedUrl }))
      assert.strictEqual(error._tag, "PwnedPasswordsError")
      assert.strictEqual(error.reason, "Transport")
    }).pipe(Effect.provide(client)))

  it.effect("a body that is not a range response is a typed error, never 'not found'", () =>
    Effect.gen(function*() {
      yield* reset((_req, res) => {
        res.writeHead(200, { "content-type": "text/html" })
        res.end("<html>captive portal</html>")
      })
      const error = yield* Effect.flip(PwnedPasswords.check(PASSWORD, { baseUrl }))
      assert.strictEqual(error.reason, "InvalidResponse")
      yield* reset((_req, res) => res.end(""))
      const empty = yield* Effect.flip(PwnedPasswords.check(PASSWORD, { baseUrl }))
      assert.strictEqual(empty.reason, "InvalidResponse")
    }).pipe(Effect.provide(client)))

  it.effect("fail-open (onError: allow) accepts when the service fails", () =>
    Effect.gen(function*() {
      yield* reset((_req, res) => {
        res.writeHead(503)
        res.end()
      })
      const result = yield* PwnedPasswords.check(PASSWORD, { baseUrl, onError: "allow" })
      assert.strictEqual(result._tag, "Unavailable")
      if (result._tag === "Unavailable") {
        assert.isFalse(result.rejected)
        assert.strictEqual(result.error.status, 503)
      }
      assert.isFalse(PwnedPasswords.isRejected(result))
    }).pipe(Effect.provide(client)))

  it.effect("fail-closed (onError: reject) refuses when the service fails", () =>
    Effect.gen(function*() {
      yield* reset((_req, res) => {
        res.writeHead(500)
        res.end()
      })
      const result = yield* PwnedPasswords.check(PASSWORD, { baseUrl, onError: "reject" })
      assert.strictEqual(result._tag, "Unavailable")
      assert.isTrue(PwnedPasswords.isRejected(result))
    }).pipe(Effect.provide(client)))

  it.effect("onError does not hide a real answer", () =>
    Effect.gen(function*() {
      yield* reset(serveRange(prefix, rangeBody([])))
      assert.strictEqual((yield* PwnedPasswords.check(PASSWORD, { baseUrl, onError: "reject" }))._tag, "NotFound")
      yield* reset(serveRange(prefix, rangeBody([`${suffix}:3`])))
      deepStrictEqual(
        yield* PwnedPasswords.check(PASSWORD, { baseUrl, onError: "allow" }),
        PwnedPasswords.PwnedCheck.Breached({ count: 3 })
      )
    }).pipe(Effect.provide(client)))

  it.live("a server that does not answer times out", () =>
    Effect.gen(function*() {
      yield* reset(() => {
        // never respond; afterAll closes the connection
      })
      const error = yield* Effect.flip(PwnedPasswords.check(PASSWORD, { baseUrl, timeout: "200 millis" }))
      assert.strictEqual(error.reason, "Timeout")
      const open = yield* PwnedPasswords.check(PASSWORD, { baseUrl, timeout: "200 millis", onError: "allow" })
      assert.strictEqual(open._tag, "Unavailable")
    }).pipe(Effect.provide(client)))

  it.effect("range upper-cases the prefix and dies on an invalid one", () =>
    Effect.gen(function*() {
      yield* reset(serveRange(prefix, rangeBody([`${suffix}:9`])))
      const range = yield* PwnedPasswords.range(prefix.toLowerCase(), { baseUrl })
      assert.strictEqual(range.get(suffix), 9)
      assert.strictEqual(seen[0]?.url, `/range/${prefix}`)
      const exit = yield* Effect.exit(PwnedPasswords.range(`${prefix}0`, { baseUrl }))
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      assert.strictEqual(seen.length, 1) // nothing was sent for the invalid prefix
    }).pipe(Effect.provide(client)))
})

describe("PwnedPasswords (fetch client)", () => {
  it.effect("works through FetchHttpClient.layer as well", () =>
    Effect.gen(function*() {
      yield* reset(serveRange(prefix, rangeBody([`${suffix}:1`])))
      const result = yield* PwnedPasswords.check(PASSWORD, { baseUrl })
      deepStrictEqual(result, PwnedPasswords.PwnedCheck.Breached({ count: 1 }))
      assertOneRangeRequest()
    }).pipe(Effect.provide(FetchHttpClient.layer)))
})
