// Lint: typescript-eslint's recommended rules, plus the project rule that time and randomness
// in src/ come from services (Clock, SecureRandom), never from the platform directly.
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

export default tseslint.config(
  { ignores: ["node_modules/**", "docs/**", "bench/results/**", "dist/**", "coverage/**", "test-results/**"] },
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
  }
)
