/**
 * Every store through the one conformance suite: memory, SQLite (in memory and in a file),
 * PostgreSQL and Redis — plus what only the real backends have: layerConfig's choice of driver,
 * and Redis failing fast during an outage and recovering without a restart.
 *
 * PostgreSQL and Redis come from DATABASE_URL / REDIS_URL (see spec/services.ts); every run uses
 * its own table and key prefixes and removes them afterwards.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { assertSome, deepStrictEqual } from "@effect/vitest/utils"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { SqlClient } from "@effect/sql/SqlClient"
import { Cause, Clock, Config, ConfigProvider, Context, Duration, Effect, Exit, Layer, Logger, Option, Queue, Redacted, Stream, TestClock, TestContext } from "effect"
import { type Cluster, Redis as IORedis } from "ioredis"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer, connect, type Server, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DEFAULT_RETENTION, Persistence, SessionStoreError, layerMemory, layerMemoryWith } from "../src/Persistence.js"
import * as PgStore from "../src/Persistence/Pg.js"
import * as RedisStore from "../src/Persistence/Redis.js"
import * as Sql from "../src/Persistence/Sql.js"
import * as SqliteStore from "../src/Persistence/Sqlite.js"
import { makeKeys } from "../src/internal/redis/keys.js"
import { makeRedisStore } from "../src/internal/redis/store.js"
import { makeShardChannels } from "../src/internal/redis/shardChannels.js"
import { encodeArgs, sessionWrite, wellFormed } from "../src/internal/redis/scripts.js"
import { sqliteFilename } from "../src/internal/sql/databaseUrl.js"
import * as SecureRandom from "../src/SecureRandom.js"
import { Redirect, Session } from "../src/Session.js"
import { invalidationText, makeSession, persistenceSuite, type Residue, type SuiteOptions, uid } from "../src/internal/testing/persistenceSuite.js"
import { deleteRedisClusterKeys, deleteRedisKeys, postgresUrl, redisUrl, withRedisCluster, withService } from "./services.js"

const runId = randomBytes(4).toString("hex")

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

// The contract's expiry tests run with no retention past deadlines (a record is hidden at its
// deadline); the default retention is checked on its own below.
persistenceSuite("Memory", layerMemoryWith({ retention: 0 }))

// ---------------------------------------------------------------------------------------------
// SQL: hooks into the tables
// ---------------------------------------------------------------------------------------------

const sqlHooks = (prefix: string): SuiteOptions<SqlClient> => ({
  corrupt: (tokenKey, garbage) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const rows = yield* sql<{ session_key: string; redirect: string | null }>`SELECT session_key, redirect
        FROM ${sql(`${prefix}tokens`)} WHERE token_key = ${tokenKey}`
      const row = rows[0]
      if (row === undefined) return yield* Effect.dieMessage(`no token ${tokenKey} to corrupt`)
      if (row.redirect === null) {
        yield* sql`UPDATE ${sql(`${prefix}sessions`)} SET record = ${garbage} WHERE key = ${row.session_key}`
      } else {
        yield* sql`UPDATE ${sql(`${prefix}tokens`)} SET redirect = ${garbage} WHERE token_key = ${tokenKey}`
      }
    }),
  residue: (r: Residue) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const sessions = yield* sql<{ n: number | string }>`SELECT count(*) AS n FROM ${sql(`${prefix}sessions`)}
        WHERE key = ${r.sessionKey}`
      const tokens = yield* sql<{ n: number | string }>`SELECT count(*) AS n FROM ${sql(`${prefix}tokens`)}
        WHERE ${sql.in("token_key", r.tokenKeys)}`
      return Number(sessions[0]?.n ?? 0) + Number(tokens[0]?.n ?? 0)
    })
})

/** Drops the tables of a prefix when the layer closes (needs the SqlClient still open). */
const dropTablesOnClose = (prefix: string) =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const sql = yield* SqlClient
    yield* Effect.addFinalizer(() =>
      Effect.all([
        sql`DROP TABLE IF EXISTS ${sql(`${prefix}sessions`)}`,
        sql`DROP TABLE IF EXISTS ${sql(`${prefix}tokens`)}`,
        sql`DROP TABLE IF EXISTS ${sql(`${prefix}revocations`)}`
      ]).pipe(Effect.ignoreLogged)
    )
  }))

// Retention: by default the stores keep a record DEFAULT_RETENTION past its deadline, so
// that the service can still tell why a token is dead (idle, absolute, late use after rotation).
describe("Persistence retention past deadlines", () => {
  const retentionCase = (name: string, storeLayer: Layer.Layer<Persistence, unknown>) =>
    it.effect(`${name}: a record is kept until deadline + retention, then hidden and swept`, () =>
      Effect.gen(function*() {
        const store = yield* Persistence
        const now = yield* Clock.currentTimeMillis
        const s = makeSession(now)
        yield* store.create(s, now + 1000)
        yield* TestClock.adjust(1000 + Duration.toMillis(DEFAULT_RETENTION) - 1)
        assert.isTrue(Option.isSome(yield* store.loadSession(s.key)), "kept within the retention")
        assert.isTrue(Option.isSome(yield* store.load(s.tokenKey)))
        assert.strictEqual(yield* store.sweep, 0)
        yield* TestClock.adjust(1)
        assert.isTrue(Option.isNone(yield* store.loadSession(s.key)), "hidden after the retention")
        assert.isTrue(Option.isNone(yield* store.load(s.tokenKey)))
        assert.isAtMost(yield* store.sweep, 1)
      }).pipe(Effect.provide(storeLayer), Effect.provide(TestContext.TestContext)))
  retentionCase("Memory", layerMemory)
  retentionCase(
    "SQLite (in memory)",
    Sql.layer({ tablePrefix: "ret_" }).pipe(
      Layer.provide(SqliteClient.layer({ filename: ":memory:" })),
      Layer.provide(SecureRandom.layer)
    )
  )
})

// @effect/sql turns a failed ROLLBACK or COMMIT into a defect: that is how a connection dropped
// in the middle of a transaction surfaces (spec/faults.test.ts saw it as a 500 on PostgreSQL).
// SQLite's RAISE(ROLLBACK) ends the transaction inside the statement, so the ROLLBACK after it fails.
describe("SQL store: a transaction whose ROLLBACK fails as well", () => {
  it.effect("create and rotate fail with SessionStoreError (Unavailable), never a defect", () =>
    Effect.gen(function*() {
      const store = yield* Sql.make({ tablePrefix: "rb_" })
      const now = yield* Clock.currentTimeMillis
      const s = makeSession(now)
      yield* store.create(s, now + 60_000)
      const sql = yield* SqlClient
      yield* sql`CREATE TRIGGER rb_lost BEFORE INSERT ON rb_tokens BEGIN SELECT RAISE(ROLLBACK, 'connection lost'); END`
      const next = new Session({ ...s, tokenKey: uid("tok"), version: 1 })
      const redirect = new Redirect({
        tokenKey: s.tokenKey,
        sessionKey: s.key,
        rotatedAt: now,
        expiresAt: now + 1000,
        ip: s.ip,
        userAgentHash: s.userAgentHash,
        successorKey: next.tokenKey,
        sealedSuccessor: "sealed"
      })
      const cases: ReadonlyArray<readonly [string, Effect.Effect<unknown, SessionStoreError>]> = [
        ["create", store.create(makeSession(now), now + 60_000)],
        ["rotate", store.rotate({ session: next, expectedVersion: 0, redirect, expiresAt: now + 60_000 })]
      ]
      for (const [method, effect] of cases) {
        const exit = yield* Effect.exit(effect)
        assert.isTrue(Exit.isFailure(exit), `${method} failed`)
        if (Exit.isFailure(exit)) {
          assert.isFalse(Cause.isDie(exit.cause), `${method}: a defect instead of a typed error: ${Cause.pretty(exit.cause)}`)
          const e = Option.getOrThrow(Cause.failureOption(exit.cause))
          assert.instanceOf(e, SessionStoreError)
          deepStrictEqual([e.method, e.reason], [method, "Unavailable"])
        }
      }
      assertSome(yield* store.loadSession(s.key), s)
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(SqliteClient.layer({ filename: ":memory:" }), SecureRandom.layer))))
})

// SQLite, in memory: the store and the hooks share the one connection.
{
  const prefix = "es_"
  persistenceSuite(
    "SQLite (in memory)",
    Sql.layer({ tablePrefix: prefix, retention: 0 }).pipe(
      Layer.provideMerge(SqliteClient.layer({ filename: ":memory:" })),
      Layer.provide(SecureRandom.layer)
    ),
    sqlHooks(prefix)
  )
}

// SQLite, in a file: the convenience layer, and the hooks on a second connection to the file.
{
  const prefix = "effect_sessions_"
  const fileLayer = Layer.unwrapScoped(
    Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "effect-sessions-sqlite-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    ).pipe(Effect.map((dir) => {
      const filename = join(dir, "sessions.db")
      return SqliteStore.layer({ filename, retention: 0 }).pipe(
        Layer.provide(SecureRandom.layer),
        Layer.merge(SqliteClient.layer({ filename }))
      )
    }))
  )
  persistenceSuite("SQLite (file)", fileLayer, sqlHooks(prefix))
}

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

/** Builds a store layer and checks that it answers. */
const answers = <E>(storeLayer: Layer.Layer<Persistence, E, SecureRandom.SecureRandom>) =>
  Effect.gen(function*() {
    const store = yield* Persistence
    assert.isTrue(Option.isNone(yield* store.load(uid("nope"))))
  }).pipe(Effect.provide(storeLayer), Effect.provide(SecureRandom.layer))

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

const pgPrefix = `es_t_${runId}_`

await withService("PostgreSQL", postgresUrl, () => {
  const client = PgClient.layer({ url: Redacted.make(postgresUrl) })
  const store = Layer.merge(Sql.layer({ tablePrefix: pgPrefix, retention: 0 }), dropTablesOnClose(pgPrefix)).pipe(
    Layer.provideMerge(client),
    Layer.provide(SecureRandom.layer)
  )
  // The peer is "another process": its own pool and listener, through the convenience layer.
  const peer = PgStore.layer({ url: postgresUrl, tablePrefix: pgPrefix, retention: 0 }).pipe(Layer.provide(SecureRandom.layer))
  persistenceSuite("PostgreSQL", store, { ...sqlHooks(pgPrefix), peer })

  describe("Pg.layerConfig (PostgreSQL)", () => {
    it.live("DATABASE_URL=postgres://… builds the PostgreSQL store", () => {
      const prefix = `es_t_${runId}_cfg_`
      return answers(PgStore.layerConfig({ tablePrefix: prefix })).pipe(
        withEnv({ DATABASE_URL: postgresUrl }),
        Effect.ensuring(
          Effect.gen(function*() {
            const sql = yield* SqlClient
            yield* sql`DROP TABLE IF EXISTS ${sql(`${prefix}sessions`)}`
            yield* sql`DROP TABLE IF EXISTS ${sql(`${prefix}tokens`)}`
            yield* sql`DROP TABLE IF EXISTS ${sql(`${prefix}revocations`)}`
          }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(postgresUrl) })), Effect.ignoreLogged)
        )
      )
    })
  })
}, { describe, it })

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

class RawRedis extends Context.Tag("spec/RawRedis")<RawRedis, IORedis>() {}

const rawRedis = Layer.scoped(
  RawRedis,
  Effect.acquireRelease(
    Effect.sync(() => new IORedis(redisUrl, { maxRetriesPerRequest: 1 })),
    (c) => Effect.promise(() => c.quit())
  )
)

/** Deletes every key of a prefix when the layer closes. */
const deleteKeysOnClose = (prefix: string) =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const redis = yield* RawRedis
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => deleteRedisKeys(prefix, redis)).pipe(Effect.ignoreLogged)
    )
  }))

/** The suite's hooks on raw Redis (a single server or a cluster client: one key per command). */
const redisHooks = <I, S extends IORedis | Cluster>(prefix: string, tag: Context.Tag<I, S>): SuiteOptions<I> => {
  const keys = makeKeys(prefix)
  return {
    corrupt: (tokenKey, garbage) =>
      Effect.gen(function*() {
        const redis = yield* tag
        const value = yield* Effect.promise(() => redis.get(keys.token(tokenKey)))
        if (value === null) return yield* Effect.dieMessage(`no token ${tokenKey} to corrupt`)
        if (value.startsWith("c:")) yield* Effect.promise(() => redis.hset(keys.session(value.slice(2)), "r", garbage))
        else yield* Effect.promise(() => redis.set(keys.token(tokenKey), garbage, "KEEPTTL"))
      }),
    residue: (r: Residue) =>
      Effect.gen(function*() {
        const redis = yield* tag
        let n = 0
        for (const key of [keys.session(r.sessionKey), ...r.tokenKeys.map(keys.token)]) n += yield* Effect.promise(() => redis.exists(key))
        const indexed = r.userId === undefined ? null : yield* Effect.promise(() => redis.zscore(keys.user(r.userId!), r.sessionKey))
        return n + (indexed === null ? 0 : 1)
      })
  }
}

const redisPrefix = `es:t:${runId}:`

/** A TCP proxy in front of Redis that a test can cut and restore (an outage without touching Redis). */
const makeProxy = (target: URL) =>
  Effect.acquireRelease(
    Effect.async<{ readonly port: number; readonly cut: Effect.Effect<void>; readonly restore: Effect.Effect<void> }>((resume) => {
      const sockets = new Set<Socket>()
      const targetPort = Number(target.port || 6379)
      const targetHost = target.hostname || "127.0.0.1"
      const onConnection = (downstream: Socket) => {
        const upstream = connect({ host: targetHost, port: targetPort })
        for (const s of [downstream, upstream]) {
          sockets.add(s)
          s.on("error", () => {})
          s.on("close", () => {
            sockets.delete(s)
            downstream.destroy()
            upstream.destroy()
          })
        }
        downstream.pipe(upstream).pipe(downstream)
      }
      let server: Server = createServer(onConnection)
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({
          port,
          cut: Effect.async<void>((done) => {
            server.close(() => done(Effect.void))
            for (const s of sockets) s.destroy()
          }),
          restore: Effect.async<void>((done) => {
            server = createServer(onConnection)
            server.listen(port, "127.0.0.1", () => done(Effect.void))
          })
        }))
      })
    }),
    (proxy) => Effect.ignore(Effect.timeout(proxy.cut, "1 second"))
  )

await withService("Redis", redisUrl, () => {
  const store = Layer.merge(RedisStore.layer({ url: redisUrl, prefix: redisPrefix, retention: 0 }), deleteKeysOnClose(redisPrefix)).pipe(
    Layer.provideMerge(rawRedis),
    Layer.provide(SecureRandom.layer)
  )
  const peer = RedisStore.layer({ url: redisUrl, prefix: redisPrefix, retention: 0 }).pipe(Layer.provide(SecureRandom.layer))
  persistenceSuite("Redis", store, { ...redisHooks(redisPrefix, RawRedis), peer, ttl: true })

  layer(SecureRandom.layer, { excludeTestServices: true })("Redis outage", (it) => {
    const prefix = `${redisPrefix}outage:`
    it.effect("a request during an outage fails fast with Unavailable; the store recovers by itself", () =>
      Effect.gen(function*() {
        const proxy = yield* makeProxy(new URL(redisUrl))
        const url = new URL(redisUrl)
        url.hostname = "127.0.0.1"
        url.port = String(proxy.port)
        const store = yield* RedisStore.make({ url: url.toString(), prefix })
        const direct = yield* RedisStore.make({ url: redisUrl, prefix })
        const heard = yield* Queue.unbounded<string>()
        yield* Effect.forkScoped(Stream.runForEach(store.invalidations, (k) => Queue.offer(heard, invalidationText(k))))

        const now = Date.now()
        const s = makeSession(now)
        yield* store.create(s, now + 60_000)
        assert.isTrue(Option.isSome(yield* store.load(s.tokenKey)))

        yield* proxy.cut
        for (const attempt of [store.load(s.tokenKey), store.save(s, 0, now + 60_000), store.delete(s.key)]) {
          const started = Date.now()
          const exit = yield* Effect.exit(attempt as Effect.Effect<unknown, SessionStoreError>)
          const elapsed = Date.now() - started
          assert.isTrue(Exit.isFailure(exit), "a request during the outage must fail")
          if (Exit.isFailure(exit)) {
            const failure = Cause.failureOption(exit.cause)
            assert.isTrue(Option.isSome(failure), Cause.pretty(exit.cause))
            const e = Option.getOrThrow(failure)
            assert.instanceOf(e, SessionStoreError)
            assert.strictEqual(e.reason, "Unavailable")
          }
          assert.isBelow(elapsed, 1500, "failed fast")
        }

        yield* proxy.restore
        // Reconnects by itself (the retry strategy waits at most 1 s between attempts).
        let recovered = false
        for (let i = 0; i < 60 && !recovered; i++) {
          const exit = yield* Effect.exit(store.load(s.tokenKey))
          recovered = Exit.isSuccess(exit) && Option.isSome(exit.value)
          if (!recovered) yield* Effect.sleep("100 millis")
        }
        assert.isTrue(recovered, "the store did not recover within 6 s")

        // And the subscriber resubscribed: a write by another process is heard again.
        let resubscribed = false
        let current = s
        for (let i = 0; i < 60 && !resubscribed; i++) {
          const next = makeSession(now, { key: current.key, tokenKey: current.tokenKey, version: current.version + 1 })
          assert.isTrue(yield* direct.save(next, current.version, now + 60_000))
          current = next
          const got = yield* Queue.take(heard).pipe(Effect.timeout("100 millis"), Effect.option)
          resubscribed = Option.isSome(got) && got.value === s.tokenKey
        }
        assert.isTrue(resubscribed, "invalidations did not resume after the outage")
        yield* direct.delete(s.key)
      }).pipe(Effect.scoped), { timeout: 20_000 })
  })

  describe("layerConfig (Redis)", () => {
    it.live("REDIS_URL builds the Redis store", () =>
      answers(RedisStore.layerConfig({ prefix: `${redisPrefix}cfg:` })).pipe(withEnv({ REDIS_URL: redisUrl })))
  })
}, { describe, it })

// ---------------------------------------------------------------------------------------------
// Redis Cluster (REDIS_CLUSTER_NODES): the same suite, the same store module over a Cluster client
// ---------------------------------------------------------------------------------------------

class RawCluster extends Context.Tag("spec/RawCluster")<RawCluster, Cluster>() {}

await withRedisCluster((nodes) => {
  const prefix = `es:tc:${runId}:`
  const seeds = nodes.split(",").map((n) => {
    const u = new URL(n.includes("://") ? n.trim() : `redis://${n.trim()}`)
    return { host: u.hostname, port: Number(u.port) }
  })
  const rawCluster = Layer.scoped(
    RawCluster,
    Effect.acquireRelease(
      Effect.promise(async () => {
        const { Cluster } = await import("ioredis")
        const c = new Cluster(seeds, { redisOptions: { maxRetriesPerRequest: 1 } })
        await new Promise<void>((resolve) => c.once("ready", () => resolve()))
        return c
      }),
      (c) => Effect.promise(() => c.quit())
    )
  )
  const cleanUp = Layer.scopedDiscard(Effect.addFinalizer(() => Effect.promise(() => deleteRedisClusterKeys(prefix, nodes)).pipe(Effect.ignoreLogged)))
  const store = Layer.mergeAll(RedisStore.layerCluster({ nodes, prefix, retention: 0 }), cleanUp).pipe(
    Layer.provideMerge(rawCluster),
    Layer.provide(SecureRandom.layer)
  )
  const peer = RedisStore.layerCluster({ nodes, prefix, retention: 0 }).pipe(Layer.provide(SecureRandom.layer))
  persistenceSuite("Redis Cluster", store, { ...redisHooks(prefix, RawCluster), peer, ttl: true })

  /** A connection to each primary of the cluster, closed with the scope. */
  const primaries = Effect.acquireRelease(
    Effect.promise(async () => {
      const { Cluster } = await import("ioredis")
      const admin = new Cluster(seeds, { redisOptions: { maxRetriesPerRequest: 1 } })
      await new Promise<void>((resolve) => admin.once("ready", () => resolve()))
      return admin
    }),
    (admin) => Effect.sync(() => admin.disconnect())
  )
  /** The ids of the subscriber connections of a process on a node, from CLIENT LIST. */
  const subscriberIds = (node: IORedis, originId: string) =>
    Effect.promise(async () =>
      String(await node.call("CLIENT", "LIST")).split("\n").filter((line) => line.includes(` name=effect-sessions-sub:${originId} `))
        .map((line) => /\bid=(\d+)/.exec(line)?.[1]).filter((id): id is string => id !== undefined)
    )
  /** The primary that owns a key's slot (per the admin client's slot map). */
  const ownerOf = (admin: Cluster, key: string) =>
    Effect.promise(async () => {
      const slot = Number(await admin.cluster("KEYSLOT", key))
      const owner = admin.nodes("master").find((n) => `${n.options.host}:${n.options.port}` === admin.slots[slot]?.[0])
      if (owner === undefined) throw new Error(`no primary for slot ${slot}`)
      return owner
    })
  const scriptSlotChannel = (tokenKey: string) => makeShardChannels(prefix).ofKey(makeKeys(prefix).token(tokenKey))

  layer(SecureRandom.layer, { excludeTestServices: true })("Redis Cluster: the invalidation listener", (it) => {
    it.effect("feature: a write in one process reaches another process over SPUBLISH on the channel of its slot, SSUBSCRIBEd on the slot's primary; nothing goes over classic pub/sub", () =>
      Effect.gen(function*() {
        const admin = yield* primaries
        const originId = `shard-${uid("o").replace(/[^A-Za-z0-9]/g, "")}`
        const store = yield* RedisStore.makeCluster({ nodes, prefix, originId })
        const other = yield* RedisStore.makeCluster({ nodes, prefix })
        const heard = yield* Queue.unbounded<string>()
        yield* Effect.forkScoped(Stream.runForEach(store.invalidations, (k) => Queue.offer(heard, invalidationText(k))))
        const now = Date.now()
        const s = makeSession(now)
        const channel = scriptSlotChannel(s.tokenKey)
        // The channel is in the slot of the session's keys (where the script runs).
        assert.strictEqual(Number(yield* Effect.promise(() => admin.cluster("KEYSLOT", channel))), Number(yield* Effect.promise(() => admin.cluster("KEYSLOT", makeKeys(prefix).session(s.key)))))
        // A raw listener on each kind of channel: the sharded one on the slot's primary, the classic one anywhere.
        const raw = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const owner = await Effect.runPromise(ownerOf(admin, channel))
            const sharded = new IORedis({ host: owner.options.host!, port: owner.options.port!, maxRetriesPerRequest: 1 })
            const classic = new IORedis({ host: owner.options.host!, port: owner.options.port!, maxRetriesPerRequest: 1 })
            const got = { sharded: [] as Array<string>, classic: [] as Array<string> }
            sharded.on("smessage", (_ch: string, m: string) => got.sharded.push(m))
            classic.on("message", (_ch: string, m: string) => got.classic.push(m))
            await sharded.ssubscribe(channel)
            await classic.subscribe(`${prefix}invalidate`)
            // Both processes subscribed (this one's store and the raw listener), on the slot's primary.
            const counts = (await owner.call("PUBSUB", "SHARDNUMSUB", channel)) as [string, number]
            return { sharded, classic, got, owner, subscribers: Number(counts[1]) }
          }),
          (r) => Effect.sync(() => {
            r.sharded.disconnect()
            r.classic.disconnect()
          })
        )
        assert.isAtLeast(raw.subscribers, 3, "the two stores and the raw listener SSUBSCRIBEd the slot's channel on its primary")
        const stats = () =>
          Effect.promise(() =>
            Promise.all(admin.nodes("master").map(async (n) => {
              const info = await n.info("commandstats")
              const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
              return { publish: calls("publish"), spublish: calls("spublish") }
            }))
          )
        const before = yield* stats()
        yield* other.create(s, now + 60_000)
        assert.isTrue(yield* other.save(makeSession(now, { key: s.key, tokenKey: s.tokenKey, version: 1 }), 0, now + 60_000))
        assert.strictEqual(yield* Queue.take(heard).pipe(Effect.timeout("5 seconds")), s.tokenKey)
        for (let i = 0; i < 50 && raw.got.sharded.length === 0; i++) yield* Effect.sleep("20 millis")
        assert.isTrue(raw.got.sharded.some((m) => m.endsWith(`:${s.tokenKey}`)), "the save's message went out on the slot's shard channel")
        const after = yield* stats()
        assert.isAbove(after.reduce((n, x) => n + x.spublish, 0), before.reduce((n, x) => n + x.spublish, 0), "SPUBLISH was called")
        // User invalidations go the same way (on the channel of the user's slot).
        yield* other.publishUserInvalidation("some-user-key")
        assert.strictEqual(yield* Queue.take(heard).pipe(Effect.timeout("5 seconds")), "user:some-user-key")
        deepStrictEqual(raw.got.classic, [], "nothing on the classic channel")
        deepStrictEqual(
          after.map((x) => x.publish),
          before.map((x) => x.publish),
          "no PUBLISH on any primary"
        )
        yield* other.delete(s.key)
      }).pipe(Effect.scoped), { timeout: 30_000 })

    it.effect("feature: when a subscriber connection ends, the store tells its consumers All, subscribes every slot's channel again and hears the other processes' writes", () =>
      Effect.gen(function*() {
        const admin = yield* primaries
        const originId = `kill-${uid("o").replace(/[^A-Za-z0-9]/g, "")}`
        const store = yield* RedisStore.makeCluster({ nodes, prefix, originId })
        const other = yield* RedisStore.makeCluster({ nodes, prefix })
        const heard = yield* Queue.unbounded<string>()
        yield* Effect.forkScoped(Stream.runForEach(store.invalidations, (k) => Queue.offer(heard, invalidationText(k))))
        const now = Date.now()
        const s = makeSession(now)
        yield* other.create(s, now + 60_000)
        // Heard before the kill.
        assert.isTrue(yield* other.save(makeSession(now, { key: s.key, tokenKey: s.tokenKey, version: 1 }), 0, now + 60_000))
        assert.strictEqual(yield* Queue.take(heard).pipe(Effect.timeout("5 seconds")), s.tokenKey)
        // One subscriber connection per primary, each subscribed to the channels of its slots.
        const masters = admin.nodes("master")
        const perNode = yield* Effect.forEach(masters, (n) => subscriberIds(n, originId))
        deepStrictEqual(perNode.map((ids) => ids.length), masters.map(() => 1))
        const channelsPerNode = yield* Effect.forEach(masters, (n) => Effect.promise(async () => ((await n.call("PUBSUB", "SHARDCHANNELS", `${prefix}inv{*`)) as Array<string>).length))
        assert.strictEqual(channelsPerNode.reduce((a, b) => a + b, 0), 16_384, "every slot's channel, on the primary that owns it")
        // Kill the connection on the primary of the session's slot.
        const owner = yield* ownerOf(admin, makeKeys(prefix).session(s.key))
        const [victim] = yield* subscriberIds(owner, originId)
        assert.strictEqual(Number(yield* Effect.promise(() => owner.call("CLIENT", "KILL", "ID", victim!))), 1)
        assert.strictEqual(yield* Queue.take(heard).pipe(Effect.timeout("10 seconds")), "*", "All after the resubscription")
        // Subscribed again: new connections, every channel.
        const again = yield* Effect.forEach(masters, (n) => subscriberIds(n, originId))
        deepStrictEqual(again.map((ids) => ids.length), masters.map(() => 1))
        // Client ids count per server, so another primary may well have a client with the victim's id.
        const ownerAt = masters.findIndex((n) => n.options.port === owner.options.port)
        assert.isAtLeast(ownerAt, 0)
        assert.notInclude(again[ownerAt]!, victim!, "a new connection on the primary whose connection was killed")
        assert.isTrue(yield* other.save(makeSession(now, { key: s.key, tokenKey: s.tokenKey, version: 2 }), 1, now + 60_000))
        assert.strictEqual(yield* Queue.take(heard).pipe(Effect.timeout("5 seconds")), s.tokenKey, "heard again")
        yield* other.delete(s.key)
      }).pipe(Effect.scoped), { timeout: 30_000 })

    /** Moves `slot` from the primary `from` to the primary `to`, keys and all (as redis-cli --cluster reshard does). */
    const moveSlot = (slot: number, from: IORedis, to: IORedis) =>
      Effect.promise(async () => {
        const fromId = String(await from.call("CLUSTER", "MYID"))
        const toId = String(await to.call("CLUSTER", "MYID"))
        await to.call("CLUSTER", "SETSLOT", slot, "IMPORTING", fromId)
        await from.call("CLUSTER", "SETSLOT", slot, "MIGRATING", toId)
        for (;;) {
          const keys = (await from.call("CLUSTER", "GETKEYSINSLOT", slot, 100)) as Array<string>
          if (keys.length === 0) break
          await from.call("MIGRATE", to.options.host!, to.options.port!, "", 0, 5000, "KEYS", ...keys)
        }
        await to.call("CLUSTER", "SETSLOT", slot, "NODE", toId)
        await from.call("CLUSTER", "SETSLOT", slot, "NODE", toId)
      })

    it.effect("feature: when a slot moves to another primary, the store tells its consumers All, subscribes the slot's channel on its new primary and hears the writes there", () =>
      Effect.gen(function*() {
        const admin = yield* primaries
        const originId = `move-${uid("o").replace(/[^A-Za-z0-9]/g, "")}`
        const store = yield* RedisStore.makeCluster({ nodes, prefix, originId })
        const other = yield* RedisStore.makeCluster({ nodes, prefix })
        const heard = yield* Queue.unbounded<string>()
        yield* Effect.forkScoped(Stream.runForEach(store.invalidations, (k) => Queue.offer(heard, invalidationText(k))))
        const now = Date.now()
        const s = makeSession(now)
        yield* other.create(s, now + 60_000)
        assert.isTrue(yield* other.save(makeSession(now, { key: s.key, tokenKey: s.tokenKey, version: 1 }), 0, now + 60_000))
        assert.strictEqual(yield* Queue.take(heard).pipe(Effect.timeout("5 seconds")), s.tokenKey)
        const slot = Number(yield* Effect.promise(() => admin.cluster("KEYSLOT", makeKeys(prefix).session(s.key))))
        const from = yield* ownerOf(admin, makeKeys(prefix).session(s.key))
        const to = admin.nodes("master").find((n) => n !== from)!
        const channel = scriptSlotChannel(s.tokenKey)
        // Moved there, and back at the end whatever happens.
        yield* Effect.acquireRelease(moveSlot(slot, from, to), () => moveSlot(slot, to, from).pipe(Effect.ignore))
        assert.strictEqual(yield* Queue.take(heard).pipe(Effect.timeout("10 seconds")), "*", "All after the move")
        const subscribed = (node: IORedis) => Effect.promise(async () => Number(((await node.call("PUBSUB", "SHARDNUMSUB", channel)) as [string, number])[1]))
        assert.isAtLeast(yield* subscribed(to), 1, "the slot's channel is subscribed on its new primary")
        // The other process's client follows the move (MOVED); its write publishes on the new primary.
        let heardAgain = false
        let version = 1
        for (let i = 0; i < 20 && !heardAgain; i++) {
          const saved = yield* Effect.either(other.save(makeSession(now, { key: s.key, tokenKey: s.tokenKey, version: version + 1 }), version, now + 60_000))
          if (saved._tag === "Right" && saved.right) version++
          const got = yield* Queue.take(heard).pipe(Effect.timeout("250 millis"), Effect.option)
          heardAgain = Option.isSome(got) && got.value === s.tokenKey
        }
        assert.isTrue(heardAgain, "a write on the new primary is heard")
        yield* other.delete(s.key)
      }).pipe(Effect.scoped), { timeout: 40_000 })

    /** Runs `build` with a logger that keeps the messages logged. */
    const logged = <A, E, R>(build: Effect.Effect<A, E, R>) =>
      Effect.gen(function*() {
        const lines: Array<string> = []
        const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => {
          lines.push(Array.isArray(message) ? message.join(" ") : String(message))
        }))
        const value = yield* build.pipe(Effect.provide(capture))
        return { value, lines }
      })

    it.effect("feature: the store says at start which pub/sub it chose; classic pub/sub (what Redis < 7 gets) still carries the invalidations, on one subscriber connection, and a killed one gives All and hearing again", () =>
      Effect.gen(function*() {
        const admin = yield* primaries
        const sharded = yield* logged(RedisStore.makeCluster({ nodes, prefix }))
        assert.isTrue(sharded.lines.some((l) => l.includes("sharded pub/sub (SPUBLISH / SSUBSCRIBE")), sharded.lines.join("\n"))
        const originId = `classic-${uid("o").replace(/[^A-Za-z0-9]/g, "")}`
        const classicOptions = { url: RedisStore.DEFAULT_URL, nodes: seeds, prefix, connectTimeout: 5000, retention: 0, shardedPubSub: false }
        const classic = yield* logged(makeRedisStore({ ...classicOptions, originId }))
        assert.isTrue(classic.lines.some((l) => l.includes("classic pub/sub (PUBLISH / SUBSCRIBE")), classic.lines.join("\n"))
        const store = classic.value
        const other = yield* makeRedisStore({ ...classicOptions, originId: `${originId}-other` })
        const heard = yield* Queue.unbounded<string>()
        yield* Effect.forkScoped(Stream.runForEach(store.invalidations, (k) => Queue.offer(heard, invalidationText(k))))
        const now = Date.now()
        const s = makeSession(now)
        yield* other.create(s, now + 60_000)
        assert.isTrue(yield* other.save(makeSession(now, { key: s.key, tokenKey: s.tokenKey, version: 1 }), 0, now + 60_000))
        assert.strictEqual(yield* Queue.take(heard).pipe(Effect.timeout("5 seconds")), s.tokenKey)
        // One connection in all, on one node of its choice.
        const perNode = yield* Effect.forEach(admin.nodes("all"), (n) => subscriberIds(n, originId))
        assert.strictEqual(perNode.flat().length, 1)
        const node = admin.nodes("all")[perNode.findIndex((ids) => ids.length === 1)]!
        assert.strictEqual(Number(yield* Effect.promise(() => node.call("CLIENT", "KILL", "ID", perNode.flat()[0]!))), 1)
        assert.strictEqual(yield* Queue.take(heard).pipe(Effect.timeout("10 seconds")), "*", "All after the reconnect")
        assert.isTrue(yield* other.save(makeSession(now, { key: s.key, tokenKey: s.tokenKey, version: 2 }), 1, now + 60_000))
        assert.strictEqual(yield* Queue.take(heard).pipe(Effect.timeout("5 seconds")), s.tokenKey, "heard again")
        yield* other.delete(s.key)
      }).pipe(Effect.scoped), { timeout: 30_000 })
  })

  describe("layerClusterConfig (Redis Cluster)", () => {
    it.live("REDIS_CLUSTER_NODES builds the Redis store on the cluster", () =>
      answers(RedisStore.layerClusterConfig({ prefix: `${prefix}cfg:` })).pipe(withEnv({ REDIS_CLUSTER_NODES: nodes })))
  })
}, { describe, it })

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

describe("Redis scripts' arguments", () => {
  it("one JSON record that Redis's cjson can read: lone surrogates become U+FFFD, as UTF-8 would make them", () => {
    assert.strictEqual(wellFormed("a\ud800b\udfffc"), "a\ufffdb\ufffdc")
    assert.strictEqual(wellFormed("\ud83d\ude00 é"), "\ud83d\ude00 é", "pairs and other characters are kept")
    const s = makeSession(1000, { userId: Option.some("ada\udbff") })
    const json = encodeArgs(sessionWrite(s, 1000, 51_000, 10_000))
    const decoded = JSON.parse(json) as Record<string, string>
    deepStrictEqual(decoded, { key: s.key, token: s.tokenKey, version: "0", user: "+ada\ufffd", record: decoded["record"]!, px: "60000", e: "51000" })
  })
})

describe("sqliteFilename (Sqlite.layerConfig's reading of DATABASE_URL)", () => {
  it("reads where the database is", () => {
    assert.strictEqual(sqliteFilename("sqlite::memory:"), ":memory:")
    assert.strictEqual(sqliteFilename("sqlite:data/sessions.db"), "data/sessions.db")
    assert.strictEqual(sqliteFilename("sqlite:///var/lib/s.db"), "/var/lib/s.db")
    assert.strictEqual(sqliteFilename("file:///var/lib/s%20x.db"), "/var/lib/s x.db")
    assert.strictEqual(sqliteFilename("file:/tmp/s.db"), "/tmp/s.db")
    assert.strictEqual(sqliteFilename("SQLite:x.db"), "x.db")
    assert.isUndefined(sqliteFilename("postgres://u@h:5432/db"))
    assert.isUndefined(sqliteFilename("mysql://h/db"))
    assert.isUndefined(sqliteFilename("sqlite:"))
    assert.isUndefined(sqliteFilename("not a url"))
  })
})

describe("Sqlite.layerConfig", () => {
  it.live("DATABASE_URL=sqlite:… builds the SQLite store", () =>
    answers(SqliteStore.layerConfig()).pipe(withEnv({ DATABASE_URL: "sqlite::memory:" })))

  it.live("takes the url config it is given instead of DATABASE_URL", () =>
    answers(SqliteStore.layerConfig({ url: Config.string("MY_DB") })).pipe(
      withEnv({ MY_DB: "sqlite::memory:", DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" })
    ))
})
