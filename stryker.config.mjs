// @ts-check
/**
 * Mutation testing (StrykerJS 9, vitest runner): `npm run mutation`, `npm run mutation -- --incremental`,
 * `npm run mutation -- --mutate src/Codec.ts`. Not part of `npm test`. Results: spec/MUTATION.md.
 * @type {import("@stryker-mutator/api/core").PartialStrykerOptions}
 */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutation.config.ts" },
  coverageAnalysis: "perTest",
  mutate: [
    // the pure core
    "src/Session.ts",
    "src/SessionConfig.ts",
    "src/Codec.ts",
    "src/Ids.ts",
    "src/internal/lru.ts",
    "src/internal/ip.ts",
    "src/internal/clientIp.ts",
    "src/internal/cookieHeader.ts",
    "src/internal/hash.ts",
    // the shell
    "src/internal/sessions/*.ts",
    "src/internal/memoryStore.ts",
    "src/internal/http.ts"
  ],
  // Two cores, shared with other work.
  concurrency: 2,
  reporters: ["html", "json", "clear-text", "progress"],
  htmlReporter: { fileName: "reports/mutation/mutation.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  incrementalFile: "reports/stryker-incremental.json",
  tempDirName: ".stryker-tmp",
  // The sources are type-checked by `npm run typecheck`; mutants are judged by the tests alone.
  disableTypeChecks: true,
  // Module-level mutants (schemas, constants) re-run every test; counted as ignored, see spec/MUTATION.md.
  ignoreStatic: true,
  thresholds: { high: 90, low: 80, break: null }
}
