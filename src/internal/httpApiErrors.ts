/**
 * The HttpApi error for a write above `maxDataBytes` (413): HttpApiError has none.
 *
 * @internal
 */
import { HttpApiSchema } from "@effect/platform"

/** @internal */
export class SessionDataTooLarge extends HttpApiSchema.EmptyError<SessionDataTooLarge>()({
  tag: "SessionDataTooLarge",
  status: 413
}) {}
