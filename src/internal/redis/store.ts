/**
 * The Redis Persistence (ioredis), one module for a single server and for Redis Cluster: the
 * store operations over the scripts of `scripts.ts` and the keys of `keys.ts`, on the connections
 * of `connection.ts`, with the invalidation listener of `invalidations.ts`.
 *
 * A session's records share its routing tag's slot, so each step on one session is one script.
 * The user index lives in the user's slot; the steps that concern both are ordered:
 *
 * - **The index first.** A write of a session with a user adds it to the user's index (or raises
 *   its score, an upper bound of the session's deadline) before the session's script, so a
 *   listing never misses a live session: a session claims a user only after it is listed there.
 *   Members are dropped lazily: on a listing, those scored below now − retention (their session
 *   is gone by TTL, and a write that would extend a deadline raises the score first); after a
 *   delete, the deleted session (death is permanent: session keys are never reused). A member
 *   whose session moved to another user stays until its score passes — removing it could race
 *   with the session coming back — and is filtered out by the listing.
 * - **Reading a token** is two steps when the token is current: the token record names the
 *   session, and a second script reads both again (the token still naming it) and the session.
 * - **The limit on a user's sessions** (`rotateWithinLimit`) cannot be one script when the
 *   user's sessions live in other slots. The limited log-ins of one user are serialised by a
 *   lease in the user's slot (`SET NX PX`, released by compare-and-delete): under it, the store
 *   reads the user's index, checks each candidate in its own slot (live: a hash whose user is
 *   this one and whose deadline is ahead), answers `Lost` if the rotated session's
 *   compare-and-set already fails, `Refused` if the policy refuses, else writes the index entry,
 *   rotates, and ends the least recently used excess sessions, each in its own slot. Two
 *   log-ins of one user, in any processes, never count at the same time, so they never leave
 *   more than `max` sessions; everything else a store does to a user's sessions (expiry, delete,
 *   log-out) only lowers the count. The argument holds while a holder finishes within the lease
 *   ({@link LEASE_MILLIS}; every command has a 1 s timeout); a holder that dies leaves the lease
 *   to expire, and the log-ins of that user wait (or fail as unavailable) meanwhile.
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
import { Clock, Data, Duration, Effect, Either, Option, Schedule } from "effect"
import type { Scope } from "effect"
import type { Cluster, ClusterOptions, Redis, RedisOptions } from "ioredis"
import * as Codec from "../../Codec.js"
import {
  Invalidation,
  LimitedRotation,
  type PersistenceShape,
  type Rotation,
  type SessionLimit,
  sessionsToEnd,
  SessionStoreError
} from "../persistence.js"
import type { Session, TokenRecord } from "../../Session.js"
import { logHash } from "../hash.js"
import { allMessage, userMessage } from "../invalidationMessage.js"
import { sleepReal } from "../realTime.js"
import { redactCodecError } from "../storeErrors.js"
import { type Client, connected, openClient, openCluster, unavailable, withCommands } from "./connection.js"
import { listen, listenCluster, listenSharded } from "./invalidations.js"
import { makeKeys } from "./keys.js"
import { encodeArgs, type Publish, rotateArgs, sessionWrite, wellFormed } from "./scripts.js"
import { makeShardChannels, type ShardChannels } from "./shardChannels.js"

/**
 * How long a limited log-in holds its user's lease at most, in milliseconds.
 *
 * @internal
 */
export const LEASE_MILLIS = 10_000

/**
 * How a limited log-in waits for its user's lease: jittered exponential up to 50 ms, about 15 s
 * in all (longer than a lease lives), then it fails as unavailable. Waited on the event loop's
 * timer: a test may hold a TestClock still.
 */
const leaseWait: Schedule.Schedule<unknown, unknown> = Schedule.exponential("2 millis").pipe(
  Schedule.union(Schedule.spaced("50 millis")),
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(400)),
  Schedule.modifyDelayEffect((_, delay) => Effect.as(sleepReal(Duration.toMillis(delay)), Duration.zero))
)

/** The lease was taken: wait and try again. */
class LeaseBusy extends Data.TaggedError("effect-sessions/RedisLeaseBusy")<{}> {}

/** @internal */
export interface RedisStoreOptions {
  /** Connection URL of a single server, used when no client and no cluster nodes are given. */
  readonly url: string
  /** The starting nodes of a cluster: the store opens a `Cluster` client over them. */
  readonly nodes?: ReadonlyArray<{ readonly host: string; readonly port: number }> | undefined
  /** Options of the cluster client the store creates. */
  readonly clusterOptions?: ClusterOptions | undefined
  /** A client to use (not closed by the store; its subscriber connection is). */
  readonly client?: Redis | Cluster | undefined
  /** Options for the client the store creates (merged over the fail-fast options). */
  readonly redisOptions?: RedisOptions | undefined
  readonly prefix: string
  readonly originId: string
  /** How long to wait for the first connection when the layer is built, in milliseconds. */
  readonly connectTimeout: number
  /** How long records are kept past their deadline, in milliseconds. */
  readonly retention: number
  /**
   * `false`: classic pub/sub on a cluster even where sharded pub/sub is supported (what a cluster
   * of Redis < 7 gets; for tests). Default: sharded where supported.
   */
  readonly shardedPubSub?: boolean | undefined
}

const isCluster = (client: Client): client is Cluster => (client as { isCluster?: boolean }).isCluster === true

const isWrongType = (e: unknown) => e instanceof Error && e.message.startsWith("WRONGTYPE")

/**
 * How the invalidations of a cluster travel: sharded pub/sub when every primary knows `SPUBLISH`
 * (Redis 7, asked once, at start, with `COMMAND INFO`) and the slot function loads; classic
 * pub/sub otherwise. The choice is logged.
 */
const chooseShardChannels = (cluster: Cluster, prefix: string, allowed: boolean): Effect.Effect<ShardChannels | undefined, SessionStoreError> =>
  Effect.gen(function*() {
    const replies = allowed
      ? yield* Effect.tryPromise({
        try: () => Promise.all(cluster.nodes("master").map((node) => node.call("COMMAND", "INFO", "SPUBLISH"))),
        catch: unavailable("connect")
      })
      : []
    // A server without the command answers [nil].
    const supported = replies.length > 0 && replies.every((r) => Array.isArray(r) && Array.isArray(r[0]))
    const channels = supported
      ? yield* Effect.try(() => makeShardChannels(prefix)).pipe(
        Effect.tapError((e) => Effect.logWarning("Redis Cluster store: the hash slot function (cluster-key-slot, from ioredis) did not load", e)),
        Effect.orElseSucceed(() => undefined)
      )
      : undefined
    yield* (channels === undefined
      ? Effect.logInfo(
        `Redis Cluster store: invalidations over classic pub/sub (PUBLISH / SUBSCRIBE, relayed to every node)${
          supported ? "" : allowed ? ": a primary does not support sharded pub/sub (Redis < 7)" : ": sharded pub/sub turned off"
        }`
      ).pipe(Effect.annotateLogs({ event: "invalidation-mode", mode: "classic" }))
      : Effect.logInfo("Redis Cluster store: invalidations over sharded pub/sub (SPUBLISH / SSUBSCRIBE, a channel per hash slot)").pipe(
        Effect.annotateLogs({ event: "invalidation-mode", mode: "sharded" })
      ))
    return channels
  })

/**
 * Builds the store: connects (or uses the given client), defines the scripts, subscribes to the
 * invalidation channel with a connection of its own; all closed when the scope closes.
 *
 * @internal
 */
export const makeRedisStore = (options: RedisStoreOptions): Effect.Effect<PersistenceShape, SessionStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const retention = options.retention
    const keys = makeKeys(options.prefix)
    const channel = keys.channel
    const origin = options.originId

    const client: Client = options.client ??
      (options.nodes === undefined
        ? yield* openClient(options.url, options.redisOptions)
        : yield* openCluster(
          options.nodes.map((n) => ({ host: n.host, port: n.port })),
          options.redisOptions,
          options.clusterOptions
        ))
    yield* connected(client, options.connectTimeout)
    const commands = withCommands(client)
    const shards = isCluster(client) ? yield* chooseShardChannels(client, options.prefix, options.shardedPubSub !== false) : undefined
    /** The publish arguments of a script whose keys are in `key`'s slot. */
    const pub = (key: string): [Publish, string, string] =>
      shards === undefined ? ["PUBLISH", channel, origin] : ["SPUBLISH", shards.ofKey(key), origin]

    const call = <A>(method: string, f: () => Promise<A>): Effect.Effect<A, SessionStoreError> =>
      Effect.tryPromise({ try: f, catch: unavailable(method) })
    const corrupt = (method: string, key: string, cause: unknown) =>
      new SessionStoreError({ method, reason: "Corrupt", key, cause: cause instanceof Codec.CodecError ? redactCodecError(cause) : cause })
    const wrongType = (method: string, key: string) => corrupt(method, key, new Error("a key of the wrong type"))
    /** A read that answers WRONGTYPE for a key of another type: `undefined` then. */
    const read = <A>(method: string, f: () => Promise<A>): Effect.Effect<A | undefined, SessionStoreError> =>
      Effect.tryPromise({ try: () => f().catch((e: unknown) => isWrongType(e) ? undefined : Promise.reject(e)), catch: unavailable(method) })

    const decodeSession = (method: string, key: string, text: string): Effect.Effect<Session, SessionStoreError> =>
      Either.match(Codec.decodeSession(text), {
        onLeft: (e) => Effect.fail(corrupt(method, key, e)),
        onRight: Effect.succeed
      })

    // -- operations -----------------------------------------------------------------------------

    const load = (tokenKey: string, attempt = 0): Effect.Effect<Option.Option<TokenRecord>, SessionStoreError> =>
      Effect.gen(function*() {
        const tkey = keys.token(tokenKey)
        const value = yield* read("load", () => client.get(tkey))
        if (value === undefined) return yield* wrongType("load", tokenKey)
        if (value === null) return Option.none()
        if (!value.startsWith("c:")) {
          const decoded = Codec.decode(value)
          if (Either.isLeft(decoded)) return yield* corrupt("load", tokenKey, decoded.left)
          if (decoded.right._tag !== "Redirect") return yield* corrupt("load", tokenKey, new Error("a session where a redirect belongs"))
          // TTLs are whole milliseconds and run on the server's clock: also honour the deadline.
          const now = yield* Clock.currentTimeMillis
          return decoded.right.expiresAt + retention <= now ? Option.none() : Option.some<TokenRecord>(decoded.right)
        }
        // The token names its session (same slot): read both again in one step.
        const reply = (yield* call("load", () => commands.effectSessionsLoadCurrent(tkey, keys.session(value.slice(2)), value))) as
          | [0]
          | [1, string | null]
          | [2]
        if (reply[0] === 2) return yield* wrongType("load", tokenKey)
        // The token changed between the two reads (rotated, deleted): read it again.
        if (reply[0] === 0) return attempt < 8 ? yield* load(tokenKey, attempt + 1) : Option.none()
        const record = reply[1]
        if (record === null || record === undefined) return Option.none()
        return Option.some<TokenRecord>(yield* decodeSession("load", tokenKey, record))
      })

    const loadSession = (sessionKey: string): Effect.Effect<Option.Option<Session>, SessionStoreError> =>
      Effect.gen(function*() {
        const record = yield* read("loadSession", () => client.hget(keys.session(sessionKey), "r"))
        if (record === undefined) return yield* wrongType("loadSession", sessionKey)
        if (record === null) return Option.none()
        return Option.some(yield* decodeSession("loadSession", sessionKey, record))
      })

    /**
     * The index step before a write of `session` with deadline `expiresAt`: nothing without a
     * user or for a deadline already past (the write deletes the session then).
     */
    const index = (method: string, session: Session, now: number, expiresAt: number): Effect.Effect<void, SessionStoreError> =>
      Option.match(session.userId, {
        onNone: () => Effect.void,
        onSome: (userId) => {
          const keep = Math.ceil(expiresAt + retention - now)
          if (keep <= 0) return Effect.void
          return Effect.asVoid(call(method, () => commands.effectSessionsIndex(keys.user(wellFormed(userId)), session.key, String(Math.ceil(expiresAt)), String(keep))))
        }
      })

    const create = (session: Session, expiresAt: number): Effect.Effect<void, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        yield* index("create", session, now, expiresAt)
        const args = encodeArgs(sessionWrite(session, now, expiresAt, retention))
        yield* call("create", () => commands.effectSessionsCreate(keys.session(session.key), keys.token(session.tokenKey), args))
      })

    const save = (session: Session, expectedVersion: number, expiresAt: number): Effect.Effect<boolean, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        yield* index("save", session, now, expiresAt)
        const args = encodeArgs({ ...sessionWrite(session, now, expiresAt, retention), expectedVersion: String(expectedVersion) })
        const won = yield* call("save", () => commands.effectSessionsSave(keys.session(session.key), keys.token(session.tokenKey), ...pub(keys.session(session.key)), args))
        return won === 1
      })

    const rotateWith = (method: string, rotation: Rotation, now: number): Effect.Effect<boolean, SessionStoreError> =>
      Effect.gen(function*() {
        yield* index(method, rotation.session, now, rotation.expiresAt)
        const args = encodeArgs(rotateArgs(rotation, now, retention))
        const won = yield* call(method, () =>
          commands.effectSessionsRotate(
            keys.session(rotation.session.key),
            keys.token(rotation.session.tokenKey),
            keys.token(rotation.redirect.tokenKey),
            ...pub(keys.session(rotation.session.key)),
            args
          ))
        return won === 1
      })

    const rotate = (rotation: Rotation): Effect.Effect<boolean, SessionStoreError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => rotateWith("rotate", rotation, now))

    /** Deletes a session (its current token, its index entry); the token key it had, if any. */
    const remove = (method: string, sessionKey: string, attempt = 0): Effect.Effect<string | undefined, SessionStoreError> =>
      Effect.gen(function*() {
        const skey = keys.session(sessionKey)
        const token = yield* read(method, () => client.hget(skey, "t"))
        const tokenKey = token ?? ""
        // A key of the wrong type: the script deletes it (the token key is a placeholder in its slot).
        const reply = (yield* call(method, () =>
          commands.effectSessionsRemove(skey, keys.token(tokenKey === "" ? sessionKey : tokenKey), ...pub(skey), sessionKey, tokenKey))) as
          | [0]
          | [1, string]
        if (reply[0] === 0) return attempt < 8 ? yield* remove(method, sessionKey, attempt + 1) : undefined
        const user = reply[1]
        // The session is gone for good (keys are never reused): its index entry can go too.
        if (user !== "" && user !== undefined) {
          yield* call(method, () => client.zrem(keys.user(user.slice(1)), sessionKey)).pipe(
            Effect.catchAll(() => Effect.void)
          )
        }
        return tokenKey === "" ? undefined : tokenKey
      })

    const del = (sessionKey: string): Effect.Effect<void, SessionStoreError> => Effect.asVoid(remove("delete", sessionKey))

    const deleteToken = (tokenKey: string): Effect.Effect<void, SessionStoreError> =>
      Effect.gen(function*() {
        const value = yield* read("deleteToken", () => client.get(keys.token(tokenKey)))
        if (typeof value === "string" && value.startsWith("c:")) yield* remove("deleteToken", value.slice(2))
        yield* call("deleteToken", () => commands.effectSessionsDeleteToken(keys.token(tokenKey), ...pub(keys.token(tokenKey)), tokenKey))
      })

    /** What the index lists of a user, each with its session's fields (`undefined`: a key of the wrong type). */
    const indexed = (method: string, userId: string, cutoff: number) =>
      Effect.gen(function*() {
        const reply = (yield* call(method, () => commands.effectSessionsList(keys.user(wellFormed(userId)), String(cutoff)))) as Array<string>
        const members: Array<string> = []
        for (let i = 0; i + 1 < reply.length; i += 2) members.push(reply[i]!)
        return yield* Effect.forEach(members, (key) =>
          Effect.map(
            read(method, () => client.hmget(keys.session(key), "r", "t", "u", "e")),
            (fields) => ({ key, fields })
          ), { concurrency: "unbounded" })
      })

    // A record that does not decode (or a key of the wrong type) is skipped and deleted, so
    // that one bad session never blocks listing, logging out everywhere or an exclusive log-in.
    const sessionsOfUser = (userId: string): Effect.Effect<ReadonlyArray<Session>, SessionStoreError> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const entries = yield* indexed("sessionsOfUser", userId, now - retention)
        const out: Array<Session> = []
        for (const { fields, key } of entries) {
          if (fields === undefined) {
            yield* dropCorrupt("sessionsOfUser", key, "")
            continue
          }
          const [record, token, user] = fields
          if (record === null || record === undefined) continue
          // Keys are UTF-8, where every lone surrogate is U+FFFD: ids that differ only there
          // share an index, so the records say whose they are.
          if (user !== `+${wellFormed(userId)}`) continue
          const decoded = Either.getRight(Codec.decodeSession(record)).pipe(Option.getOrUndefined)
          if (decoded === undefined) yield* dropCorrupt("sessionsOfUser", key, token ?? "")
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

    // -- the limit on a user's sessions (maxSessionsPerUser) --------------------------------------

    let leases = 0

    /** Takes the user's lease, waiting on {@link leaseWait} while another log-in holds it. */
    const acquireLease = (lease: string, holder: string): Effect.Effect<void, SessionStoreError> =>
      call("rotateWithinLimit", () => client.set(lease, holder, "PX", LEASE_MILLIS, "NX")).pipe(
        Effect.flatMap((taken) => taken === "OK" ? Effect.void : Effect.fail(new LeaseBusy())),
        Effect.retry({ schedule: leaseWait, while: (e) => e instanceof LeaseBusy }),
        Effect.catchIf(
          (e): e is LeaseBusy => e instanceof LeaseBusy,
          () => new SessionStoreError({ method: "rotateWithinLimit", reason: "Unavailable", cause: new Error("the user's session limit stayed busy") })
        )
      )

    const rotateWithinLimit = (rotation: Rotation, limit: SessionLimit): Effect.Effect<LimitedRotation, SessionStoreError> =>
      Option.match(rotation.session.userId, {
        onNone: () => Effect.map(rotate(rotation), (won) => won ? LimitedRotation.Rotated({ ended: [] }) : LimitedRotation.Lost()),
        onSome: (userId) => {
          const lease = keys.lease(wellFormed(userId))
          // Unique per attempt and telling nothing (with hashIdsAtRest off a token key is the token).
          const holder = `${origin}:${++leases}`
          return Effect.acquireUseRelease(
            acquireLease(lease, holder),
            () => limitedUnderLease(rotation, limit, userId),
            () => Effect.ignore(call("rotateWithinLimit", () => commands.effectSessionsRelease(lease, holder)))
          )
        }
      })

    const limitedUnderLease = (rotation: Rotation, limit: SessionLimit, userId: string): Effect.Effect<LimitedRotation, SessionStoreError> =>
      Effect.gen(function*() {
        const method = "rotateWithinLimit"
        const now = yield* Clock.currentTimeMillis
        const self = rotation.session
        // Lost before anything else: the compare-and-set already fails.
        const current = yield* read(method, () => client.hmget(keys.session(self.key), "v", "t"))
        if (current === undefined || current[0] !== String(rotation.expectedVersion) || current[1] !== rotation.redirect.tokenKey) {
          return LimitedRotation.Lost()
        }
        const live: Array<Pick<Session, "key" | "lastAccessAt" | "createdAt">> = []
        const bad: Array<string> = []
        for (const { fields, key } of yield* indexed(method, userId, now - retention)) {
          if (key === self.key) continue
          if (fields === undefined) {
            bad.push(key)
            continue
          }
          const [record, , user, deadline] = fields
          if (record === null || record === undefined || user !== `+${wellFormed(userId)}`) continue
          const e = Number(deadline)
          if (!(e > now)) continue
          const parsed = Either.getRight(Codec.decodeSession(record)).pipe(Option.getOrUndefined)
          if (parsed === undefined) bad.push(key)
          else if (Option.getOrUndefined(parsed.userId) === userId) live.push(parsed)
        }
        const victims = sessionsToEnd(live, limit)
        if (victims === "refused") return LimitedRotation.Refused()
        if (!(yield* rotateWith(method, rotation, now))) return LimitedRotation.Lost()
        const ended: Array<string> = []
        for (const key of [...bad, ...victims.map((v) => v.key)]) {
          const token = yield* remove(method, key)
          if (token !== undefined) ended.push(token)
        }
        return LimitedRotation.Rotated({ ended })
      })

    const publishUserInvalidation = (userKey: string): Effect.Effect<void, SessionStoreError> =>
      Effect.asVoid(call("publishUserInvalidation", () =>
        shards === undefined
          ? client.publish(channel, userMessage(origin, userKey))
          // On the channel of the user's own slot: the users spread over the shards.
          : client.spublish(shards.ofKey(keys.userByKey(userKey)), userMessage(origin, userKey))))

    const revocationKey = keys.revocation

    // Two commands, not one step: a failed PUBLISH fails the call, and the instant, stored already,
    // still reaches the other processes at their next periodic read of it.
    const revokeUntil = (instant: number): Effect.Effect<void, SessionStoreError> =>
      Effect.zipRight(
        call("revokeUntil", () => client.zadd(revocationKey, "GT", instant, "until")),
        call("revokeUntil", () =>
          shards === undefined
            ? client.publish(channel, allMessage(origin))
            // On the channel of the revocation key's slot, which every process subscribes to.
            : client.spublish(shards.ofKey(revocationKey), allMessage(origin)))
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

    const listener = !isCluster(client)
      ? yield* listen(client, channel, origin, options.connectTimeout)
      : shards === undefined
      ? yield* listenCluster(client, options.nodes ?? [], channel, origin, options.connectTimeout)
      : yield* listenSharded(client, shards, origin, options.connectTimeout)

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
