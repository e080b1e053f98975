/**
 * The Redis Persistence (ioredis): the store operations over the scripts of `scripts.ts`, on the
 * connections of `connection.ts`, with the invalidation listener of `invalidations.ts`.
 *
 * The revocation instant (`revokeUntil`, "log everybody out") is one key, `<prefix>revocation`: a
 * sorted set whose one member `until` scores the instant, so that `ZADD … GT` raises it and never
 * lowers it in a single command (no script: one key, no TTL — it is a few bytes, and
 * `volatile-lru` never evicts a key without one).
 *
 * Errors keep only the class name and the message of ioredis's error: its `ReplyError` carries
 * the command and every argument (keys, the user ID, the record), which must not reach a log.
 *
 * @internal
 */
import { Clock, Effect, Either, Option } from "effect"
import type { Scope } from "effect"
import type { Redis, RedisOptions } from "ioredis"
import * as Codec from "../../Codec.js"
import {
  Invalidation,
  LimitedRotation,
  type PersistenceShape,
  type Rotation,
  type SessionLimit,
  SessionStoreError
} from "../persistence.js"
import type { Session, TokenRecord } from "../../Session.js"
import { logHash } from "../hash.js"
import { allMessage, userMessage } from "../invalidationMessage.js"
import { redactCodecError } from "../storeErrors.js"
import { connected, openClient, unavailable, withCommands } from "./connection.js"
import { listen } from "./invalidations.js"
import { encodeArgs, rotateArgs, sessionWrite } from "./scripts.js"

/** @internal */
export interface RedisStoreOptions {
  /** Connection URL, used when no client is given. */
  readonly url: string
  /** A client to use (not closed by the store; its subscriber duplicate is). */
  readonly client?: Redis | undefined
  /** Options for the client the store creates (merged over the fail-fast options). */
  readonly redisOptions?: RedisOptions | undefined
  readonly prefix: string
  readonly originId: string
  /** How long to wait for the first connection when the layer is built, in milliseconds. */
  readonly connectTimeout: number
  /** How long records are kept past their deadline, in milliseconds. */
  readonly retention: number
}

/**
 * Builds the store: connects (or uses the given client), defines the scripts, subscribes to the
 * invalidation channel with a second connection; all closed when the scope closes.
 *
 * @internal
 */
export const makeRedisStore = (options: RedisStoreOptions): Effect.Effect<PersistenceShape, SessionStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const retention = options.retention
    const p = options.prefix
    const channel = `${p}invalidate`
    const origin = options.originId

    const client: Redis = options.client ?? (yield* openClient(options.url, options.redisOptions))
    yield* connected(client, options.connectTimeout)
    const commands = withCommands(client)

    const call = <A>(method: string, f: () => Promise<A>): Effect.Effect<A, SessionStoreError> =>
      Effect.tryPromise({ try: f, catch: unavailable(method) })
    const corrupt = (method: string, key: string, cause: unknown) =>
      new SessionStoreError({ method, reason: "Corrupt", key, cause: cause instanceof Codec.CodecError ? redactCodecError(cause) : cause })

    const decodeSession = (method: string, key: string, text: string): Effect.Effect<Session, SessionStoreError> =>
      Either.match(Codec.decodeSession(text), {
        onLeft: (e) => Effect.fail(corrupt(method, key, e)),
        onRight: Effect.succeed
      })

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
        const args = encodeArgs(sessionWrite(session, now, expiresAt, retention))
        yield* call("create", () => commands.effectSessionsCreate(`${p}s:${session.key}`, p, args))
      })

    const save = (session: Session, expectedVersion: number, expiresAt: number): Effect.Effect<boolean, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const args = encodeArgs({ ...sessionWrite(session, now, expiresAt, retention), expectedVersion: String(expectedVersion) })
        const won = yield* call("save", () => commands.effectSessionsSave(`${p}s:${session.key}`, p, origin, args))
        return won === 1
      })

    const rotate = (rotation: Rotation): Effect.Effect<boolean, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const args = encodeArgs(rotateArgs(rotation, now, retention))
        const won = yield* call("rotate", () => commands.effectSessionsRotate(`${p}s:${rotation.session.key}`, p, origin, args))
        return won === 1
      })

    const rotateWithinLimit = (rotation: Rotation, limit: SessionLimit): Effect.Effect<LimitedRotation, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const args = encodeArgs(rotateArgs(rotation, now, retention))
        const limitArgs = encodeArgs({ max: String(limit.max), policy: limit.policy, now: String(now), retention: String(retention) })
        const reply = (yield* call(
          "rotateWithinLimit",
          () => commands.effectSessionsRotateWithinLimit(`${p}s:${rotation.session.key}`, p, origin, args, limitArgs)
        )) as [number, ...Array<string>]
        const [code, ...ended] = reply
        return code === 1 ? LimitedRotation.Rotated({ ended }) : code === 2 ? LimitedRotation.Refused() : LimitedRotation.Lost()
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
          if (tokenKey !== "") listener.tellSelf(Invalidation.Token({ tokenKey }))
        })),
        Effect.catchAll((e) =>
          Effect.logWarning("could not delete a corrupt session record", e).pipe(
            Effect.annotateLogs({ event: "corrupt-record", method, key: logHash(sessionKey) })
          )
        )
      )

    const publishUserInvalidation = (userKey: string): Effect.Effect<void, SessionStoreError> =>
      Effect.asVoid(call("publishUserInvalidation", () => client.publish(channel, userMessage(origin, userKey))))

    const revocationKey = `${p}revocation`

    // Two commands, not one step: a failed PUBLISH fails the call, and the instant, stored already,
    // still reaches the other processes at their next periodic read of it.
    const revokeUntil = (instant: number): Effect.Effect<void, SessionStoreError> =>
      Effect.zipRight(
        call("revokeUntil", () => client.zadd(revocationKey, "GT", instant, "until")),
        call("revokeUntil", () => client.publish(channel, allMessage(origin)))
      )

    const revokedUntil: Effect.Effect<Option.Option<number>, SessionStoreError> = Effect.flatMap(
      call("revokedUntil", () => client.zscore(revocationKey, "until")),
      (score) => {
        if (score === null) return Effect.succeed(Option.none())
        const n = Number(score)
        return Number.isFinite(n)
          ? Effect.succeed(Option.some(n))
          : Effect.fail(corrupt("revokedUntil", revocationKey, new Error("the revocation instant is not a number")))
      }
    )

    const listener = yield* listen(client, channel, origin, options.connectTimeout)

    return {
      load,
      loadSession,
      create,
      save,
      rotate,
      rotateWithinLimit,
      delete: del,
      deleteToken,
      sessionsOfUser,
      publishUserInvalidation,
      revokeUntil,
      revokedUntil,
      sweep: Effect.succeed(0),
      invalidations: listener.invalidations
    } satisfies PersistenceShape
  })
