/**
 * Where a request's session token comes from and where the answer goes: the session cookie, an
 * `Authorization: Bearer` header, or a named request header. The Sessions service is
 * transport-agnostic; this module only reads the token and writes the header answer (the cookie
 * answer stays in `http.ts`).
 *
 * @internal
 */
import { HttpServerResponse } from "@effect/platform"
import type { Headers } from "@effect/platform"
import type { Option } from "effect"
import { Redacted } from "effect"
import { type CookieRead, readCookie } from "./cookieHeader.js"
import type { CookieAction } from "./sessions/service.js"

/**
 * A way a request carries its session token: the session cookie (`"cookie"`), the
 * `Authorization: Bearer <token>` header (`"bearer"`, answered in `Set-Session-Token`), or a named
 * request header (`{ header: "X-Session-Token" }`, answered in the same header). Never the URL.
 *
 * @since 0.1.0
 * @category models
 */
export type Transport = "cookie" | "bearer" | { readonly header: string }

/** The response header that answers a bearer token (new, rotated, followed, or empty: ended). @internal */
export const BEARER_RESPONSE_HEADER = "Set-Session-Token"

/** Token headers longer than this are not read at all (as an oversized `Cookie` header). @internal */
export const MAX_TOKEN_HEADER = 4096

/** A header transport, normalised. @internal */
export interface HeaderTransport {
  readonly _tag: "Header"
  /** The request header, lowercased (Node lowercases incoming names). */
  readonly request: string
  /** The response header that carries the answer. */
  readonly response: string
  /** `Authorization: Bearer`: the value must carry the `Bearer` scheme. */
  readonly bearer: boolean
  /** The request header's name as `Vary` lists it. */
  readonly vary: string
}

/** The cookie transport. @internal */
export interface CookieTransport {
  readonly _tag: "Cookie"
}

/** @internal */
export type Via = HeaderTransport | CookieTransport

/** The transports of a route, normalised: the order of reading, and the one that answers a new session. @internal */
export interface Transports {
  /** Header transports in the order given, then the cookie if accepted: the precedence of reading. */
  readonly reading: ReadonlyArray<Via>
  /** The first transport given: it answers a session created for a request that carried no token. */
  readonly first: Via
  /** The request headers the answer depends on (for `Vary`). */
  readonly vary: ReadonlyArray<string>
}

const cookieVia: CookieTransport = { _tag: "Cookie" }

// RFC 9110 field-name token characters.
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// Headers that are not ours to read a token from: the cookie has its own transport, `Authorization`
// is "bearer" (with its scheme), and the others are hop-by-hop, framing or set by proxies.
const RESERVED = new Set([
  "authorization",
  "cookie",
  "set-cookie",
  "host",
  "content-length",
  "content-type",
  "transfer-encoding",
  "connection",
  "x-forwarded-for",
  "forwarded",
  "user-agent"
])

const toVia = (t: Transport): Via => {
  if (t === "cookie") return cookieVia
  if (t === "bearer") return { _tag: "Header", request: "authorization", response: BEARER_RESPONSE_HEADER, bearer: true, vary: "Authorization" }
  if (typeof t === "object" && t !== null && typeof t.header === "string") {
    const name = t.header
    if (!FIELD_NAME.test(name)) throw new TypeError(`effect-sessions: not a header name: ${JSON.stringify(name)}`)
    if (RESERVED.has(name.toLowerCase())) {
      throw new TypeError(`effect-sessions: the header ${JSON.stringify(name)} cannot carry the session token (use "cookie" or "bearer")`)
    }
    return { _tag: "Header", request: name.toLowerCase(), response: name, bearer: false, vary: name }
  }
  throw new TypeError(`effect-sessions: not a transport: ${JSON.stringify(t)} (expected "cookie", "bearer" or { header })`)
}

const same = (a: Via, b: Via) => a._tag === b._tag && (a._tag === "Cookie" || (b._tag === "Header" && a.request === b.request))

/**
 * Normalises the `transport` option (default `"cookie"`). Throws a `TypeError` for an empty list,
 * a header name that is not one, or a header that cannot carry a token.
 *
 * @internal
 */
export const normalizeTransports = (option: Transport | ReadonlyArray<Transport> | undefined): Transports => {
  const given = option === undefined ? ["cookie" as const] : Array.isArray(option) ? option : [option as Transport]
  const vias: Array<Via> = []
  for (const t of given) {
    const via = toVia(t)
    if (!vias.some((v) => same(v, via))) vias.push(via)
  }
  const first = vias[0]
  if (first === undefined) throw new TypeError("effect-sessions: transport: an empty list accepts no token")
  // Headers before the cookie, whatever the order given: a browser attaches the cookie on its
  // own (a cross-site request or a cookie planted by a sibling subdomain rides along), while a
  // header is sent only by a client that holds the token.
  const reading = [...vias.filter((v) => v._tag === "Header"), ...vias.filter((v) => v._tag === "Cookie")]
  const vary = reading.map((v) => (v._tag === "Cookie" ? "Cookie" : v.vary))
  return { reading, first, vary }
}

/** The default: the session cookie only. @internal */
export const cookieOnly: Transports = normalizeTransports(undefined)

/** What a request carries, and on which transport it is answered. @internal */
export interface TokenRead {
  readonly via: Via
  readonly read: CookieRead
}

const MALFORMED = "-"

// RFC 9110 §11.1: the auth-scheme is case-insensitive; RFC 6750 §2.1: one or more spaces.
const BEARER = /^bearer +(.*)$/i

const readHeader = (via: HeaderTransport, headers: Headers.Headers): CookieRead => {
  const raw: string | undefined = headers[via.request]
  if (raw === undefined) return { _tag: "Absent" }
  if (raw.length > MAX_TOKEN_HEADER) return { _tag: "Rejected", reason: "oversized" }
  if (via.bearer) {
    // Another scheme (Basic credentials a browser caches and attaches by itself, say) is no
    // session token of ours: the request does not carry one on this transport.
    const m = BEARER.exec(raw.trim())
    // "Bearer" with nothing after it is a malformed bearer value, not an absent one: MALFORMED is
    // a value no token has, so the resolver answers it as malformed (no store call).
    if (m === null) return raw.trim().toLowerCase() === "bearer" ? { _tag: "Present", value: MALFORMED } : { _tag: "Absent" }
    const value = m[1]!.trim()
    return { _tag: "Present", value: value === "" ? MALFORMED : value }
  }
  const value = raw.trim()
  return value === "" ? { _tag: "Absent" } : { _tag: "Present", value }
}

/**
 * Reads the token: the first transport in reading order on which the request carries one decides
 * (a malformed value there is no session, and no other transport is consulted); a request that
 * carries none is answered on the first transport given. The URL (query string) is never read.
 *
 * @internal
 */
export const readToken = (transports: Transports, headers: Headers.Headers, cookieName: string): TokenRead => {
  for (const via of transports.reading) {
    const read = via._tag === "Cookie" ? readCookie(headers["cookie"], cookieName) : readHeader(via, headers)
    if (read._tag !== "Absent") return { via, read }
  }
  return { via: transports.first, read: { _tag: "Absent" } }
}

/**
 * Appends `names` to the response's `Vary` (keeping what the handler put there): the answer
 * depends on the request headers the token may come from, so a cache must not give one client's
 * answer to another.
 *
 * @internal
 */
export const varyOn = (response: HttpServerResponse.HttpServerResponse, names: ReadonlyArray<string>): HttpServerResponse.HttpServerResponse => {
  const vary = response.headers["vary"]
  const present = vary === undefined ? [] : vary.split(",").map((f) => f.trim().toLowerCase()).filter((f) => f !== "")
  if (present.includes("*")) return response
  const added = names.filter((n) => !present.includes(n.toLowerCase()))
  if (added.length === 0) return response
  const value = present.length === 0 ? added.join(", ") : `${vary}, ${added.join(", ")}`
  return HttpServerResponse.setHeader(response, "vary", value)
}

/**
 * The answer on a header transport: the token (new, rotated or followed) with
 * `Cache-Control: no-store`, or an empty value when the request's token is dead (expired, ended,
 * anomaly, malformed), so the client drops it. No answer otherwise.
 *
 * @internal
 */
export const answerHeader = (
  response: HttpServerResponse.HttpServerResponse,
  via: HeaderTransport,
  action: CookieAction,
  token: Option.Option<Redacted.Redacted<string>>,
  hadToken: boolean
): HttpServerResponse.HttpServerResponse => {
  if (action === "set" && token._tag === "Some") {
    const withToken = HttpServerResponse.setHeader(response, via.response.toLowerCase(), Redacted.value(token.value))
    // A response that carries a session token must never be stored by a cache.
    return HttpServerResponse.setHeader(withToken, "cache-control", "no-store")
  }
  if (action === "clear" && hadToken) return HttpServerResponse.setHeader(response, via.response.toLowerCase(), "")
  return response
}
