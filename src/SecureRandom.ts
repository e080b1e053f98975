/**
 * The source of randomness for session tokens, keys and identifiers.
 *
 * Effect's own `Random` is a seeded PCG — fine for simulations, predictable for an attacker —
 * so everything secret in this library draws from `SecureRandom`: `layer` uses the operating
 * system's CSPRNG; `layerSeeded` is deterministic, for tests that need repeatable IDs.
 *
 * @since 0.1.0
 * @module
 */
import { Context, Effect, Layer } from "effect"
import { seededBlock } from "./internal/hash.js"
import { randomBytes } from "./internal/live/secureRandom.js"

/**
 * The service: `bytes(n)` returns `n` fresh random bytes.
 *
 * @since 0.1.0
 * @category tags
 */
export class SecureRandom extends Context.Tag("effect-sessions/SecureRandom")<
  SecureRandom,
  {
    readonly bytes: (n: number) => Effect.Effect<Uint8Array>
  }
>() {}

/**
 * The live implementation: `node:crypto`'s CSPRNG.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<SecureRandom> = Layer.succeed(SecureRandom, {
  bytes: (n) => Effect.sync(() => randomBytes(n))
})

/**
 * Builds a deterministic generator from a seed (SHA-256 in counter mode). Two generators
 * with the same seed produce the same bytes. For tests only: its output is predictable.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSeeded = (seed: string | number): SecureRandom["Type"] => {
  const s = String(seed)
  let counter = 0
  let buffer: Buffer = Buffer.alloc(0)
  const take = (n: number): Uint8Array => {
    while (buffer.length < n) buffer = Buffer.concat([buffer, seededBlock(s, counter++)])
    const out = Uint8Array.prototype.slice.call(buffer, 0, n)
    buffer = buffer.subarray(n)
    return out
  }
  return { bytes: (n) => Effect.sync(() => take(n)) }
}

/**
 * A deterministic SecureRandom for tests: the same seed gives the same IDs.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSeeded = (seed: string | number): Layer.Layer<SecureRandom> =>
  Layer.sync(SecureRandom, () => makeSeeded(seed))

/**
 * `n` random bytes from the SecureRandom in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const bytes = (n: number): Effect.Effect<Uint8Array, never, SecureRandom> =>
  Effect.flatMap(SecureRandom, (random) => random.bytes(n))
