/**
 * The Redis store's key layout, the same on a single server and on a cluster. With a
 * prefix `p` (default `sess:`):
 *
 * - `${p}{${tag}}:t:${tokenKey}`: a token record — `c:${sessionKey}` for a current token, the
 *   Codec JSON of the Redirect for a rotated-away one;
 * - `${p}{${tag}}:s:${sessionKey}`: the session, a hash (`v` version, `t` current token key, `u`
 *   user — `""` or `"+" + userId` —, `r` the Codec JSON, `e` the deadline in epoch ms);
 * - `${p}{u:${userKey}}`: the user index, a sorted set of session keys scored by an upper bound
 *   of each session's deadline (a session key starts with its routing tag, so a member names the
 *   session's slot as a `tag:sessionKey` member would); `${p}{u:${userKey}}:limit`: the lease that serialises the
 *   limited log-ins of the user (`maxSessionsPerUser`);
 * - `${p}revocation`: the `logOutEveryone` instant, a sorted set of one member (`until`) so that
 *   `ZADD … GT` only ever raises it; a key of its own slot, touched by single-key commands only;
 * - `${p}invalidate`: the invalidation channel (not a key) of a single server, and of a cluster
 *   without sharded pub/sub; on a cluster with it (Redis 7), `${p}inv{${t}}`, one channel per
 *   hash slot (`shardChannels.ts`).
 *
 * `tag` is the session's routing tag — the first characters of its key and of every token key it
 * has — so a session's records share one hash slot, and `userKey` is `Persistence.userKey` (a
 * SHA-256 of the user ID), so a user's index and lease share another. Redis hashes only what is
 * between the first `{` and the next `}`: whatever the prefix holds, it must not contain a `{`.
 *
 * @internal
 */
import { userKey } from "../persistence.js"
import { routingTagOf } from "../routingTag.js"

/** @internal */
export interface Keys {
  readonly token: (tokenKey: string) => string
  readonly session: (sessionKey: string) => string
  readonly user: (userId: string) => string
  /** The user index of a `Persistence.userKey`. */
  readonly userByKey: (userKey: string) => string
  readonly lease: (userId: string) => string
  readonly revocation: string
  readonly channel: string
}

/** @internal */
export const makeKeys = (prefix: string): Keys => {
  const userByKey = (key: string) => `${prefix}{u:${key}}`
  const user = (userId: string) => userByKey(userKey(userId))
  return {
    token: (tokenKey) => `${prefix}{${routingTagOf(tokenKey)}}:t:${tokenKey}`,
    session: (sessionKey) => `${prefix}{${routingTagOf(sessionKey)}}:s:${sessionKey}`,
    user,
    userByKey,
    lease: (userId) => `${user(userId)}:limit`,
    revocation: `${prefix}revocation`,
    channel: `${prefix}invalidate`
  }
}
