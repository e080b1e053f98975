/**
 * The vitest run behind `npm run mutation` (stryker.config.mjs): only the fast, store-free specs
 * that cover the mutated files, and the conformance suites over the memory store. Never the
 * PostgreSQL / Redis / multi-process / browser / bench specs, nothing that needs the network.
 */
import { defineConfig } from "vitest/config"
import base from "./vitest.config.ts"

// The pure core's own unit specs: `npm run mutation:core` judges the core by these alone.
const core = [
  "spec/Session.test.ts",
  "spec/Session.boundaries.test.ts",
  "spec/SessionConfig.test.ts",
  "spec/Codec.test.ts",
  "spec/Ids.test.ts",
  "spec/ip.test.ts",
  "spec/clientIp.test.ts",
  "spec/SessionCache.test.ts",
  "spec/keyedLock.test.ts",
  "spec/cookieHeader.test.ts",
  "spec/hash.test.ts",
  "spec/lru.test.ts"
]
// The shell's: every store-free spec of the service, the middleware, HttpApi and origin checks,
// and both conformance suites over the memory store (the specs that need PostgreSQL, Redis, other
// processes or a browser are left out: Sessions.races, the stores, coherence, faults, e2e).
const shell = [
  "spec/Sessions.test.ts",
  "spec/Http.test.ts",
  "spec/Http.originCheck.test.ts",
  "spec/Http.currentSession.test.ts",
  "spec/Sessions.observability.test.ts",
  "spec/Sessions.limits.test.ts",
  "spec/Sessions.retry.test.ts",
  "spec/Sessions.chains.test.ts",
  "spec/Sessions.resolve.test.ts",
  "spec/Sessions.records.test.ts",
  "spec/Sessions.invalidation.test.ts",
  "spec/Sessions.writes.test.ts",
  "spec/Sessions.handles.test.ts",
  "spec/Sessions.events.test.ts",
  "spec/Sessions.admin.test.ts",
  "spec/Sessions.model.test.ts",
  "spec/Sessions.invariants.test.ts",
  "spec/Session.keys.test.ts",
  "spec/Http.bearer.test.ts",
  "spec/Http.rememberMe.test.ts",
  "spec/HttpApi.test.ts",
  "spec/HttpApi.limits.test.ts",
  "spec/HttpApi.recentLogin.test.ts",
  "spec/HttpApi.security.test.ts",
  "spec/HttpFuzz.test.ts",
  "spec/errorMessages.test.ts",
  "spec/memoryStore.test.ts",
  "spec/mutation/*.ts"
]

// Narrower scopes for one file at a time (`MUTATION_SCOPE=store|http|service npx stryker run --mutate …`):
// a surviving mutant re-runs every test that covers it, ≈ 20 s each over the whole shell list, and
// every service and HTTP test covers the memory store. The store is judged by the store contract
// (both conformance suites over it, and its own spec); the middleware and origin checks by the
// HTTP specs; the service's files by the service's specs.
const store = ["spec/mutation/*.ts", "spec/memoryStore.test.ts"]
const http = shell.filter((f) => f.startsWith("spec/Http"))
// The service's files (src/internal/sessions/*): every store-free spec of the service.
const service = shell.filter((f) => !f.startsWith("spec/Http"))
const scopes: Record<string, ReadonlyArray<string>> = { core, store, http, service }

// Not mergeConfig: it would append to the base `include` instead of replacing it.
export default defineConfig({
  resolve: base.resolve,
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Properties run at most 25 cases under mutation (spec/helpers/runs.ts), with a fixed seed
    // (spec/helpers/mutationSetup.ts): each mutant re-runs every test that covers it.
    env: { MUTATION: "1" },
    setupFiles: ["spec/helpers/mutationSetup.ts"],
    include: [...(scopes[process.env.MUTATION_SCOPE ?? ""] ?? [...core, ...shell])]
  }
})
