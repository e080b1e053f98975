// Password checks after NIST SP 800-63B-4 (docs/passwords.md): every problem at once, and the
// Pwned Passwords range check (defined here, not called: it needs the network).
// Run: npx tsx examples/passwords.ts
import { NodeHttpClient } from "@effect/platform-node"
import { Effect } from "effect"
import { Password, PwnedPasswords } from "effect-sessions"

const verdict = Password.checkPassword("Password24!", {
  context: { userName: "jane", email: "jane.doe@example.com", serviceName: "Acme" }
})
console.log(verdict.ok) // false
console.log(verdict.problems) // [TooShort { min: 15, length: 11 }, DictionaryWord { word: "password" }]

const newPassword = "correct-horse-battery-staple-42"
const context = { userName: "jane", email: "jane.doe@example.com", serviceName: "Acme" }

// The same as an Effect: fails with WeakPassword (all problems) or InvalidPasswordOptions
const program = Password.validate(newPassword, { usedWithMfa: true, context })

const isBreached = (password: string) =>
  PwnedPasswords.check(password, { onError: "allow" }).pipe(
    Effect.map(PwnedPasswords.isRejected),
    Effect.provide(NodeHttpClient.layerUndici) // or FetchHttpClient.layer
  )

export { isBreached }

// ---- what the comments above claim
const tags = verdict.problems.map((p) => p._tag).join(", ")
if (verdict.ok || tags !== "TooShort, DictionaryWord") {
  console.error(`unexpected verdict: ${tags}`)
  process.exit(1)
}
Effect.runPromise(program).then(
  () => console.log(`"${newPassword}" passes`),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
