// The conformance suite of the installed package, as the author of a custom store runs it: plain
// JavaScript in a scratch project with vitest and @effect/vitest installed (`scripts/check-package.ts`
// runs `vitest run` on it). The memory store and the KeyValueStore store must pass it.
import { KeyValueStore } from "@effect/platform"
import { Layer } from "effect"
import { Persistence } from "effect-sessions"
import { persistenceConformance } from "effect-sessions/testing"

// No retention past deadlines: the suite's expiry tests want a record hidden at its deadline.
persistenceConformance("memory (installed package)", Persistence.layerMemoryWith({ retention: 0 }), { numRuns: 10 })
persistenceConformance(
  "KeyValueStore (installed package)",
  Persistence.layerKeyValueStore({ retention: 0 }).pipe(Layer.provide(KeyValueStore.layerMemory)),
  { numRuns: 10 }
)
