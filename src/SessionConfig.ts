/**
 * Configuration: every option with its documented, secure default, the `Schema` that validates
 * the options and decodes them into the resolved configuration, and the layers that provide it
 * (`layer` from plain values, `layerConfig` from environment variables).
 *
 * @since 0.1.0
 * @module
 */
import { Config, ConfigError, Context, Data, Duration, Effect, Either, Layer, Option, ParseResult, Schema } from "effect"
import { parseRange } from "./internal/ip.js"
import { DEFAULT_TOKEN_BYTES, MIN_TOKEN_BYTES } from "./Ids.js"

/**
 * The `SameSite` attribute of the session cookie.
 *
 * @since 0.1.0
 * @category models
 */
export type SameSite = "lax" | "strict" | "none"

/**
 * Attributes of the session cookie (rivo/sessions' `SessionCookie` and `NewSessionCookie`).
 *
 * @since 0.1.0
 * @category models
 */
export interface CookieSettings {
  /**
   * Cookie name. Default `__Host-id` when the other attributes allow the prefix (Secure, Path=/,
   * no Domain), else `id`. A name starting with `__Host-` (in any case, as browsers match it)
   * requires Secure, Path=/ and no Domain; one starting with `__Secure-` requires Secure.
   */
  readonly name: string
  /** Default `/`. */
  readonly path: string
  /** Default none (host-only cookie, the safest). */
  readonly domain: Option.Option<string>
  /** Default `true`: scripts cannot read the token. */
  readonly httpOnly: boolean
  /** Default `true`: the cookie travels over HTTPS only (browsers treat http://localhost as secure). */
  readonly secure: boolean
  /** Default `lax`. `none` requires `secure`. */
  readonly sameSite: SameSite
  /** Default `false`. CHIPS partitioned cookie; requires `secure`. */
  readonly partitioned: boolean
  /**
   * Default `false`: a browser-session cookie (no `Max-Age`: gone when the browser closes).
   * `true`: a persistent cookie whose `Max-Age` is the time left until the absolute timeout
   * (never beyond it). A log-in may choose per session ("remember me":
   * `logIn(user, { persistent })`); that choice is stored with the session and kept by rotations.
   */
  readonly persistent: boolean
}

/**
 * How much of the client's address must stay the same for the session to live (replaces
 * rivo/sessions' `AcceptRemoteIP`, which knew IPv4 only): the first `ipv4Prefix` bits of an IPv4
 * address, the first `ipv6Prefix` bits of an IPv6 address. `32` / `128` mean the exact address,
 * `24` the same /24 network, `0` any address of the same family. An IPv4-mapped IPv6 address
 * (`::ffff:a.b.c.d`) counts as IPv4. A change of family (IPv4 ↔ IPv6), or an address that appears
 * or disappears, is always an anomaly while a binding is set.
 *
 * @since 0.1.0
 * @category models
 */
export interface IpBinding {
  /** Leading bits of an IPv4 address that must stay, 0–32. Default 24 (the same /24). */
  readonly ipv4Prefix: number
  /** Leading bits of an IPv6 address that must stay, 0–128. Default 64 (the same /64). */
  readonly ipv6Prefix: number
}

/**
 * The local LRU cache of token records (replaces rivo/sessions' `MaxSessionCacheSize` and
 * `SessionCacheExpiry`).
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheSettings {
  /** Entries kept, at least 1; `Infinity` for no bound. Default 10,000. */
  readonly capacity: number
  /** A cached entry unused this long is evicted. Default 1 hour. */
  readonly idleTimeout: Duration.Duration
}

/**
 * A trusted proxy as the resolved configuration holds it: parsed once, when the configuration is
 * made, so that a request only compares bytes.
 *
 * @since 0.1.0
 * @category models
 */
export interface TrustedProxy {
  /** The entry as configured, e.g. `10.0.0.0/8` or `::1`. */
  readonly entry: string
  /** The network address: 4 bytes for IPv4 (also for IPv4-mapped IPv6), 16 for IPv6. */
  readonly address: { readonly family: 4 | 6; readonly bytes: Uint8Array }
  /** Leading bits that must match (32 or 128 for a bare address). */
  readonly prefix: number
}

/**
 * The resolved, validated configuration.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionConfigShape {
  /** The session cookie (replaces rivo/sessions' SessionCookie / NewSessionCookie). */
  readonly cookie: CookieSettings
  /** A session unused this long dies. Default 30 minutes (replaces SessionExpiry). */
  readonly idleTimeout: Duration.Duration
  /** A session dies this long after its birth, however active. Default 12 hours (new). */
  readonly absoluteTimeout: Duration.Duration
  /** A token older than this is replaced on its next use. Default 15 minutes (replaces SessionIDExpiry). */
  readonly idRotationInterval: Duration.Duration
  /** A replaced token keeps resolving to its successor this long. Default 1 minute (replaces SessionIDGracePeriod). */
  readonly gracePeriod: Duration.Duration
  /**
   * Whether a session is bound to its client's address, and how closely (see {@link IpBinding}).
   * Default `false`: any change is accepted, as mobile clients change networks (replaces AcceptRemoteIP).
   */
  readonly ipBinding: false | IpBinding
  /** Whether a changed user agent is accepted. Default `false`: it destroys the session (replaces AcceptChangingUserAgent). */
  readonly acceptChangingUserAgent: boolean
  /** The local cache, or `false` for none. Default 10,000 entries idling out after 1 hour (see {@link CacheSettings}). */
  readonly cache: false | CacheSettings
  /** Last-access times are written to the store at most this often; must be < idleTimeout. Default 1 minute (new). */
  readonly touchInterval: Duration.Duration
  /** Proxies (addresses or CIDR ranges) allowed to set X-Forwarded-For, parsed. Default none (new). */
  readonly trustedProxies: ReadonlyArray<TrustedProxy>
  /** Store records under the SHA-256 of the token, so a store leak leaks no live session. Default `true` (new). */
  readonly hashIdsAtRest: boolean
  /** Random bytes in a token (after its routing tag), at least 32. Default 32 (256 bits). */
  readonly tokenBytes: number
  /** How often the sweeper removes expired records from stores without TTL. Default 5 minutes. */
  readonly sweepInterval: Duration.Duration
  /**
   * The most a session's data may take, in bytes of its encoded JSON (UTF-8). A write that would
   * grow the data above it fails with a `SessionDataError` and changes nothing. Default 64 KiB
   * (65,536); from 1 to {@link MAX_DATA_BYTES_CEILING}, so that a record with that much data
   * always stays under the codec's read ceiling (new).
   */
  readonly maxDataBytes: number
  /**
   * The most live sessions one user may have (OWASP ASVS 7.1.2), or `false` for no limit (the
   * default). Enforced by `logIn` inside the store, in the same atomic step as the log-in's
   * rotation, so that concurrent log-ins of one user in several processes never exceed it; what
   * happens to a log-in beyond it is {@link onSessionLimit} (new).
   */
  readonly maxSessionsPerUser: false | number
  /**
   * What a log-in does when the user already has `maxSessionsPerUser` other live sessions:
   * `"endLeastRecentlyUsed"` (the default) ends the user's least recently used other sessions to
   * make room; `"refuse"` fails the log-in with a `SessionLimitError` and changes nothing (new).
   */
  readonly onSessionLimit: SessionLimitPolicy
}

/**
 * What a log-in does beyond `maxSessionsPerUser` (see {@link SessionConfigShape.onSessionLimit}).
 *
 * @since 0.1.0
 * @category models
 */
export type SessionLimitPolicy = "endLeastRecentlyUsed" | "refuse"

/**
 * A duration as an option: any `DurationInput` (`Duration.hours(1)`, `"30 minutes"`, milliseconds
 * as a number), or any string — checked when the configuration is made, so that a `const`
 * object whose strings TypeScript widened to `string` is accepted, and a typo is an error
 * naming the option.
 *
 * @since 0.1.0
 * @category models
 */
export type DurationOption = Duration.DurationInput | string

/**
 * The cookie attributes as a caller writes them: each optional (see {@link CookieSettings}).
 *
 * @since 0.1.0
 * @category models
 */
export interface CookieOptions {
  readonly name?: string | undefined
  readonly path?: string | undefined
  readonly domain?: string | undefined
  readonly httpOnly?: boolean | undefined
  readonly secure?: boolean | undefined
  readonly sameSite?: SameSite | undefined
  readonly partitioned?: boolean | undefined
  readonly persistent?: boolean | undefined
}

/**
 * An IP binding as a caller writes it: each prefix optional, defaulting to 24 (IPv4) and 64
 * (IPv6). See {@link IpBinding}.
 *
 * @since 0.1.0
 * @category models
 */
export interface IpBindingOptions {
  readonly ipv4Prefix?: number | undefined
  readonly ipv6Prefix?: number | undefined
}

/**
 * The cache as a caller writes it: each field optional, defaulting to a capacity of 10,000 and
 * an idle timeout of 1 hour. See {@link CacheSettings}.
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheOptions {
  readonly capacity?: number | undefined
  readonly idleTimeout?: DurationOption | undefined
}

/**
 * Options as a caller writes them: every field optional, durations in any `DurationInput`
 * form (`"30 minutes"`, `Duration.hours(1)`, milliseconds as a number). `ipBinding` and `cache`
 * take `false` (off), `true` (on, with the defaults — handy with `Config.boolean`) or their
 * settings. An option this version does not know (such as the former `acceptRemoteIp`) is an
 * error, not silently ignored.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionConfigInput {
  readonly cookie?: CookieOptions | undefined
  readonly idleTimeout?: DurationOption | undefined
  readonly absoluteTimeout?: DurationOption | undefined
  readonly idRotationInterval?: DurationOption | undefined
  readonly gracePeriod?: DurationOption | undefined
  /** `false` (the default): no binding; `true`: `{ ipv4Prefix: 24, ipv6Prefix: 64 }`; or the prefixes. */
  readonly ipBinding?: boolean | IpBindingOptions | undefined
  readonly acceptChangingUserAgent?: boolean | undefined
  /** `true` (the default): `{ capacity: 10_000, idleTimeout: "1 hour" }`; `false`: no cache; or the settings. */
  readonly cache?: boolean | CacheOptions | undefined
  readonly touchInterval?: DurationOption | undefined
  readonly trustedProxies?: ReadonlyArray<string> | undefined
  readonly hashIdsAtRest?: boolean | undefined
  readonly tokenBytes?: number | undefined
  readonly sweepInterval?: DurationOption | undefined
  readonly maxDataBytes?: number | undefined
  readonly maxSessionsPerUser?: false | number | undefined
  readonly onSessionLimit?: SessionLimitPolicy | undefined
}

/**
 * An invalid option, named (a dotted path such as `ipBinding.ipv4Prefix`), with the reason.
 * Raised when the configuration is made, that is when its layer is built.
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionConfigError extends Data.TaggedError("SessionConfigError")<{
  readonly option: string
  readonly reason: string
}> {
  override get message(): string {
    return `invalid session option ${this.option}: ${this.reason}`
  }
}

/**
 * The IP binding `ipBinding: true` stands for: the same IPv4 /24 and the same IPv6 /64 (the
 * /24 is rivo/sessions' strictest `AcceptRemoteIP`, 4; the /64 was the former `ipv6PrefixLength`
 * default).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultIpBinding: IpBinding = { ipv4Prefix: 24, ipv6Prefix: 64 }

/**
 * The cache `cache: true` (the default) stands for: 10,000 entries, evicted after 1 hour unused.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCache: CacheSettings = { capacity: 10_000, idleTimeout: Duration.hours(1) }

/**
 * The defaults, secure first.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: SessionConfigShape = {
  cookie: {
    name: "__Host-id",
    path: "/",
    domain: Option.none(),
    httpOnly: true,
    secure: true,
    sameSite: "lax",
    partitioned: false,
    persistent: false
  },
  idleTimeout: Duration.minutes(30),
  absoluteTimeout: Duration.hours(12),
  idRotationInterval: Duration.minutes(15),
  gracePeriod: Duration.minutes(1),
  ipBinding: false,
  acceptChangingUserAgent: false,
  cache: defaultCache,
  touchInterval: Duration.minutes(1),
  trustedProxies: [],
  hashIdsAtRest: true,
  tokenBytes: DEFAULT_TOKEN_BYTES,
  sweepInterval: Duration.minutes(5),
  maxDataBytes: 64 * 1024,
  maxSessionsPerUser: false,
  onSessionLimit: "endLeastRecentlyUsed"
}

/**
 * The largest accepted `maxDataBytes`: 960 KiB, the codec's read ceiling
 * (`Codec.MAX_ENCODED_LENGTH`, 1 MiB of UTF-16 code units) less a 64 KiB margin for the rest of
 * the record (keys, times, client binding, user id). A UTF-8 byte count is never below the
 * UTF-16 length, so data within the limit can never make a record that a later read refuses.
 * (Written out rather than imported: the codec module depends on this one.)
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_DATA_BYTES_CEILING = 1024 * 1024 - 64 * 1024

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/**
 * The cookie name used when none is configured: `__Host-id` when the attributes allow the
 * prefix (`secure`, path `/`, no domain), else `id`. A browser accepts a `__Host-` cookie only
 * host-only, Secure and with Path=/, so a sibling subdomain can neither set one for this host
 * nor shadow it with a Domain or Path variant (which would make the `Cookie` header ambiguous).
 *
 * @since 0.1.0
 * @category utils
 */
export const defaultCookieName = (cookie: Pick<CookieSettings, "secure" | "path" | "domain">): string =>
  cookie.secure && cookie.path === "/" && Option.isNone(cookie.domain) ? "__Host-id" : "id"

// ---- the schema ------------------------------------------------------------------------------

const show = (u: unknown): string => (typeof u === "string" ? JSON.stringify(u) : Duration.isDuration(u) ? Duration.format(u) : String(u))

const integerFrom = (min: number, max: number) =>
  Schema.Number.pipe(
    Schema.filter((n) => Number.isInteger(n) && n >= min && n <= max, {
      message: (issue) => `must be an integer from ${min} to ${max}, got ${show(issue.actual)}`
    })
  )

const durationInput = Schema.declare(
  (u): u is DurationOption => typeof u === "string" || Option.isSome(Duration.decodeUnknown(u)),
  { identifier: "DurationInput", message: (issue) => `not a duration: ${show(issue.actual)}` }
)

/** A positive, finite duration, from any {@link DurationOption}. */
const positiveDuration: Schema.Schema<Duration.Duration, DurationOption> = Schema.transformOrFail(
  durationInput,
  Schema.DurationFromSelf.pipe(
    Schema.filter((d) => Duration.isFinite(d) && Duration.toMillis(d) > 0, {
      message: (issue) => `must be a positive, finite duration, got ${show(issue.actual)}`
    })
  ),
  {
    strict: true,
    decode: (u, _, ast) =>
      Option.match(Duration.decodeUnknown(u), {
        onNone: () => ParseResult.fail(new ParseResult.Type(ast, u, `not a duration: ${show(u)}`)),
        onSome: ParseResult.succeed
      }),
    encode: ParseResult.succeed
  }
)

const cookieOptions = Schema.Struct({
  name: Schema.optional(Schema.String.pipe(Schema.filter((s) => COOKIE_NAME.test(s), {
    message: (issue) => `not a valid cookie name: ${show(issue.actual)}`
  }))),
  path: Schema.optional(Schema.String.pipe(Schema.filter((s) => s.startsWith("/") && !/[;\s]/.test(s), {
    message: () => "must start with / and hold no ; or spaces"
  }))),
  domain: Schema.optional(Schema.String.pipe(Schema.filter((s) => /^[A-Za-z0-9.-]+$/.test(s), { message: () => "not a valid domain" }))),
  httpOnly: Schema.optional(Schema.Boolean),
  secure: Schema.optional(Schema.Boolean),
  sameSite: Schema.optional(Schema.declare((u): u is SameSite => u === "lax" || u === "strict" || u === "none", {
    identifier: "SameSite",
    message: (issue) => `must be "lax", "strict" or "none", got ${show(issue.actual)}`
  })),
  partitioned: Schema.optional(Schema.Boolean),
  persistent: Schema.optional(Schema.Boolean)
})

const ipBindingOptions = Schema.Struct({
  ipv4Prefix: Schema.optional(integerFrom(0, 32)),
  ipv6Prefix: Schema.optional(integerFrom(0, 128))
})

const cacheOptions = Schema.Struct({
  capacity: Schema.optional(Schema.Number.pipe(Schema.filter((n) => (Number.isInteger(n) && n >= 1) || n === Infinity, {
    message: (issue) => `must be an integer from 1 up, or Infinity for no bound (cache: false turns the cache off), got ${show(issue.actual)}`
  }))),
  idleTimeout: Schema.optional(positiveDuration)
})

const trustedProxy: Schema.Schema<TrustedProxy, string> = Schema.transformOrFail(
  Schema.String,
  Schema.typeSchema(Schema.Struct({
    entry: Schema.String,
    address: Schema.Struct({ family: Schema.Literal(4, 6), bytes: Schema.Uint8ArrayFromSelf }),
    prefix: Schema.Number
  })),
  {
    strict: true,
    decode: (entry, _, ast) => {
      const range = parseRange(entry)
      return range
        ? ParseResult.succeed({ entry, address: range.address, prefix: range.prefix })
        : ParseResult.fail(new ParseResult.Type(ast, entry, `not an IP address or CIDR range: ${show(entry)}`))
    },
    encode: (proxy) => ParseResult.succeed(proxy.entry)
  }
)

/** The options, each checked on its own; the next step fills the defaults and checks them together. */
const options = Schema.Struct({
  cookie: Schema.optional(cookieOptions),
  idleTimeout: Schema.optional(positiveDuration),
  absoluteTimeout: Schema.optional(positiveDuration),
  idRotationInterval: Schema.optional(positiveDuration),
  gracePeriod: Schema.optional(positiveDuration),
  ipBinding: Schema.optional(Schema.Union(Schema.Boolean, ipBindingOptions)),
  acceptChangingUserAgent: Schema.optional(Schema.Boolean),
  cache: Schema.optional(Schema.Union(Schema.Boolean, cacheOptions)),
  touchInterval: Schema.optional(positiveDuration),
  trustedProxies: Schema.optional(Schema.Array(trustedProxy)),
  hashIdsAtRest: Schema.optional(Schema.Boolean),
  tokenBytes: Schema.optional(integerFrom(MIN_TOKEN_BYTES, 64)),
  sweepInterval: Schema.optional(positiveDuration),
  maxDataBytes: Schema.optional(integerFrom(1, MAX_DATA_BYTES_CEILING)),
  maxSessionsPerUser: Schema.optional(Schema.Union(Schema.Literal(false), integerFrom(1, 1_000_000))),
  onSessionLimit: Schema.optional(Schema.declare((u): u is SessionLimitPolicy => u === "endLeastRecentlyUsed" || u === "refuse", {
    identifier: "SessionLimitPolicy",
    message: (issue) => `must be "endLeastRecentlyUsed" or "refuse", got ${show(issue.actual)}`
  }))
})

const resolved = Schema.declare((u): u is SessionConfigShape => typeof u === "object" && u !== null, { identifier: "SessionConfigShape" })

/** Fills the defaults of the options that depend on others, and checks the rules between options. */
const resolve = (
  input: typeof options.Type,
  ast: Schema.Schema.AnyNoContext["ast"]
): Either.Either<SessionConfigShape, ParseResult.ParseIssue> => {
  const invalid = (path: readonly [string, ...Array<string>], message: string) =>
    Either.left(new ParseResult.Pointer(path, input, new ParseResult.Type(ast, input, message)))
  const c = input.cookie ?? {}
  const path = c.path ?? defaults.cookie.path
  const domain = Option.fromNullable(c.domain)
  const secure = c.secure ?? defaults.cookie.secure
  const cookie: CookieSettings = {
    name: c.name ?? defaultCookieName({ secure, path, domain }),
    path,
    domain,
    httpOnly: c.httpOnly ?? defaults.cookie.httpOnly,
    secure,
    sameSite: c.sameSite ?? defaults.cookie.sameSite,
    partitioned: c.partitioned ?? defaults.cookie.partitioned,
    persistent: c.persistent ?? defaults.cookie.persistent
  }
  if (cookie.sameSite === "none" && !cookie.secure) return invalid(["cookie", "sameSite"], "SameSite=None requires secure: true")
  if (cookie.partitioned && !cookie.secure) return invalid(["cookie", "partitioned"], "Partitioned requires secure: true")
  // Browsers match the prefixes in any case (`__HOST-id` is held to the `__Host-` rules).
  const lowerName = cookie.name.toLowerCase()
  if (lowerName.startsWith("__secure-") && !cookie.secure) return invalid(["cookie", "name"], "a __Secure- cookie requires secure: true")
  if (lowerName.startsWith("__host-")) {
    if (!cookie.secure) return invalid(["cookie", "name"], "a __Host- cookie requires secure: true")
    if (cookie.path !== "/") return invalid(["cookie", "name"], "a __Host- cookie requires path: \"/\"")
    if (Option.isSome(cookie.domain)) return invalid(["cookie", "name"], "a __Host- cookie must not set a domain")
  }
  const idleTimeout = input.idleTimeout ?? defaults.idleTimeout
  // Keep the default valid for short idle timeouts: at most a tenth of the idle timeout.
  const touchInterval = input.touchInterval ??
    (input.idleTimeout === undefined ? defaults.touchInterval : Duration.min(defaults.touchInterval, Duration.divide(idleTimeout, 10).pipe(Option.getOrElse(() => defaults.touchInterval))))
  if (Duration.greaterThanOrEqualTo(touchInterval, idleTimeout)) {
    return invalid(["touchInterval"], `must be shorter than idleTimeout (${Duration.format(idleTimeout)})`)
  }
  const ipBinding = input.ipBinding ?? defaults.ipBinding
  const cache = input.cache ?? true
  return Either.right({
    cookie,
    idleTimeout,
    absoluteTimeout: input.absoluteTimeout ?? defaults.absoluteTimeout,
    idRotationInterval: input.idRotationInterval ?? defaults.idRotationInterval,
    gracePeriod: input.gracePeriod ?? defaults.gracePeriod,
    ipBinding: ipBinding === false ? false : {
      ipv4Prefix: (ipBinding === true ? undefined : ipBinding.ipv4Prefix) ?? defaultIpBinding.ipv4Prefix,
      ipv6Prefix: (ipBinding === true ? undefined : ipBinding.ipv6Prefix) ?? defaultIpBinding.ipv6Prefix
    },
    acceptChangingUserAgent: input.acceptChangingUserAgent ?? defaults.acceptChangingUserAgent,
    cache: cache === false ? false : {
      capacity: (cache === true ? undefined : cache.capacity) ?? defaultCache.capacity,
      idleTimeout: (cache === true ? undefined : cache.idleTimeout) ?? defaultCache.idleTimeout
    },
    touchInterval,
    trustedProxies: input.trustedProxies ?? defaults.trustedProxies,
    hashIdsAtRest: input.hashIdsAtRest ?? defaults.hashIdsAtRest,
    tokenBytes: input.tokenBytes ?? defaults.tokenBytes,
    sweepInterval: input.sweepInterval ?? defaults.sweepInterval,
    maxDataBytes: input.maxDataBytes ?? defaults.maxDataBytes,
    maxSessionsPerUser: input.maxSessionsPerUser ?? defaults.maxSessionsPerUser,
    onSessionLimit: input.onSessionLimit ?? defaults.onSessionLimit
  })
}

/** The options that spell out a resolved configuration (every field given). */
const unresolve = (c: SessionConfigShape): typeof options.Type => ({
  cookie: {
    name: c.cookie.name,
    path: c.cookie.path,
    domain: Option.getOrUndefined(c.cookie.domain),
    httpOnly: c.cookie.httpOnly,
    secure: c.cookie.secure,
    sameSite: c.cookie.sameSite,
    partitioned: c.cookie.partitioned,
    persistent: c.cookie.persistent
  },
  idleTimeout: c.idleTimeout,
  absoluteTimeout: c.absoluteTimeout,
  idRotationInterval: c.idRotationInterval,
  gracePeriod: c.gracePeriod,
  ipBinding: c.ipBinding,
  acceptChangingUserAgent: c.acceptChangingUserAgent,
  cache: c.cache,
  touchInterval: c.touchInterval,
  trustedProxies: c.trustedProxies,
  hashIdsAtRest: c.hashIdsAtRest,
  tokenBytes: c.tokenBytes,
  sweepInterval: c.sweepInterval,
  maxDataBytes: c.maxDataBytes,
  maxSessionsPerUser: c.maxSessionsPerUser,
  onSessionLimit: c.onSessionLimit
})

/**
 * The options as a `Schema`: it validates {@link SessionConfigInput} and decodes it into the
 * resolved {@link SessionConfigShape}, filling the defaults (encoding spells every option out).
 * Unknown options are refused when decoding with `onExcessProperty: "error"`, as {@link make} does.
 *
 * @since 0.1.0
 * @category schemas
 */
export const schema: Schema.Schema<SessionConfigShape, SessionConfigInput> = Schema.transformOrFail(options, resolved, {
  strict: true,
  decode: (input, _, ast) => resolve(input, ast),
  encode: (config) => ParseResult.succeed(unresolve(config))
})

/** Options of earlier versions, and what replaced them (see docs/migrating.md). */
const replaced: Record<string, string> = {
  acceptRemoteIp: "ipBinding",
  ipv6PrefixLength: "ipBinding.ipv6Prefix",
  maxCacheSize: "cache.capacity (or cache: false)",
  cacheExpiry: "cache.idleTimeout"
}

// A union member that does not fit reports at the union's own path; when a member came closer
// (a nested option), that deeper issue is the one that says what is wrong.
const unionReasons: Record<string, string> = {
  ipBinding: "must be true, false or { ipv4Prefix, ipv6Prefix }",
  cache: "must be true, false or { capacity, idleTimeout }",
  maxSessionsPerUser: "must be false or an integer from 1 to 1000000"
}

const toConfigError = (error: ParseResult.ParseError): SessionConfigError => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
    // `optional` adds `undefined` as an alternative; its complaint is never the point.
    .filter((i) => !i.message.startsWith("Expected undefined"))
  const depth = Math.max(...issues.map((i) => i.path.length))
  const issue = issues.find((i) => i.path.length === depth) ?? issues[0]
  const option = (issue?.path ?? []).filter((k): k is string => typeof k === "string").join(".")
  if (issue === undefined) return new SessionConfigError({ option: "", reason: error.message })
  if (issue._tag === "Unexpected") {
    const replacement = replaced[option]
    return new SessionConfigError({
      option,
      reason: replacement === undefined ? "is not an option" : `was replaced by ${replacement} (see docs/migrating.md)`
    })
  }
  const union = issue._tag === "Type" ? unionReasons[option] : undefined
  return new SessionConfigError({ option, reason: union === undefined ? issue.message : `${union}, got ${issue.message.replace(/^.*actual /, "")}` })
}

const decode = Schema.decodeUnknownEither(schema, { onExcessProperty: "error" })

/**
 * Resolves and validates options against the defaults (through {@link schema}). Fails with the
 * first invalid option.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (input: SessionConfigInput = {}): Either.Either<SessionConfigShape, SessionConfigError> =>
  Either.mapLeft(decode(input), toConfigError)

/**
 * The configuration service.
 *
 * @since 0.1.0
 * @category tags
 */
export class SessionConfig extends Context.Tag("effect-sessions/SessionConfig")<SessionConfig, SessionConfigShape>() {}

/**
 * Provides the configuration from plain values (defaults for what is left out). Invalid values
 * fail the layer with a {@link SessionConfigError} naming the option.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import { SessionConfig } from "effect-sessions"
 *
 * const config = SessionConfig.layer({
 *   cookie: { sameSite: "strict" }, // named __Host-id: Secure, Path=/ and no Domain allow the prefix
 *   idleTimeout: "20 minutes",
 *   absoluteTimeout: "8 hours",
 *   ipBinding: { ipv4Prefix: 16, ipv6Prefix: 64 }, // the same IPv4 /16 and IPv6 /64
 *   cache: { capacity: 50_000 },
 *   trustedProxies: ["10.0.0.0/8"]
 * })
 * ```
 */
export const layer = (input: SessionConfigInput = {}): Layer.Layer<SessionConfig, SessionConfigError> =>
  Layer.effect(SessionConfig, make(input))

const optional = <A>(config: Config.Config<A>) => Config.option(config).pipe(Config.map(Option.getOrUndefined))

const definedOnly = <A extends object>(a: A): Partial<A> =>
  Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) as Partial<A>

/**
 * `SESSIONS_<NAME>=true|false` with settings under `SESSIONS_<NAME>_*`: settings turn it on,
 * `false` beside settings is a contradiction.
 */
const switchable = <A extends object>(name: string, settings: Config.Config<A>) =>
  Config.all({ on: optional(Config.boolean(name)), settings: Config.nested(settings, name) }).pipe(
    Config.mapOrFail(({ on, settings }): Either.Either<boolean | Partial<A> | undefined, ConfigError.ConfigError> => {
      const given = definedOnly(settings)
      const any = Object.keys(given).length > 0
      if (on === false && any) {
        return Either.left(ConfigError.InvalidData([name], `${name}=false contradicts ${Object.keys(given).join(", ")} under ${name}_`))
      }
      return Either.right(any ? given : on)
    })
  )

/**
 * The options read through Effect `Config` (environment variables by default), under the
 * prefix `SESSIONS_`: `SESSIONS_COOKIE_NAME`, `SESSIONS_COOKIE_PATH`, `SESSIONS_COOKIE_DOMAIN`,
 * `SESSIONS_COOKIE_SECURE`, `SESSIONS_COOKIE_HTTP_ONLY`, `SESSIONS_COOKIE_SAME_SITE`,
 * `SESSIONS_COOKIE_PERSISTENT`,
 * `SESSIONS_IDLE_TIMEOUT`, `SESSIONS_ABSOLUTE_TIMEOUT`, `SESSIONS_ID_ROTATION_INTERVAL`,
 * `SESSIONS_GRACE_PERIOD`, `SESSIONS_IP_BINDING` (`true` / `false`),
 * `SESSIONS_IP_BINDING_IPV4_PREFIX`, `SESSIONS_IP_BINDING_IPV6_PREFIX` (either turns the binding
 * on), `SESSIONS_ACCEPT_CHANGING_USER_AGENT`, `SESSIONS_CACHE` (`true` / `false`),
 * `SESSIONS_CACHE_CAPACITY` (`Infinity` for no bound), `SESSIONS_CACHE_IDLE_TIMEOUT`,
 * `SESSIONS_TOUCH_INTERVAL`, `SESSIONS_TRUSTED_PROXIES` (comma-separated),
 * `SESSIONS_HASH_IDS_AT_REST`, `SESSIONS_TOKEN_BYTES`, `SESSIONS_SWEEP_INTERVAL`,
 * `SESSIONS_MAX_DATA_BYTES`, `SESSIONS_MAX_SESSIONS_PER_USER`, `SESSIONS_ON_SESSION_LIMIT`
 * (`endLeastRecentlyUsed` / `refuse`).
 * Durations are written like `30 minutes` or `90 seconds`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const config: Config.Config<SessionConfigInput> = Config.all({
  cookieName: optional(Config.string("COOKIE_NAME")),
  cookiePath: optional(Config.string("COOKIE_PATH")),
  cookieDomain: optional(Config.string("COOKIE_DOMAIN")),
  cookieSecure: optional(Config.boolean("COOKIE_SECURE")),
  cookieHttpOnly: optional(Config.boolean("COOKIE_HTTP_ONLY")),
  cookieSameSite: optional(Config.literal("lax", "strict", "none")("COOKIE_SAME_SITE")),
  cookiePersistent: optional(Config.boolean("COOKIE_PERSISTENT")),
  idleTimeout: optional(Config.duration("IDLE_TIMEOUT")),
  absoluteTimeout: optional(Config.duration("ABSOLUTE_TIMEOUT")),
  idRotationInterval: optional(Config.duration("ID_ROTATION_INTERVAL")),
  gracePeriod: optional(Config.duration("GRACE_PERIOD")),
  ipBinding: switchable(
    "IP_BINDING",
    Config.all({ ipv4Prefix: optional(Config.integer("IPV4_PREFIX")), ipv6Prefix: optional(Config.integer("IPV6_PREFIX")) })
  ),
  acceptChangingUserAgent: optional(Config.boolean("ACCEPT_CHANGING_USER_AGENT")),
  cache: switchable("CACHE", Config.all({ capacity: optional(Config.number("CAPACITY")), idleTimeout: optional(Config.duration("IDLE_TIMEOUT")) })),
  touchInterval: optional(Config.duration("TOUCH_INTERVAL")),
  trustedProxies: optional(Config.array(Config.string(), "TRUSTED_PROXIES")),
  hashIdsAtRest: optional(Config.boolean("HASH_IDS_AT_REST")),
  tokenBytes: optional(Config.integer("TOKEN_BYTES")),
  sweepInterval: optional(Config.duration("SWEEP_INTERVAL")),
  maxDataBytes: optional(Config.integer("MAX_DATA_BYTES")),
  maxSessionsPerUser: optional(Config.integer("MAX_SESSIONS_PER_USER")),
  onSessionLimit: optional(Config.literal("endLeastRecentlyUsed", "refuse")("ON_SESSION_LIMIT"))
}).pipe(
  Config.nested("SESSIONS"),
  Config.map(({ cookieDomain, cookieHttpOnly, cookieName, cookiePath, cookiePersistent, cookieSameSite, cookieSecure, ...rest }): SessionConfigInput => {
    const cookie = definedOnly({
      name: cookieName,
      path: cookiePath,
      domain: cookieDomain,
      secure: cookieSecure,
      httpOnly: cookieHttpOnly,
      sameSite: cookieSameSite,
      persistent: cookiePersistent
    })
    return { ...definedOnly(rest), cookie }
  })
)

// Settings given in code and in the environment combine field by field; a flag replaces them.
const combine = <A extends object>(code: boolean | A | undefined, env: boolean | A | undefined): boolean | A | undefined =>
  env === undefined ? code : typeof env === "object" && typeof code === "object" ? { ...code, ...env } : env

/**
 * Provides the configuration from Effect `Config` (see {@link config}), on top of `overrides`
 * given in code. A malformed variable fails as a `ConfigError`, an invalid value as a
 * {@link SessionConfigError}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides: SessionConfigInput = {}
): Layer.Layer<SessionConfig, SessionConfigError | ConfigError.ConfigError> =>
  Layer.effect(
    SessionConfig,
    Effect.flatMap(config, (fromEnv) =>
      make({
        ...overrides,
        ...fromEnv,
        cookie: { ...overrides.cookie, ...fromEnv.cookie },
        ipBinding: combine(overrides.ipBinding, fromEnv.ipBinding),
        cache: combine(overrides.cache, fromEnv.cache)
      }))
  )

/**
 * Milliseconds of a duration, for the pure core's arithmetic.
 *
 * @since 0.1.0
 * @category utils
 */
export const millis = (d: Duration.Duration): number => Duration.toMillis(d)
