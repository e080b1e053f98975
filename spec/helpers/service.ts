/**
 * The Sessions service for tests: the memory store (or a given one), a configuration, and a
 * seeded SecureRandom, so that tokens are repeatable; and a store whose reads flicker.
 */
import { Effect, Layer, Option } from "effect"
import * as Persistence from "../../src/Persistence.js"
import * as SecureRandom from "../../src/SecureRandom.js"
import * as SessionConfig from "../../src/SessionConfig.js"
import * as Sessions from "../../src/Sessions.js"
import * as Testing from "../../src/testing.js"

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

/**
 * A store whose `load` flickers while switched on: every other read of a token finds nothing
 * there, as a lagging replica might answer — a request's read finds the session under its token,
 * the read just after it (a rotation's own) finds it gone, as if another writer had rotated in
 * between. `loads()` counts the reads made while on.
 */
export const flickering = (store: Persistence.PersistenceShape) => {
  let on = false
  let loads = 0
  return {
    store: Testing.intercept(store, (method, call) => {
      if (method !== "load" || !on) return call
      loads++
      return loads % 2 === 1 ? call : (Effect.succeed(Option.none()) as unknown as typeof call)
    }),
    set: (value: boolean) => {
      on = value
    },
    loads: () => loads
  }
}

