/**
 * The Sessions service for tests: the memory store (or a given one), a configuration, and a
 * seeded SecureRandom, so that tokens are repeatable.
 */
import { Layer } from "effect"
import * as Persistence from "../../src/Persistence.js"
import * as SecureRandom from "../../src/SecureRandom.js"
import * as SessionConfig from "../../src/SessionConfig.js"
import * as Sessions from "../../src/Sessions.js"

export const serviceLayer = (
  config: SessionConfig.SessionConfigInput = {},
  options: { readonly seed?: string; readonly store?: Persistence.PersistenceShape } = {}
): Layer.Layer<Sessions.Sessions> =>
  Sessions.layerFromContext.pipe(
    Layer.provide(
      Layer.mergeAll(
        options.store === undefined ? Persistence.layerMemory : Layer.succeed(Persistence.Persistence, options.store),
        Layer.orDie(SessionConfig.layer(config)),
        SecureRandom.layerSeeded(options.seed ?? "sessions")
      )
    )
  )

/**
 * The `cache` option for a cache of `size` entries, as the tests that run once per size write
 * it: 0 is no cache, a negative size (or `Infinity`) an unbounded one.
 */
export const cacheOfSize = (size: number): false | SessionConfig.CacheOptions =>
  size === 0 ? false : { capacity: size < 0 ? Infinity : size }
