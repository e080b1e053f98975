/**
 * The two conformance suites over the memory store only, for the mutation run
 * (vitest.mutation.config.ts). Not a `.test.ts` file: `npm test` already runs these suites through
 * spec/Persistence.test.ts and spec/Sessions.stores.test.ts, next to the real backends, which a
 * mutation run must not touch (no PostgreSQL, no Redis, no network).
 */
import { Layer } from "effect"
import * as Persistence from "../../src/Persistence.js"
import { persistenceSuite } from "../../src/internal/testing/persistenceSuite.js"
import { sessionsSuite } from "../../src/internal/testing/sessionsSuite.js"
import { numRuns } from "../helpers/runs.js"

// The same options as spec/Persistence.test.ts and spec/Sessions.stores.test.ts give the memory store.
persistenceSuite("Memory", Persistence.layerMemoryWith({ retention: 0 }))
sessionsSuite("memory", Layer.effect(Persistence.Persistence, Persistence.makeMemory), { numRuns: numRuns(50) })
