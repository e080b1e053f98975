/**
 * Breached-password check against the Pwned Passwords k-anonymity range API
 * (NIST SP 800-63B-4 §3.1.1.2: compare new passwords against "passwords obtained from
 * previous breach corpuses").
 *
 * Only the first 5 hex characters of the password's SHA-1 leave the process
 * (`GET {baseUrl}/range/{prefix}` with `Add-Padding: true`); the suffix is compared locally.
 * Requires `HttpClient.HttpClient` from `@effect/platform` (e.g. `NodeHttpClient.layerUndici`
 * or `FetchHttpClient.layer`).
 *
 * @since 0.1.0
 * @module
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Data, Duration, Effect, Redacted } from "effect"
import { parseRange, sha1Range } from "./internal/password/pwned.js"

/**
 * The public Pwned Passwords API.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_BASE_URL = "https://api.pwnedpasswords.com"

/**
 * Default time allowed for one range request.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_TIMEOUT: Duration.Duration = Duration.seconds(5)

/**
 * What to do when the service cannot answer (network failure, timeout, non-2xx status,
 * a body that is not a range response):
 *
 * - `"fail"` (default) — fail with {@link PwnedPasswordsError}; the caller decides.
 * - `"allow"` — fail open: succeed with `Unavailable { rejected: false }`, so
 *   {@link isRejected} is false and the password is accepted.
 * - `"reject"` — fail closed: succeed with `Unavailable { rejected: true }`, so
 *   {@link isRejected} is true and the user is asked for another password.
 *
 * @since 0.1.0
 * @category models
 */
export type OnError = "fail" | "allow" | "reject"

/**
 * Options of {@link check}, {@link count} and {@link range}.
 *
 * | option | default |
 * |---|---|
 * | `baseUrl` | `https://api.pwnedpasswords.com` (no trailing slash needed) |
 * | `onError` | `"fail"` |
 * | `timeout` | 5 seconds (measured on Effect's `Clock`) |
 *
 * @since 0.1.0
 * @category models
 */
export interface PwnedPasswordsOptions {
  readonly baseUrl?: string | undefined
  readonly onError?: OnError | undefined
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * The service could not be asked or did not answer properly.
 *
 * - `Transport` — connection refused, DNS, TLS, reset …
 * - `Timeout` — no answer within `timeout`.
 * - `StatusCode` — a non-2xx status (`status` is set).
 * - `InvalidResponse` — the body could not be read or is not a range response.
 *
 * Neither the password nor its hash appears in the error.
 *
 * @since 0.1.0
 * @category errors
 */
export class PwnedPasswordsError extends Data.TaggedError("PwnedPasswordsError")<{
  readonly reason: "Transport" | "Timeout" | "StatusCode" | "InvalidResponse"
  readonly status?: number | undefined
  readonly cause?: unknown
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.status === undefined
      ? `Pwned Passwords range request failed: ${this.reason}`
      : `Pwned Passwords range request failed: ${this.reason} ${this.status}`
  }
}

/**
 * The outcome of {@link check}:
 *
 * - `Breached` — the password appears `count` (> 0) times in the breach corpus.
 * - `NotFound` — it does not appear.
 * - `Unavailable` — the service could not answer and `onError` was `"allow"`
 *   (`rejected: false`) or `"reject"` (`rejected: true`).
 *
 * @since 0.1.0
 * @category models
 */
export type PwnedCheck = Data.TaggedEnum<{
  Breached: { readonly count: number }
  NotFound: {}
  Unavailable: { readonly error: PwnedPasswordsError; readonly rejected: boolean }
}>

/**
 * Constructors, `$is` and `$match` for {@link PwnedCheck}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const PwnedCheck = Data.taggedEnum<PwnedCheck>()

/**
 * Whether the password must be refused: breached, or unavailable under `onError: "reject"`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isRejected = (result: PwnedCheck): boolean =>
  result._tag === "Breached" || (result._tag === "Unavailable" && result.rejected)

const reveal = (password: string | Redacted.Redacted<string>): string =>
  typeof password === "string" ? password : Redacted.value(password)

const rangeUrl = (baseUrl: string, prefix: string): string => `${baseUrl.replace(/\/+$/, "")}/range/${prefix}`

/**
 * Fetches one range: the suffixes (upper-case, 35 hex characters) under a 5-hex-character
 * prefix and their counts, padding entries (count 0) removed. The prefix is validated and
 * upper-cased; an invalid prefix dies (it is a programming error).
 *
 * @since 0.1.0
 * @category requests
 */
export const range = (
  prefix: string,
  options?: Omit<PwnedPasswordsOptions, "onError">
): Effect.Effect<ReadonlyMap<string, number>, PwnedPasswordsError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    if (!/^[0-9A-Fa-f]{5}$/.test(prefix)) {
      return yield* Effect.dieMessage("PwnedPasswords.range: the prefix must be 5 hex characters")
    }
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.withTracerPropagation(false))
    const request = HttpClientRequest.get(rangeUrl(options?.baseUrl ?? DEFAULT_BASE_URL, prefix.toUpperCase())).pipe(
      HttpClientRequest.setHeaders({
        "add-padding": "true",
        "user-agent": "effect-sessions"
      })
    )
    const response = yield* client.execute(request).pipe(
      Effect.mapError((cause) => new PwnedPasswordsError({ reason: "Transport", cause }))
    )
    if (response.status < 200 || response.status >= 300) {
      return yield* new PwnedPasswordsError({ reason: "StatusCode", status: response.status })
    }
    const body = yield* response.text.pipe(
      Effect.mapError((cause) => new PwnedPasswordsError({ reason: "InvalidResponse", status: response.status, cause }))
    )
    const entries = parseRange(body)
    if (entries === undefined) {
      return yield* new PwnedPasswordsError({ reason: "InvalidResponse", status: response.status })
    }
    return entries
  }).pipe(
    Effect.timeoutFail({
      duration: options?.timeout ?? DEFAULT_TIMEOUT,
      onTimeout: () => new PwnedPasswordsError({ reason: "Timeout" })
    })
  )

/**
 * How many times the password appears in the breach corpus (0 when it does not). The
 * password is hashed as given (UTF-8); pass the form you store, e.g. `Password.normalize`.
 *
 * @since 0.1.0
 * @category requests
 */
export const count = (
  password: string | Redacted.Redacted<string>,
  options?: Omit<PwnedPasswordsOptions, "onError">
): Effect.Effect<number, PwnedPasswordsError, HttpClient.HttpClient> =>
  Effect.suspend(() => {
    const { prefix, suffix } = sha1Range(reveal(password))
    return Effect.map(range(prefix, options), (entries) => entries.get(suffix) ?? 0)
  })

/**
 * Checks a password against the breach corpus. With `onError: "fail"` (the default) a
 * failure of the service is a {@link PwnedPasswordsError}; with `"allow"` or `"reject"` it
 * becomes an `Unavailable` result and the error channel is `never`. Use {@link isRejected}
 * for the decision.
 *
 * @example
 * ```ts
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { PwnedPasswords } from "effect-sessions"
 *
 * const refuse = PwnedPasswords.check("correct horse battery staple", { onError: "allow" }).pipe(
 *   Effect.map(PwnedPasswords.isRejected),
 *   Effect.provide(NodeHttpClient.layerUndici)
 * )
 * ```
 *
 * @since 0.1.0
 * @category requests
 */
export function check(
  password: string | Redacted.Redacted<string>,
  options: PwnedPasswordsOptions & { readonly onError: "allow" | "reject" }
): Effect.Effect<PwnedCheck, never, HttpClient.HttpClient>
export function check(
  password: string | Redacted.Redacted<string>,
  options?: PwnedPasswordsOptions
): Effect.Effect<PwnedCheck, PwnedPasswordsError, HttpClient.HttpClient>
export function check(
  password: string | Redacted.Redacted<string>,
  options?: PwnedPasswordsOptions
): Effect.Effect<PwnedCheck, PwnedPasswordsError, HttpClient.HttpClient> {
  const result = Effect.map(
    count(password, options),
    (n): PwnedCheck => n > 0 ? PwnedCheck.Breached({ count: n }) : PwnedCheck.NotFound()
  )
  const onError = options?.onError ?? "fail"
  if (onError === "fail") return result
  return Effect.catchAll(
    result,
    (error) => Effect.succeed(PwnedCheck.Unavailable({ error, rejected: onError === "reject" }))
  )
}
