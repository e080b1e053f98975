/**
 * Shared fast-check arbitraries for the pure core: configurations, sessions, redirects, clients,
 * tokens, IP addresses and session data. Reused by the suites of the core, the stores and the
 * service, so every name says what it generates.
 *
 * @internal
 */
import { Either, FastCheck as fc, Option } from "effect"
import type { Json } from "../../Session.js"
import { Redirect, Session } from "../../Session.js"
import * as SessionConfig from "../../SessionConfig.js"

// ---------------------------------------------------------------------------------------------
// JSON data
// ---------------------------------------------------------------------------------------------

/**
 * Replaces `-0` by `0` everywhere in a JSON value. JSON has no negative zero
 * (`JSON.stringify(-0) === "0"`), so a `-0` can never come back from a store; the arbitraries
 * below normalise it so that round-trip properties compare what JSON can carry.
 */
export const normalizeJson = (value: Json): Json => {
  if (typeof value === "number") return Object.is(value, -0) ? 0 : value
  if (value === null || typeof value !== "object") return value
  if (Array.isArray(value)) return value.map(normalizeJson)
  const out: Record<string, Json> = {}
  for (const [k, v] of Object.entries(value)) {
    Object.defineProperty(out, k, { value: normalizeJson(v), enumerable: true, writable: true, configurable: true })
  }
  return out
}

/**
 * One UTF-16 unit of any string: any code point, and now and then a lone surrogate (JSON text
 * may carry one as `\ud800`; fast-check's `"binary"` unit never makes one).
 */
export const arbAnyChar: fc.Arbitrary<string> = fc.oneof(
  { weight: 9, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) }
)

/** Any string (of {@link arbAnyChar}s): NUL, astral characters and lone surrogates included. */
export const arbAnyString = (constraints: { readonly minLength?: number; readonly maxLength?: number } = {}): fc.Arbitrary<string> =>
  fc.string({ ...constraints, unit: arbAnyChar })

/**
 * Any JSON value (from `fc.jsonValue()` with strings of {@link arbAnyChar}s, `-0` normalised to
 * `0`), including objects with an own `__proto__` key — fast-check generates that key on
 * purpose, and JSON values keep it as data.
 */
export const arbJsonValue: fc.Arbitrary<Json> = fc.jsonValue({ maxDepth: 3, stringUnit: arbAnyChar }).map((v) => normalizeJson(v as Json))

/** The same as {@link arbJsonValue} (the name from when that one left out `__proto__` keys). */
export const arbJsonValueAny: fc.Arbitrary<Json> = arbJsonValue

/** A data key: short strings, including the awkward ones (empty, prototype names, `__proto__`). */
export const arbDataKey: fc.Arbitrary<string> = fc.oneof(
  arbAnyString({ maxLength: 12 }),
  fc.constantFrom("", "__proto__", "toString", "constructor", "hasOwnProperty", "valueOf", "a.b", "0", " ")
)

/** Session data: a record of JSON values derived from `fc.jsonValue()`, `__proto__` keys included. */
export const arbJsonData: fc.Arbitrary<{ readonly [key: string]: Json }> = fc
  .array(fc.tuple(arbDataKey, arbJsonValue), { maxLength: 6 })
  .map((entries) => {
    const out: Record<string, Json> = {}
    for (const [k, v] of entries) {
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
    }
    return out
  })

// ---------------------------------------------------------------------------------------------
// Tokens and keys
// ---------------------------------------------------------------------------------------------

/** A routing tag: 4 base62 characters. */
export const arbRoutingTag: fc.Arbitrary<string> = fc
  .array(fc.constantFrom(..."0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"), { minLength: 4, maxLength: 4 })
  .map((a) => a.join(""))

/** A token as `Ids.sessionId()` makes it: a routing tag, then 32 random bytes in base64url (47 characters). */
export const arbToken: fc.Arbitrary<string> = fc
  .tuple(arbRoutingTag, fc.uint8Array({ minLength: 32, maxLength: 32 }))
  .map(([tag, b]) => tag + Buffer.from(b).toString("base64url"))

/** Two different tokens. */
export const arbTokenPair: fc.Arbitrary<readonly [string, string]> = fc
  .tuple(arbToken, arbToken)
  .filter(([a, b]) => a !== b)

/**
 * A store key: not "" (token keys never are: "" is `INVALIDATE_ALL`, src/Persistence.ts), no NUL
 * (PostgreSQL text cannot hold one) and no lone surrogate (Redis and SQL keys are UTF-8): the
 * service's keys are base64url or base62.
 */
export const arbStoreKey: fc.Arbitrary<string> = fc.oneof(
  arbToken,
  fc.string({ unit: "binary", minLength: 1, maxLength: 50 }).filter((k) => !k.includes("\u0000"))
)

// ---------------------------------------------------------------------------------------------
// IP addresses and clients
// ---------------------------------------------------------------------------------------------

/** Four IPv4 octets. */
export const arbIpv4Octets: fc.Arbitrary<readonly [number, number, number, number]> = fc.tuple(
  fc.integer({ min: 0, max: 255 }),
  fc.integer({ min: 0, max: 255 }),
  fc.integer({ min: 0, max: 255 }),
  fc.integer({ min: 0, max: 255 })
)

/** Dotted-quad text of IPv4 octets. */
export const ipv4Text = (octets: ReadonlyArray<number>): string => octets.join(".")

/** An IPv4 address in dotted-quad text. */
export const arbIpv4: fc.Arbitrary<string> = arbIpv4Octets.map(ipv4Text)

/** Whether 16 bytes are an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
export const isV4MappedBytes = (b: ReadonlyArray<number> | Uint8Array): boolean =>
  Array.from(b).slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff

/** 16 bytes of an IPv6 address that is not IPv4-mapped (those parse as IPv4: {@link arbIp} makes them on their own). */
export const arbIpv6Bytes: fc.Arbitrary<Uint8Array> = fc
  .uint8Array({ minLength: 16, maxLength: 16 })
  .filter((b) => !isV4MappedBytes(b))

/** IPv6 text of 16 bytes: eight full hexadecimal groups (no compression). */
export const ipv6FullText = (b: ReadonlyArray<number> | Uint8Array): string => {
  const groups: Array<string> = []
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16).padStart(4, "0"))
  return groups.join(":")
}

/** IPv6 text of 16 bytes, compressed canonically by the WHATWG URL parser (RFC 5952 form). */
export const ipv6CompressedText = (b: ReadonlyArray<number> | Uint8Array): string =>
  new URL(`http://[${ipv6FullText(b)}]/`).hostname.slice(1, -1)

/** An IPv6 address (not IPv4-mapped), full or compressed. */
export const arbIpv6: fc.Arbitrary<string> = fc
  .tuple(arbIpv6Bytes, fc.boolean())
  .map(([b, compressed]) => compressed ? ipv6CompressedText(b) : ipv6FullText(b))

/** Any client IP text: IPv4, IPv6 or IPv4-mapped IPv6. */
export const arbIp: fc.Arbitrary<string> = fc.oneof(arbIpv4, arbIpv6, arbIpv4.map((v4) => `::ffff:${v4}`))

/** A user agent string. */
export const arbUserAgent: fc.Arbitrary<string> = fc.oneof(
  arbAnyString({ maxLength: 40 }),
  fc.constantFrom(
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "curl/8.5.0"
  )
)

/** Plain client facts (as given to `Session.client`). */
export interface ClientInput {
  readonly ip?: string | undefined
  readonly userAgent?: string | undefined
}

/** Plain client facts: an optional IP and an optional user agent. */
export const arbClientInput: fc.Arbitrary<ClientInput> = fc.record(
  { ip: fc.option(arbIp, { nil: undefined }), userAgent: fc.option(arbUserAgent, { nil: undefined }) },
  { requiredKeys: [] }
)

/** A client (`Session.Client`). */
export const arbClient = arbClientInput.map((c) => ({
  ip: Option.fromNullable(c.ip),
  userAgent: Option.fromNullable(c.userAgent)
}))

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/** A positive duration in milliseconds, from one millisecond to about 11 days, boundary-biased. */
export const arbDurationMillis: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 1, max: 10 }),
  fc.integer({ min: 1, max: 1_000_000_000 })
)

/** The timing options of a configuration, in milliseconds, valid together. */
export interface ConfigTimes {
  readonly idleTimeout: number
  readonly absoluteTimeout: number
  readonly idRotationInterval: number
  readonly gracePeriod: number
  readonly touchInterval: number
}

/** Valid timing options (touchInterval < idleTimeout). */
export const arbConfigTimes: fc.Arbitrary<ConfigTimes> = fc
  .record({
    idleTimeout: arbDurationMillis.map((n) => n + 1),
    absoluteTimeout: arbDurationMillis,
    idRotationInterval: arbDurationMillis,
    gracePeriod: arbDurationMillis,
    touchFraction: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true })
  })
  .map(({ touchFraction, ...t }) => ({
    ...t,
    touchInterval: Math.max(1, Math.min(t.idleTimeout - 1, Math.floor(touchFraction * t.idleTimeout)))
  }))

/** Builds a validated configuration, throwing if the input is invalid (a bug in the test). */
export const configOf = (input: SessionConfig.SessionConfigInput): SessionConfig.SessionConfigShape =>
  Either.getOrThrowWith(SessionConfig.make(input), (e) => new Error(`invalid test config: ${e.option}: ${e.message}`))

/** An IP binding: off, or any IPv4 and IPv6 prefix lengths. */
export const arbIpBinding: fc.Arbitrary<false | SessionConfig.IpBinding> = fc.oneof(
  fc.constant(false as const),
  fc.record({ ipv4Prefix: fc.integer({ min: 0, max: 32 }), ipv6Prefix: fc.integer({ min: 0, max: 128 }) })
)

/** A valid configuration with arbitrary timings, IP binding and user-agent policy. */
export const arbConfig: fc.Arbitrary<SessionConfig.SessionConfigShape> = fc
  .record({
    times: arbConfigTimes,
    ipBinding: arbIpBinding,
    acceptChangingUserAgent: fc.boolean(),
    hashIdsAtRest: fc.boolean()
  })
  .map(({ times, ...rest }) => configOf({ ...times, ...rest }))

// ---------------------------------------------------------------------------------------------
// Sessions and redirects
// ---------------------------------------------------------------------------------------------

/** An epoch-millisecond instant between 1970 and about 2100. */
export const arbInstant: fc.Arbitrary<number> = fc.integer({ min: 0, max: 4_102_444_800_000 })

/** A user id. */
export const arbUserId: fc.Arbitrary<string> = fc.oneof(fc.uuid(), arbAnyString({ maxLength: 30 }))

/** A user-agent hash as the binding stores it (or any string: the codec must not care). */
export const arbUserAgentHash: fc.Arbitrary<string> = fc.oneof(
  fc.base64String({ minLength: 20, maxLength: 24 }),
  arbAnyString({ maxLength: 30 })
)

/**
 * A session with realistic times (createdAt ≤ idIssuedAt ≤ lastAccessAt), an optional user and
 * binding, arbitrary data and version.
 */
export const arbSession: fc.Arbitrary<Session> = fc
  .record({
    key: arbStoreKey,
    tokenKey: arbStoreKey,
    createdAt: arbInstant,
    issuedAfter: fc.integer({ min: 0, max: 100_000_000 }),
    accessedAfter: fc.integer({ min: 0, max: 100_000_000 }),
    userId: fc.option(arbUserId, { nil: undefined }),
    ip: fc.option(arbIp, { nil: undefined }),
    userAgentHash: fc.option(arbUserAgentHash, { nil: undefined }),
    data: arbJsonData,
    version: fc.nat(),
    // Before, at or after the other instants: a record may come from a node whose clock differs.
    authenticatedAfter: fc.option(fc.integer({ min: -100_000_000, max: 200_000_000 }), { nil: undefined }),
    persistent: fc.option(fc.boolean(), { nil: undefined })
  })
  .map((r) =>
    new Session({
      key: r.key,
      tokenKey: r.tokenKey,
      createdAt: r.createdAt,
      idIssuedAt: r.createdAt + r.issuedAfter,
      lastAccessAt: r.createdAt + r.issuedAfter + r.accessedAfter,
      userId: Option.fromNullable(r.userId),
      ip: Option.fromNullable(r.ip),
      userAgentHash: Option.fromNullable(r.userAgentHash),
      data: r.data,
      version: r.version,
      // A time of authentication only with a user: what logIn / logOut keep.
      authenticatedAt: r.userId === undefined ? Option.none() : Option.fromNullable(r.authenticatedAfter).pipe(Option.map((d) => r.createdAt + d)),
      persistent: Option.fromNullable(r.persistent)
    })
  )

/** A redirect with arbitrary fields (expiresAt ≥ rotatedAt). */
export const arbRedirect: fc.Arbitrary<Redirect> = fc
  .record({
    tokenKey: arbStoreKey,
    sessionKey: arbStoreKey,
    rotatedAt: arbInstant,
    grace: fc.integer({ min: 0, max: 100_000_000 }),
    ip: fc.option(arbIp, { nil: undefined }),
    userAgentHash: fc.option(arbUserAgentHash, { nil: undefined }),
    successorKey: arbStoreKey,
    sealedSuccessor: fc.oneof(arbToken, arbAnyString())
  })
  .map((r) =>
    new Redirect({
      tokenKey: r.tokenKey,
      sessionKey: r.sessionKey,
      rotatedAt: r.rotatedAt,
      expiresAt: r.rotatedAt + r.grace,
      ip: Option.fromNullable(r.ip),
      userAgentHash: Option.fromNullable(r.userAgentHash),
      successorKey: r.successorKey,
      sealedSuccessor: r.sealedSuccessor
    })
  )

/** A session or a redirect. */
export const arbTokenRecord: fc.Arbitrary<Session | Redirect> = fc.oneof(arbSession, arbRedirect)

/** A valid configuration together with the plain milliseconds it was built from. */
export interface ConfigWithTimes {
  readonly config: SessionConfig.SessionConfigShape
  readonly times: ConfigTimes
}

/**
 * A valid configuration and its timing inputs in milliseconds, so that tests compute expected
 * results from the numbers they chose rather than from the configuration under test.
 */
export const arbConfigWithTimes: fc.Arbitrary<ConfigWithTimes> = fc
  .record({
    times: arbConfigTimes,
    ipBinding: arbIpBinding,
    acceptChangingUserAgent: fc.boolean(),
    hashIdsAtRest: fc.boolean()
  })
  .map(({ times, ...rest }) => ({ config: configOf({ ...times, ...rest }), times }))

// ---------------------------------------------------------------------------------------------
// Comparing values
// ---------------------------------------------------------------------------------------------

/**
 * A canonical, prototype-free form of a value for deep comparison: Options and Eithers by tag,
 * tagged classes (Session, Redirect, Decision) by tag and fields, plain objects as sorted
 * entries (so keys such as `constructor` or `__proto__` compare as data), `-0` distinct from `0`,
 * bigints and Dates by value. chai's and vitest's deep equality are not reliable on Effect data
 * types (chai's deep equality, for one, does not tell `Option.some(x)` from `Option.none()`).
 */
export const canonical = (u: unknown): unknown => {
  if (typeof u === "number") return Object.is(u, -0) ? ["-0"] : Number.isNaN(u) ? ["NaN"] : u
  if (typeof u === "bigint") return ["bigint", u.toString()]
  if (u === null || typeof u !== "object") return u
  if (Option.isOption(u)) return Option.isSome(u) ? ["Some", canonical(u.value)] : ["None"]
  if (Either.isEither(u)) return Either.isRight(u) ? ["Right", canonical(u.right)] : ["Left", canonical(u.left)]
  if (u instanceof Date) return ["Date", u.getTime()]
  if (Array.isArray(u)) return ["array", u.map(canonical)]
  if (u instanceof Uint8Array) return ["bytes", Array.from(u)]
  const proto = Object.getPrototypeOf(u)
  const kind = proto === Object.prototype || proto === null
    ? "object"
    : `${(u as { readonly _tag?: unknown })._tag ?? proto?.constructor?.name ?? "?"}`
  const entries = Object.keys(u).sort().map((k) => [k, canonical((u as Record<string, unknown>)[k])])
  return [kind, entries]
}

/** Asserts that two values are deeply equivalent (see {@link canonical}). */
export const assertEquivalent = <A>(actual: A, expected: A, message?: string): void => {
  const a = canonical(actual)
  const e = canonical(expected)
  if (!isDeepEqualCanonical(a, e)) {
    throw new Error(`${message ? message + ": " : ""}expected ${JSON.stringify(e)}, got ${JSON.stringify(a)}`)
  }
}

const isDeepEqualCanonical = (a: unknown, b: unknown): boolean => {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => isDeepEqualCanonical(x, b[i]))
  }
  return Object.is(a, b)
}
