/**
 * The routing tag of a session: a few public base62 characters drawn at the session's
 * birth, at the front of its internal key and of every token (and token key) it ever has, so that
 * a store can put all of a session's records in one place (one Redis Cluster slot) from any of
 * them. Defined here, apart from `Ids`, so that `hash.ts` can keep it in front of a hashed token.
 *
 * @internal
 */

/** The length of a routing tag in characters (62^4 ≈ 14.8 million tags). @internal */
export const ROUTING_TAG_LENGTH = 4

/** The routing tag of a session key, token or token key: its first characters. @internal */
export const routingTagOf = (key: string): string => key.slice(0, ROUTING_TAG_LENGTH)
