/**
 * Password strength checks after NIST SP 800-63B-4 §3.1.1.2 (password verifiers): length
 * limits counted in code points after NFKC normalisation, and a blocklist of common,
 * expected and context-specific passwords. Every problem is reported, not just the first.
 *
 * The breached-password range check against Pwned Passwords lives in `PwnedPasswords`.
 *
 * @since 0.1.0
 * @module
 */
import { Data, Effect, Either, Redacted } from "effect"
import * as lists from "./internal/password/lists.js"
import * as rules from "./internal/password/rules.js"

// ---------------------------------------------------------------------------
// constants
// ---------------------------------------------------------------------------

/**
 * Default minimum length (code points) when the password is the only authentication factor
 * (800-63B-4 §3.1.1.2: "SHALL require passwords used as a single-factor authentication
 * mechanism to be a minimum of 15 characters").
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MIN_LENGTH = 15

/**
 * Default minimum length (code points) when the password is one factor of several
 * (`usedWithMfa: true`; 800-63B-4 §3.1.1.2: "SHALL require them to be at least 8
 * characters"). It is also the lowest `minLength` accepted.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MIN_LENGTH_WITH_MFA = 8

/**
 * Default maximum length (code points). Long enough for any passphrase, short enough that a
 * password cannot be used to make the hashing expensive.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_MAX_LENGTH = 256

/**
 * The lowest `maxLength` accepted (800-63B-4 §3.1.1.2: "SHOULD permit a maximum password
 * length of at least 64 characters").
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_LENGTH_FLOOR = 64

/**
 * Shortest run (code points, after removing a trailing decoration) reported as `Sequential`:
 * `abcd`, `4321`, `qwer`, `Asdf1!` are sequential; `abc1` is not.
 *
 * @since 0.1.0
 * @category constants
 */
export const SEQUENCE_MIN_LENGTH: number = rules.SEQUENCE_MIN_LENGTH

/**
 * Longest trailing run of digits, punctuation and symbols that the dictionary, repetition and
 * sequence rules look past (`Password1!`, `qwerty2024`).
 *
 * @since 0.1.0
 * @category constants
 */
export const TRAILING_RUN_MAX: number = rules.TRAILING_RUN_MAX

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * One reason a password is refused.
 *
 * - `TooShort` — fewer code points than `min` (after NFKC).
 * - `TooLong` — more code points than `max` (the password is never truncated).
 * - `ContextWord` — contains a context-specific word (user name, name, email, service name);
 *   `word` is the folded context word.
 * - `Compromised` — is on the common-password list (breach corpora), case-insensitively.
 * - `DictionaryWord` — is an English word or name, possibly followed by up to 4 digits or
 *   symbols; `word` is the dictionary entry.
 * - `Repetitive` — one block of 1–4 characters repeated (`aaaa`, `abcabcabc`, `121212`).
 * - `Sequential` — a run of the alphabet, the digits or a keyboard row, forwards or backwards.
 *
 * @since 0.1.0
 * @category models
 */
export type PasswordProblem = Data.TaggedEnum<{
  TooShort: { readonly min: number; readonly length: number }
  TooLong: { readonly max: number; readonly length: number }
  ContextWord: { readonly word: string }
  Compromised: {}
  DictionaryWord: { readonly word: string }
  Repetitive: {}
  Sequential: {}
}>

/**
 * Constructors, `$is` guards and `$match` for {@link PasswordProblem}.
 *
 * @example
 * ```ts
 * import { Password } from "effect-sessions"
 *
 * const message = Password.PasswordProblem.$match({
 *   TooShort: ({ min }) => `Use at least ${min} characters.`,
 *   TooLong: ({ max }) => `Use at most ${max} characters.`,
 *   ContextWord: () => "Do not use your name, email or this site's name.",
 *   Compromised: () => "This password is too common.",
 *   DictionaryWord: () => "A single word is easy to guess; try a phrase.",
 *   Repetitive: () => "Avoid repeated characters.",
 *   Sequential: () => "Avoid sequences such as 1234 or qwerty."
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const PasswordProblem = Data.taggedEnum<PasswordProblem>()

/**
 * The verdict on one password: `ok` is true exactly when `problems` is empty. `length` is the
 * number of code points of the NFKC form.
 *
 * @since 0.1.0
 * @category models
 */
export interface PasswordCheck {
  readonly ok: boolean
  readonly problems: ReadonlyArray<PasswordProblem>
  readonly length: number
}

/**
 * What the application knows about the account. All values are compared after NFKC and
 * lower-casing. Each value counts whole and split into pieces on spaces and punctuation
 * (`"Jane Doe"` → `jane doe`, `jane`, `doe`); the email counts whole, by its local part and
 * by the local part's pieces (`jane.doe@example.com` → `jane.doe`, `jane`, `doe`).
 * A word of at least 4 code points is refused anywhere inside the password; a shorter one
 * only as the whole password.
 *
 * @since 0.1.0
 * @category models
 */
export interface PasswordContext {
  readonly userName?: string | undefined
  readonly email?: string | undefined
  /** the person's names (given, family, display name …) */
  readonly names?: ReadonlyArray<string> | undefined
  /** the name of the service or site */
  readonly serviceName?: string | undefined
  /** any other context-specific words (company, product, city …) */
  readonly words?: ReadonlyArray<string> | undefined
}

/**
 * Options of {@link checkPassword}.
 *
 * | option | default | rule |
 * |---|---|---|
 * | `usedWithMfa` | `false` | selects the default `minLength` |
 * | `minLength` | 15, or 8 with `usedWithMfa` | integer, `8 ≤ minLength ≤ maxLength` |
 * | `maxLength` | 256 | integer, `≥ 64` |
 * | `context` | none | see {@link PasswordContext} |
 *
 * Invalid options are a programming error: {@link makePolicy} and {@link check} report them
 * as {@link InvalidPasswordOptions}, {@link checkPassword} throws it.
 *
 * @since 0.1.0
 * @category models
 */
export interface PasswordOptions {
  readonly usedWithMfa?: boolean | undefined
  readonly minLength?: number | undefined
  readonly maxLength?: number | undefined
  readonly context?: PasswordContext | undefined
}

/**
 * Validated length limits.
 *
 * @since 0.1.0
 * @category models
 */
export interface PasswordPolicy {
  readonly minLength: number
  readonly maxLength: number
  readonly usedWithMfa: boolean
}

/**
 * A password as plain text or wrapped in `Redacted`.
 *
 * @since 0.1.0
 * @category models
 */
export type PasswordInput = string | Redacted.Redacted<string>

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/**
 * The options passed to the checker are out of range.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPasswordOptions extends Data.TaggedError("InvalidPasswordOptions")<{
  readonly option: "minLength" | "maxLength"
  readonly value: number
  readonly message: string
}> {}

/**
 * A password was refused; `problems` lists every reason (never the password itself).
 *
 * @since 0.1.0
 * @category errors
 */
export class WeakPassword extends Data.TaggedError("WeakPassword")<{
  readonly problems: ReadonlyArray<PasswordProblem>
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `password refused: ${this.problems.map((p) => p._tag).join(", ")}`
  }
}

// ---------------------------------------------------------------------------
// constructors
// ---------------------------------------------------------------------------

/**
 * Validates the length options and fills in the defaults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makePolicy = (options?: PasswordOptions): Either.Either<PasswordPolicy, InvalidPasswordOptions> => {
  const usedWithMfa = options?.usedWithMfa ?? false
  const maxLength = options?.maxLength ?? DEFAULT_MAX_LENGTH
  if (!Number.isSafeInteger(maxLength) || maxLength < MAX_LENGTH_FLOOR) {
    return Either.left(
      new InvalidPasswordOptions({
        option: "maxLength",
        value: maxLength,
        message: `maxLength must be an integer of at least ${MAX_LENGTH_FLOOR}, got ${maxLength}`
      })
    )
  }
  const minLength = options?.minLength ?? (usedWithMfa ? DEFAULT_MIN_LENGTH_WITH_MFA : DEFAULT_MIN_LENGTH)
  if (!Number.isSafeInteger(minLength) || minLength < DEFAULT_MIN_LENGTH_WITH_MFA || minLength > maxLength) {
    return Either.left(
      new InvalidPasswordOptions({
        option: "minLength",
        value: minLength,
        message:
          `minLength must be an integer between ${DEFAULT_MIN_LENGTH_WITH_MFA} and maxLength (${maxLength}), got ${minLength}`
      })
    )
  }
  return Either.right({ minLength, maxLength, usedWithMfa })
}

// ---------------------------------------------------------------------------
// checks
// ---------------------------------------------------------------------------

const reveal = (password: PasswordInput): string =>
  typeof password === "string" ? password : Redacted.value(password)

const run = (password: string, policy: PasswordPolicy, context: PasswordContext | undefined): PasswordCheck => {
  const p = rules.prepare(password)
  const problems: Array<PasswordProblem> = []
  if (p.length < policy.minLength) {
    problems.push(PasswordProblem.TooShort({ min: policy.minLength, length: p.length }))
  }
  if (p.length > policy.maxLength) {
    problems.push(PasswordProblem.TooLong({ max: policy.maxLength, length: p.length }))
  }
  if (context !== undefined) {
    for (const word of rules.findContextWords(p, rules.contextWords(context))) {
      problems.push(PasswordProblem.ContextWord({ word }))
    }
  }
  if (rules.isCommon(p.folded)) problems.push(PasswordProblem.Compromised())
  const word = rules.findDictionaryWord(p)
  if (word !== undefined) problems.push(PasswordProblem.DictionaryWord({ word }))
  if (rules.isRepetitive(p)) problems.push(PasswordProblem.Repetitive())
  if (rules.isSequential(p)) problems.push(PasswordProblem.Sequential())
  return { ok: problems.length === 0, problems, length: p.length }
}

/**
 * Checks a password against every rule and returns all problems found. Synchronous; the
 * word lists are loaded on the first call (about 100 ms, once per process) — call
 * {@link preload} at startup to move that cost out of the first request.
 *
 * The password is normalised with NFKC before every rule, its length is counted in code
 * points, and it is never truncated.
 *
 * Throws {@link InvalidPasswordOptions} only when `options` are out of range (see
 * {@link PasswordOptions}); use {@link check} for an Effect that fails instead.
 *
 * @example
 * ```ts
 * import { Password } from "effect-sessions"
 *
 * const verdict = Password.checkPassword("Tr0ub4dor&3", { context: { userName: "jane" } })
 * verdict.ok // false
 * verdict.problems // [TooShort { min: 15, length: 11 }]
 * ```
 *
 * @since 0.1.0
 * @category checks
 */
export const checkPassword = (password: PasswordInput, options?: PasswordOptions): PasswordCheck => {
  const policy = makePolicy(options)
  if (Either.isLeft(policy)) throw policy.left
  return run(reveal(password), policy.right, options?.context)
}

/**
 * {@link checkPassword} as an Effect: invalid options fail with
 * {@link InvalidPasswordOptions}; a weak password is a successful `PasswordCheck` with
 * `ok: false`.
 *
 * @since 0.1.0
 * @category checks
 */
export const check = (
  password: PasswordInput,
  options?: PasswordOptions
): Effect.Effect<PasswordCheck, InvalidPasswordOptions> =>
  Effect.flatMap(
    makePolicy(options),
    (policy) => Effect.sync(() => run(reveal(password), policy, options?.context))
  )

/**
 * Succeeds when the password passes every rule, fails with {@link WeakPassword} (all the
 * problems) otherwise.
 *
 * @since 0.1.0
 * @category checks
 */
export const validate = (
  password: PasswordInput,
  options?: PasswordOptions
): Effect.Effect<void, WeakPassword | InvalidPasswordOptions> =>
  Effect.flatMap(
    check(password, options),
    (verdict) => verdict.ok ? Effect.void : Effect.fail(new WeakPassword({ problems: verdict.problems }))
  )

/**
 * Whether the password (after NFKC, case-insensitively) is on the common-password list of
 * `@zxcvbn-ts/language-common`. Exact match only.
 *
 * @since 0.1.0
 * @category checks
 */
export const isCompromised = (password: PasswordInput): boolean =>
  rules.isCommon(rules.prepare(reveal(password)).folded)

/**
 * The NFKC form of a password. Hash this form when storing and verifying, so that a
 * password typed on another keyboard or OS still matches (800-63B-4 §3.1.1.2).
 *
 * @since 0.1.0
 * @category utils
 */
export const normalize = (password: string): string => password.normalize("NFKC")

/**
 * Loads the word lists now instead of on the first check (idempotent).
 *
 * @since 0.1.0
 * @category utils
 */
export const preload: Effect.Effect<void> = Effect.sync(lists.loadAll)
