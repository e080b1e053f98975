/**
 * Identifiers: session tokens, random base62 IDs without modulo bias, and compact sortable
 * `cuid`s. All randomness comes from {@link SecureRandom}, all time from Effect's `Clock`.
 *
 * A token is a session's routing tag ({@link ROUTING_TAG_LENGTH} base62 characters, drawn at the
 * session's birth and the same for all its tokens: it tells a store where the session lives, e.g.
 * which Redis Cluster slot) followed by `tokenBytes` fresh random bytes in base64url. The tag is public and not
 * counted as entropy: the random part alone is at least 256 bits.
 *
 * @since 0.1.0
 * @module
 */
import { Clock, Effect, GlobalValue, Redacted } from "effect"
import { hostname } from "node:os"
import { sha256Hex } from "./internal/hash.js"
import { ROUTING_TAG_LENGTH as TAG_LENGTH, routingTagOf } from "./internal/routingTag.js"
import { SecureRandom } from "./SecureRandom.js"

/**
 * The base62 alphabet in ASCII order, so that fixed-width base62 strings sort like the numbers
 * they encode.
 *
 * @since 0.1.0
 * @category constants
 */
export const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/**
 * The smallest accepted size of a token's random part: 256 bits (OWASP asks for at least 64 bits
 * of entropy; 256 leave no doubt, and the routing tag in front is not counted).
 *
 * @since 0.1.0
 * @category constants
 */
export const MIN_TOKEN_BYTES = 32

/**
 * The recommended and default token size: 256 bits.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_TOKEN_BYTES = 32

/**
 * The length of a session's routing tag, in base62 characters: at the front of the session's
 * internal key and of every token of the session.
 *
 * @since 0.1.0
 * @category constants
 */
export const ROUTING_TAG_LENGTH: number = TAG_LENGTH

/**
 * The routing tag of a token, token key or session key (its first {@link ROUTING_TAG_LENGTH}
 * characters). Public: it only says where a store keeps the session.
 *
 * @since 0.1.0
 * @category utils
 */
export const routingTag = (value: string): string => routingTagOf(value)

/**
 * A new routing tag: {@link ROUTING_TAG_LENGTH} uniform base62 characters.
 *
 * @since 0.1.0
 * @category constructors
 */
export const newRoutingTag: Effect.Effect<string, never, SecureRandom> = Effect.suspend(() => randomId(TAG_LENGTH))

/**
 * The length in characters of a token whose random part is `bytes` bytes: the routing tag, then
 * the bytes in base64url (no padding).
 *
 * @since 0.1.0
 * @category utils
 */
export const tokenLength = (bytes: number): number => TAG_LENGTH + Math.ceil((bytes * 4) / 3)

/**
 * A new session token: the routing tag `tag` (default: a fresh one, for a new session) followed
 * by `bytes` (default 32, at least 32) random bytes in base64url, wrapped in `Redacted` so that it
 * cannot end up in a log by accident.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { Ids, SecureRandom } from "effect-sessions"
 *
 * const program = Ids.sessionId().pipe(Effect.map(Redacted.value))
 * Effect.runSync(Effect.provide(program, SecureRandom.layer)).length // 47: a 4-character tag, 43 of random bytes
 * ```
 */
export const sessionId = (
  bytes: number = DEFAULT_TOKEN_BYTES,
  tag?: string
): Effect.Effect<Redacted.Redacted<string>, never, SecureRandom> => {
  const n = Math.max(MIN_TOKEN_BYTES, Math.floor(bytes))
  return Effect.all([tag === undefined ? newRoutingTag : Effect.succeed(tag), Effect.flatMap(SecureRandom, (random) => random.bytes(n))]).pipe(
    Effect.map(([t, b]) => Redacted.make(t + Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64url")))
  )
}

const TOKEN_FORMAT = new RegExp(`^[A-Za-z0-9]{${TAG_LENGTH}}[A-Za-z0-9_-]+$`)

/**
 * Whether `value` has the exact format of a token whose random part is `bytes` bytes: a base62
 * routing tag, then base64url, {@link tokenLength} characters in all. Checked before any store
 * call, so garbage cookies never reach a store.
 *
 * @since 0.1.0
 * @category guards
 */
export const isWellFormedToken = (value: string, bytes: number = DEFAULT_TOKEN_BYTES): boolean =>
  value.length === tokenLength(bytes) && TOKEN_FORMAT.test(value)

// 248 = 4 * 62: bytes at or above it are rejected so that `byte % 62` is exactly uniform.
const BASE62_LIMIT = 248

/**
 * A random base62 string of `length` characters, uniformly distributed: bytes ≥ 248 are
 * rejected instead of being folded with a modulo (rivo/sessions' `RandomID` is biased that way).
 *
 * @since 0.1.0
 * @category constructors
 */
export const randomId = (length: number): Effect.Effect<string, never, SecureRandom> =>
  Effect.flatMap(SecureRandom, (random) =>
    Effect.gen(function*() {
      const n = Math.max(0, Math.floor(length))
      let out = ""
      while (out.length < n) {
        // Ask for a little more than needed: about 3% of bytes are rejected.
        const chunk = yield* random.bytes(Math.ceil((n - out.length) * 1.1) + 4)
        for (let i = 0; i < chunk.length && out.length < n; i++) {
          const b = chunk[i]!
          if (b < BASE62_LIMIT) out += BASE62[b % 62]
        }
      }
      return out
    }))

/**
 * The epoch of cuids: 2017-01-01T00:00:00Z, as in rivo/sessions.
 *
 * @since 0.1.0
 * @category constants
 */
export const CUID_EPOCH = Date.UTC(2017, 0, 1)

/**
 * The length of a cuid: 11 base62 characters (62^11 > 2^64).
 *
 * @since 0.1.0
 * @category constants
 */
export const CUID_LENGTH = 11

const TWO_24 = 1 << 24
const encodeBase62 = (value: bigint, width: number): string => {
  let out = ""
  let v = value
  for (let i = 0; i < width; i++) {
    out = BASE62[Number(v % 62n)] + out
    v /= 62n
  }
  return out
}

/**
 * Decodes a cuid into its parts (milliseconds since 2017-01-01, and the 24-bit machine and
 * counter field).
 *
 * @since 0.1.0
 * @category utils
 */
export const decodeCuid = (cuid: string): { readonly millis: number; readonly machineAndCounter: number } => {
  let v = 0n
  for (const c of cuid) v = v * 62n + BigInt(BASE62.indexOf(c))
  return { millis: Number(v >> 24n), machineAndCounter: Number(v & 0xffffffn) }
}

interface CuidState {
  lastMillis: number
  low: number
}

/**
 * Builds a cuid generator with its own state. `machine` is the 16-bit machine hash (default: a
 * hash of the host name and process ID).
 *
 * Layout, after rivo/sessions: 40 bits of milliseconds since 2017-01-01, then 16 bits of machine
 * hash, then an 8-bit counter that spills into the machine hash. Within one generator the IDs
 * are strictly increasing: when the 24 low bits run out within one millisecond, or the clock
 * steps back, the time field moves on by one millisecond instead of repeating.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCuid = (machine?: number): Effect.Effect<string> => {
  const state: CuidState = { lastMillis: -1, low: 0 }
  return cuidFrom(state, machine)
}

const defaultMachine = GlobalValue.globalValue(
  Symbol.for("effect-sessions/Ids/machine"),
  () => parseInt(sha256Hex(`${hostname()}/${process.pid}`).slice(0, 4), 16)
)

const cuidFrom = (state: CuidState, machine: number | undefined): Effect.Effect<string> =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const base = ((machine ?? defaultMachine) & 0xffff) << 8
    let millis = Math.max(0, now - CUID_EPOCH)
    if (millis > state.lastMillis) {
      state.lastMillis = millis
      state.low = base
    } else {
      millis = state.lastMillis
      state.low++
      if (state.low >= TWO_24) {
        millis = ++state.lastMillis
        state.low = base
      }
    }
    return encodeBase62((BigInt(millis) << 24n) | BigInt(state.low), CUID_LENGTH)
  })

const processCuid = GlobalValue.globalValue(
  Symbol.for("effect-sessions/Ids/cuidState"),
  (): CuidState => ({ lastMillis: -1, low: 0 })
)

/**
 * A compact, time-sortable identifier: 11 base62 characters, strictly increasing within this
 * process (see {@link makeCuid} for the layout). Reads time from `Clock`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const cuid = (): Effect.Effect<string> => cuidFrom(processCuid, undefined)
