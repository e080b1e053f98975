/**
 * The Lua scripts of the Redis store and the arguments they take. Every multi-key step is one
 * script (atomic on the server). A script gets its key in `KEYS[1]`, the key prefix in `ARGV[1]`
 * and, when it publishes, this process's origin in `ARGV[2]`; a write gets its record as one JSON
 * argument after those, which the script decodes with `cjson` (see {@link SessionWrite}).
 *
 * Keys, with a prefix `p` (default `sess:`):
 *
 * - `${p}t:${tokenKey}`: a string, `c:${sessionKey}` for a current token, the Codec JSON of the
 *   Redirect for a rotated-away one; it expires with its session (or at the end of the grace
 *   period);
 * - `${p}s:${sessionKey}`: a hash — `v` version, `t` current token key, `u` user (`""` for none,
 *   `"+" + userId` otherwise), `r` the Codec JSON of the session, `e` its deadline (epoch ms, for
 *   the limit on a user's sessions) — with the session's TTL;
 * - `${p}u:${userId}`: a set of session keys (the user index), expiring with its longest session.
 *
 * The compare-and-set of `save` and `rotate` compares the version and the current token, so only
 * one rotation of a token wins. Scripts publish `${originId}:${tokenKey}` on `${p}invalidate` for
 * every token key they change.
 *
 * The scripts build some key names on the server (the session of a token, the user's set), so
 * the store needs a standalone Redis (or one primary), not Redis Cluster.
 *
 * This module does not load ioredis.
 *
 * @internal
 */
import { Option } from "effect"
import * as Codec from "../../Codec.js"
import type { Rotation, SessionLimitPolicy } from "../persistence.js"
import type { Session } from "../../Session.js"

const LIB = `
local function user_key(prefix, user)
  return prefix .. 'u:' .. string.sub(user, 2)
end
local function unindex(prefix, user, key)
  if user and user ~= '' then redis.call('SREM', user_key(prefix, user), key) end
end
local function index(prefix, user, key, px)
  if user ~= '' then
    local ukey = user_key(prefix, user)
    redis.call('SADD', ukey, key)
    if redis.call('PTTL', ukey) < px then redis.call('PEXPIRE', ukey, px) end
  end
end
-- Whether a user's index key can take SADD/SREM. Checked before a script writes anything: a
-- script that fails halfway keeps its earlier writes (Redis has no rollback).
local function indexable(prefix, user)
  if not user or user == '' then return true end
  local kind = redis.call('TYPE', user_key(prefix, user)).ok
  return kind == 'set' or kind == 'none'
end
local function wrong_index()
  return redis.error_reply('WRONGTYPE a user index key holds the wrong kind of value; nothing was written')
end
local function notify(prefix, origin, token)
  redis.call('PUBLISH', prefix .. 'invalidate', origin .. ':' .. token)
end
-- Writes a session (w: key, token, version, user, record, px) under its current token; a
-- deadline already past deletes it instead.
local function write(prefix, skey, w, olduser)
  local px = tonumber(w.px)
  if olduser and olduser ~= w.user then unindex(prefix, olduser, w.key) end
  local tkey = prefix .. 't:' .. w.token
  if px <= 0 then
    redis.call('DEL', skey)
    if redis.call('GET', tkey) == 'c:' .. w.key then redis.call('DEL', tkey) end
    unindex(prefix, w.user, w.key)
    return
  end
  redis.call('HSET', skey, 'v', w.version, 't', w.token, 'u', w.user, 'r', w.record, 'e', w.e)
  redis.call('PEXPIRE', skey, px)
  redis.call('SET', tkey, 'c:' .. w.key, 'PX', px)
  index(prefix, w.user, w.key, px)
end
-- Deletes a session, its current token and its index entry; returns its token key (or false).
local function remove(prefix, key)
  local skey = prefix .. 's:' .. key
  local kind = redis.call('TYPE', skey).ok
  if kind == 'none' then return false end
  if kind ~= 'hash' then
    redis.call('DEL', skey)
    return false
  end
  local cur = redis.call('HMGET', skey, 't', 'u')
  redis.call('DEL', skey)
  unindex(prefix, cur[2], key)
  if not cur[1] then return false end
  local tkey = prefix .. 't:' .. cur[1]
  local t = redis.pcall('GET', tkey)
  if t == 'c:' .. key then redis.call('DEL', tkey) end
  return cur[1]
end
`

/** KEYS: t:token. ARGV: prefix. → false | {token value} | {token value, record | false, corrupt?} */
const LOAD = `
local t = redis.pcall('GET', KEYS[1])
if type(t) == 'table' and t.err then return {'', false, 1} end
if not t then return false end
if string.sub(t, 1, 2) == 'c:' then
  local r = redis.pcall('HGET', ARGV[1] .. 's:' .. string.sub(t, 3), 'r')
  if type(r) == 'table' and r.err then return {t, false, 1} end
  return {t, r}
end
return {t}
`

/** KEYS: s:key. ARGV: prefix. → record | false | {corrupt} */
const LOAD_SESSION = `
local r = redis.pcall('HGET', KEYS[1], 'r')
if type(r) == 'table' and r.err then return {1} end
return r
`

/** KEYS: s:key. ARGV: prefix, JSON of a SessionWrite. */
const CREATE = LIB + `
local w = cjson.decode(ARGV[2])
local kind = redis.call('TYPE', KEYS[1]).ok
local olduser = false
if kind == 'hash' then olduser = redis.call('HGET', KEYS[1], 'u') end
if not indexable(ARGV[1], w.user) or not indexable(ARGV[1], olduser) then return wrong_index() end
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
write(ARGV[1], KEYS[1], w, olduser)
return 1
`

/** KEYS: s:key. ARGV: prefix, origin, JSON of a SaveArgs. */
const SAVE = LIB + `
local w = cjson.decode(ARGV[3])
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'v', 't', 'u')
if cur[1] ~= w.expectedVersion or cur[2] ~= w.token then return 0 end
if not indexable(ARGV[1], w.user) or not indexable(ARGV[1], cur[3]) then return wrong_index() end
write(ARGV[1], KEYS[1], w, cur[3])
notify(ARGV[1], ARGV[2], w.token)
return 1
`

/** KEYS: s:key. ARGV: prefix, origin, JSON of a RotateArgs. */
const ROTATE = LIB + `
local w = cjson.decode(ARGV[3])
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'v', 't', 'u')
if cur[1] ~= w.expectedVersion or cur[2] ~= w.oldToken then return 0 end
if not indexable(ARGV[1], w.user) or not indexable(ARGV[1], cur[3]) then return wrong_index() end
local old = ARGV[1] .. 't:' .. w.oldToken
if tonumber(w.redirectPx) > 0 then redis.call('SET', old, w.redirect, 'PX', w.redirectPx) else redis.call('DEL', old) end
write(ARGV[1], KEYS[1], w, cur[3])
notify(ARGV[1], ARGV[2], w.oldToken)
notify(ARGV[1], ARGV[2], w.token)
return 1
`

/** KEYS: s:key. ARGV: prefix, origin, key. */
const DELETE = LIB + `
local token = remove(ARGV[1], ARGV[3])
if token then notify(ARGV[1], ARGV[2], token) end
return 1
`

/** KEYS: t:token. ARGV: prefix, origin, token. */
const DELETE_TOKEN = LIB + `
local t = redis.pcall('GET', KEYS[1])
if not t then return 0 end
if type(t) == 'string' and string.sub(t, 1, 2) == 'c:' then
  local token = remove(ARGV[1], string.sub(t, 3))
  if token and token ~= ARGV[3] then notify(ARGV[1], ARGV[2], token) end
end
redis.call('DEL', KEYS[1])
notify(ARGV[1], ARGV[2], ARGV[3])
return 1
`

/**
 * KEYS: u:user. ARGV: prefix. → {key, record, token, key, record, token …} ('' for a key of the
 * wrong type); drops the keys of gone sessions.
 */
const SESSIONS_OF_USER = `
local out = {}
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local r = redis.pcall('HMGET', ARGV[1] .. 's:' .. key, 'r', 't')
  if r.err then
    out[#out + 1] = key
    out[#out + 1] = ''
    out[#out + 1] = ''
  elseif r[1] then
    out[#out + 1] = key
    out[#out + 1] = r[1]
    out[#out + 1] = r[2] or ''
  else
    redis.call('SREM', KEYS[1], key)
  end
end
return out
`

// -- the limit on a user's sessions (maxSessionsPerUser) -------------------------------------
// Everything about counting a user's sessions lives here: one library and one script, apart from
// the plain rotation (which it repeats), so that the rest of the store does not depend on it.

const LIMIT_LIB = `
-- Whether an index member is a live session of the user: {key, lastAccessAt, createdAt}; 'bad'
-- for a record that does not decode (ended without counting); false for dead, gone or another's.
local function limit_entry(prefix, user, key, now, retention)
  local skey = prefix .. 's:' .. key
  if redis.call('TYPE', skey).ok ~= 'hash' then return false end
  local f = redis.call('HMGET', skey, 'r', 'e', 'u')
  if f[3] ~= user then return false end
  local ok, rec = pcall(cjson.decode, f[1] or '')
  if not ok or type(rec) ~= 'table' or type(rec.lastAccessAt) ~= 'number' or type(rec.createdAt) ~= 'number' then return 'bad' end
  local e = tonumber(f[2])
  -- Records written before the deadline field: their TTL is the deadline plus the retention.
  if e then
    if e <= now then return false end
  elseif redis.call('PTTL', skey) <= retention then return false end
  return {key, rec.lastAccessAt, rec.createdAt}
end
-- The user's other live sessions, least recently used first (then oldest, then smaller key),
-- and the index members whose record does not decode.
local function limit_others(prefix, user, self, now, retention)
  local live, bad = {}, {}
  for _, key in ipairs(redis.call('SMEMBERS', user_key(prefix, user))) do
    if key ~= self then
      local entry = limit_entry(prefix, user, key, now, retention)
      if entry == 'bad' then bad[#bad + 1] = key elseif entry then live[#live + 1] = entry end
    end
  end
  table.sort(live, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    if a[3] ~= b[3] then return a[3] < b[3] end
    return a[1] < b[1]
  end)
  return live, bad
end
`

/**
 * KEYS: s:key. ARGV: prefix, origin, JSON of a RotateArgs, JSON of a LimitArgs.
 * → {0} lost | {2} refused | {1, token key of each ended session …} rotated.
 */
const ROTATE_WITHIN_LIMIT = LIB + LIMIT_LIB + `
local w = cjson.decode(ARGV[3])
local limit = cjson.decode(ARGV[4])
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return {0} end
local cur = redis.call('HMGET', KEYS[1], 'v', 't', 'u')
if cur[1] ~= w.expectedVersion or cur[2] ~= w.oldToken then return {0} end
if not indexable(ARGV[1], w.user) or not indexable(ARGV[1], cur[3]) then return wrong_index() end
local ended = {1}
if w.user ~= '' then
  local live, bad = limit_others(ARGV[1], w.user, w.key, tonumber(limit.now), tonumber(limit.retention))
  local excess = #live + 1 - tonumber(limit.max)
  if excess > 0 and limit.policy == 'refuse' then return {2} end
  for _, key in ipairs(bad) do
    local token = remove(ARGV[1], key)
    if token then notify(ARGV[1], ARGV[2], token); ended[#ended + 1] = token end
  end
  for i = 1, excess do
    local token = remove(ARGV[1], live[i][1])
    if token then notify(ARGV[1], ARGV[2], token); ended[#ended + 1] = token end
  end
end
local old = ARGV[1] .. 't:' .. w.oldToken
if tonumber(w.redirectPx) > 0 then redis.call('SET', old, w.redirect, 'PX', w.redirectPx) else redis.call('DEL', old) end
write(ARGV[1], KEYS[1], w, cur[3])
notify(ARGV[1], ARGV[2], w.oldToken)
notify(ARGV[1], ARGV[2], w.token)
return ended
`

/**
 * The second argument of the limited rotation script. Strings, as every script argument.
 *
 * @internal
 */
export interface LimitArgs {
  readonly max: string
  readonly policy: SessionLimitPolicy
  /** The client's clock (the deadlines were computed on it). */
  readonly now: string
  readonly retention: string
}

/**
 * The scripts, by the name of the command each is defined as on the client.
 *
 * @internal
 */
export const COMMANDS = {
  effectSessionsLoad: LOAD,
  effectSessionsLoadSession: LOAD_SESSION,
  effectSessionsCreate: CREATE,
  effectSessionsSave: SAVE,
  effectSessionsRotate: ROTATE,
  effectSessionsRotateWithinLimit: ROTATE_WITHIN_LIMIT,
  effectSessionsDelete: DELETE,
  effectSessionsDeleteToken: DELETE_TOKEN,
  effectSessionsSessionsOfUser: SESSIONS_OF_USER
} as const

/**
 * A client with the scripts defined: each takes its one key, then its arguments.
 *
 * @internal
 */
export type Commands = { readonly [K in keyof typeof COMMANDS]: (key: string, ...args: ReadonlyArray<string>) => Promise<unknown> }

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
export const encodeArgs = (args: SessionWrite | SaveArgs | RotateArgs | LimitArgs): string =>
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
