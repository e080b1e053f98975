/**
 * The Lua scripts of the Redis store and the arguments they take (key layout: `keys.ts`). Every
 * key a script touches is declared in `KEYS`, and all of a script's keys are in one hash slot — a
 * session's records share its routing tag — so that the scripts run on Redis Cluster as on a
 * single server. A step that concerns a session and its user's index (two slots) is two scripts,
 * ordered by the store (`store.ts`): the index first.
 *
 * A script that publishes gets the publish command in `ARGV[1]` (see {@link Publish}), the
 * channel in `ARGV[2]` and this process's origin in `ARGV[3]`; a write gets its record as one
 * JSON argument after those, decoded with `cjson` (see {@link SessionWrite}). Scripts publish
 * `${originId}:${tokenKey}` for every token key they change, in the same script as the write, so
 * the message leaves atomically with it: on a single server (or a cluster without sharded pub/sub)
 * with classic `PUBLISH` on the store's one channel; on a cluster of Redis 7 with `SPUBLISH` on the
 * channel of the script's own slot (`shardChannels.ts`), which Redis requires of a script's
 * `SPUBLISH` and which keeps the message on the shard that owns the slot.
 *
 * The compare-and-set of `save` and `rotate` compares the version and the current token, so only
 * one rotation of a token wins.
 *
 * This module does not load ioredis.
 *
 * @internal
 */
import { Option } from "effect"
import * as Codec from "../../Codec.js"
import type { Rotation } from "../persistence.js"
import type { Session } from "../../Session.js"

const LIB = `
local function notify(token)
  redis.call(ARGV[1], ARGV[2], ARGV[3] .. ':' .. token)
end
-- Writes a session (w: key, token, version, user, record, px, e) and its current token record;
-- a deadline already past deletes both instead.
local function write(skey, tkey, w)
  local px = tonumber(w.px)
  if px <= 0 then
    redis.call('DEL', skey)
    if redis.pcall('GET', tkey) == 'c:' .. w.key then redis.call('DEL', tkey) end
    return
  end
  redis.call('HSET', skey, 'v', w.version, 't', w.token, 'u', w.user, 'r', w.record, 'e', w.e)
  redis.call('PEXPIRE', skey, px)
  redis.call('SET', tkey, 'c:' .. w.key, 'PX', px)
end
`

/**
 * KEYS: t:token, s:session (the one the token named). ARGV: what the token held (`c:` + key).
 * → {0} the token changed meanwhile (read it again) | {1, record | false} | {2} a key of the
 * wrong type.
 */
const LOAD_CURRENT = `
local t = redis.pcall('GET', KEYS[1])
if type(t) == 'table' then return {2} end
if t ~= ARGV[1] then return {0} end
local r = redis.pcall('HGET', KEYS[2], 'r')
if type(r) == 'table' then return {2} end
return {1, r}
`

/** KEYS: s:session, t:token. ARGV: JSON of a SessionWrite. */
const CREATE = LIB + `
local w = cjson.decode(ARGV[1])
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
write(KEYS[1], KEYS[2], w)
return 1
`

/** KEYS: s:session, t:its current token. ARGV: publish, channel, origin, JSON of a SaveArgs. → 1 won | 0 lost */
const SAVE = LIB + `
local w = cjson.decode(ARGV[4])
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'v', 't')
if cur[1] ~= w.expectedVersion or cur[2] ~= w.token then return 0 end
write(KEYS[1], KEYS[2], w)
notify(w.token)
return 1
`

/**
 * KEYS: s:session, t:new token, t:old token. ARGV: publish, channel, origin, JSON of a
 * RotateArgs. → 1 won | 0 lost
 */
const ROTATE = LIB + `
local w = cjson.decode(ARGV[4])
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'v', 't')
if cur[1] ~= w.expectedVersion or cur[2] ~= w.oldToken then return 0 end
if tonumber(w.redirectPx) > 0 then redis.call('SET', KEYS[3], w.redirect, 'PX', w.redirectPx) else redis.call('DEL', KEYS[3]) end
write(KEYS[1], KEYS[2], w)
notify(w.oldToken)
notify(w.token)
return 1
`

/**
 * KEYS: s:session, t:its current token as last read. ARGV: publish, channel, origin, session
 * key, that token key (`""`: none). Deletes the session and its current token record.
 * → {0} the current token changed meanwhile (read it again) | {1, user field or ''}
 */
const REMOVE = LIB + `
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then return {1, ''} end
if kind ~= 'hash' then
  redis.call('DEL', KEYS[1])
  return {1, ''}
end
local cur = redis.call('HMGET', KEYS[1], 't', 'u')
if (cur[1] or '') ~= ARGV[5] then return {0} end
redis.call('DEL', KEYS[1])
if cur[1] then
  if redis.pcall('GET', KEYS[2]) == 'c:' .. ARGV[4] then redis.call('DEL', KEYS[2]) end
  notify(cur[1])
end
return {1, cur[2] or ''}
`

/** KEYS: t:token. ARGV: publish, channel, origin, token key. Deletes whatever the key holds. */
const DELETE_TOKEN = LIB + `
redis.call('DEL', KEYS[1])
notify(ARGV[4])
return 1
`

/**
 * KEYS: u:user. ARGV: session key, score (its deadline, epoch ms), milliseconds to keep the index.
 * Adds the session to the user's index, or raises its score (`GT`: the score stays an upper bound
 * of the deadline whatever order concurrent writers come in). Refuses a key of another type
 * before writing anything.
 */
const INDEX = `
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'zset' and kind ~= 'none' then
  return redis.error_reply('WRONGTYPE a user index key holds the wrong kind of value; nothing was written')
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
`

/**
 * KEYS: u:user. ARGV: cutoff (epoch ms). Drops the members scored below the cutoff (their session
 * is gone: its deadline plus the retention has passed, and a write that extends a deadline raises
 * the score first) and lists the others, with their scores. → {member, score, member, score …}
 */
const LIST = `
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then return {} end
if kind ~= 'zset' then return redis.error_reply('WRONGTYPE a user index key holds the wrong kind of value') end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
`

/** KEYS: lease. ARGV: this holder's value. Releases the lease if it is still this holder's. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`

/**
 * The scripts, by the name of the command each is defined as on the client, with their number of
 * keys.
 *
 * @internal
 */
export const COMMANDS = {
  effectSessionsLoadCurrent: [LOAD_CURRENT, 2],
  effectSessionsCreate: [CREATE, 2],
  effectSessionsSave: [SAVE, 2],
  effectSessionsRotate: [ROTATE, 3],
  effectSessionsRemove: [REMOVE, 2],
  effectSessionsDeleteToken: [DELETE_TOKEN, 1],
  effectSessionsIndex: [INDEX, 1],
  effectSessionsList: [LIST, 1],
  effectSessionsRelease: [RELEASE, 1]
} as const

/**
 * The publish command of the scripts: classic `PUBLISH` (one channel, relayed by a cluster to
 * every node) or sharded `SPUBLISH` (a channel in the script's slot, Redis 7).
 *
 * @internal
 */
export type Publish = "PUBLISH" | "SPUBLISH"

/**
 * A client with the scripts defined: each takes its keys, then its arguments.
 *
 * @internal
 */
export type Commands = { readonly [K in keyof typeof COMMANDS]: (...args: ReadonlyArray<string>) => Promise<unknown> }

/**
 * What a script writes for a session (`write` in the Lua library). Every field is a string:
 * versions are compared with what `HMGET` returns, and Lua numbers would lose digits.
 *
 * @internal
 */
export interface SessionWrite {
  readonly key: string
  readonly token: string
  readonly version: string
  /** `""` for no user, `"+" + userId` otherwise. */
  readonly user: string
  /** The Codec JSON of the session. */
  readonly record: string
  /** Milliseconds to live (≤ 0: the deadline has passed, the session goes). */
  readonly px: string
  /** The session's deadline, epoch milliseconds (what the limit on a user's sessions counts by). */
  readonly e: string
}

/** @internal */
export interface SaveArgs extends SessionWrite {
  readonly expectedVersion: string
}

/** @internal */
export interface RotateArgs extends SaveArgs {
  /** The token key that becomes the redirect (the stored session's current token). */
  readonly oldToken: string
  /** The Codec JSON of the redirect. */
  readonly redirect: string
  readonly redirectPx: string
}

/**
 * A string as Redis will hold it: ioredis sends UTF-8, where a lone surrogate becomes U+FFFD;
 * `cjson` refuses the `\ud800` escape JSON.stringify writes for one, so it is replaced first.
 *
 * @internal
 */
export const wellFormed = (s: string): string =>
  s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD")

/** Milliseconds from now to a deadline, rounded up (≤ 0: already past). */
const pxUntil = (now: number, deadline: number): string => String(Math.ceil(deadline - now))

const userArg = (session: Session): string => Option.match(session.userId, { onNone: () => "", onSome: (u) => `+${u}` })

/**
 * The record a script writes for a session whose deadline is `expiresAt`, kept `retention`
 * milliseconds past it.
 *
 * @internal
 */
export const sessionWrite = (session: Session, now: number, expiresAt: number, retention: number): SessionWrite => ({
  key: session.key,
  token: session.tokenKey,
  version: String(session.version),
  user: userArg(session),
  record: Codec.encodeSession(session),
  px: pxUntil(now, expiresAt + retention),
  e: String(Math.ceil(expiresAt))
})

/**
 * The one JSON argument of a script that writes a session.
 *
 * @internal
 */
export const encodeArgs = (args: SessionWrite | SaveArgs | RotateArgs): string =>
  JSON.stringify(args, (_key, value: unknown) => typeof value === "string" ? wellFormed(value) : value)

/**
 * The argument of the rotate script, for a store keeping records `retention` ms past deadlines.
 *
 * @internal
 */
export const rotateArgs = (rotation: Rotation, now: number, retention: number): RotateArgs => ({
  ...sessionWrite(rotation.session, now, rotation.expiresAt, retention),
  expectedVersion: String(rotation.expectedVersion),
  oldToken: rotation.redirect.tokenKey,
  redirect: Codec.encode(rotation.redirect),
  redirectPx: pxUntil(now, rotation.redirect.expiresAt + retention)
})
