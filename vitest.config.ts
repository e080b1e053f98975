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
    reporters: ["default"]
  }
})
