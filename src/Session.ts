/**
 * The pure core: sessions and redirects as immutable values, and the timing rules as pure
 * functions of the session, the configuration, the client and `now` — no services, no I/O.
 *
 * A session has a stable internal `key` (never sent to a client) and a current token (the cookie
 * value) stored only as its `tokenKey` (the token's SHA-256 when `hashIdsAtRest`). When the
 * token rotates, the old one becomes a {@link Redirect} to the same session for the grace period.
 *
 * @since 0.1.0
 * @module
 */
import { Data, Duration, Either, Option, Schema } from "effect"
import type { Pipeable } from "effect/Pipeable"
import { pipeArguments } from "effect/Pipeable"
import { dual } from "effect/Function"
import type { ParseError } from "effect/ParseResult"
import { parseIp, samePrefix } from "./internal/ip.js"
import { userAgentBinding, userAgentHash } from "./internal/hash.js"
import type { IpBinding, SessionConfigShape } from "./SessionConfig.js"
import { millis } from "./SessionConfig.js"

/**
 * A JSON value: what session data holds.
 *
 * @since 0.1.0
 * @category models
 */
export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

/**
 * The deepest nesting of arrays and objects accepted in session data. Deeper values are refused:
 * they serve no session and would let a hostile record exhaust the stack of a recursive walker.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_JSON_DEPTH = 64

const isPlainObject = (u: object): boolean => {
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

/**
 * Whether a value is JSON that survives a round trip: null, booleans, finite numbers, strings,
 * arrays and plain objects, nested at most {@link MAX_JSON_DEPTH} deep. Iterative, so no input
 * can overflow the stack.
 *
 * @since 0.1.0
 * @category guards
 */
export const isJson = (u: unknown): u is Json => {
  const stack: Array<readonly [unknown, number]> = [[u, 0]]
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!
    if (value === null || typeof value === "boolean" || typeof value === "string") continue
    if (typeof value === "number") {
      if (!Number.isFinite(value)) return false
      continue
    }
    if (typeof value !== "object" || depth >= MAX_JSON_DEPTH) return false
    if (Array.isArray(value)) {
      for (const item of value) stack.push([item, depth + 1])
      continue
    }
    if (!isPlainObject(value)) return false
    // Own keys only: a "__proto__" key from JSON.parse is an own property and stays one.
    for (const key of Object.keys(value)) stack.push([(value as Record<string, unknown>)[key], depth + 1])
  }
  return true
}

/**
 * The Schema of a JSON value (see {@link isJson}). Values pass through unchanged — no copy is
 * rebuilt — so keys such as `__proto__` stay own data properties.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Json: Schema.Schema<Json> = Schema.declare(isJson, {
  identifier: "Json",
  message: () => `not JSON (finite numbers, plain objects, nested at most ${MAX_JSON_DEPTH} deep)`,
  description: `a JSON value (finite numbers, plain objects, nested at most ${MAX_JSON_DEPTH} deep)`
})

/**
 * The Schema of session data: a plain object of JSON values.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JsonObject: Schema.Schema<{ readonly [key: string]: Json }> = Schema.declare(
  (u): u is { readonly [key: string]: Json } =>
    typeof u === "object" && u !== null && !Array.isArray(u) && isPlainObject(u) && isJson(u),
  {
    identifier: "JsonObject",
    description: "a plain object of JSON values",
    message: () => `not a plain object of JSON values (nested at most ${MAX_JSON_DEPTH} deep)`
  }
)

/**
 * What a request tells about its client: the resolved IP address and the user agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface Client {
  readonly ip: Option.Option<string>
  readonly userAgent: Option.Option<string>
}

/**
 * A client as the store remembers it: the IP and a hash of the user agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface Binding {
  readonly ip: Option.Option<string>
  readonly userAgentHash: Option.Option<string>
}

/**
 * A client from optional plain values.
 *
 * @since 0.1.0
 * @category constructors
 */
export const client = (options: { readonly ip?: string | undefined; readonly userAgent?: string | undefined } = {}): Client => ({
  ip: Option.fromNullable(options.ip),
  userAgent: Option.fromNullable(options.userAgent)
})

/**
 * The binding recorded for a client.
 *
 * @since 0.1.0
 * @category constructors
 */
export const bindingOf = (c: Client): Binding => ({
  ip: c.ip,
  userAgentHash: Option.isSome(c.userAgent) ? userAgentBinding(c.userAgent.value) : Option.none()
})

/**
 * A session: immutable; every change returns a new value.
 *
 * @since 0.1.0
 * @category models
 */
export class Session extends Data.TaggedClass("Session")<{
  /** Stable internal key: never sent to a client, never changed. */
  readonly key: string
  /** Store key of the current token (its SHA-256 when `hashIdsAtRest`). */
  readonly tokenKey: string
  /** Birth, for the absolute timeout (epoch milliseconds). */
  readonly createdAt: number
  /** Birth of the current token, for rotation. */
  readonly idIssuedAt: number
  /** The idle clock: the last recorded access. */
  readonly lastAccessAt: number
  /** The logged-in user, if any. */
  readonly userId: Option.Option<string>
  /** The client IP at the last binding. */
  readonly ip: Option.Option<string>
  /** Hash of the client's user agent at the last binding. */
  readonly userAgentHash: Option.Option<string>
  /** Key/value data (JSON values). */
  readonly data: { readonly [key: string]: Json }
  /** Stored version, for compare-and-set across processes. 0 before the first save. */
  readonly version: number
  /**
   * When the logged-in user last proved who they are (a log-in or {@link reauthenticated}), for
   * the recent-login gate ({@link isRecentLogin}). None without a user.
   */
  readonly authenticatedAt: Option.Option<number>
  /**
   * The log-in's "remember me" choice: `true` makes the cookie persistent (`Max-Age` up to the
   * absolute timeout), `false` a browser-session cookie; none follows the configured
   * `cookie.persistent`. Set by {@link logIn}, cleared by {@link logOut}, kept by rotations.
   */
  readonly persistent: Option.Option<boolean>
}> implements Pipeable {
  /** `session.pipe(Session.set("k", 1), Session.logIn("u"))` */
  declare pipe: Pipeable["pipe"]
}
// On the prototype (an own property would take part in structural equality).
Session.prototype.pipe = function(this: Session) {
  // eslint-disable-next-line prefer-rest-params
  return pipeArguments(this, arguments)
} as Pipeable["pipe"]

/**
 * A rotated-away token: it resolves to its session until `expiresAt`, and carries the successor
 * token sealed with a key derived from itself.
 *
 * @since 0.1.0
 * @category models
 */
export class Redirect extends Data.TaggedClass("Redirect")<{
  /** Store key of this (old) token. */
  readonly tokenKey: string
  /** The session it leads to. */
  readonly sessionKey: string
  /** When the token was rotated away. */
  readonly rotatedAt: number
  /** The end of the grace period (rotatedAt + gracePeriod). */
  readonly expiresAt: number
  /** The client binding at rotation. */
  readonly ip: Option.Option<string>
  /** The user-agent hash at rotation. */
  readonly userAgentHash: Option.Option<string>
  /** Store key of the successor token, to check the unsealed value. */
  readonly successorKey: string
  /** The successor token sealed with a key derived from the old token. */
  readonly sealedSuccessor: string
}> implements Pipeable {
  /** Pipes the redirect through functions. */
  declare pipe: Pipeable["pipe"]
}
// On the prototype (an own property would take part in structural equality).
Redirect.prototype.pipe = function(this: Redirect) {
  // eslint-disable-next-line prefer-rest-params
  return pipeArguments(this, arguments)
} as Pipeable["pipe"]

/**
 * What the store holds under a token key.
 *
 * @since 0.1.0
 * @category models
 */
export type TokenRecord = Session | Redirect

/**
 * Whether a value is a {@link Session}.
 *
 * @since 0.1.0
 * @category guards
 */
export const isSession = (u: unknown): u is Session => u instanceof Session

/**
 * Whether a value is a {@link Redirect}.
 *
 * @since 0.1.0
 * @category guards
 */
export const isRedirect = (u: unknown): u is Redirect => u instanceof Redirect

/**
 * A new session born at `now`, bound to `client`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (options: {
  readonly key: string
  readonly tokenKey: string
  readonly now: number
  readonly client: Client
}): Session => {
  const binding = bindingOf(options.client)
  return new Session({
    key: options.key,
    tokenKey: options.tokenKey,
    createdAt: options.now,
    idIssuedAt: options.now,
    lastAccessAt: options.now,
    userId: Option.none(),
    ip: binding.ip,
    userAgentHash: binding.userAgentHash,
    data: {},
    version: 0,
    authenticatedAt: Option.none(),
    persistent: Option.none()
  })
}

const copy = (self: Session, patch: Partial<ConstructorParameters<typeof Session>[0]>): Session =>
  new Session({ ...self, ...patch })

/**
 * Records an access at `now` — but only when at least `touchInterval` has passed since the
 * recorded one. Returns the very same value otherwise, so `touched !== self` says a write is due.
 *
 * @since 0.1.0
 * @category combinators
 */
export const touch: {
  (now: number, config: SessionConfigShape): (self: Session) => Session
  (self: Session, now: number, config: SessionConfigShape): Session
} = dual(3, (self: Session, now: number, config: SessionConfigShape): Session =>
  now - self.lastAccessAt >= millis(config.touchInterval) ? copy(self, { lastAccessAt: now }) : self)

/**
 * The result of a rotation: the session under its new token, and the redirect that the old
 * token becomes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Rotation {
  readonly session: Session
  readonly redirect: Redirect
}

/**
 * Rotates the token: the session keeps its key, data, user and `createdAt`; it gets the new
 * token key and `idIssuedAt = now`; the old token becomes a redirect until `now + gracePeriod`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const rotate: {
  (options: RotateOptions): (self: Session) => Rotation
  (self: Session, options: RotateOptions): Rotation
} = dual(2, (self: Session, options: RotateOptions): Rotation => ({
  session: copy(self, { tokenKey: options.tokenKey, idIssuedAt: options.now, lastAccessAt: options.now }),
  redirect: new Redirect({
    tokenKey: self.tokenKey,
    sessionKey: self.key,
    rotatedAt: options.now,
    expiresAt: options.now + millis(options.config.gracePeriod),
    ip: self.ip,
    userAgentHash: self.userAgentHash,
    successorKey: options.tokenKey,
    sealedSuccessor: options.sealedSuccessor
  })
}))

/**
 * Options of {@link rotate}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RotateOptions {
  /** Store key of the new token. */
  readonly tokenKey: string
  /** The new token sealed with the old one (see the internal hash module). */
  readonly sealedSuccessor: string
  readonly now: number
  readonly config: SessionConfigShape
}

/**
 * Why a session or token is no longer valid.
 *
 * @since 0.1.0
 * @category models
 */
export type ExpiryReason = "idle" | "absolute" | "grace"

/**
 * Which client change was rejected.
 *
 * @since 0.1.0
 * @category models
 */
export type AnomalyKind = "ip" | "userAgent"

/**
 * The decision for a request, in the order of the rules (docs/how-it-works.md, "The timing rules").
 *
 * @since 0.1.0
 * @category models
 */
export type Decision = Data.TaggedEnum<{
  /** No record: no session. */
  Missing: {}
  /** A redirect still inside its grace period: follow it to the successor. */
  Follow: { readonly redirect: Redirect }
  /** The session idled out or reached its absolute timeout, or the redirect's grace period ended. */
  Expired: { readonly reason: ExpiryReason; readonly record: TokenRecord }
  /** The client changed in a way the configuration rejects: destroy the session. */
  Anomaly: { readonly kind: AnomalyKind; readonly session: Session }
  /** Valid, but the token is due for rotation. */
  Rotate: { readonly session: Session }
  /** Valid: touch and go on. */
  Valid: { readonly session: Session }
}>

/**
 * Constructors and matchers of {@link Decision}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Decision = Data.taggedEnum<Decision>()

/**
 * Whether the client differs from the session's binding in a way the configuration rejects.
 * With an `ipBinding`, an IPv4 address keeps its first `ipv4Prefix` bits and an IPv6 address its
 * first `ipv6Prefix` bits; an IPv4-mapped IPv6 address counts as IPv4; a change of family, or
 * an address that appears or disappears, is a change. A user agent may not change unless
 * `acceptChangingUserAgent`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const detectAnomaly: {
  (client: Client, config: SessionConfigShape): (self: Binding) => Option.Option<AnomalyKind>
  (self: Binding, client: Client, config: SessionConfigShape): Option.Option<AnomalyKind>
} = dual(3, (self: Binding, c: Client, config: SessionConfigShape): Option.Option<AnomalyKind> => {
  if (config.ipBinding !== false && !ipAccepted(self.ip, c.ip, config.ipBinding)) return Option.some("ip")
  if (!config.acceptChangingUserAgent) {
    const now = Option.map(c.userAgent, userAgentHash)
    if (!Option.getEquivalence((a: string, b: string) => a === b)(self.userAgentHash, now)) return Option.some("userAgent")
  }
  return Option.none()
})

const ipAccepted = (before: Option.Option<string>, after: Option.Option<string>, binding: IpBinding): boolean => {
  if (Option.isNone(before) && Option.isNone(after)) return true
  if (Option.isNone(before) || Option.isNone(after)) return false
  if (before.value === after.value) return true
  const a = parseIp(before.value)
  const b = parseIp(after.value)
  if (!a || !b || a.family !== b.family) return false
  return samePrefix(a, b, a.family === 4 ? binding.ipv4Prefix : binding.ipv6Prefix)
}

/**
 * Whether a session is past its idle or absolute timeout at `now`.
 *
 * @since 0.1.0
 * @category predicates
 */
export const expiry = (self: Session, now: number, config: SessionConfigShape): Option.Option<"idle" | "absolute"> =>
  now - self.createdAt >= millis(config.absoluteTimeout)
    ? Option.some("absolute")
    : now - self.lastAccessAt >= millis(config.idleTimeout)
    ? Option.some("idle")
    : Option.none()

/**
 * The instant at which a session dies unless it is used again: the earlier of its idle and
 * absolute deadlines. Stores use it as the record's TTL.
 *
 * @since 0.1.0
 * @category getters
 */
export const expiresAt = (self: Session, config: SessionConfigShape): number =>
  Math.min(self.lastAccessAt + millis(config.idleTimeout), self.createdAt + millis(config.absoluteTimeout))

/**
 * The decision for a request whose token led to `record` (rules 2–6 of the timing rules; rule 1,
 * the malformed token, is decided before the store is asked).
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * ```ts
 * import { Option } from "effect"
 * import { Session, SessionConfig } from "effect-sessions"
 *
 * const config = SessionConfig.defaults
 * const client = Session.client({ ip: "203.0.113.7", userAgent: "curl/8" })
 * const s = Session.start({ key: "k", tokenKey: "t", now: 0, client })
 * Session.decide(Option.some(s), { now: 16 * 60_000, client, config })._tag // "Rotate"
 * Session.decide(Option.some(s), { now: 31 * 60_000, client, config })._tag // "Expired" (idle)
 * ```
 */
export const decide = (
  record: Option.Option<TokenRecord>,
  context: { readonly now: number; readonly client: Client; readonly config: SessionConfigShape }
): Decision => {
  if (Option.isNone(record)) return Decision.Missing()
  const r = record.value
  const { client: c, config, now } = context
  if (r._tag === "Redirect") {
    return now < r.expiresAt ? Decision.Follow({ redirect: r }) : Decision.Expired({ reason: "grace", record: r })
  }
  const expired = expiry(r, now, config)
  if (Option.isSome(expired)) return Decision.Expired({ reason: expired.value, record: r })
  const anomaly = detectAnomaly(r, c, config)
  if (Option.isSome(anomaly)) return Decision.Anomaly({ kind: anomaly.value, session: r })
  if (now - r.idIssuedAt >= millis(config.idRotationInterval)) return Decision.Rotate({ session: r })
  return Decision.Valid({ session: r })
}

/**
 * Options of {@link logIn}.
 *
 * @since 0.1.0
 * @category models
 */
export interface LogInOptions {
  /**
   * When the user authenticated (epoch milliseconds): recorded as `authenticatedAt`. Without it
   * the log-in has no known time and never counts as recent ({@link isRecentLogin}).
   */
  readonly now?: number | undefined
  /**
   * "Remember me": `true` for a persistent cookie, `false` for a browser-session cookie; absent
   * follows the configured `cookie.persistent`. Each log-in chooses afresh.
   */
  readonly persistent?: boolean | undefined
}

/**
 * Attaches a user (rivo/sessions' `LogIn`), records when they authenticated (`options.now`) and
 * their "remember me" choice (`options.persistent`). The service rotates the token at the same
 * time, against session fixation.
 *
 * @since 0.1.0
 * @category combinators
 */
export const logIn: {
  (userId: string, options?: LogInOptions): (self: Session) => Session
  (self: Session, userId: string, options?: LogInOptions): Session
} = dual(
  (args) => isSession(args[0]),
  (self: Session, userId: string, options?: LogInOptions): Session =>
    copy(self, {
      userId: Option.some(userId),
      authenticatedAt: Option.fromNullable(options?.now),
      persistent: Option.fromNullable(options?.persistent)
    })
)

/**
 * Records that the logged-in user proved who they are again at `now` (re-entered a password,
 * passed MFA): `authenticatedAt = now`. Without a user, the same value — nobody to vouch for.
 * The service rotates the token with no grace period at the same time.
 *
 * @since 0.1.0
 * @category combinators
 */
export const reauthenticated: {
  (now: number): (self: Session) => Session
  (self: Session, now: number): Session
} = dual(2, (self: Session, now: number): Session =>
  Option.isNone(self.userId) ? self : copy(self, { authenticatedAt: Option.some(now) }))

/**
 * The recent-login rule (OWASP ASVS 7.5.1, 7.5.2): whether the session's user authenticated less
 * than `maxAge` before `now`. False without a user or without a known authentication time, and
 * always false for a `maxAge` of zero. A time after `now` (another node's clock running ahead)
 * counts as age zero: the store's record cannot be forged by a client.
 *
 * @since 0.1.0
 * @category predicates
 * @example
 * ```ts
 * import { Option } from "effect"
 * import { Session } from "effect-sessions"
 *
 * const s = Session.start({ key: "k", tokenKey: "t", now: 0, client: Session.client() })
 * const inn = Session.logIn(s, "ada", { now: 0 })
 * Session.isRecentLogin(inn, 4 * 60_000, "5 minutes") // true
 * Session.isRecentLogin(inn, 5 * 60_000, "5 minutes") // false
 * ```
 */
export const isRecentLogin: {
  (now: number, maxAge: Duration.DurationInput): (self: Session) => boolean
  (self: Session, now: number, maxAge: Duration.DurationInput): boolean
} = dual(3, (self: Session, now: number, maxAge: Duration.DurationInput): boolean =>
  Option.isSome(self.userId) && Option.isSome(self.authenticatedAt) &&
  Math.max(0, now - self.authenticatedAt.value) < Duration.toMillis(Duration.decode(maxAge)))

/**
 * The "log everybody out" rule (`Sessions.logOutEveryone`, OWASP ASVS 7.4.5): whether the session
 * is ended by the revocation instant `until` — it was born at or before `until` and nobody
 * authenticated in it since. A session born later, or logged in to (or re-authenticated) after
 * `until`, is untouched: a user who logs in again right after the switch keeps that session.
 *
 * @since 0.1.0
 * @category predicates
 * @example
 * ```ts
 * import { Session } from "effect-sessions"
 *
 * const s = Session.start({ key: "k", tokenKey: "t", now: 1_000, client: Session.client() })
 * Session.isRevoked(s, 1_000) // true: born at the instant
 * Session.isRevoked(s, 999) // false: born after it
 * Session.isRevoked(Session.logIn(s, "ada", { now: 2_000 }), 1_500) // false: logged in after it
 * ```
 */
export const isRevoked: {
  (until: number): (self: Session) => boolean
  (self: Session, until: number): boolean
} = dual(2, (self: Session, until: number): boolean =>
  self.createdAt <= until && (Option.isNone(self.authenticatedAt) || self.authenticatedAt.value <= until))

/**
 * Whether the session cookie is persistent: the log-in's "remember me" choice, else the
 * configured `cookie.persistent`.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isPersistent: {
  (config: SessionConfigShape): (self: Session) => boolean
  (self: Session, config: SessionConfigShape): boolean
} = dual(2, (self: Session, config: SessionConfigShape): boolean =>
  Option.getOrElse(self.persistent, () => config.cookie.persistent))

/**
 * The cookie's `Max-Age` at `now`, in whole seconds: none for a browser-session cookie
 * ({@link isPersistent} false), else the time left until the absolute timeout (never beyond it;
 * at least 0).
 *
 * @since 0.1.0
 * @category getters
 */
export const cookieMaxAge: {
  (now: number, config: SessionConfigShape): (self: Session) => Option.Option<number>
  (self: Session, now: number, config: SessionConfigShape): Option.Option<number>
} = dual(3, (self: Session, now: number, config: SessionConfigShape): Option.Option<number> =>
  isPersistent(self, config)
    ? Option.some(Math.max(0, Math.floor((self.createdAt + millis(config.absoluteTimeout) - now) / 1000)))
    : Option.none())

/**
 * Detaches the user (rivo/sessions' `LogOut`) and forgets the authentication time and the
 * "remember me" choice; the data stays. The service rotates the token.
 *
 * @since 0.1.0
 * @category combinators
 */
export const logOut = (self: Session): Session =>
  copy(self, { userId: Option.none(), authenticatedAt: Option.none(), persistent: Option.none() })

/**
 * A typed session key: a name and the Schema its value is stored through. `get` decodes with it,
 * `set` and `update` encode with it, so a value of the wrong type is a compile error and a stored
 * value that no longer decodes is a typed error (`ParseError` here, `SessionDataError` on the
 * service). Plain string keys with JSON values remain for the untyped case.
 *
 * @since 0.1.0
 * @category models
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Session } from "effect-sessions"
 *
 * const Visits = Session.key("visits", Schema.Number)
 * const LastSeen = Session.key("lastSeen", Schema.Date) // stored as an ISO string
 * ```
 */
export interface Key<A> extends Pipeable {
  readonly [KeyTypeId]: KeyTypeId
  /** The name the value is stored under in the session's data. */
  readonly name: string
  /** The Schema from the stored JSON to `A` (its encoded side is JSON, checked by {@link key}). */
  readonly schema: Schema.Schema<A, any>
}

/**
 * The type id of {@link Key}.
 *
 * @since 0.1.0
 * @category type ids
 */
export const KeyTypeId: unique symbol = Symbol.for("effect-sessions/Session/Key")

/**
 * @since 0.1.0
 * @category type ids
 */
export type KeyTypeId = typeof KeyTypeId

const KeyProto = {
  [KeyTypeId]: KeyTypeId,
  pipe() {
    // eslint-disable-next-line prefer-rest-params
    return pipeArguments(this, arguments)
  }
}

/**
 * A typed key: `name`, stored through `schema` (whose encoded side must be JSON).
 *
 * @since 0.1.0
 * @category constructors
 */
export const key = <A, I extends Json>(name: string, schema: Schema.Schema<A, I>): Key<A> => {
  const k = Object.create(KeyProto) as { -readonly [P in keyof Key<A>]: Key<A>[P] }
  k.name = name
  k.schema = schema
  return k
}

/**
 * Whether a value is a {@link Key}.
 *
 * @since 0.1.0
 * @category guards
 */
export const isKey = (u: unknown): u is Key<unknown> => typeof u === "object" && u !== null && KeyTypeId in u

/**
 * A key of session data: a plain string (the value is any JSON) or a typed {@link Key}.
 *
 * @since 0.1.0
 * @category models
 */
export type KeyLike = string | Key<any>

/**
 * The name a key is stored under.
 *
 * @since 0.1.0
 * @category getters
 */
export const keyName = (k: KeyLike): string => typeof k === "string" ? k : k.name

const getRaw = (self: Session, name: string): Option.Option<Json> =>
  Object.prototype.hasOwnProperty.call(self.data, name) ? Option.some(self.data[name]!) : Option.none()

const decodeAt = <A>(k: Key<A>, raw: Option.Option<Json>): Either.Either<Option.Option<A>, ParseError> =>
  Option.isNone(raw) ? Either.right(Option.none()) : Either.map(Schema.decodeUnknownEither(k.schema)(raw.value), Option.some)

const setRaw = (self: Session, name: string, value: Json): Session => copy(self, { data: { ...self.data, [name]: value } })

const encodeTo = <A>(self: Session, k: Key<A>, value: A): Either.Either<Session, ParseError> =>
  Either.map(Schema.encodeEither(k.schema)(value), (encoded) => setRaw(self, k.name, encoded as Json))

/**
 * The value under `key`. With a typed {@link Key} it is decoded through the key's Schema (so
 * Dates, bigints and classes come back as themselves), and a stored value that does not decode
 * is a `ParseError`.
 *
 * @since 0.1.0
 * @category getters
 */
export const get: {
  <A>(key: Key<A>): (self: Session) => Either.Either<Option.Option<A>, ParseError>
  (key: string): (self: Session) => Option.Option<Json>
  <A>(self: Session, key: Key<A>): Either.Either<Option.Option<A>, ParseError>
  (self: Session, key: string): Option.Option<Json>
} = dual(2, (self: Session, k: KeyLike): any =>
  typeof k === "string" ? getRaw(self, k) : decodeAt(k, getRaw(self, k.name)))

/**
 * Sets `key`. With a typed {@link Key} the value is encoded through the key's Schema, and a
 * value it refuses is a `ParseError`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const set: {
  <A>(key: Key<A>, value: NoInfer<A>): (self: Session) => Either.Either<Session, ParseError>
  (key: string, value: Json): (self: Session) => Session
  <A>(self: Session, key: Key<A>, value: NoInfer<A>): Either.Either<Session, ParseError>
  (self: Session, key: string, value: Json): Session
} = dual(3, (self: Session, k: KeyLike, value: any): any =>
  typeof k === "string" ? setRaw(self, k, value) : encodeTo(self, k, value))

/**
 * Replaces the value under `key` with `f(old)`. With a typed {@link Key}, `old` is decoded and
 * the new value encoded through the key's Schema (a failure of either is a `ParseError`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const update: {
  <A>(key: Key<A>, f: (old: Option.Option<A>) => NoInfer<A>): (self: Session) => Either.Either<Session, ParseError>
  (key: string, f: (old: Option.Option<Json>) => Json): (self: Session) => Session
  <A>(self: Session, key: Key<A>, f: (old: Option.Option<A>) => NoInfer<A>): Either.Either<Session, ParseError>
  (self: Session, key: string, f: (old: Option.Option<Json>) => Json): Session
} = dual(3, (self: Session, k: KeyLike, f: (old: Option.Option<any>) => any): any =>
  typeof k === "string"
    ? setRaw(self, k, f(getRaw(self, k)))
    : Either.flatMap(decodeAt(k, getRaw(self, k.name)), (old) => encodeTo(self, k, f(old))))

/**
 * Removes `key` (rivo/sessions' `Delete`). Returns the same value when the key is absent.
 *
 * @since 0.1.0
 * @category combinators
 */
export const remove: {
  (key: KeyLike): (self: Session) => Session
  (self: Session, key: KeyLike): Session
} = dual(2, (self: Session, k: KeyLike): Session => {
  const name = keyName(k)
  if (!Object.prototype.hasOwnProperty.call(self.data, name)) return self
  const { [name]: _removed, ...data } = self.data
  return copy(self, { data })
})

/**
 * Removes `key` and returns its value (rivo/sessions' `GetAndDelete`). With a typed
 * {@link Key} the value is decoded first; one that does not decode is a `ParseError` (and
 * nothing is removed).
 *
 * @since 0.1.0
 * @category combinators
 */
export const pop: {
  <A>(key: Key<A>): (self: Session) => Either.Either<readonly [Option.Option<A>, Session], ParseError>
  (key: string): (self: Session) => readonly [Option.Option<Json>, Session]
  <A>(self: Session, key: Key<A>): Either.Either<readonly [Option.Option<A>, Session], ParseError>
  (self: Session, key: string): readonly [Option.Option<Json>, Session]
} = dual(2, (self: Session, k: KeyLike): any =>
  typeof k === "string"
    ? [getRaw(self, k), remove(self, k)] as const
    : Either.map(decodeAt(k, getRaw(self, k.name)), (value) => [value, remove(self, k)] as const))

/**
 * Rebinds the session to a client (after an accepted change), returning the same value when
 * nothing changed.
 *
 * @since 0.1.0
 * @category combinators
 */
export const bind: {
  (c: Client): (self: Session) => Session
  (self: Session, c: Client): Session
} = dual(2, (self: Session, c: Client): Session => {
  const b = bindingOf(c)
  const eq = Option.getEquivalence((x: string, y: string) => x === y)
  return eq(self.ip, b.ip) && eq(self.userAgentHash, b.userAgentHash) ? self : copy(self, { ip: b.ip, userAgentHash: b.userAgentHash })
})

/**
 * The session with a new stored version (set by a store after a successful save).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withVersion: {
  (version: number): (self: Session) => Session
  (self: Session, version: number): Session
} = dual(2, (self: Session, version: number): Session => copy(self, { version }))
