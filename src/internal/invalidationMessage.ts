/**
 * The text of an invalidation message, shared by the Redis and PostgreSQL channels:
 * `<originId>:<tokenKey>` for a changed token, `<originId>:!u:<userKey>` for a refreshed user,
 * `<originId>:!a` for everything (the revocation instant moved: `revokeUntil`). Token keys are
 * base64url (a SHA-256, or the token itself), so none starts with `!`.
 *
 * @internal
 */
import { Invalidation } from "./persistence.js"

const USER_MARK = "!u:"
const ALL_MARK = "!a"

/** The message that announces a user invalidation. @internal */
export const userMessage = (originId: string, userKey: string): string => `${originId}:${USER_MARK}${userKey}`

/** The message that tells every other process to drop its caches and read the revocation instant again. @internal */
export const allMessage = (originId: string): string => `${originId}:${ALL_MARK}`

/** An invalidation message without its origin (what follows the first `:`). @internal */
export const parseInvalidation = (body: string): Invalidation =>
  body === ALL_MARK
    ? Invalidation.All()
    : body.startsWith(USER_MARK)
    ? Invalidation.User({ userKey: body.slice(USER_MARK.length) })
    : Invalidation.Token({ tokenKey: body })
