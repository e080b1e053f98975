/**
 * Cache coherence across processes: two service instances (two layers, each with its own store
 * connections, origin id and cache — two "processes") over the same Redis and over the same
 * PostgreSQL. A change made through one — destroy, rotation, log in, log out, log out
 * everywhere, log everybody out, a data write — is seen by the other, which had the session cached, within 100 ms.
 *
 * Each measurement: instance B resolves the token until its cache answers (checked: the second
 * resolve makes no store call), instance A makes the change, and B polls every 5 ms until it sees
 * it. The latency is counted from the moment A's change returned. A loaded machine can delay a
 * message: a measurement over 100 ms is repeated (at most 3 attempts in all); a change never seen
 * within 2 s fails at once.
 *
 * Then what a reconnect does to coherence: a message published while B's subscription (Redis) or
 * LISTEN connection (PostgreSQL) is down is lost; B must not keep serving the stale entry.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import * as PgClient from "@effect/sql-pg/PgClient"
import { SqlClient } from "@effect/sql/SqlClient"
import { Context, Effect, Layer, Option, Queue, Redacted, Scope, Stream } from "effect"
import { Redis as IORedis } from "ioredis"
import { randomBytes } from "node:crypto"
import { performance } from "node:perf_hooks"
import * as Persistence from "../src/Persistence.js"
import * as Testing from "../src/testing.js"
import * as PgStore from "../src/Persistence/Pg.js"
import * as RedisStore from "../src/Persistence/Redis.js"
import * as SecureRandom from "../src/SecureRandom.js"
import * as Session from "../src/Session.js"
import type * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { withParams } from "./helpers/processes.js"
import { primariesOf, withNode } from "./helpers/redisCluster.js"
import { deleteRedisClusterKeys, deleteRedisKeys, postgresUrl, redisUrl, withRedisCluster, withService } from "./services.js"

const runId = randomBytes(4).toString("hex")

const BOUND_MS = 100
const POLL_MS = 5
const GIVE_UP_MS = 2000
const ATTEMPTS = 3

/**
 * Caches on, long timings: nothing but the change under test moves a session. (A cached entry is
 * answered only until its session's next touch, which revalidates it against the store: the long
 * touch interval keeps the cache answering for the whole test.)
 */
const config: SessionConfig.SessionConfigInput = {
  cache: { capacity: 1000, idleTimeout: "1 hour" },
  idleTimeout: "30 minutes",
  touchInterval: "10 minutes",
  idRotationInterval: "15 minutes",
  gracePeriod: "1 minute"
}

const client = Session.client({ ip: "198.51.100.7", userAgent: "coherence/1" })
const tok = (h: Sessions.ActiveSession) => Redacted.value(h.token)

/** Every latency measured, for the summary printed at the end. */
const figures: Array<{ readonly store: string; readonly change: string; readonly ms: number; readonly attempts: number }> = []
afterAll(() => {
  if (figures.length === 0) return
  const lines = figures.map((f) => `  ${f.store.padEnd(10)} ${f.change.padEnd(34)} ${f.ms.toFixed(1).padStart(6)} ms${f.attempts > 1 ? ` (attempt ${f.attempts})` : ""}`)
  const max = Math.max(...figures.map((f) => f.ms))
  console.info(`coherence latencies (bound ${BOUND_MS} ms, max ${max.toFixed(1)} ms):\n${lines.join("\n")}`)
})

interface Process {
  readonly sessions: Sessions.SessionsShape
  /** Store calls made by this process so far. */
  readonly storeCalls: () => number
}

/** Builds one "process": the store layer, counted, and the service with its cache over it. */
const makeProcess = (
  storeLayer: Layer.Layer<Persistence.Persistence, unknown>,
  scope: Scope.Scope,
  wrap: (store: Persistence.PersistenceShape) => Persistence.PersistenceShape = (store) => store,
  loader: Layer.Layer<never> | Layer.Layer<Sessions.UserLoader> = Layer.empty
) =>
  Effect.gen(function*() {
    const raw = Context.get(yield* Layer.buildWithScope(storeLayer, scope), Persistence.Persistence)
    const counted = Testing.counted(wrap(raw))
    const service = Sessions.layer(config).pipe(
      Layer.provide(Layer.succeed(Persistence.Persistence, counted.store)),
      Layer.provide(loader)
    )
    const sessions = Context.get(yield* Layer.buildWithScope(service, scope), Sessions.Sessions)
    const storeCalls = () => Object.values(counted.calls()).reduce((a, b) => a + b, 0)
    return { sessions, storeCalls } satisfies Process
  })

/** Resolves `token` in `p` until it is answered from the cache (no store call); fails otherwise. */
const cached = (p: Process, token: string) =>
  Effect.gen(function*() {
    const first = yield* p.sessions.resolve(token, client)
    assert.isTrue(Option.isSome(first.session), `the token resolves (outcome ${first.outcome})`)
    // The invalidations of the change that made this token may still be on their way: a read they
    // overtake is not cached (by design), so give them a moment before requiring a cache hit.
    let before = p.storeCalls()
    let second = yield* p.sessions.resolve(token, client)
    for (let attempt = 0; attempt < 20 && p.storeCalls() !== before; attempt++) {
      yield* Effect.sleep("10 millis")
      before = p.storeCalls()
      second = yield* p.sessions.resolve(token, client)
    }
    assert.isTrue(Option.isSome(second.session))
    assert.strictEqual(p.storeCalls(), before, "the second resolve was answered by the cache")
    return Option.getOrThrow(second.session)
  })

interface Scenario {
  /** The change, through process A. */
  readonly act: Effect.Effect<unknown, unknown>
  /** Whether process B sees the change (polled). */
  readonly seen: Effect.Effect<boolean, unknown>
}

/**
 * Measures how long B takes to see A's change: `prepare` sets a session up (B caching it) and
 * returns the change and the check. Repeated at most {@link ATTEMPTS} times while over the bound.
 */
const measure = (store: string, change: string, prepare: Effect.Effect<Scenario, unknown>) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const scenario = yield* prepare
      assert.isFalse(yield* scenario.seen, "before the change, B does not see it")
      yield* scenario.act
      const done = performance.now()
      let latency: number | undefined
      while (latency === undefined) {
        if (yield* scenario.seen) latency = performance.now() - done
        else if (performance.now() - done > GIVE_UP_MS) assert.fail(`${store}: B never saw the ${change} (waited ${GIVE_UP_MS} ms)`)
        else yield* Effect.sleep(POLL_MS)
      }
      latencies.push(latency)
      if (latency < BOUND_MS) {
        figures.push({ store, change, ms: latency, attempts: attempt })
        return latency
      }
    }
    return assert.fail(`${store}: B saw the ${change} only after ${latencies.map((l) => `${l.toFixed(1)} ms`).join(", ")} (bound ${BOUND_MS} ms)`)
  })

/** The coherence tests for one backend; `instance(id)` builds a store layer with origin id `id`. */
const coherenceSuite = (
  store: string,
  instance: (originId: string) => Layer.Layer<Persistence.Persistence, unknown>,
  channel: {
    /** Whether the process with this origin id listens for invalidations (subscribed / LISTENing). */
    readonly listening: (originId: string) => Effect.Effect<boolean, unknown>
    /** Cuts the invalidation channel of the process with this origin id (its subscriber / LISTEN connection). */
    readonly cut: (originId: string) => Effect.Effect<void, unknown>
  }
) =>
  describe(`cache coherence across processes: ${store}`, () => {
    let instances = 0
    /** Waits (at most 5 s) until the process listens; whether it does. */
    const listening = (originId: string) =>
      Effect.gen(function*() {
        for (let i = 0; i < 200; i++) {
          if (yield* channel.listening(originId)) return true
          yield* Effect.sleep(25)
        }
        return false
      })
    /** Two processes, both listening for invalidations (a process that does not listen yet is another matter: see below). */
    const twoProcesses = Effect.gen(function*() {
      const scope = yield* Effect.scope
      const n = ++instances
      const ids = { a: `coh-${runId}-${n}-A`, b: `coh-${runId}-${n}-B` }
      const a = yield* makeProcess(instance(ids.a), scope)
      const b = yield* makeProcess(instance(ids.b), scope)
      assert.isTrue(yield* listening(ids.a), "A listens for invalidations")
      assert.isTrue(yield* listening(ids.b), "B listens for invalidations")
      return { a, b, ids }
    })

    const gone = (b: Process, token: string) => Effect.map(b.sessions.resolve(token, client), (r) => Option.isNone(r.session))

    it.live(`destroy in A: B's resolve of the cached token finds no session within ${BOUND_MS} ms`, () =>
      Effect.gen(function*() {
        const { a, b } = yield* twoProcesses
        yield* measure(store, "destroy", Effect.gen(function*() {
          const h = yield* a.sessions.create(client)
          yield* cached(b, tok(h))
          return { act: a.sessions.destroy(h), seen: gone(b, tok(h)) }
        }))
      }).pipe(Effect.scoped))

    it.live(`rotation in A (grace period): B's resolve of the old token follows to the new one within ${BOUND_MS} ms`, () =>
      Effect.gen(function*() {
        const { a, b } = yield* twoProcesses
        yield* measure(store, "rotation (regenerateId)", Effect.gen(function*() {
          const h = yield* a.sessions.create(client)
          yield* cached(b, tok(h))
          let successor: string | undefined
          return {
            act: Effect.map(a.sessions.regenerateId(h), (next) => {
              successor = tok(next)
            }),
            seen: Effect.map(b.sessions.resolve(tok(h), client), (r) =>
              r.outcome === "followed" && Option.isSome(r.session) && tok(r.session.value) === successor)
          }
        }))
      }).pipe(Effect.scoped))

    it.live(`rotation in A without grace: B's resolve of the old token finds no session within ${BOUND_MS} ms`, () =>
      Effect.gen(function*() {
        const { a, b } = yield* twoProcesses
        yield* measure(store, "rotation without grace", Effect.gen(function*() {
          const h = yield* a.sessions.create(client)
          yield* cached(b, tok(h))
          return { act: a.sessions.regenerateId(h, { grace: false }), seen: gone(b, tok(h)) }
        }))
      }).pipe(Effect.scoped))

    it.live(`logIn in A: B's resolve of the pre-login token finds no session within ${BOUND_MS} ms`, () =>
      Effect.gen(function*() {
        const { a, b } = yield* twoProcesses
        yield* measure(store, "logIn", Effect.gen(function*() {
          const h = yield* a.sessions.create(client)
          yield* cached(b, tok(h))
          return { act: a.sessions.logIn(h, `ada-${runId}`), seen: gone(b, tok(h)) }
        }))
      }).pipe(Effect.scoped))

    it.live(`logOut in A: B's resolve of the logged-in token finds no session within ${BOUND_MS} ms`, () =>
      Effect.gen(function*() {
        const { a, b } = yield* twoProcesses
        yield* measure(store, "logOut", Effect.gen(function*() {
          const h = yield* a.sessions.logIn(yield* a.sessions.create(client), `bob-${runId}`)
          const viaB = yield* cached(b, tok(h))
          deepStrictEqual(Option.getOrNull(viaB.session.userId), `bob-${runId}`)
          return { act: a.sessions.logOut(h), seen: gone(b, tok(h)) }
        }))
      }).pipe(Effect.scoped))

    it.live(`logOutEverywhere in A: B's resolves of every session of the user find nothing within ${BOUND_MS} ms`, () =>
      Effect.gen(function*() {
        const { a, b } = yield* twoProcesses
        yield* measure(store, "logOutEverywhere", Effect.gen(function*() {
          const user = `eve-${runId}-${randomBytes(3).toString("hex")}`
          const h1 = yield* a.sessions.logIn(yield* a.sessions.create(client), user)
          const h2 = yield* a.sessions.logIn(yield* a.sessions.create(client), user)
          yield* cached(b, tok(h1))
          yield* cached(b, tok(h2))
          return {
            act: Effect.tap(a.sessions.logOutEverywhere(user), (n) => assert.strictEqual(n, 2)),
            seen: Effect.map(Effect.all([gone(b, tok(h1)), gone(b, tok(h2))]), ([x, y]) => x && y)
          }
        }))
      }).pipe(Effect.scoped))

    // Live clock: the sessions of later tests are born after this switch, so it ends none of them.
    it.live(`feature: logOutEveryone in A: B's resolves of the sessions it cached — logged in or not, made by A or by B — find nothing within ${BOUND_MS} ms`, () =>
      Effect.gen(function*() {
        const { a, b } = yield* twoProcesses
        yield* measure(store, "logOutEveryone", Effect.gen(function*() {
          const h1 = yield* a.sessions.logIn(yield* a.sessions.create(client), `zoe-${runId}`)
          const h2 = yield* b.sessions.create(client)
          yield* cached(b, tok(h1))
          yield* cached(b, tok(h2))
          // Past their birth's millisecond (the switch ends a session born in its own millisecond too).
          yield* Effect.sleep(2)
          return {
            act: a.sessions.logOutEveryone(),
            seen: Effect.map(Effect.all([gone(b, tok(h1)), gone(b, tok(h2))]), ([x, y]) => x && y)
          }
        }))
      }).pipe(Effect.scoped))

    it.live(`a data write in A: B's handle reads the new value within ${BOUND_MS} ms`, () =>
      Effect.gen(function*() {
        const { a, b } = yield* twoProcesses
        yield* measure(store, "data write (set)", Effect.gen(function*() {
          const h = yield* a.sessions.create(client)
          yield* a.sessions.set(h, "theme", "light")
          const hb = yield* cached(b, tok(h))
          deepStrictEqual(Option.getOrNull(yield* b.sessions.get(hb, "theme")), "light")
          const before = b.storeCalls()
          deepStrictEqual(Option.getOrNull(yield* b.sessions.get(hb, "theme")), "light")
          assert.strictEqual(b.storeCalls(), before, "B reads the value from its cache")
          return {
            act: a.sessions.set(h, "theme", "dark"),
            seen: Effect.map(b.sessions.get(hb, "theme"), (v) => Option.getOrNull(v) === "dark")
          }
        }))
      }).pipe(Effect.scoped))

    // BUG (PostgreSQL): the SQL store forks its LISTEN and does not wait for it, so the layer is
    // ready — and the process serves and caches sessions — before it hears invalidations; a change
    // made by another process in that window is never heard, and the entry stays stale (until the
    // session's next touch, see below). The Redis store subscribes before its layer is ready.
    it.live("a process is coherent from the moment its layer is built (5 fresh processes, each caching a session at once)", () =>
      Effect.gen(function*() {
        const scope = yield* Effect.scope
        const n = ++instances
        const idA = `coh-${runId}-${n}-A`
        const a = yield* makeProcess(instance(idA), scope)
        assert.isTrue(yield* listening(idA))
        const stale: Array<number> = []
        for (let i = 0; i < 5; i++) {
          const h = yield* a.sessions.create(client)
          const b = yield* makeProcess(instance(`coh-${runId}-${n}-B${i}`), scope)
          yield* cached(b, tok(h))
          yield* a.sessions.destroy(h)
          let seen = false
          const done = performance.now()
          while (!seen && performance.now() - done < 1000) {
            seen = yield* gone(b, tok(h))
            if (!seen) yield* Effect.sleep(POLL_MS)
          }
          if (!seen) stale.push(i)
        }
        deepStrictEqual(stale, [], "fresh processes that never heard a destroy made right after they started (still stale after 1 s)")
      }).pipe(Effect.scoped))

    // BUG (both stores): the cache is filled after a store read without checking whether an
    // invalidation of that key arrived while the read was in flight. A read that returns just
    // before another process rotates (or destroys, or writes) the session, but whose reply is
    // processed after the invalidation, puts the old record back in the cache (until the next touch):
    // B keeps answering the rotated token as current ("valid", no Set-Cookie) and keeps serving
    // a destroyed session. Under load every save publishes an invalidation of the current token,
    // so the window is always open (see spec/multiprocess.test.ts). Suggested fix: an
    // invalidation generation (per key or global) read before the store call; cache the result
    // only if no invalidation came in between.
    it.live("an invalidation that arrives while B is reading the same record is not undone by the read", () =>
      Effect.gen(function*() {
        const scope = yield* Effect.scope
        const n = ++instances
        const ids = { a: `coh-${runId}-${n}-A`, b: `coh-${runId}-${n}-B` }
        let delay = 0
        // B's store answers `load` only after `delay` ms: the reply of a read is processed late.
        const slowLoads = (store: Persistence.PersistenceShape): Persistence.PersistenceShape => ({
          ...store,
          load: (tokenKey) => Effect.tap(store.load(tokenKey), () => (delay > 0 ? Effect.sleep(delay) : Effect.void))
        })
        const a = yield* makeProcess(instance(ids.a), scope)
        const b = yield* makeProcess(instance(ids.b), scope, slowLoads)
        assert.isTrue(yield* listening(ids.a))
        assert.isTrue(yield* listening(ids.b))
        const h = yield* a.sessions.create(client)
        delay = 300
        const reading = yield* Effect.fork(b.sessions.resolve(tok(h), client))
        yield* Effect.sleep(50) // B has read the record; its reply waits
        const next = yield* a.sessions.regenerateId(h) // B hears the invalidation while its read is pending
        const first = yield* reading
        assert.isTrue(Option.isSome(first.session), "the read that began before the rotation finds the session")
        delay = 0
        yield* Effect.sleep(BOUND_MS)
        const r = yield* b.sessions.resolve(tok(h), client)
        assert.strictEqual(r.outcome, "followed", "B answers the rotated token from a stale cache entry")
        assert.strictEqual(Option.map(r.session, tok).pipe(Option.getOrNull), tok(next))
      }).pipe(Effect.scoped))

    it.live(`security: a user loaded in B is loaded again there within ${BOUND_MS} ms of refreshUser in A; the channel carries a hash of the user ID`, () =>
      Effect.gen(function*() {
        const scope = yield* Effect.scope
        const n = ++instances
        const ids = { a: `coh-${runId}-${n}-A`, b: `coh-${runId}-${n}-B`, o: `coh-${runId}-${n}-O` }
        const db = new Map<string, string>()
        const loader = Layer.succeed(Sessions.UserLoader, { load: (userId: string) => Effect.sync(() => Option.fromNullable(db.get(userId))) })
        const a = yield* makeProcess(instance(ids.a), scope, undefined, loader)
        const b = yield* makeProcess(instance(ids.b), scope, undefined, loader)
        // A third process that only listens, to see what travels on the channel.
        const observer = Context.get(yield* Layer.buildWithScope(instance(ids.o), scope), Persistence.Persistence)
        const heard = yield* Queue.unbounded<Persistence.Invalidation>()
        yield* Effect.forkIn(Stream.runForEach(observer.invalidations, (i) => Queue.offer(heard, i)), scope)
        for (const id of [ids.a, ids.b, ids.o]) assert.isTrue(yield* listening(id), `${id} listens for invalidations`)
        const refreshed: Array<string> = []
        yield* measure(store, "refreshUser (user cache)", Effect.gen(function*() {
          const user = `carol-${runId}-${randomBytes(3).toString("hex")}`
          db.set(user, "active")
          const h = yield* a.sessions.logIn(yield* a.sessions.create(client), user)
          const hb = yield* cached(b, tok(h))
          assert.strictEqual(Option.getOrNull(yield* b.sessions.user(hb)), "active")
          db.set(user, "disabled")
          assert.strictEqual(Option.getOrNull(yield* b.sessions.user(hb)), "active", "B answers from its user cache")
          refreshed.push(user)
          return {
            act: a.sessions.refreshUser(user),
            seen: Effect.map(b.sessions.user(hb), (u) => Option.getOrNull(u) === "disabled")
          }
        }))
        // The observer listens on a connection of its own: it may hear the message after B did.
        const users: Array<Extract<Persistence.Invalidation, { readonly _tag: "User" }>> = []
        const deadline = performance.now() + GIVE_UP_MS
        while (users.length === 0 && performance.now() < deadline) {
          for (const i of yield* Queue.takeAll(heard)) if (i._tag === "User") users.push(i)
          if (users.length === 0) yield* Effect.sleep(POLL_MS)
        }
        assert.isAbove(users.length, 0, "the observer heard the user invalidation")
        for (const i of users) {
          assert.isTrue(refreshed.some((u) => i.userKey === Persistence.userKey(u)), "it carries the hash of the user ID")
          for (const u of refreshed) assert.notInclude(i.userKey, u)
        }
      }).pipe(Effect.scoped))

    /** Cuts B's channel, runs `during`, and waits (at most 5 s) until the channel is back; whether it came back. */
    const cutAndWait = (originId: string, during: Effect.Effect<unknown, unknown>) =>
      Effect.gen(function*() {
        yield* channel.cut(originId)
        yield* during
        return yield* listening(originId)
      })

    // BUG (PostgreSQL): @effect/sql-pg's `listen` ignores errors of its LISTEN connection
    // (`onListenClientError` is a no-op) and its stream neither fails nor ends when that connection
    // dies, so the SQL store's retry never runs: after a dropped LISTEN connection (a database
    // restart, a failover, pg_terminate_backend, an idle-connection killer) the process never hears
    // an invalidation again, and its cache answers stale entries (until each session's next touch).
    it.live("after B's invalidation channel drops, B hears later changes again (within 5 s of the drop)", () =>
      Effect.gen(function*() {
        const { a, b, ids } = yield* twoProcesses
        const back = yield* cutAndWait(ids.b, Effect.void)
        const h = yield* a.sessions.create(client)
        yield* cached(b, tok(h))
        yield* a.sessions.destroy(h)
        let stale = true
        for (let i = 0; i < 40 && stale; i++) {
          stale = !(yield* gone(b, tok(h)))
          if (stale) yield* Effect.sleep(50)
        }
        assert.isFalse(stale, `B never heard a destroy made after its channel dropped (channel ${back ? "reconnected" : "not reconnected after 5 s"})`)
      }).pipe(Effect.scoped))

    // BUG (both stores): a change published while B's channel is down (its Redis subscriber or its
    // PostgreSQL LISTEN connection reconnecting) never reaches B, and nothing tells B that it may
    // have missed messages: B keeps answering the stale cache entry — a session destroyed (or
    // logged out everywhere) in A stays alive in B until the session's next touch (touchInterval
    // after its last recorded access: the touch is a compare-and-set that finds the record gone;
    // 10 minutes here, 1 minute by default). Suggested fix: the store signals every
    // (re)subscription on `invalidations` (e.g. a reserved "*" key) and the service clears its
    // cache on it.
    it.live("a change made while B's invalidation channel reconnects is not served stale by B afterwards", () =>
      Effect.gen(function*() {
        const { a, b, ids } = yield* twoProcesses
        const h = yield* a.sessions.create(client)
        yield* cached(b, tok(h))
        const back = yield* cutAndWait(ids.b, a.sessions.destroy(h))
        assert.isTrue(back, "B's invalidation channel came back within 5 s of the drop")
        let stale = true
        for (let i = 0; i < 40 && stale; i++) {
          stale = !(yield* gone(b, tok(h)))
          if (stale) yield* Effect.sleep(25)
        }
        assert.isFalse(stale, "B still resolves a session destroyed by A while B's channel was down (1 s after it came back)")
      }).pipe(Effect.scoped))
  })

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

await withService("Redis", redisUrl, () => {
  const prefix = `es:coh:${runId}:`
  const connectionName = (originId: string) => `es-${originId}`
  const admin = () => new IORedis(redisUrl, { maxRetriesPerRequest: 1 })
  /** The subscriber connections of a process (client ids), from CLIENT LIST. */
  const subscribers = (originId: string) =>
    Effect.promise(async () => {
      const redis = admin()
      try {
        const list = (await redis.client("LIST")) as string
        return list.split("\n").filter((line) => line.includes(` name=${connectionName(originId)} `) && / sub=[1-9]/.test(line))
          .map((line) => /(?:^| )id=(\d+)/.exec(line)?.[1]).filter((id): id is string => id !== undefined)
      } finally {
        redis.disconnect()
      }
    })
  afterAll(async () => {
    const redis = admin()
    try {
      await deleteRedisKeys(prefix, redis)
    } finally {
      redis.disconnect()
    }
  })
  coherenceSuite(
    "Redis",
    (originId) =>
      RedisStore.layer({ url: redisUrl, prefix, originId, redisOptions: { connectionName: connectionName(originId) } }).pipe(
        Layer.provide(SecureRandom.layer)
      ),
    {
      listening: (originId) => Effect.map(subscribers(originId), (ids) => ids.length > 0),
      cut: (originId) => Effect.gen(function*() {
        const ids = yield* subscribers(originId)
        assert.isAbove(ids.length, 0, "B has a subscriber connection")
        yield* Effect.promise(async () => {
          const redis = admin()
          try {
            for (const id of ids) await redis.client("KILL", "ID", id)
          } finally {
            redis.disconnect()
          }
        })
      })
    }
  )
}, { describe, it })

// ---------------------------------------------------------------------------------------------
// Redis Cluster (REDIS_CLUSTER_NODES): sharded pub/sub, one subscriber connection per primary
// ---------------------------------------------------------------------------------------------

await withRedisCluster((nodes) => {
  const prefix = `es:cohc:${runId}:`
  // The name the store gives its subscriber connections (src/internal/redis/invalidations.ts).
  const subscriberName = (originId: string) => `effect-sessions-sub:${originId.replace(/[^A-Za-z0-9_.:-]/g, "_")}`
  /** The subscriber connections of a process on every primary (node and client id), from CLIENT LIST. */
  const subscribers = (originId: string) =>
    Effect.promise(async () => {
      const found: Array<{ readonly node: Awaited<ReturnType<typeof primariesOf>>[number]; readonly id: string }> = []
      for (const node of await primariesOf(nodes)) {
        const list = await withNode(node, async (redis) => (await redis.client("LIST")) as string)
        for (const line of list.split("\n")) {
          const id = /(?:^| )id=(\d+)/.exec(line)?.[1]
          if (id !== undefined && line.includes(` name=${subscriberName(originId)} `) && / s?sub=[1-9]/.test(line)) found.push({ node, id })
        }
      }
      return found
    })
  afterAll(() => deleteRedisClusterKeys(prefix, nodes))
  coherenceSuite(
    "Redis Cluster",
    (originId) => RedisStore.layerCluster({ nodes, prefix, originId }).pipe(Layer.provide(SecureRandom.layer)),
    {
      listening: (originId) => Effect.map(subscribers(originId), (found) => found.length > 0),
      cut: (originId) =>
        Effect.gen(function*() {
          const found = yield* subscribers(originId)
          assert.isAbove(found.length, 0, "B has subscriber connections")
          yield* Effect.promise(async () => {
            for (const { id, node } of found) await withNode(node, (redis) => redis.client("KILL", "ID", id))
          })
        })
    }
  )
}, { describe, it })

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

await withService("PostgreSQL", postgresUrl, () => {
  const prefix = `es_coh_${runId}_`
  const appName = (originId: string) => `es_${originId.replace(/-/g, "_")}`
  const admin = PgClient.layer({ url: Redacted.make(postgresUrl) })
  const withSql = <A>(f: (sql: SqlClient) => Effect.Effect<A, unknown>) =>
    Effect.flatMap(SqlClient, f).pipe(Effect.provide(admin))
  /** The LISTEN connections of a process (backend pids). */
  const listeners = (originId: string) =>
    withSql((sql) =>
      Effect.map(
        sql<{ pid: number }>`SELECT pid FROM pg_stat_activity
          WHERE application_name = ${appName(originId)} AND query ILIKE 'LISTEN%'`,
        (rows) => rows.map((r) => r.pid)
      ))
  afterAll(() =>
    Effect.runPromise(
      withSql((sql) =>
        Effect.all([
          sql`DROP TABLE IF EXISTS ${sql(`${prefix}sessions`)}`,
          sql`DROP TABLE IF EXISTS ${sql(`${prefix}tokens`)}`,
          sql`DROP TABLE IF EXISTS ${sql(`${prefix}revocations`)}`
        ])
      ).pipe(Effect.ignoreLogged)
    ))
  coherenceSuite(
    "PostgreSQL",
    (originId) =>
      PgStore.layer({ url: withParams(postgresUrl, { application_name: appName(originId) }), tablePrefix: prefix, originId }).pipe(
        Layer.provide(SecureRandom.layer)
      ),
    {
      listening: (originId) => Effect.map(listeners(originId), (pids) => pids.length > 0),
      cut: (originId) => Effect.gen(function*() {
        const pids = yield* listeners(originId)
        assert.isAbove(pids.length, 0, "B has a LISTEN connection")
        yield* withSql((sql) => sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${sql.in("pid", pids)}`)
        // the terminated backend leaves pg_stat_activity before B's listener can be back
        for (let i = 0; i < 100; i++) {
          const left = yield* withSql((sql) => sql<{ n: string }>`SELECT count(*) AS n FROM pg_stat_activity WHERE ${sql.in("pid", pids)}`)
          if (Number(left[0]?.n ?? 0) === 0) break
          yield* Effect.sleep(10)
        }
      })
    }
  )
}, { describe, it })
