import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["spec/**/*.test.ts", "examples/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Store-backed suites share one PostgreSQL and one Redis; files run in parallel, tests in a file in order.
    fileParallelism: true,
    reporters: ["default"]
  }
})
