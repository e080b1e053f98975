import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const src = fileURLToPath(new URL("./src/", import.meta.url))

export default defineConfig({
  resolve: {
    // Inside the repository `effect-sessions` is the sources (as tsconfig.json's `paths` say for
    // tsc, tsx and TypeDoc); the package's `exports` point at the build in dist/, for its users.
    alias: [
      { find: /^effect-sessions$/, replacement: `${src}index.ts` },
      { find: /^effect-sessions\/(?!package\.json$)(.+)$/, replacement: `${src}$1.ts` }
    ]
  },
  test: {
    include: ["spec/**/*.test.ts", "examples/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Store-backed suites share one PostgreSQL and one Redis; files run in parallel, tests in a file in order.
    fileParallelism: true,
    reporters: ["default"],
    // `npm run coverage`, or `npm test` with SESSIONS_COVERAGE=1 (as CI runs it, with
    // SESSIONS_REQUIRE_SERVICES=1, so that the PostgreSQL, Redis and browser suites count): lines
    // and branches of src/ outside the live layers, with thresholds that fail the run.
    coverage: {
      enabled: process.env.SESSIONS_COVERAGE === "1",
      provider: "v8",
      include: ["src/**/*.ts"],
      exclude: [
        // The live layers: the OS's randomness, not reachable with a seeded SecureRandom.
        "src/internal/live/**",
        // Barrel only: `export * as X` lines, no logic.
        "src/index.ts"
      ],
      reporter: ["text-summary", "text", "json-summary"],
      // The figures even when a test fails (CI fails on the test all the same).
      reportOnFailure: true,
      thresholds: { lines: 95, branches: 95 }
    }
  }
})
