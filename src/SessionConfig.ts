/**
 * Configuration: every option with its documented, secure default, validation, and the layers
 * that provide it (`layer` from plain values, `layerConfig` from environment variables).
 *
 * @since 0.1.0
 * @module
 */
import { Config, Context, Data, Duration, Effect, Either, Layer, Option } from "effect"
import type { IpRange } from "./internal/ip.js"
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
 * Levels of accepted IP change (rivo/sessions' `AcceptRemoteIP`): `1` accepts any change; `2`, `3`
 * and `4` require the first 1, 2 or 3 octets of an IPv4 address to stay the same (and the
 * first {@link SessionConfigShape.ipv6PrefixLength} bits of an IPv6 address).
 *
 * @since 0.1.0
 * @category models
 */
export type AcceptRemoteIp = 1 | 2 | 3 | 4

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
  /** Accepted IP change, 1–4. Default 1: any change (mobile clients change networks) (replaces AcceptRemoteIP). */
  readonly acceptRemoteIp: AcceptRemoteIp
  /** IPv6 bits that must stay when `acceptRemoteIp` > 1, 0–128. Default 64 (new: rivo/sessions ignores IPv6). */
  readonly ipv6PrefixLength: number
  /** Whether a changed user agent is accepted. Default `false`: it destroys the session (replaces AcceptChangingUserAgent). */
  readonly acceptChangingUserAgent: boolean
  /** Entries in the local LRU cache: 0 = off, negative = unbounded. Default 10,000 (replaces MaxSessionCacheSize). */
  readonly maxCacheSize: number
  /** A cached entry unused this long is evicted. Default 1 hour (replaces SessionCacheExpiry). */
  readonly cacheExpiry: Duration.Duration
  /** Last-access times are written to the store at most this often; must be < idleTimeout. Default 1 minute (new). */
  readonly touchInterval: Duration.Duration
  /** Proxies (addresses or CIDR ranges) allowed to set X-Forwarded-For. Default none (new). */
  readonly trustedProxies: ReadonlyArray<string>
  /** Store records under the SHA-256 of the token, so a store leak leaks no live session. Default `true` (new). */
  readonly hashIdsAtRest: boolean
  /** Random bytes in a token, at least 16. Default 32 (256 bits). */
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
}

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
 * Options as a caller writes them: every field optional, durations in any `DurationInput`
 * form (`"30 minutes"`, `Duration.hours(1)`, milliseconds as a number).
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionConfigInput {
  readonly cookie?: Partial<Omit<CookieSettings, "domain">> & { readonly domain?: string | undefined }
  readonly idleTimeout?: DurationOption
  readonly absoluteTimeout?: DurationOption
  readonly idRotationInterval?: DurationOption
  readonly gracePeriod?: DurationOption
  readonly acceptRemoteIp?: number
  readonly ipv6PrefixLength?: number
  readonly acceptChangingUserAgent?: boolean
  readonly maxCacheSize?: number
  readonly cacheExpiry?: DurationOption
  readonly touchInterval?: DurationOption
  readonly trustedProxies?: ReadonlyArray<string>
  readonly hashIdsAtRest?: boolean
  readonly tokenBytes?: number
  readonly sweepInterval?: DurationOption
  readonly maxDataBytes?: number
}

/**
 * An invalid option, named, with the reason. Raised when the config layer is built.
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
    partitioned: false
  },
  idleTimeout: Duration.minutes(30),
  absoluteTimeout: Duration.hours(12),
  idRotationInterval: Duration.minutes(15),
  gracePeriod: Duration.minutes(1),
  acceptRemoteIp: 1,
  ipv6PrefixLength: 64,
  acceptChangingUserAgent: false,
  maxCacheSize: 10_000,
  cacheExpiry: Duration.hours(1),
  touchInterval: Duration.minutes(1),
  trustedProxies: [],
  hashIdsAtRest: true,
  tokenBytes: DEFAULT_TOKEN_BYTES,
  sweepInterval: Duration.minutes(5),
  maxDataBytes: 64 * 1024
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

/**
 * The parsed trusted-proxy ranges of a validated config.
 *
 * @internal
 */
export const trustedProxyRanges = (config: SessionConfigShape): ReadonlyArray<IpRange> =>
  config.trustedProxies.flatMap((p) => {
    const r = parseRange(p)
    return r ? [r] : []
  })

/**
 * Resolves and validates options against the defaults. Fails with the first invalid option.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (input: SessionConfigInput = {}): Either.Either<SessionConfigShape, SessionConfigError> => {
  const fail = (option: string, reason: string) => Either.left(new SessionConfigError({ option, reason }))
  const duration = (option: string, value: DurationOption | undefined, fallback: Duration.Duration) => {
    if (value === undefined) return Either.right(fallback)
    const d = Duration.decodeUnknown(value)
    if (Option.isNone(d)) return fail(option, `not a duration: ${String(value)}`)
    if (!Duration.isFinite(d.value) || Duration.toMillis(d.value) <= 0) {
      return fail(option, `must be a positive, finite duration, got ${Duration.format(d.value)}`)
    }
    return Either.right(d.value)
  }
  return Either.gen(function*() {
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
      partitioned: c.partitioned ?? defaults.cookie.partitioned
    }
    if (!COOKIE_NAME.test(cookie.name)) return yield* fail("cookie.name", `not a valid cookie name: ${JSON.stringify(cookie.name)}`)
    if (!["lax", "strict", "none"].includes(cookie.sameSite)) {
      return yield* fail("cookie.sameSite", `must be "lax", "strict" or "none", got ${JSON.stringify(cookie.sameSite)}`)
    }
    if (!cookie.path.startsWith("/") || /[;\s]/.test(cookie.path)) return yield* fail("cookie.path", "must start with / and hold no ; or spaces")
    if (Option.isSome(cookie.domain) && !/^[A-Za-z0-9.-]+$/.test(cookie.domain.value)) return yield* fail("cookie.domain", "not a valid domain")
    if (cookie.sameSite === "none" && !cookie.secure) return yield* fail("cookie.sameSite", "SameSite=None requires secure: true")
    if (cookie.partitioned && !cookie.secure) return yield* fail("cookie.partitioned", "Partitioned requires secure: true")
    // Browsers match the prefixes in any case (`__HOST-id` is held to the `__Host-` rules).
    const lowerName = cookie.name.toLowerCase()
    if (lowerName.startsWith("__secure-") && !cookie.secure) return yield* fail("cookie.name", "a __Secure- cookie requires secure: true")
    if (lowerName.startsWith("__host-")) {
      if (!cookie.secure) return yield* fail("cookie.name", "a __Host- cookie requires secure: true")
      if (cookie.path !== "/") return yield* fail("cookie.name", "a __Host- cookie requires path: \"/\"")
      if (Option.isSome(cookie.domain)) return yield* fail("cookie.name", "a __Host- cookie must not set a domain")
    }
    const idleTimeout = yield* duration("idleTimeout", input.idleTimeout, defaults.idleTimeout)
    const absoluteTimeout = yield* duration("absoluteTimeout", input.absoluteTimeout, defaults.absoluteTimeout)
    const idRotationInterval = yield* duration("idRotationInterval", input.idRotationInterval, defaults.idRotationInterval)
    const gracePeriod = yield* duration("gracePeriod", input.gracePeriod, defaults.gracePeriod)
    const cacheExpiry = yield* duration("cacheExpiry", input.cacheExpiry, defaults.cacheExpiry)
    const sweepInterval = yield* duration("sweepInterval", input.sweepInterval, defaults.sweepInterval)
    const touchInterval = yield* duration(
      "touchInterval",
      input.touchInterval,
      // Keep the default valid for short idle timeouts: at most a tenth of the idle timeout.
      input.idleTimeout === undefined ? defaults.touchInterval : Duration.min(defaults.touchInterval, Duration.divide(idleTimeout, 10).pipe(Option.getOrElse(() => defaults.touchInterval)))
    )
    if (Duration.greaterThanOrEqualTo(touchInterval, idleTimeout)) {
      return yield* fail("touchInterval", `must be shorter than idleTimeout (${Duration.format(idleTimeout)})`)
    }
    const acceptRemoteIp = input.acceptRemoteIp ?? defaults.acceptRemoteIp
    if (![1, 2, 3, 4].includes(acceptRemoteIp)) return yield* fail("acceptRemoteIp", `must be 1, 2, 3 or 4, got ${acceptRemoteIp}`)
    const ipv6PrefixLength = input.ipv6PrefixLength ?? defaults.ipv6PrefixLength
    if (!Number.isInteger(ipv6PrefixLength) || ipv6PrefixLength < 0 || ipv6PrefixLength > 128) {
      return yield* fail("ipv6PrefixLength", `must be an integer from 0 to 128, got ${ipv6PrefixLength}`)
    }
    const maxCacheSize = input.maxCacheSize ?? defaults.maxCacheSize
    if (!Number.isInteger(maxCacheSize)) return yield* fail("maxCacheSize", `must be an integer, got ${maxCacheSize}`)
    const tokenBytes = input.tokenBytes ?? defaults.tokenBytes
    if (!Number.isInteger(tokenBytes) || tokenBytes < MIN_TOKEN_BYTES || tokenBytes > 64) {
      return yield* fail("tokenBytes", `must be an integer from ${MIN_TOKEN_BYTES} to 64, got ${tokenBytes}`)
    }
    const maxDataBytes = input.maxDataBytes ?? defaults.maxDataBytes
    if (!Number.isInteger(maxDataBytes) || maxDataBytes < 1 || maxDataBytes > MAX_DATA_BYTES_CEILING) {
      return yield* fail("maxDataBytes", `must be an integer from 1 to ${MAX_DATA_BYTES_CEILING}, got ${maxDataBytes}`)
    }
    const trustedProxies = input.trustedProxies ?? defaults.trustedProxies
    for (const p of trustedProxies) {
      if (!parseRange(p)) return yield* fail("trustedProxies", `not an IP address or CIDR range: ${JSON.stringify(p)}`)
    }
    return {
      cookie,
      idleTimeout,
      absoluteTimeout,
      idRotationInterval,
      gracePeriod,
      acceptRemoteIp: acceptRemoteIp as AcceptRemoteIp,
      ipv6PrefixLength,
      acceptChangingUserAgent: input.acceptChangingUserAgent ?? defaults.acceptChangingUserAgent,
      maxCacheSize,
      cacheExpiry,
      touchInterval,
      trustedProxies,
      hashIdsAtRest: input.hashIdsAtRest ?? defaults.hashIdsAtRest,
      tokenBytes,
      sweepInterval,
      maxDataBytes
    }
  })
}

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
 *   acceptRemoteIp: 3, // the first two IPv4 octets (and 64 IPv6 bits) must stay
 *   trustedProxies: ["10.0.0.0/8"]
 * })
 * ```
 */
export const layer = (input: SessionConfigInput = {}): Layer.Layer<SessionConfig, SessionConfigError> =>
  Layer.effect(SessionConfig, make(input))

const optional = <A>(config: Config.Config<A>) => Config.option(config).pipe(Config.map(Option.getOrUndefined))

/**
 * The options read through Effect `Config` (environment variables by default), under the
 * prefix `SESSIONS_`: `SESSIONS_COOKIE_NAME`, `SESSIONS_COOKIE_PATH`, `SESSIONS_COOKIE_DOMAIN`,
 * `SESSIONS_COOKIE_SECURE`, `SESSIONS_COOKIE_HTTP_ONLY`, `SESSIONS_COOKIE_SAME_SITE`,
 * `SESSIONS_IDLE_TIMEOUT`, `SESSIONS_ABSOLUTE_TIMEOUT`, `SESSIONS_ID_ROTATION_INTERVAL`,
 * `SESSIONS_GRACE_PERIOD`, `SESSIONS_ACCEPT_REMOTE_IP`, `SESSIONS_IPV6_PREFIX_LENGTH`,
 * `SESSIONS_ACCEPT_CHANGING_USER_AGENT`, `SESSIONS_MAX_CACHE_SIZE`, `SESSIONS_CACHE_EXPIRY`,
 * `SESSIONS_TOUCH_INTERVAL`, `SESSIONS_TRUSTED_PROXIES` (comma-separated),
 * `SESSIONS_HASH_IDS_AT_REST`, `SESSIONS_TOKEN_BYTES`, `SESSIONS_SWEEP_INTERVAL`,
 * `SESSIONS_MAX_DATA_BYTES`.
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
  idleTimeout: optional(Config.duration("IDLE_TIMEOUT")),
  absoluteTimeout: optional(Config.duration("ABSOLUTE_TIMEOUT")),
  idRotationInterval: optional(Config.duration("ID_ROTATION_INTERVAL")),
  gracePeriod: optional(Config.duration("GRACE_PERIOD")),
  acceptRemoteIp: optional(Config.integer("ACCEPT_REMOTE_IP")),
  ipv6PrefixLength: optional(Config.integer("IPV6_PREFIX_LENGTH")),
  acceptChangingUserAgent: optional(Config.boolean("ACCEPT_CHANGING_USER_AGENT")),
  maxCacheSize: optional(Config.integer("MAX_CACHE_SIZE")),
  cacheExpiry: optional(Config.duration("CACHE_EXPIRY")),
  touchInterval: optional(Config.duration("TOUCH_INTERVAL")),
  trustedProxies: optional(Config.array(Config.string(), "TRUSTED_PROXIES")),
  hashIdsAtRest: optional(Config.boolean("HASH_IDS_AT_REST")),
  tokenBytes: optional(Config.integer("TOKEN_BYTES")),
  sweepInterval: optional(Config.duration("SWEEP_INTERVAL")),
  maxDataBytes: optional(Config.integer("MAX_DATA_BYTES"))
}).pipe(
  Config.nested("SESSIONS"),
  Config.map(({ cookieDomain, cookieHttpOnly, cookieName, cookiePath, cookieSameSite, cookieSecure, ...rest }) => {
    const cookie = Object.fromEntries(
      Object.entries({ name: cookieName, path: cookiePath, domain: cookieDomain, secure: cookieSecure, httpOnly: cookieHttpOnly, sameSite: cookieSameSite })
        .filter(([, v]) => v !== undefined)
    )
    const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined))
    return { ...defined, cookie } as SessionConfigInput
  })
)

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
): Layer.Layer<SessionConfig, SessionConfigError | import("effect/ConfigError").ConfigError> =>
  Layer.effect(
    SessionConfig,
    Effect.flatMap(config, (fromEnv) =>
      make({ ...overrides, ...fromEnv, cookie: { ...overrides.cookie, ...fromEnv.cookie } }))
  )

/**
 * Milliseconds of a duration, for the pure core's arithmetic.
 *
 * @since 0.1.0
 * @category utils
 */
export const millis = (d: Duration.Duration): number => Duration.toMillis(d)
