/**
 * Deterministic hashing and sealing: the one module of `src/` that imports `node:crypto`.
 *
 * Nothing here draws randomness or reads time — both come from services (SecureRandom, Clock).
 * What lives here is pure: SHA-256 of tokens for store keys (`hashIdsAtRest`), the user-agent
 * hash of the client binding, the short log hash, and the sealing of a successor token with a
 * key derived from its predecessor.
 *
 * @internal
 */
import { Option } from "effect"
import { createHash, createHmac, hash, timingSafeEqual } from "node:crypto"
import { routingTagOf } from "./routingTag.js"

// `crypto.hash` is the one-shot form: about three times faster than `createHash` for short
// inputs, and token hashing is on every request's path. It is why the package needs Node ≥ 20.12
// (`engines`): a fallback for older versions would be a path no test run takes. Strings are
// hashed as UTF-8 (Node's default for a string).

/** SHA-256 of a UTF-8 string, base64url without padding (43 characters). @internal */
export const sha256 = (input: string): string => hash("sha256", input, "base64url")

/** SHA-256 of a UTF-8 string as lowercase hex. @internal */
export const sha256Hex = (input: string): string => hash("sha256", input, "hex")

/**
 * The key under which a token's record is stored: with `hashIdsAtRest`, the token's routing tag
 * (public anyway) followed by its SHA-256, so that a store finds the session's slot from the key.
 * @internal
 */
export const tokenKey = (token: string, hashIdsAtRest: boolean): string =>
  hashIdsAtRest ? routingTagOf(token) + sha256(token) : token

// Few distinct user agents make up most traffic: remember the last hashes (bounded), as the
// binding value itself, so that the sessions of one browser share it (56 bytes a session less).
const uaMemo = new Map<string, Option.Some<string>>()
const UA_MEMO_SIZE = 512

/** {@link userAgentHash} as a client binding holds it: the same value for the same user agent. @internal */
export const userAgentBinding = (userAgent: string): Option.Some<string> => {
  let hash = uaMemo.get(userAgent)
  if (hash === undefined) {
    hash = Option.some(sha256(`ua:${userAgent}`).slice(0, 22)) as Option.Some<string>
    if (uaMemo.size >= UA_MEMO_SIZE) uaMemo.clear()
    if (userAgent.length <= 1024) uaMemo.set(userAgent, hash)
  }
  return hash
}

/** A 128-bit hash of a user agent string (so a store leak does not show browsers). @internal */
export const userAgentHash = (userAgent: string): string => userAgentBinding(userAgent).value

/**
 * A short, non-reversible fingerprint of a token for logs, spans and errors (48 bits: enough to
 * correlate lines, useless for finding the token). @internal
 */
export const logHash = (token: string): string => sha256(`log:${token}`).slice(0, 8)

const keystream = (key: string, length: number): Buffer => {
  const blocks: Array<Buffer> = []
  let total = 0
  for (let i = 0; total < length; i++) {
    const block = createHmac("sha256", key).update(`effect-sessions/successor/${i}`).digest()
    blocks.push(block)
    total += block.length
  }
  return Buffer.concat(blocks).subarray(0, length)
}

/**
 * Seals `successor` (a base64url token) with a key derived from `predecessor`: successor XOR
 * HMAC-SHA-256(predecessor, …). Only a holder of the predecessor can open it; a leaked store
 * therefore holds no usable token. @internal
 */
export const seal = (successor: string, predecessor: string): string => {
  const plain = Buffer.from(successor, "base64url")
  const stream = keystream(predecessor, plain.length)
  for (let i = 0; i < plain.length; i++) plain[i] = plain[i]! ^ stream[i]!
  return plain.toString("base64url")
}

/** Opens a sealed successor (XOR is its own inverse). @internal */
export const unseal = (sealed: string, predecessor: string): string => seal(sealed, predecessor)

/** Constant-time comparison of two strings. @internal */
export const safeEqual = (a: string, b: string): boolean => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * A deterministic byte stream from a seed (SHA-256 in counter mode), for the seeded
 * SecureRandom used in tests. @internal
 */
export const seededBlock = (seed: string, counter: number): Buffer =>
  createHash("sha256").update(`effect-sessions/seeded/${seed}/${counter}`).digest()

/** The public identifier of a session in listings: a hash of its internal key. @internal */
export const publicId = (sessionKey: string): string => sha256(`public:${sessionKey}`).slice(0, 16)
