/**
 * Security findings on the stores (docs/security.md: nothing a client sends grows without bound):
 *
 * 1. the memory store has a capacity and evicts the least recently used session;
 * 2. one record that does not decode never blocks listing, logging out everywhere or an exclusive
 *    log-in (Redis, PostgreSQL, SQLite — the memory store holds values, it cannot hold garbage);
 * 3. store errors carry no keys, user IDs, records or tokens (Redis `ReplyError`, PostgreSQL
 *    errors);
 * 4. the user cache is bounded, forgets after a time to live (also "not found"), and does not
 *    keep failures (its cross-process invalidation is in spec/coherence.test.ts).
 */
import { afterAll, assert, describe, expect, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { SqlClient } from "@effect/sql/SqlClient"
import { Cause, Clock, ConfigProvider, Context, Deferred, Effect, Exit, FastCheck as fc, Fiber, Layer, Logger, LogLevel, Metric, Option, Redacted, TestClock } from "effect"
import { Redis as IORedis } from "ioredis"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as DemoStore from "../examples/demo/store.js"
import * as Codec from "../src/Codec.js"
import { evicted, EVICTION_LOG_INTERVAL_MILLIS } from "../src/internal/memoryStore.js"
import * as Sessions from "../src/Sessions.js"
import * as Persistence from "../src/Persistence.js"
import * as PgStore from "../src/Persistence/Pg.js"
import * as RedisStore from "../src/Persistence/Redis.js"
import * as SqliteStore from "../src/Persistence/Sqlite.js"
import * as SecureRandom from "../src/SecureRandom.js"
import * as Session from "../src/Session.js"
import type * as SessionConfig from "../src/SessionConfig.js"
import { makeKeys } from "../src/internal/redis/keys.js"
import { makeSession, uid } from "../src/internal/testing/persistenceSuite.js"
import { deleteRedisKeys, postgresUrl, redisUrl, withService } from "./services.js"

const runId = randomBytes(4).toString("hex")
const HOUR = 3_600_000
const client = Session.client({ ip: "198.51.100.7", userAgent: "security/1" })
const tok = (h: Sessions.ActiveSession) => Redacted.value(h.token)

// ---------------------------------------------------------------------------------------------
// capture of logs
// ---------------------------------------------------------------------------------------------

interface Line {
  readonly level: string
  readonly message: unknown
  readonly annotations: Record<string, unknown>
  readonly text: string
}

/** Runs `effect` with every log line kept in `into` (message, annotations and the pretty cause). */
const capturing = <A, E, R>(into: Array<Line>, effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.provide(Layer.merge(
      Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ annotations, cause, logLevel, message }) => {
          const annotationObject = Object.fromEntries(annotations)
          into.push({
            level: logLevel.label,
            message,
            annotations: annotationObject,
            text: [JSON.stringify({ message, annotations: annotationObject }, errorReplacer), Cause.isEmpty(cause) ? "" : Cause.pretty(cause)].join("\n")
          })
        })
      ),
      Logger.minimumLogLevel(LogLevel.All)
    ))
  )

const errorReplacer = (_key: string, value: unknown): unknown =>
  value instanceof Error ? { ...value, name: value.name, message: value.message, stack: value.stack, cause: value.cause } : value

/** Every way an error can be printed: JSON (with its cause's own fields), String, Cause.pretty. */
const printed = (e: unknown): string =>
  [JSON.stringify(e, errorReplacer), String(e), Cause.pretty(Cause.fail(e)), (e as Error).message].join("\n")

// ---------------------------------------------------------------------------------------------
// 1. the memory store's capacity
// ---------------------------------------------------------------------------------------------

describe("memory store capacity", () => {
  type Op =
    | { readonly op: "create" }
    | { readonly op: "load" | "loadSession" | "save"; readonly pick: number }

  const arbOps: fc.Arbitrary<ReadonlyArray<Op>> = fc.array(
    fc.oneof(
      { weight: 2, arbitrary: fc.constant<Op>({ op: "create" }) },
      { weight: 3, arbitrary: fc.record({ op: fc.constantFrom("load" as const, "loadSession" as const, "save" as const), pick: fc.nat() }) }
    ),
    { maxLength: 60 }
  )

  it.effect.prop(
    "security: the memory store holds exactly the `capacity` most recently used sessions (LRU against a model)",
    [fc.integer({ min: 1, max: 6 }), arbOps],
    ([capacity, ops]) =>
      Effect.gen(function*() {
        const store = yield* Persistence.makeMemoryWith({ capacity })
        const now = yield* Clock.currentTimeMillis
        const user = uid("user")
        // The model: session keys, least recently used first.
        let model: Array<string> = []
        const use = (key: string) => {
          model = [...model.filter((k) => k !== key), key]
        }
        const all: Array<Session.Session> = []
        const latest = new Map<string, Session.Session>()
        for (const op of ops) {
          if (op.op === "create") {
            const s = makeSession(now, { userId: Option.some(user) })
            all.push(s)
            latest.set(s.key, s)
            yield* store.create(s, now + HOUR)
            use(s.key)
            if (model.length > capacity) model = model.slice(model.length - capacity)
          } else {
            if (all.length === 0) continue
            const s = latest.get(all[op.pick % all.length]!.key)!
            const present = model.includes(s.key)
            if (op.op === "load") {
              assert.strictEqual(Option.isSome(yield* store.load(s.tokenKey)), present)
            } else if (op.op === "loadSession") {
              assert.strictEqual(Option.isSome(yield* store.loadSession(s.key)), present)
            } else {
              const next = new Session.Session({ ...s, version: s.version + 1 })
              assert.strictEqual(yield* store.save(next, s.version, now + HOUR), present)
              if (present) latest.set(s.key, next)
            }
            if (present) use(s.key)
          }
          // The listing does not count as a use: it shows what the store holds.
          const held = (yield* store.sessionsOfUser(user)).map((s) => s.key)
          deepStrictEqual([...held].sort(), [...model].sort())
        }
      }),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect("security: a flood of 10 × capacity creations evicts only idle sessions: users who keep using theirs keep them, and the store never holds more than its capacity", () =>
    Effect.gen(function*() {
      const capacity = 1000
      const store = yield* Persistence.makeMemoryWith({ capacity })
      const now = yield* Clock.currentTimeMillis
      const before = (yield* Metric.value(evicted)).count
      const real = Array.from({ length: 5 }, (_, i) => makeSession(now, { userId: Option.some(`real-${i}-${runId}`) }))
      for (const s of real) yield* store.create(s, now + HOUR)
      const flooder = uid("flood")
      let created = 0
      for (let round = 0; round < 100; round++) {
        for (let i = 0; i < 100; i++) {
          yield* store.create(makeSession(now, { userId: Option.some(flooder) }), now + HOUR)
          created++
        }
        // Every real user makes a request now and then (a read by token, as a request does).
        for (const s of real) assert.isTrue(Option.isSome(yield* store.load(s.tokenKey)), `round ${round}: a real user lost the session`)
        if (round % 10 === 9) {
          const held = (yield* store.sessionsOfUser(flooder)).length + real.length
          assert.isAtMost(held, capacity)
        }
      }
      for (const s of real) deepStrictEqual(yield* store.sessionsOfUser(Option.getOrThrow(s.userId)), [s])
      assert.strictEqual((yield* store.sessionsOfUser(flooder)).length, capacity - real.length)
      assert.strictEqual((yield* Metric.value(evicted)).count - before, created + real.length - capacity)
    }))

  it.effect("security: evictions are counted (effect_sessions_evicted_total) and logged at most once a minute, with the number since the last line", () =>
    Effect.gen(function*() {
      const lines: Array<Line> = []
      yield* capturing(
        lines,
        Effect.gen(function*() {
          const store = yield* Persistence.makeMemoryWith({ capacity: 2 })
          const before = (yield* Metric.value(evicted)).count
          const create = Effect.flatMap(Clock.currentTimeMillis, (now) => store.create(makeSession(now), now + HOUR))
          yield* create
          yield* create
          yield* create // evicts 1: logged at once
          yield* create // evicts 1: within the minute, not logged
          yield* TestClock.adjust(EVICTION_LOG_INTERVAL_MILLIS - 1)
          yield* create // evicts 1: still within the minute
          yield* TestClock.adjust(1)
          yield* create // evicts 1: a minute later, logged with the 3 since the last line
          yield* TestClock.adjust(EVICTION_LOG_INTERVAL_MILLIS)
          yield* store.sweep // nothing pending: nothing logged
          assert.strictEqual((yield* Metric.value(evicted)).count - before, 4)
        })
      )
      const evictions = lines.filter((l) => l.annotations["event"] === "sessions-evicted")
      deepStrictEqual(evictions.map((l) => [l.level, l.annotations["evicted"], l.annotations["capacity"]]), [["WARN", 1, 2], ["WARN", 3, 2]])
    }))

  it.effect("security: Sessions.layerMemory takes the memory store's capacity", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const handles: Array<Sessions.ActiveSession> = []
      for (let i = 0; i < 5; i++) handles.push(yield* sessions.create(client))
      yield* sessions.clearCache // the local cache would still answer for evicted sessions
      const alive: Array<boolean> = []
      for (const h of handles) alive.push(Option.isSome((yield* sessions.resolve(tok(h), client)).session))
      deepStrictEqual(alive, [false, false, true, true, true])
    }).pipe(Effect.provide(Sessions.layerMemory({}, { capacity: 3 }))))

  it.effect("the demo's memory store takes SESSIONS_MEMORY_CAPACITY (default 1,000,000; a positive integer)", () =>
    Effect.gen(function*() {
      const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
      assert.strictEqual(yield* DemoStore.memoryCapacity.pipe(withEnv({})), Persistence.DEFAULT_MEMORY_CAPACITY)
      assert.strictEqual(yield* DemoStore.memoryCapacity.pipe(withEnv({ SESSIONS_MEMORY_CAPACITY: "50000" })), 50_000)
      assert.isTrue(Exit.isFailure(yield* Effect.exit(DemoStore.memoryCapacity.pipe(withEnv({ SESSIONS_MEMORY_CAPACITY: "0" })))))
      const store = yield* Effect.map(
        Layer.build(DemoStore.layerFor("memory")),
        (context) => Context.get(context, Persistence.Persistence)
      ).pipe(Effect.provide(SecureRandom.layer), withEnv({ SESSIONS_MEMORY_CAPACITY: "2" }))
      const now = yield* Clock.currentTimeMillis
      const sessions = [makeSession(now), makeSession(now), makeSession(now)]
      for (const s of sessions) yield* store.create(s, now + HOUR)
      assert.isTrue(Option.isNone(yield* store.loadSession(sessions[0]!.key)), "the first session was evicted")
    }).pipe(Effect.scoped))

  it("an invalid capacity is a defect, at once", () => {
    for (const capacity of [0, -1, 1.5, Number.NaN]) {
      const exit = Effect.runSyncExit(Persistence.makeMemoryWith({ capacity }))
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause), `capacity ${capacity}`)
    }
    assert.isTrue(Exit.isSuccess(Effect.runSyncExit(Persistence.makeMemoryWith({ capacity: Number.POSITIVE_INFINITY }))))
  })
})

// ---------------------------------------------------------------------------------------------
// 2. one bad record never blocks another session (service level, every store that holds text)
// ---------------------------------------------------------------------------------------------

/** Writes garbage over a session's record directly in the backend. */
type Corrupt = (sessionKey: string, garbage: string) => Effect.Effect<void, unknown>
/** Whether anything of a session is still stored (its record or its current token's record). */
type Stored = (sessionKey: string, tokenKey: string) => Effect.Effect<boolean, unknown>

/** Whether a token stops resolving within a second. */
const eventuallyGone = (sessions: Sessions.SessionsShape, h: Sessions.ActiveSession) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      if (Option.isNone((yield* sessions.resolve(tok(h), client)).session)) return true
      yield* Effect.sleep("10 millis")
    }
    return false
  })

const serviceConfig: SessionConfig.SessionConfigInput = { idleTimeout: "30 minutes", touchInterval: "1 minute" }

const badRecordSuite = (
  name: string,
  storeLayer: () => Layer.Layer<Persistence.Persistence, unknown>,
  hooks: { readonly corrupt: Corrupt; readonly stored: Stored }
) =>
  describe(`bad records: ${name}`, () => {
    const THIEF = `THIEF-WROTE-THIS-${runId}`
    const garbage = `{"v":1,"type":"session","data":{"x":"${THIEF}"}`

    it.live("security: logOutEverywhere ends every session that decodes while another holds garbage, and deletes the garbage", () =>
      Effect.gen(function*() {
        const lines: Array<Line> = []
        const sessions = Context.get(
          yield* Layer.build(Sessions.layer(serviceConfig).pipe(Layer.provide(storeLayer()))),
          Sessions.Sessions
        )
        const user = `victim-${uid("u")}`
        const handles: Array<Sessions.ActiveSession> = []
        for (let i = 0; i < 3; i++) handles.push(yield* sessions.logIn(yield* sessions.create(client), user))
        const [ok1, thief, ok2] = handles as [Sessions.ActiveSession, Sessions.ActiveSession, Sessions.ActiveSession]
        yield* hooks.corrupt(thief.session.key, garbage)

        const listed = yield* capturing(lines, sessions.listSessions(user))
        assert.strictEqual(listed.length, 2, "the two sessions that decode are listed")
        assert.isFalse(yield* hooks.stored(thief.session.key, thief.session.tokenKey), "the garbage record is deleted by the listing")
        const warning = lines.find((l) => l.annotations["event"] === "corrupt-record")
        assert.isDefined(warning, "the dropped record is logged")
        assert.strictEqual(warning?.annotations["method"], "sessionsOfUser")
        for (const l of lines) {
          assert.notInclude(l.text, THIEF, "the record never reaches a log")
          assert.notInclude(l.text, thief.session.key, "the session key never reaches a log")
        }

        // Garbage again (a thief who keeps writing), then log out everywhere.
        const again = yield* sessions.logIn(yield* sessions.create(client), user)
        yield* hooks.corrupt(again.session.key, garbage)
        assert.strictEqual(yield* sessions.logOutEverywhere(user), 2)
        for (const h of [ok1, ok2]) assert.isTrue(Option.isNone((yield* sessions.resolve(tok(h), client)).session))
        // The garbage session was cached here before it went bad: the store tells this process it
        // dropped it (through its invalidations, a moment later).
        assert.isTrue(yield* eventuallyGone(sessions, again), "the dropped session is not served from the local cache")
        assert.isFalse(yield* hooks.stored(again.session.key, again.session.tokenKey))
        deepStrictEqual(yield* sessions.listSessions(user), [])

        // An exclusive log-in works too.
        const mine = yield* sessions.logIn(yield* sessions.create(client), user)
        const planted = yield* sessions.logIn(yield* sessions.create(client), user)
        yield* hooks.corrupt(planted.session.key, garbage)
        const exclusive = yield* sessions.logIn(yield* sessions.create(client), user, { exclusive: true })
        assert.isTrue(Option.isNone((yield* sessions.resolve(tok(mine), client)).session))
        assert.strictEqual((yield* sessions.listSessions(user)).length, 1)
        yield* sessions.logOutEverywhere(user)
        assert.isTrue(Option.isNone((yield* sessions.resolve(tok(exclusive), client)).session))
      }).pipe(Effect.scoped))

    it.live("security: a record that does not decode is a Corrupt error that quotes nothing of it, nor its keys", () =>
      Effect.gen(function*() {
        const store = Context.get(yield* Layer.build(storeLayer()), Persistence.Persistence)
        const now = yield* Clock.currentTimeMillis
        const secret = `data-${uid("secret")}`
        const s = makeSession(now)
        yield* store.create(s, now + HOUR)
        // A field of the wrong type: the decoder's own message quotes the value it found.
        yield* hooks.corrupt(s.key, JSON.stringify({ ...JSON.parse(Codec.encodeSession(s)), version: secret }))
        for (const attempt of [store.load(s.tokenKey), store.loadSession(s.key)]) {
          const error = yield* Effect.flip(attempt)
          assert.strictEqual(error.reason, "Corrupt")
          const text = printed(error)
          for (const part of [secret, s.key, s.tokenKey]) assert.notInclude(text, part)
        }
        yield* store.delete(s.key)
      }).pipe(Effect.scoped))
  })

// SQLite: a file; the hooks open a second connection to it.
{
  const dir = mkdtempSync(join(tmpdir(), "effect-sessions-security-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const filename = join(dir, "sessions.db")
  const raw = <A>(f: (sql: SqlClient) => Effect.Effect<A, unknown>) =>
    Effect.flatMap(SqlClient, f).pipe(Effect.provide(SqliteClient.layer({ filename })))
  badRecordSuite("SQLite", () => SqliteStore.layer({ filename }).pipe(Layer.provide(SecureRandom.layer)), sqlHooks("effect_sessions_", raw))
}

function sqlHooks(prefix: string, raw: <A>(f: (sql: SqlClient) => Effect.Effect<A, unknown>) => Effect.Effect<A, unknown>) {
  return {
    corrupt: (sessionKey: string, garbage: string) =>
      raw((sql) => Effect.asVoid(sql`UPDATE ${sql(`${prefix}sessions`)} SET record = ${garbage} WHERE key = ${sessionKey}`)),
    stored: (sessionKey: string, tokenKey: string) =>
      raw((sql) =>
        Effect.gen(function*() {
          const s = yield* sql<{ n: number | string }>`SELECT count(*) AS n FROM ${sql(`${prefix}sessions`)} WHERE key = ${sessionKey}`
          const t = yield* sql<{ n: number | string }>`SELECT count(*) AS n FROM ${sql(`${prefix}tokens`)} WHERE token_key = ${tokenKey}`
          return Number(s[0]?.n ?? 0) + Number(t[0]?.n ?? 0) > 0
        })
      )
  }
}

await withService("PostgreSQL", postgresUrl, () => {
  const prefix = `es_sec_${runId}_`
  const admin = PgClient.layer({ url: Redacted.make(postgresUrl) })
  const raw = <A>(f: (sql: SqlClient) => Effect.Effect<A, unknown>) => Effect.flatMap(SqlClient, f).pipe(Effect.provide(admin))
  afterAll(() =>
    Effect.runPromise(
      raw((sql) =>
        Effect.all([
          sql`DROP TABLE IF EXISTS ${sql(`${prefix}sessions`)}`,
          sql`DROP TABLE IF EXISTS ${sql(`${prefix}tokens`)}`,
          sql`DROP TABLE IF EXISTS ${sql(`${prefix}e_sessions`)}`,
          sql`DROP TABLE IF EXISTS ${sql(`${prefix}e_tokens`)}`,
          sql`DROP TABLE IF EXISTS ${sql(`${prefix}revocations`)}`,
          sql`DROP TABLE IF EXISTS ${sql(`${prefix}e_revocations`)}`
        ])
      ).pipe(Effect.ignoreLogged)
    ))
  badRecordSuite("PostgreSQL", () => PgStore.layer({ url: postgresUrl, tablePrefix: prefix }).pipe(Layer.provide(SecureRandom.layer)), sqlHooks(prefix, raw))

  describe("store errors carry no secrets: PostgreSQL", () => {
    // A CHECK violation's `detail` is "Failing row contains (…)": the whole row — session key,
    // token key, user hash and the record with the session's data.
    it.live("security: a PostgreSQL error (a CHECK violation, whose detail quotes the row) reaches the error and the log without keys or data", () =>
      Effect.gen(function*() {
        const tablePrefix = `${prefix}e_`
        const store = Context.get(
          yield* Layer.build(PgStore.layer({ url: postgresUrl, tablePrefix }).pipe(Layer.provide(SecureRandom.layer))),
          Persistence.Persistence
        )
        yield* raw((sql) => sql`ALTER TABLE ${sql(`${tablePrefix}sessions`)} ADD CONSTRAINT ${sql(`${tablePrefix}no_v2`)} CHECK (version < 2)`)
        const now = yield* Clock.currentTimeMillis
        const secret = `data-${uid("secret")}`
        const s = makeSession(now, { version: 1, userId: Option.some(`user-${runId}`), data: { secret } })
        yield* store.create(s, now + HOUR)
        const error = yield* Effect.flip(store.save(new Session.Session({ ...s, version: 2 }), 1, now + HOUR))
        assert.strictEqual(error.reason, "Unavailable")
        const lines: Array<Line> = []
        yield* capturing(lines, Effect.logWarning("session store unavailable", error))
        const text = [printed(error), ...lines.map((l) => l.text)].join("\n")
        assert.include(text, "violates check constraint", "the reason is kept")
        for (const secretPart of [secret, s.key, s.tokenKey, "Failing row"]) assert.notInclude(text, secretPart)
      }).pipe(Effect.scoped))
  })
}, { describe, it })

// ---------------------------------------------------------------------------------------------
// Redis: bad records, and errors without secrets
// ---------------------------------------------------------------------------------------------

await withService("Redis", redisUrl, () => {
  const prefix = `es:sec:${runId}:`
  const keys = makeKeys(prefix)
  const admin = () => new IORedis(redisUrl, { maxRetriesPerRequest: 1 })
  const redis = <A>(f: (r: IORedis) => Promise<A>) =>
    Effect.acquireUseRelease(Effect.sync(admin), (r) => Effect.promise(() => f(r)), (r) => Effect.sync(() => r.disconnect()))
  afterAll(() => deleteRedisKeys(prefix))
  badRecordSuite("Redis", () => RedisStore.layer({ url: redisUrl, prefix }).pipe(Layer.provide(SecureRandom.layer)), {
    corrupt: (sessionKey, garbage) => Effect.asVoid(redis((r) => r.hset(keys.session(sessionKey), "r", garbage))),
    stored: (sessionKey, tokenKey) => Effect.map(redis((r) => r.exists(keys.session(sessionKey), keys.token(tokenKey))), (n) => n > 0)
  })

  describe("store errors carry no secrets: Redis", () => {
    const secrets = (h: Sessions.ActiveSession, user: string, value: string) => [tok(h), h.session.key, h.session.tokenKey, user, value]

    it.live("security: a Redis WRONGTYPE error reaches the error and the log without keys, user ID, data or token (hashIdsAtRest: false)", () =>
      Effect.gen(function*() {
        const sessions = Context.get(
          yield* Layer.build(
            Sessions.layer({ ...serviceConfig, hashIdsAtRest: false }).pipe(
              Layer.provide(RedisStore.layer({ url: redisUrl, prefix }).pipe(Layer.provide(SecureRandom.layer)))
            )
          ),
          Sessions.Sessions
        )
        const user = `user-${uid("wrongtype")}`
        const value = `value-${uid("data")}`
        const h = yield* sessions.create(client)
        assert.strictEqual(h.session.tokenKey, tok(h), "with hashIdsAtRest: false the token key is the raw token")
        yield* sessions.set(h, "secret", value)
        // The user index key holds a string: the log-in's index script refuses it with WRONGTYPE,
        // and ioredis's ReplyError carries every argument of the script (keys, user, record).
        yield* redis((r) => r.set(keys.user(user), "not a sorted set", "PX", 60_000))
        const error = yield* Effect.flip(sessions.logIn(h, user))
        assert.isTrue(Persistence.isSessionStoreError(error))
        const lines: Array<Line> = []
        yield* capturing(lines, Effect.logWarning("session store unavailable", error))
        const text = [printed(error), ...lines.map((l) => l.text)].join("\n")
        assert.include(text, "WRONGTYPE", "Redis's reply is kept")
        assert.include(text, "ReplyError", "the class name is kept")
        for (const s of secrets(h, user, value)) assert.notInclude(text, s)
        // The index step comes before the session's: nothing changed, the session still answers.
        yield* sessions.clearCache // from the store, not the local cache
        const after = yield* sessions.resolve(tok(h), client)
        assert.strictEqual(after.outcome, "valid", "the failed log-in wrote nothing (no half-done rotation)")
        assert.isTrue(Option.isNone(Option.flatMap(after.session, (a) => a.session.userId)))

        // The listing of that user fails the same way, without the user ID.
        const listing = yield* Effect.flip(sessions.listSessions(user))
        const listed = printed(listing)
        assert.include(listed, "WRONGTYPE")
        assert.notInclude(listed, user)
      }).pipe(Effect.scoped))

    it.live("security: a key of the wrong type under a session is a Corrupt error with only a fingerprint of the key", () =>
      Effect.gen(function*() {
        const store = Context.get(
          yield* Layer.build(RedisStore.layer({ url: redisUrl, prefix }).pipe(Layer.provide(SecureRandom.layer))),
          Persistence.Persistence
        )
        const now = yield* Clock.currentTimeMillis
        const s = makeSession(now)
        yield* store.create(s, now + HOUR)
        yield* redis(async (r) => {
          await r.del(keys.session(s.key))
          await r.rpush(keys.session(s.key), "a list")
        })
        for (const attempt of [store.load(s.tokenKey), store.loadSession(s.key)]) {
          const error = yield* Effect.flip(attempt)
          assert.strictEqual(error.reason, "Corrupt")
          expect(error.key).toMatch(/^[A-Za-z0-9_-]{8}$/)
          const text = printed(error)
          assert.notInclude(text, s.key)
          assert.notInclude(text, s.tokenKey)
        }
        yield* store.delete(s.key)
      }).pipe(Effect.scoped))
  })
}, { describe, it })

// ---------------------------------------------------------------------------------------------
// 4. the user cache
// ---------------------------------------------------------------------------------------------

describe("user cache", () => {
  /** A user database that counts loads; `users` can change under it. */
  const database = (users: Map<string, string>, options?: Sessions.UserLoader["Type"]["cache"]) => {
    const loads: Array<string> = []
    const loader = Layer.succeed(Sessions.UserLoader, {
      load: (userId: string) =>
        Effect.sync(() => {
          loads.push(userId)
          return Option.fromNullable(users.get(userId))
        }),
      cache: options
    })
    return { loads, loader }
  }
  const service = (loader: Layer.Layer<Sessions.UserLoader>) =>
    Sessions.layerMemory({ idleTimeout: "1 hour", touchInterval: "1 minute", absoluteTimeout: "24 hours" }).pipe(Layer.provide(loader))

  it.effect("security: a loaded user is loaded again after the cache's time to live (TestClock)", () => {
    const users = new Map([["ada", "ada v1"]])
    const db = database(users)
    return Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.logIn(yield* sessions.create(client), "ada")
      deepStrictEqual(yield* sessions.user(h), Option.some<unknown>("ada v1"))
      users.set("ada", "ada disabled")
      yield* TestClock.adjust("4 minutes")
      deepStrictEqual(yield* sessions.user(h), Option.some<unknown>("ada v1"), "cached within the time to live")
      yield* TestClock.adjust("1 minute")
      yield* TestClock.adjust(1)
      deepStrictEqual(yield* sessions.user(h), Option.some<unknown>("ada disabled"), "loaded again after 5 minutes")
      deepStrictEqual(db.loads, ["ada", "ada"])
    }).pipe(Effect.provide(service(db.loader)))
  })

  it.effect("security: \"not found\" is not kept longer than the time to live", () => {
    const users = new Map<string, string>()
    const db = database(users, { timeToLive: "30 seconds" })
    return Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.logIn(yield* sessions.create(client), "grace")
      deepStrictEqual(yield* sessions.user(h), Option.none())
      users.set("grace", "grace")
      deepStrictEqual(yield* sessions.user(h), Option.none(), "not found, cached")
      yield* TestClock.adjust("31 seconds")
      deepStrictEqual(yield* sessions.user(h), Option.some<unknown>("grace"))
      deepStrictEqual(db.loads, ["grace", "grace"])
    }).pipe(Effect.provide(service(db.loader)))
  })

  it.effect("security: the user cache holds at most its capacity (the least recently used user is loaded again)", () => {
    const users = new Map([["a", "A"], ["b", "B"], ["c", "C"]])
    const db = database(users, { capacity: 2 })
    return Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const handles = new Map<string, Sessions.ActiveSession>()
      for (const u of ["a", "b", "c"]) handles.set(u, yield* sessions.logIn(yield* sessions.create(client), u))
      for (const u of ["a", "b", "c"]) yield* sessions.user(handles.get(u)!)
      deepStrictEqual(db.loads, ["a", "b", "c"])
      yield* sessions.user(handles.get("c")!)
      yield* sessions.user(handles.get("b")!)
      deepStrictEqual(db.loads, ["a", "b", "c"], "b and c are cached")
      yield* sessions.user(handles.get("a")!)
      deepStrictEqual(db.loads, ["a", "b", "c", "a"], "a was evicted")
    }).pipe(Effect.provide(service(db.loader)))
  })

  it.effect("security: a load that refreshUser overtook is not kept", () => {
    const users = new Map([["ada", "ada v1"]])
    let loads = 0
    return Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const loader = Layer.succeed(Sessions.UserLoader, {
        load: (userId: string) =>
          Effect.suspend(() => {
            const value = Option.fromNullable(users.get(userId))
            return ++loads === 1 ? Effect.as(Deferred.await(release), value) : Effect.succeed(value)
          })
      })
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.logIn(yield* sessions.create(client), "ada")
        const first = yield* Effect.fork(sessions.user(h)) // reads "ada v1", then waits
        yield* Effect.yieldNow()
        users.set("ada", "ada disabled")
        yield* sessions.refreshUser("ada")
        yield* Deferred.succeed(release, undefined)
        deepStrictEqual(yield* Fiber.join(first), Option.some<unknown>("ada v1"))
        deepStrictEqual(yield* sessions.user(h), Option.some<unknown>("ada disabled"), "the overtaken load was not cached")
        assert.strictEqual(loads, 2)
      }).pipe(Effect.provide(service(loader)))
    })
  })

  it.effect("a failed load is not cached", () => {
    let fail = true
    const loader = Layer.succeed(Sessions.UserLoader, {
      load: (userId: string) => (fail ? Effect.fail("db down") : Effect.succeed(Option.some(userId)))
    })
    return Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.logIn(yield* sessions.create(client), "ada")
      const e = yield* Effect.flip(sessions.user(h))
      assert.strictEqual(e._tag, "UserLoaderError")
      fail = false
      deepStrictEqual(yield* sessions.user(h), Option.some<unknown>("ada"))
    }).pipe(Effect.provide(service(loader)))
  })
})
