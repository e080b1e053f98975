/**
 * Fuzzed Cookie headers against the real server: malformed tokens, wrong lengths and alphabets,
 * unicode, duplicated session cookies and headers over 8 KB never reach the store, never create a
 * session on a read, and never answer 500.
 */
import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Effect, FastCheck as fc } from "effect"
import { connect } from "node:net"
import { COOKIE, countedMemory, isRemoval, listen, sendPromise, sessionServer, totalCalls } from "./helpers/http.js"

/** A well-formed token of the default size (32 bytes): the only thing that may reach the store. */
const WELL_FORMED = /^[A-Za-z0-9]{4}[A-Za-z0-9_-]{43}$/
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

const base64urlChar = fc.constantFrom(...ALPHABET.split(""))
const base64url = (min: number, max: number) => fc.array(base64urlChar, { minLength: min, maxLength: max }).map((a) => a.join(""))

const base62 = fc.array(fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".split("")), { minLength: 4, maxLength: 4 }).map((a) => a.join(""))

/** A string that looks like a token: a base62 routing tag, then base64url, the right length. */
const tokenLike = fc.tuple(base62, base64url(43, 43)).map(([tag, rest]) => tag + rest)

/** Characters outside the token alphabet: separators, padding, spaces, quotes, unicode. */
const foreignChar = fc.oneof(
  fc.constantFrom("=", "+", "/", ".", " ", "\"", ",", "\\", "%", "~", "!", "é", "ß", "€", "😀", "\u00a0", "\u200b", "\ufeff"),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }).filter((c) => !ALPHABET.includes(c))
)

/** Values of the session cookie that are never well-formed. */
const badToken = fc.oneof(
  // wrong lengths
  base64url(0, 46),
  base64url(48, 200),
  // right length, a base64url-only character in the routing tag
  fc.tuple(tokenLike, fc.nat(3), fc.constantFrom("-", "_")).map(([t, i, c]) => t.slice(0, i) + c + t.slice(i + 1)),
  // right length, wrong alphabet
  fc.tuple(tokenLike, fc.nat(46), foreignChar).map(([t, i, c]) => t.slice(0, i) + c + t.slice(i + 1)),
  // quoted
  tokenLike.map((t) => `"${t}"`),
  // unicode of any kind
  fc.string({ unit: "grapheme", maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 60 })
).filter((v) => !WELL_FORMED.test(v.trim()))

const otherName = fc.oneof(
  fc.constantFrom("id", "ID", "Id", "sid", "id_", "_id", "session", "idx", "__host-id", "__HOST-id", "__Host-ID", "__Host-id_", "__Secure-id"),
  base64url(1, 12).filter((n) => n !== COOKIE)
)
const otherCookie = fc.tuple(otherName, fc.string({ unit: "grapheme-ascii", maxLength: 40 })).map(([n, v]) => `${n}=${v.replace(/;/g, "")}`)
const spacing = fc.constantFrom(";", "; ", " ;", ";  ", ";\t")

const join = (parts: ReadonlyArray<string>, seps: ReadonlyArray<string>) =>
  parts.map((p, i) => (i === 0 ? p : (seps[i % seps.length] ?? "; ") + p)).join("")

/** Cookie headers that must never reach the store. */
const badHeader = fc.oneof(
  // one session cookie with a bad value, among others
  fc.tuple(fc.array(otherCookie, { maxLength: 5 }), badToken, fc.nat(5), fc.array(spacing, { minLength: 1, maxLength: 3 })).map(
    ([others, bad, at, seps]) => {
      const parts = [...others]
      parts.splice(Math.min(at, parts.length), 0, `${COOKIE}=${bad}`)
      return join(parts, seps)
    }
  ),
  // duplicated session cookies, even with well-formed tokens (cookie tossing)
  fc.tuple(fc.array(fc.oneof(tokenLike, badToken), { minLength: 2, maxLength: 4 }), fc.array(otherCookie, { maxLength: 3 }))
    .chain(([ids, others]) => {
      const parts = [...ids.map((t) => `${COOKIE}=${t}`), ...others]
      return fc.tuple(fc.shuffledSubarray(parts, { minLength: parts.length, maxLength: parts.length }), fc.array(spacing, { minLength: 1, maxLength: 3 }))
    })
    .map(([parts, seps]) => join(parts, seps)),
  fc.tuple(tokenLike, fc.constantFrom(` ${COOKIE}`, `${COOKIE} `, ` ${COOKIE} `)).map(([t, n]) => `${COOKIE}=${t};${n}=${t}`),
  // headers over 8 KB (the node limit is 16 KB), even holding one well-formed token
  fc.tuple(tokenLike, fc.integer({ min: 8193, max: 15_000 }), fc.boolean()).map(([t, size, first]) => {
    const idPart = `${COOKIE}=${t}`
    const pad = `pad=${"x".repeat(Math.max(0, size - idPart.length - 6))}`
    return first ? `${idPart}; ${pad}` : `${pad}; ${idPart}`
  }),
  // no session cookie at all, or its name without "="
  fc.array(otherCookie, { minLength: 1, maxLength: 6 }).map((cs) => cs.join("; ")),
  fc.constantFrom(COOKIE, `${COOKIE};`, `=${COOKIE}`, ";;;;", `${COOKIE}:abc`, `${COOKIE}\t=abc`)
)

/**
 * What fetch can carry: UTF-8 bytes as latin1 text, without control characters (undici refuses
 * them; the raw-socket test below sends them).
 */
// eslint-disable-next-line no-control-regex
const onTheWire = (header: string): string => Buffer.from(header, "utf8").toString("latin1").replace(/[\x00-\x08\x0a-\x1f\x7f]/g, "")

/** An independent reading: a header the server refuses to read (over 8 KB, or the session cookie twice). */
const refused = (header: string): boolean =>
  header.length > 8192 || header.split(";").filter((p) => p.includes("=") && p.slice(0, p.indexOf("=")).trim() === COOKIE).length > 1

/** Sends raw bytes on a fresh connection and returns the status line's code. */
const rawStatus = (url: string, cookie: Buffer): Promise<number> =>
  new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url)
    const socket = connect({ host: hostname, port: Number(port) })
    const chunks: Array<Buffer> = []
    socket.on("data", (d) => chunks.push(d))
    socket.on("error", reject)
    socket.on("close", () => {
      const match = /^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(chunks).toString("latin1"))
      resolve(match ? Number(match[1]) : 0)
    })
    socket.end(Buffer.concat([
      Buffer.from(`GET /read HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\nCookie: `, "latin1"),
      cookie,
      Buffer.from("\r\n\r\n", "latin1")
    ]))
  })

describe("Http: fuzzed Cookie headers", () => {
  it.scopedLive("never reach the store, never create a session on a read, never answer 500", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(sessionServer(store.layer))
      const statuses = new Map<number, number>()
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(badHeader, async (header) => {
            const r = await sendPromise(`${url}/read`, { cookie: onTheWire(header) })
            statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
            assert.isBelow(r.status, 500, `status ${r.status} for a ${header.length}-char header`)
            if (r.status === 200) deepStrictEqual(r.json(), { count: null, user: null })
            // No session is handed out; at most the cookie is cleared.
            for (const c of r.setCookies) assert.isTrue(isRemoval(c), c.raw)
            // security: not even that for a refused header — a removal could only hit the user's own cookie.
            if (refused(onTheWire(header).trim())) deepStrictEqual(r.setCookies.map((c) => c.raw), [])
            deepStrictEqual(store.calls(), {}, `store called for header ${JSON.stringify(header.slice(0, 200))}`)
          }),
          { numRuns: 400 }
        )
      )
      // The app itself answered most of them (not only the HTTP parser).
      assert.isAbove(statuses.get(200) ?? 0, 300)
    }))

  it.scopedLive("a write with a bad cookie gets a fresh session, still without a load", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(sessionServer(store.layer))
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(badHeader, async (header) => {
            const before = store.calls().create ?? 0
            const r = await sendPromise(`${url}/count`, { method: "POST", cookie: onTheWire(header) })
            assert.isBelow(r.status, 500)
            if (r.status !== 200) return
            deepStrictEqual(r.json(), { count: 1 })
            const c = r.cookie()
            assert.isDefined(c)
            assert.match(c!.value, WELL_FORMED)
            assert.isFalse(header.includes(c!.value))
            assert.strictEqual(store.calls().create, before + 1)
            assert.strictEqual(store.calls().load ?? 0, 0)
          }),
          { numRuns: 150 }
        )
      )
    }))

  it.scopedLive("any Cookie header at all: never 500; the store is asked only for one well-formed id", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(sessionServer(store.layer))
      // An independent reading of a header: exactly one session cookie, well-formed, header ≤ 8 KB.
      const mayLoad = (header: string) => {
        if (header.length > 8192) return false
        const ids = header.split(";").filter((p) => p.includes("=") && p.slice(0, p.indexOf("=")).trim() === COOKIE)
        return ids.length === 1 && WELL_FORMED.test(ids[0]!.slice(ids[0]!.indexOf("=") + 1).trim())
      }
      const anyHeader = fc.oneof(
        fc.string({ unit: "binary", maxLength: 300 }),
        fc.string({ unit: "grapheme-ascii", maxLength: 300 }),
        fc.tuple(fc.array(fc.oneof(otherCookie, tokenLike.map((t) => `${COOKIE}=${t}`), badToken.map((t) => `${COOKIE}=${t}`)), { maxLength: 5 })).map(([cs]) =>
          cs.join("; ")
        )
      )
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(anyHeader, async (header) => {
            const wire = onTheWire(header)
            const loadsBefore = store.calls().load ?? 0
            const r = await sendPromise(`${url}/read`, { cookie: wire })
            assert.isBelow(r.status, 500)
            const loads = (store.calls().load ?? 0) - loadsBefore
            if (!mayLoad(wire.trim())) assert.strictEqual(loads, 0, `loaded for ${JSON.stringify(wire.slice(0, 200))}`)
            assert.isAtMost(loads, 1)
            assert.strictEqual(store.calls().create ?? 0, 0)
          }),
          { numRuns: 300 }
        )
      )
      assert.strictEqual(totalCalls(store.calls(), ["create", "save", "rotate"]), 0)
    }))

  it.scopedLive("raw bytes (control characters, invalid UTF-8) on the socket: never 500, never the store", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(sessionServer(store.layer))
      const samples = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 80 }).map((b) => Buffer.from(b.filter((x) => x !== 10 && x !== 13))), {
        numRuns: 100,
        seed: 42
      })
      const fixed = [`${COOKIE}=\u0001`, `${COOKIE}=${"A".repeat(46)}\u0000`, `${COOKIE}=${"A".repeat(47)}\u007f`, `${COOKIE}=\u00ff\u00fe`].map((s) => Buffer.from(s, "latin1"))
      for (const bytes of [...fixed, Buffer.from([0x69, 0x64, 0x3d, 0xc3, 0x28]), ...samples]) {
        const status = yield* Effect.promise(() => rawStatus(url, bytes))
        assert.isAbove(status, 0)
        assert.isBelow(status, 500, `status ${status} for bytes ${bytes.toString("hex")}`)
      }
      deepStrictEqual(store.calls(), {})
    }))

  it.scopedLive("headers over the server's 16 KB limit are refused by the parser (431), not the app", () =>
    Effect.gen(function*() {
      const store = yield* countedMemory
      const url = yield* listen(sessionServer(store.layer))
      const r = yield* Effect.promise(() => sendPromise(`${url}/read`, { cookie: `${COOKIE}=${"A".repeat(47)}; pad=${"x".repeat(20_000)}` }))
      assert.strictEqual(r.status, 431)
      deepStrictEqual(store.calls(), {})
    }))
})
