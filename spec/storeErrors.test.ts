/**
 * What a store error may carry (src/internal/storeErrors.ts): a driver's error reduced to its class
 * name and the first line of its message, whatever shape the driver threw; the PostgreSQL store's
 * `layerConfig`, which reads its URL from `Config` (`DATABASE_URL` unless told otherwise); and
 * bad store options (a URL of the wrong kind, a table prefix that is no identifier, a duration
 * that is none), which fail the building of a layer with a `ConfigError` naming them, before
 * anything connects.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Cause, Config, ConfigError, ConfigProvider, Duration, Effect, Exit, Layer, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { CodecError } from "../src/Codec.js"
import { redactCodecError, redactDriverError } from "../src/internal/storeErrors.js"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import type { Persistence } from "../src/Persistence.js"
import * as PersistenceModule from "../src/Persistence.js"
import * as PgStore from "../src/Persistence/Pg.js"
import * as RedisStore from "../src/Persistence/Redis.js"
import * as Sql from "../src/Persistence/Sql.js"
import * as SqliteStore from "../src/Persistence/Sqlite.js"
import * as SecureRandom from "../src/SecureRandom.js"
import * as Session from "../src/Session.js"
import * as Sessions from "../src/Sessions.js"
import { postgresUrl, withService, dropPgTables } from "./services.js"

describe("redactDriverError", () => {
  it("keeps an error's own name and the first line of its message, nothing else", () => {
    const e = Object.assign(new Error("ERR wrong type\nSET es:tk:secret-token {\"data\":1}"), {
      name: "ReplyError",
      command: { name: "set", args: ["es:tk:secret-token", "{\"data\":1}"] }
    })
    const r = redactDriverError(e)
    assert.strictEqual(r.name, "ReplyError")
    assert.strictEqual(r.message, "ERR wrong type")
    assert.strictEqual(r.stack, "ReplyError: ERR wrong type")
    assert.notInclude(JSON.stringify({ ...r, message: r.message, stack: r.stack }), "secret-token")
  })

  it("names a plain Error by its class (a subclass), and an object without a name by its constructor or as Error", () => {
    class DriverTimeout extends Error {}
    assert.strictEqual(redactDriverError(new DriverTimeout("timed out")).name, "DriverTimeout")
    assert.strictEqual(redactDriverError(new Error("boom")).name, "Error")
    assert.strictEqual(redactDriverError({ message: "a bare object" }).name, "Error")
    assert.strictEqual(redactDriverError({ message: "a bare object" }).message, "a bare object")
    assert.strictEqual(redactDriverError({ name: "", message: 1 }).message, "", "a message that is not a string is dropped")
  })

  it("a thrown string keeps its first line; anything else that is not an object is an unknown error", () => {
    assert.strictEqual(redactDriverError("connection refused\nat 10.0.0.1").message, "connection refused")
    assert.strictEqual(redactDriverError(42).message, "unknown error")
    assert.strictEqual(redactDriverError(null).message, "unknown error")
    assert.strictEqual(redactDriverError(undefined).name, "Error")
  })

  it("cuts a message longer than 300 characters", () => {
    const r = redactDriverError(new Error("x".repeat(1_000)))
    assert.strictEqual(r.message, `${"x".repeat(300)}…`)
  })

  it("an SqlError keeps its message and its cause's class name and first line, never the cause's details", () => {
    const cause = Object.assign(new TypeError("invalid input syntax\nDETAIL: the value 'secret'"), { detail: "Key (k)=(secret)" })
    const r = redactDriverError(Object.assign(new Error("Failed to execute statement"), { name: "SqlError", cause }))
    assert.strictEqual(r.name, "SqlError")
    assert.strictEqual(r.message, "Failed to execute statement: TypeError: invalid input syntax")
    assert.notInclude(r.message, "secret")
    // a cause that is no object: the SqlError alone
    const bare = redactDriverError(Object.assign(new Error("Failed"), { name: "SqlError", cause: "text" }))
    assert.strictEqual(bare.message, "Failed")
    const noMessage = redactDriverError(Object.assign(new Error("Failed"), { name: "SqlError", cause: { code: 1 } }))
    assert.strictEqual(noMessage.message, "Failed: Error: ")
  })
})

describe("redactCodecError", () => {
  it("keeps a TooLarge error (sizes only) and replaces a Malformed one's message, which may quote the record", () => {
    const large = new CodecError({ reason: "TooLarge", message: "record of 2000000 bytes above 1048576" })
    assert.strictEqual(redactCodecError(large), large)
    const leaky = new CodecError({ reason: "Malformed", message: "Expected number, actual \"secret-value\"" })
    const r = redactCodecError(leaky)
    assert.strictEqual(r.reason, "Malformed")
    assert.strictEqual(r.message, "the record does not match the stored format")
  })
})

describe("Pg.layerConfig", () => {
  it.effect("without DATABASE_URL (nor a url config) the layer fails with a ConfigError naming it", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Effect.scoped(Layer.build(PgStore.layerConfig().pipe(Layer.provide(SecureRandom.layer)))).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(String(exit.cause), "DATABASE_URL")
    }))
})

describe("bad store options are a ConfigError when the layer is built", () => {
  // Nothing listens on port 1: a layer that tried to connect would fail otherwise (Unavailable).
  const nowhere = { pg: "postgres://nobody@127.0.0.1:1/none", redis: "redis://127.0.0.1:1" }

  /** Builds a store layer with `env` as the ConfigProvider: the ConfigError it fails with. */
  const configError = <E>(storeLayer: Layer.Layer<Persistence, E>, env: Record<string, string> = {}) =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(storeLayer))).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
      )
      assert.isTrue(Exit.isFailure(exit), "the layer was built")
      const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      assert.isTrue(Option.isSome(failure), "no typed failure")
      const e = Option.getOrThrow(failure)
      assert.isTrue(ConfigError.isConfigError(e), `not a ConfigError: ${String(e)}`)
      return e as ConfigError.ConfigError
    })

  const assertInvalid = (e: ConfigError.ConfigError, path: ReadonlyArray<string>, includes: string) => {
    assert.strictEqual(e._op, "InvalidData")
    if (e._op === "InvalidData") {
      deepStrictEqual(e.path, path)
      assert.include(e.message, includes)
    }
  }

  it.live("Redis.layer: a URL that is not redis:// or rediss://, or no URL at all", () =>
    Effect.gen(function*() {
      assertInvalid(yield* configError(RedisStore.layer({ url: "http://127.0.0.1:6379" })), ["url"], "redis://")
      const e = yield* configError(RedisStore.layer({ url: "redis://:secret@" }))
      assertInvalid(e, ["url"], "host")
      assert.notInclude(e.message, "secret")
      assertInvalid(yield* configError(RedisStore.layer({ url: "127.0.0.1:6379 " })), ["url"], "Redis URL")
    }))

  it.live("Redis.layer: a connect timeout or a retention that is not a finite duration", () =>
    Effect.gen(function*() {
      assertInvalid(yield* configError(RedisStore.layer({ url: nowhere.redis, connectTimeout: 0 })), ["connectTimeout"], "above zero")
      assertInvalid(yield* configError(RedisStore.layer({ url: nowhere.redis, retention: Duration.infinity })), ["retention"], "finite")
    }))

  it.live("Persistence.layerKeyValueStore: a retention that is not a finite duration", () =>
    Effect.gen(function*() {
      const kv = (retention: Duration.DurationInput) =>
        PersistenceModule.layerKeyValueStore({ retention }).pipe(Layer.provide(KeyValueStore.layerMemory))
      assertInvalid(yield* configError(kv(Duration.infinity)), ["retention"], "finite")
      assertInvalid(yield* configError(kv("soon" as Duration.DurationInput)), ["retention"], "duration")
    }))

  it.live("Redis.layerCluster: an empty or bad node list, a bad duration", () =>
    Effect.gen(function*() {
      assertInvalid(yield* configError(RedisStore.layerCluster({ nodes: [] })), ["nodes"], "at least one")
      assertInvalid(yield* configError(RedisStore.layerCluster({ nodes: " , " })), ["nodes"], "at least one")
      assertInvalid(yield* configError(RedisStore.layerCluster({ nodes: "127.0.0.1:7000,127.0.0.1" })), ["nodes"], "entry 2")
      assertInvalid(yield* configError(RedisStore.layerCluster({ nodes: "127.0.0.1:70000" })), ["nodes"], "host:port")
      assertInvalid(yield* configError(RedisStore.layerCluster({ nodes: "http://127.0.0.1:7000" })), ["nodes"], "host:port")
      assertInvalid(yield* configError(RedisStore.layerCluster({ nodes: [{ host: "127.0.0.1", port: 0 }] })), ["nodes"], "port")
      const e = yield* configError(RedisStore.layerCluster({ nodes: "redis://:secret@h:x" }))
      assert.notInclude(e.message, "secret")
      assertInvalid(yield* configError(RedisStore.layerCluster({ nodes: "127.0.0.1:1", connectTimeout: 0 })), ["connectTimeout"], "above zero")
    }))

  it.live("Redis.layerClusterConfig: a bad REDIS_CLUSTER_NODES names it; an unset one is missing", () =>
    Effect.gen(function*() {
      assertInvalid(yield* configError(RedisStore.layerClusterConfig(), { REDIS_CLUSTER_NODES: "127.0.0.1:7000,nonsense" }), ["REDIS_CLUSTER_NODES"], "host:port")
      const missing = yield* configError(RedisStore.layerClusterConfig())
      assert.strictEqual(missing._op, "MissingData")
      assert.include(missing.message, "REDIS_CLUSTER_NODES")
      assertInvalid(yield* configError(RedisStore.layerClusterConfig({ nodes: "127.0.0.1:1", retention: Duration.infinity })), ["retention"], "finite")
    }))

  it.live("Redis.layerConfig: a bad REDIS_URL names it; a bad url config is one too", () =>
    Effect.gen(function*() {
      assertInvalid(yield* configError(RedisStore.layerConfig(), { REDIS_URL: "mysql://h/db" }), ["REDIS_URL"], "redis://")
      // A config the caller built is checked as the `url` option (its variable is not known to the store).
      assertInvalid(yield* configError(RedisStore.layerConfig({ url: Config.redacted("MY_REDIS") }), { MY_REDIS: "nonsense" }), ["url"], "Redis URL")
    }))

  it.live("store layerConfig: each option a Config or a plain value, checked like layer's", () =>
    Effect.gen(function*() {
      const env = { REDIS_URL: nowhere.redis, TIMEOUT: "0 seconds", DATABASE_URL: nowhere.pg }
      // From the environment …
      assertInvalid(yield* configError(RedisStore.layerConfig({ connectTimeout: Config.duration("TIMEOUT") }), env), ["connectTimeout"], "above zero")
      // … or given in code, beside a Config.
      assertInvalid(
        yield* configError(RedisStore.layerConfig({ prefix: Config.string("PREFIX").pipe(Config.withDefault("app:")), retention: Duration.infinity }), env),
        ["retention"],
        "finite"
      )
      assertInvalid(yield* configError(PgStore.layerConfig({ tablePrefix: Config.succeed("a-b") }), env), ["tablePrefix"], "table prefix")
      // The whole options as one Config.
      assertInvalid(
        yield* configError(SqliteStore.layerConfig(Config.all({ url: Config.succeed("sqlite::memory:"), tablePrefix: Config.succeed("1st") })), env),
        ["tablePrefix"],
        "table prefix"
      )
      assertInvalid(yield* configError(SqliteStore.layerConfig(Config.all({ tablePrefix: Config.succeed("ok_") })), env), ["url"], "SQLite URL")
    }))

  it.live("Sql.layer: a table prefix that is no identifier, on any client", () =>
    Effect.gen(function*() {
      for (const tablePrefix of ["bad-prefix", "1st_", "x; DROP TABLE users; --", ""]) {
        const e = yield* configError(Sql.layer({ tablePrefix }).pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" }))))
        assertInvalid(e, ["tablePrefix"], "table prefix")
      }
    }))

  it.live("Pg.layer: a bad table prefix or URL, before it connects", () =>
    Effect.gen(function*() {
      assertInvalid(yield* configError(PgStore.layer({ url: nowhere.pg, tablePrefix: "no-dashes" })), ["tablePrefix"], "table prefix")
      assertInvalid(yield* configError(PgStore.layer({ url: "mysql://h/db" })), ["url"], "PostgreSQL URL")
      assertInvalid(yield* configError(PgStore.layer({ url: nowhere.pg, retention: Duration.infinity })), ["retention"], "finite")
    }))

  it.live("Pg.layerConfig and Sqlite.layerConfig: a URL of the other kind names DATABASE_URL", () =>
    Effect.gen(function*() {
      assertInvalid(yield* configError(PgStore.layerConfig(), { DATABASE_URL: "sqlite::memory:" }), ["DATABASE_URL"], "PostgreSQL URL")
      assertInvalid(yield* configError(SqliteStore.layerConfig(), { DATABASE_URL: nowhere.pg }), ["DATABASE_URL"], "SQLite URL")
      assertInvalid(
        yield* configError(PgStore.layerConfig({ tablePrefix: "a.b" }), { DATABASE_URL: nowhere.pg }),
        ["tablePrefix"],
        "table prefix"
      )
    }))

  it.live("Sqlite.layer: a bad table prefix", () =>
    Effect.gen(function*() {
      assertInvalid(yield* configError(SqliteStore.layer({ filename: ":memory:", tablePrefix: "a b" })), ["tablePrefix"], "table prefix")
    }))
})

await withService("PostgreSQL", postgresUrl, () => {
  const prefix = `es_c_${randomBytes(4).toString("hex")}_`
  afterAll(() => dropPgTables(prefix))
  describe("Pg.layerConfig [PostgreSQL]", () => {
    const client = Session.client({ ip: "203.0.113.9", userAgent: "config/1" })
    const roundTrip = Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.create(client)
      yield* sessions.set(h, "k", "v")
      yield* sessions.clearCache // the next read goes to PostgreSQL
      const r = yield* sessions.resolve(Redacted.value(h.token), client)
      return Option.map(r.session, (s) => s.session.data["k"])
    })

    it.effect("reads DATABASE_URL from the ConfigProvider and gives a working store", () =>
      roundTrip.pipe(
        Effect.provide(Sessions.layer({ cache: false }).pipe(
          Layer.provide(PgStore.layerConfig({ tablePrefix: prefix }).pipe(Layer.provide(SecureRandom.layer))),
          Layer.orDie
        )),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["DATABASE_URL", postgresUrl]]))),
        Effect.map((v) => assert.strictEqual(Option.getOrNull(v), "v"))
      ))

    it.effect("takes the url config it is given instead of DATABASE_URL", () =>
      roundTrip.pipe(
        Effect.provide(Sessions.layer({ cache: false }).pipe(
          Layer.provide(
            PgStore.layerConfig({ tablePrefix: prefix, url: Config.redacted("MY_PG") }).pipe(Layer.provide(SecureRandom.layer))
          ),
          Layer.orDie
        )),
        // DATABASE_URL points nowhere: only MY_PG can make this work
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["MY_PG", postgresUrl], ["DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"]]))),
        Effect.map((v) => assert.strictEqual(Option.getOrNull(v), "v"))
      ))
  })
}, { describe, it })
