// The custom store of examples/custom-store.ts through the conformance suites of
// effect-sessions/testing, as the author of any store runs them: the contract of the store (a
// `describe` block "Persistence conformance: …") and the invariants of the service over it
// ("Sessions over …"). This file runs with the rest of the suite (`npm test`).
import { KeyValueStore } from "@effect/platform"
import { Layer, Redacted } from "effect"
import { Persistence } from "effect-sessions"
import { persistenceConformance, sessionsConformance } from "effect-sessions/testing"
import { randomBytes } from "node:crypto"
import { layerEncrypted } from "./custom-store.js"

const key = Redacted.make(new Uint8Array(randomBytes(32)))
// Over a KeyValueStore with no retention past deadlines: the suite's expiry tests want a record
// hidden at its deadline. Each call builds its own store.
const store = () =>
  layerEncrypted(key).pipe(
    Layer.provide(Persistence.layerKeyValueStore({ retention: 0 })),
    Layer.provide(KeyValueStore.layerMemory)
  )

persistenceConformance("encrypted KeyValueStore (examples/custom-store.ts)", store())
// `fresh`: a store of its own for the tests that change the whole store (logOutEveryone);
// `retention`: the store's own, so that invariant 8 compares it with a memory store that also
// forgets a record at its deadline.
sessionsConformance("encrypted KeyValueStore (examples/custom-store.ts)", store(), {
  fresh: store,
  numRuns: 10,
  retention: 0
})
