/**
 * Token minting and the token arithmetic around it: a new internal session key (a fresh routing
 * tag, then 256 random bits, never sent anywhere), a new token of a session (the session's routing
 * tag — the first characters of its key — then `tokenBytes` of `SecureRandom` in base64url, so
 * that every token of a session leads a store to the same place), the key a token is
 * stored under (its SHA-256 with `hashIdsAtRest`), and the successor a redirect carries — sealed
 * with a key derived from the old token, so that only a holder of the old token can open it, and
 * checked against the successor's hash when it is opened.
 *
 * @internal
 */
import { Effect, Option } from "effect"
import { SecureRandom } from "../../SecureRandom.js"
import type { Redirect } from "../../Session.js"
import type { SessionConfigShape } from "../../SessionConfig.js"
import { safeEqual, seal, tokenKey, unseal } from "../hash.js"
import { routingTagOf } from "../routingTag.js"
import { newRoutingTag } from "../../Ids.js"

/**
 * Redirect hops followed at most. A chain forms when a session rotates again within the grace
 * period of an earlier token (`regenerateId` in a loop, a short rotation interval: a 10-second
 * grace over a 300-millisecond interval makes chains of 33); each hop is one lookup, and a chain
 * cannot loop (every successor is fresh randomness checked against its hash).
 *
 * @internal
 */
export const MAX_HOPS = 64

/** @internal */
export interface Tokens {
  /** The key a token's record is stored and cached under. */
  readonly keyOf: (token: string) => string
  /** A fresh token of the session whose key is `sessionKey` (it carries the key's routing tag). */
  readonly newToken: (sessionKey: string) => Effect.Effect<string>
  /** A fresh internal session key, starting with a fresh routing tag. */
  readonly newKey: Effect.Effect<string>
  /** What a redirect from `token` stores of its `successor`. */
  readonly sealSuccessor: (successor: string, token: string) => string
  /** The successor a redirect leads `token` to, if it opens with that token. */
  readonly successorOf: (redirect: Redirect, token: string) => Option.Option<string>
}

const base64url = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64url")

/** @internal */
export const makeTokens = (config: SessionConfigShape, random: SecureRandom["Type"]): Tokens => {
  const keyOf = (token: string) => tokenKey(token, config.hashIdsAtRest)
  return {
    keyOf,
    newToken: (sessionKey) => Effect.map(random.bytes(config.tokenBytes), (b) => routingTagOf(sessionKey) + base64url(b)),
    // The internal key is never sent anywhere; 256 bits make it unguessable all the same.
    newKey: Effect.zipWith(
      Effect.provideService(newRoutingTag, SecureRandom, random),
      random.bytes(32),
      (tag, b) => tag + base64url(b)
    ),
    sealSuccessor: (successor, token) => config.hashIdsAtRest ? seal(successor, token) : successor,
    successorOf: (redirect, token) => {
      const successor = config.hashIdsAtRest ? unseal(redirect.sealedSuccessor, token) : redirect.sealedSuccessor
      return safeEqual(keyOf(successor), redirect.successorKey) ? Option.some(successor) : Option.none()
    }
  }
}
