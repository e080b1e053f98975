/**
 * The HttpApi error for a write above `maxDataBytes` (413): HttpApiError has none.
 *
 * @internal
 */
import { HttpApiSchema } from "@effect/platform"

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
