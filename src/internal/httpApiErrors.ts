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
