// Lint: typescript-eslint's recommended rules, plus the project rule that time and randomness
// in src/ come from services (Clock, SecureRandom), never from the platform directly, and that
// tests never compare with chai's deep equality.
import js from "@eslint/js"
import tseslint from "typescript-eslint"

const noAmbientTimeOrRandomness = {
  "no-restricted-properties": [
    "error",
    { object: "Date", property: "now", message: "Read time from Effect's Clock." },
    { object: "Math", property: "random", message: "Use the SecureRandom service." },
    { object: "crypto", property: "getRandomValues", message: "Use the SecureRandom service." },
    { object: "crypto", property: "randomUUID", message: "Use the SecureRandom service." }
  ],
  "no-restricted-syntax": [
    "error",
    { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: "Read time from Effect's Clock." }
  ],
  "no-restricted-imports": [
    "error",
    {
      paths: [
        { name: "node:crypto", importNames: ["randomBytes", "randomFillSync", "randomFill", "randomInt", "randomUUID", "getRandomValues", "webcrypto"], message: "Randomness comes from the SecureRandom service." },
        { name: "crypto", message: "Import node:crypto, and only for deterministic hashing (src/internal/hash.ts)." }
      ]
    }
  ]
}

const chaiDeepEqualityMessage =
  "chai's deep equality holds Option.none() equal to Option.some(x). Use deepStrictEqual / notDeepStrictEqual / assertSome / assertNone / assertRight / assertLeft from @effect/vitest/utils, or expect(a).toStrictEqual(b)."
const noChaiDeepEquality = ["deepStrictEqual", "deepEqual", "notDeepStrictEqual", "notDeepEqual"].map((property) => ({
  object: "assert",
  property,
  message: chaiDeepEqualityMessage
}))

export default tseslint.config(
  { ignores: ["node_modules/**", "reports/**", ".stryker-tmp/**", "docs/**", "bench/results/**", "dist/**", "coverage/**", "test-results/**", ".bench-build/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      "@typescript-eslint/no-namespace": "off"
    }
  },
  {
    // The package check's fixtures: plain-node apps a user would write.
    files: ["scripts/**/*.mjs"],
    languageOptions: { globals: { console: "readonly", process: "readonly" } }
  },
  {
    files: ["src/**/*.ts"],
    ignores: ["src/**/*Live*.ts", "src/internal/live/**"],
    rules: noAmbientTimeOrRandomness
  },
  {
    // chai compares iterables by their iterator: it holds Option.none() equal to Option.some(x)
    // (and Eithers, Exits, records holding them alike). spec/assertions.test.ts shows it.
    files: ["spec/**/*.ts", "examples/**/*.ts"],
    rules: { "no-restricted-properties": ["error", ...noChaiDeepEquality] }
  }
)
