/**
 * The Redis Persistence (ioredis). Keys, with a prefix `p` (default `sess:`):
 *
 * - `${p}t:${tokenKey}`: a string, `c:${sessionKey}` for a current token, the Codec JSON of the
 *   Redirect for a rotated-away one; it expires with its session (or at the end of the grace
 *   period);
 * - `${p}s:${sessionKey}`: a hash — `v` version, `t` current token key, `u` user (`""` for none,
 *   `"+" + userId` otherwise), `r` the Codec JSON of the session — with the session's TTL;
 * - `${p}u:${userId}`: a set of session keys (the user index), expiring with its longest session.
 *
 * Every multi-key step is one Lua script (atomic on the server): the compare-and-set of `save`
 * and `rotate` compares the version and the current token, so only one rotation of a token wins.
 * Scripts publish `${originId}:${tokenKey}` on `${p}invalidate` for every token key they change,
 * and `publishUserInvalidation` publishes `${originId}:!u:${userKey}` (token keys are base64url,
 * never starting with `!`); a second connection subscribes and feeds `invalidations`.
 *
 * Errors keep only the class name and the message of ioredis's error: its `ReplyError` carries
 * the command and every argument (keys, the user ID, the record), which must not reach a log.
 *
 * The scripts build some key names on the server (the session of a token, the user's set), so
 * this store needs a standalone Redis (or one primary), not Redis Cluster.
 *
 * @internal
 */
import { Clock, Effect, Either, Option, Stream } from "effect"
import type { Scope } from "effect"
import { Redis, type RedisOptions } from "ioredis"
import * as Codec from "../Codec.js"
import { failFastOptions } from "./redisOptions.js"
import { DEFAULT_RETENTION_MILLIS, INVALIDATE_ALL, Invalidation, SessionStoreError, type PersistenceShape } from "../Persistence.js"
import type { Redirect, Session, TokenRecord } from "../Session.js"
import { logHash } from "./hash.js"
import { parseInvalidation, userMessage } from "./invalidationMessage.js"
import { redactCodecError, redactDriverError } from "./storeErrors.js"

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
-- Writes a session under its current token; a deadline already past deletes it instead.
local function write(prefix, skey, key, token, version, user, record, px, olduser)
  px = tonumber(px)
  if olduser and olduser ~= user then unindex(prefix, olduser, key) end
  local tkey = prefix .. 't:' .. token
  if px <= 0 then
    redis.call('DEL', skey)
    if redis.call('GET', tkey) == 'c:' .. key then redis.call('DEL', tkey) end
    unindex(prefix, user, key)
    return
  end
  redis.call('HSET', skey, 'v', version, 't', token, 'u', user, 'r', record)
  redis.call('PEXPIRE', skey, px)
  redis.call('SET', tkey, 'c:' .. key, 'PX', px)
  index(prefix, user, key, px)
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

/** KEYS: s:key. ARGV: prefix, key, token, version, user, record, px. */
const CREATE = LIB + `
local kind = redis.call('TYPE', KEYS[1]).ok
local olduser = false
if kind == 'hash' then olduser = redis.call('HGET', KEYS[1], 'u') end
if not indexable(ARGV[1], ARGV[5]) or not indexable(ARGV[1], olduser) then return wrong_index() end
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
write(ARGV[1], KEYS[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], olduser)
return 1
`

/** KEYS: s:key. ARGV: prefix, origin, key, expected version, token, version, user, record, px. */
const SAVE = LIB + `
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'v', 't', 'u')
if cur[1] ~= ARGV[4] or cur[2] ~= ARGV[5] then return 0 end
if not indexable(ARGV[1], ARGV[7]) or not indexable(ARGV[1], cur[3]) then return wrong_index() end
write(ARGV[1], KEYS[1], ARGV[3], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], cur[3])
notify(ARGV[1], ARGV[2], ARGV[5])
return 1
`

/**
 * KEYS: s:key. ARGV: prefix, origin, key, expected version, old token, new token, version, user,
 * record, px, redirect JSON, redirect px.
 */
const ROTATE = LIB + `
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'v', 't', 'u')
if cur[1] ~= ARGV[4] or cur[2] ~= ARGV[5] then return 0 end
if not indexable(ARGV[1], ARGV[8]) or not indexable(ARGV[1], cur[3]) then return wrong_index() end
local old = ARGV[1] .. 't:' .. ARGV[5]
if tonumber(ARGV[12]) > 0 then redis.call('SET', old, ARGV[11], 'PX', ARGV[12]) else redis.call('DEL', old) end
write(ARGV[1], KEYS[1], ARGV[3], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], cur[3])
notify(ARGV[1], ARGV[2], ARGV[5])
notify(ARGV[1], ARGV[2], ARGV[6])
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

const COMMANDS = {
  effectSessionsLoad: LOAD,
  effectSessionsLoadSession: LOAD_SESSION,
  effectSessionsCreate: CREATE,
  effectSessionsSave: SAVE,
  effectSessionsRotate: ROTATE,
  effectSessionsDelete: DELETE,
  effectSessionsDeleteToken: DELETE_TOKEN,
  effectSessionsSessionsOfUser: SESSIONS_OF_USER
} as const

type Command = keyof typeof COMMANDS
type Arg = string | number
type Commands = { readonly [K in Command]: (key: string, ...args: ReadonlyArray<Arg>) => Promise<unknown> }

// The options live in redisOptions.ts, which Persistence/Redis imports without loading ioredis.
export { failFastOptions }

/** @internal */
export interface RedisStoreOptions {
  /** Connection URL, used when no client is given. */
  readonly url?: string | undefined
  /** A client to use (not closed by the store; its subscriber duplicate is). */
  readonly client?: Redis | undefined
  /** Options for the client the store creates (merged over {@link failFastOptions}). */
  readonly redisOptions?: RedisOptions | undefined
  readonly prefix: string
  readonly originId: string
  /** How long to wait for the first connection when the layer is built. */
  readonly connectTimeout?: number | undefined
  readonly retentionMillis?: number | undefined
}

/** Resolves when a client is ready, rejects after `timeout` ms (with its last error, if any). */
const whenReady = (client: Redis, timeout: number): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    if (client.status === "ready") return resolve()
    // A client made with `lazyConnect` waits for a first command: connect it now.
    if (client.status === "wait") client.connect().catch(() => {})
    let last: unknown = undefined
    const onError = (e: unknown) => {
      last = e
    }
    const cleanup = () => {
      clearTimeout(timer)
      client.off("ready", onReady)
      client.off("error", onError)
      client.off("end", onEnd)
    }
    const onReady = () => {
      cleanup()
      resolve()
    }
    const onEnd = () => {
      cleanup()
      reject(last ?? new Error("Redis connection ended"))
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(last ?? new Error(`Redis not ready after ${timeout} ms`))
    }, timeout)
    client.on("ready", onReady)
    client.on("error", onError)
    client.on("end", onEnd)
  })

/** Closes a client politely, then for sure. */
const close = (client: Redis): Effect.Effect<void> =>
  Effect.promise(() =>
    client.status === "ready"
      ? Promise.race([
        client.quit().then(() => undefined, () => undefined),
        new Promise<void>((resolve) => setTimeout(resolve, 1000).unref())
      ])
      : Promise.resolve()
  ).pipe(Effect.ensuring(Effect.sync(() => client.disconnect())))

const ignoreErrors = () => {}

/**
 * Builds the store: connects (or uses the given client), defines the scripts, subscribes to the
 * invalidation channel with a second connection; all closed when the scope closes.
 *
 * @internal
 */
export const makeRedisStore = (options: RedisStoreOptions): Effect.Effect<PersistenceShape, SessionStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const retention = options.retentionMillis ?? DEFAULT_RETENTION_MILLIS
    const p = options.prefix
    const channel = `${p}invalidate`
    const origin = options.originId
    const connectTimeout = options.connectTimeout ?? 5000
    const unavailable = (method: string) => (cause: unknown) =>
      new SessionStoreError({ method, reason: "Unavailable", cause: redactDriverError(cause) })

    const client: Redis = options.client ?? (yield* Effect.acquireRelease(
      Effect.sync(() => {
        const c = new Redis(options.url ?? "redis://127.0.0.1:6379", { ...failFastOptions, ...options.redisOptions })
        c.on("error", ignoreErrors)
        return c
      }),
      close
    ))
    yield* Effect.tryPromise({ try: () => whenReady(client, connectTimeout), catch: unavailable("connect") })
    for (const [name, lua] of Object.entries(COMMANDS)) {
      if (!(name in client)) client.defineCommand(name, { numberOfKeys: 1, lua })
    }
    const commands = client as unknown as Commands

    const call = <A>(method: string, f: () => Promise<A>): Effect.Effect<A, SessionStoreError> =>
      Effect.tryPromise({ try: f, catch: unavailable(method) })
    const corrupt = (method: string, key: string, cause: unknown) =>
      new SessionStoreError({ method, reason: "Corrupt", key, cause: cause instanceof Codec.CodecError ? redactCodecError(cause) : cause })

    const decodeSession = (method: string, key: string, text: string): Effect.Effect<Session, SessionStoreError> =>
      Either.match(Codec.decodeSession(text), {
        onLeft: (e) => Effect.fail(corrupt(method, key, e)),
        onRight: Effect.succeed
      })

    const userArg = (session: Session): string => Option.match(session.userId, { onNone: () => "", onSome: (u) => `+${u}` })
    /** Milliseconds from now to a deadline, rounded up (≤ 0: already past). */
    const pxUntil = (now: number, deadline: number): number => Math.ceil(deadline - now)

    // -- operations -----------------------------------------------------------------------------

    const load = (tokenKey: string): Effect.Effect<Option.Option<TokenRecord>, SessionStoreError> =>
      Effect.gen(function*() {
        const reply = (yield* call("load", () => commands.effectSessionsLoad(`${p}t:${tokenKey}`, p))) as
          | null
          | [string]
          | [string, string | null]
          | [string, string | null, number]
        if (reply === null) return Option.none()
        const [value, record, wrongType] = reply
        if (wrongType !== undefined) return yield* corrupt("load", tokenKey, new Error("a key of the wrong type"))
        if (!value.startsWith("c:")) {
          const decoded = Codec.decode(value)
          if (Either.isLeft(decoded)) return yield* corrupt("load", tokenKey, decoded.left)
          if (decoded.right._tag !== "Redirect") return yield* corrupt("load", tokenKey, new Error("a session where a redirect belongs"))
          // TTLs are whole milliseconds and run on the server's clock: also honour the deadline.
          const now = yield* Clock.currentTimeMillis
          return decoded.right.expiresAt + retention <= now ? Option.none() : Option.some<TokenRecord>(decoded.right)
        }
        if (record === null || record === undefined) return Option.none()
        return Option.some<TokenRecord>(yield* decodeSession("load", tokenKey, record))
      })

    const loadSession = (sessionKey: string): Effect.Effect<Option.Option<Session>, SessionStoreError> =>
      Effect.gen(function*() {
        const reply = (yield* call("loadSession", () => commands.effectSessionsLoadSession(`${p}s:${sessionKey}`, p))) as
          | null
          | string
          | [number]
        if (reply === null) return Option.none()
        if (typeof reply !== "string") return yield* corrupt("loadSession", sessionKey, new Error("a key of the wrong type"))
        return Option.some(yield* decodeSession("loadSession", sessionKey, reply))
      })

    const create = (session: Session, expiresAt: number): Effect.Effect<void, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        yield* call("create", () =>
          commands.effectSessionsCreate(
            `${p}s:${session.key}`,
            p,
            session.key,
            session.tokenKey,
            session.version,
            userArg(session),
            Codec.encodeSession(session),
            pxUntil(now, expiresAt + retention)
          ))
      })

    const save = (session: Session, expectedVersion: number, expiresAt: number): Effect.Effect<boolean, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const won = yield* call("save", () =>
          commands.effectSessionsSave(
            `${p}s:${session.key}`,
            p,
            origin,
            session.key,
            expectedVersion,
            session.tokenKey,
            session.version,
            userArg(session),
            Codec.encodeSession(session),
            pxUntil(now, expiresAt + retention)
          ))
        return won === 1
      })

    const rotate = (
      session: Session,
      expectedVersion: number,
      redirect: Redirect,
      expiresAt: number
    ): Effect.Effect<boolean, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const won = yield* call("rotate", () =>
          commands.effectSessionsRotate(
            `${p}s:${session.key}`,
            p,
            origin,
            session.key,
            expectedVersion,
            redirect.tokenKey,
            session.tokenKey,
            session.version,
            userArg(session),
            Codec.encodeSession(session),
            pxUntil(now, expiresAt + retention),
            Codec.encode(redirect),
            pxUntil(now, redirect.expiresAt + retention)
          ))
        return won === 1
      })

    const del = (sessionKey: string): Effect.Effect<void, SessionStoreError> =>
      Effect.asVoid(call("delete", () => commands.effectSessionsDelete(`${p}s:${sessionKey}`, p, origin, sessionKey)))

    const deleteToken = (tokenKey: string): Effect.Effect<void, SessionStoreError> =>
      Effect.asVoid(call("deleteToken", () => commands.effectSessionsDeleteToken(`${p}t:${tokenKey}`, p, origin, tokenKey)))

    // A record that does not decode (or a key of the wrong type: '') is skipped and deleted, so
    // that one bad session never blocks listing, logging out everywhere or an exclusive log-in.
    const sessionsOfUser = (userId: string): Effect.Effect<ReadonlyArray<Session>, SessionStoreError> =>
      Effect.gen(function*() {
        const reply = (yield* call("sessionsOfUser", () => commands.effectSessionsSessionsOfUser(`${p}u:${userId}`, p))) as Array<string>
        const out: Array<Session> = []
        for (let i = 0; i + 2 < reply.length; i += 3) {
          const key = reply[i]!
          const decoded = reply[i + 1] === "" ? undefined : Either.getRight(Codec.decodeSession(reply[i + 1]!)).pipe(Option.getOrUndefined)
          if (decoded === undefined) yield* dropCorrupt("sessionsOfUser", key, reply[i + 2]!)
          // Keys are UTF-8, where every lone surrogate is U+FFFD: ids that differ only there
          // share an index set, so the records say whose they are.
          else if (Option.getOrUndefined(decoded.userId) === userId) out.push(decoded)
        }
        return out
      })

    // The other processes hear of the deletion from the script; this process's own cache may
    // still hold the session (as it was before it went bad): it is told through `invalidations`.
    const dropCorrupt = (method: string, sessionKey: string, tokenKey: string) =>
      Effect.logWarning("dropped a corrupt session record").pipe(
        Effect.annotateLogs({ event: "corrupt-record", method, key: logHash(sessionKey) }),
        Effect.zipRight(del(sessionKey)),
        Effect.zipRight(Effect.sync(() => {
          if (tokenKey !== "") local.forEach((emit) => emit(Invalidation.Token({ tokenKey })))
        })),
        Effect.catchAll((e) =>
          Effect.logWarning("could not delete a corrupt session record", e).pipe(
            Effect.annotateLogs({ event: "corrupt-record", method, key: logHash(sessionKey) })
          )
        )
      )

    const publishUserInvalidation = (userKey: string): Effect.Effect<void, SessionStoreError> =>
      Effect.asVoid(call("publishUserInvalidation", () => client.publish(channel, userMessage(origin, userKey))))

    // -- invalidations --------------------------------------------------------------------------

    // The subscription is renewed by hand after a reconnect, so that the consumers can be told
    // (INVALIDATE_ALL) once it is back: messages published while it was down are lost.
    const subscriber = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const s = client.duplicate({ autoResubscribe: false })
        s.on("error", ignoreErrors)
        return s
      }),
      close
    )
    yield* Effect.tryPromise({
      try: () => whenReady(subscriber, connectTimeout).then(() => subscriber.subscribe(channel)),
      catch: unavailable("connect")
    })
    const resets = new Set<() => void>()
    // What this process must hear from itself: the records it dropped as corrupt.
    const local = new Set<(invalidation: Invalidation) => void>()
    const onReconnected = () => {
      subscriber.subscribe(channel).then(
        () => resets.forEach((reset) => reset()),
        () => subscriber.disconnect(true) // try again from a fresh connection
      )
    }
    subscriber.on("ready", onReconnected)
    yield* Effect.addFinalizer(() => Effect.sync(() => subscriber.off("ready", onReconnected)))
    const own = `${origin}:`
    // Every consumer adds its own listener to the one subscribed connection.
    const invalidations = Stream.asyncPush<Invalidation>((emit) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const onMessage = (ch: string, message: string) => {
            if (ch !== channel || message.startsWith(own)) return
            const i = message.indexOf(":")
            if (i >= 0) emit.single(parseInvalidation(message.slice(i + 1)))
          }
          const onReset = () => emit.single(INVALIDATE_ALL)
          const onLocal = (invalidation: Invalidation) => emit.single(invalidation)
          subscriber.on("message", onMessage)
          resets.add(onReset)
          local.add(onLocal)
          return { onMessage, onReset, onLocal }
        }),
        ({ onLocal, onMessage, onReset }) =>
          Effect.sync(() => {
            subscriber.off("message", onMessage)
            resets.delete(onReset)
            local.delete(onLocal)
          })
      ), { bufferSize: "unbounded" })

    return {
      load,
      loadSession,
      create,
      save,
      rotate,
      delete: del,
      deleteToken,
      sessionsOfUser,
      publishUserInvalidation,
      sweep: Effect.succeed(0),
      invalidations
    } satisfies PersistenceShape
  })
