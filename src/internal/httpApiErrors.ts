/**
 * The HttpApi errors HttpApiError has no equivalent for: a write above `maxDataBytes` (413) and
 * a log-in that is not recent enough (403, with a typed body).
 *
 * @internal
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/**
 * The HttpApi error for a write above `maxDataBytes` (413); public as `Http.SessionDataTooLarge`.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export class SessionDataTooLarge extends HttpApiSchema.EmptyError<SessionDataTooLarge>()({
  tag: "SessionDataTooLarge",
  status: 413
}) {}

/**
 * The request needs a recent log-in (OWASP ASVS 7.5.1, 7.5.2): nobody is logged in, or the user
 * last authenticated `maxAgeMillis` or more ago. An HttpApi error with status 403 whose JSON body
 * is `{ "_tag": "RecentLoginRequired", "maxAgeMillis": 300000, "authenticatedAt": 1767225600000 }`
 * (`authenticatedAt`, epoch milliseconds, absent when nobody is logged in or the time is
 * unknown): the client asks the user to re-enter their password and retries. Public as
 * `Http.RecentLoginRequired`; failed by `CurrentSession.requireRecentLogin` and by
 * `Http.RequireRecentLogin`.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export class RecentLoginRequired extends Schema.TaggedError<RecentLoginRequired>()(
  "RecentLoginRequired",
  {
    /** The gate's maximum age of the log-in, in milliseconds. */
    maxAgeMillis: Schema.Number,
    /** When the user last authenticated (epoch milliseconds); absent without a known log-in. */
    authenticatedAt: Schema.optional(Schema.Number)
  },
  HttpApiSchema.annotations({
    status: 403,
    description: "The log-in is older than the endpoint allows (or there is none): re-authenticate and retry."
  })
) {}

/**
 * The HttpApi error for a log-in refused by `maxSessionsPerUser` with `onSessionLimit: "refuse"`
 * (409 Conflict: the user's other sessions are in the way); public as `Http.SessionLimitReached`.
 *
 * @since 0.1.0
 * @category HttpApi
 */
export class SessionLimitReached extends HttpApiSchema.EmptyError<SessionLimitReached>()({
  tag: "SessionLimitReached",
  status: 409
}) {}
