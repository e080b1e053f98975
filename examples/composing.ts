// Composing the layers: every way to build the Sessions service, each one used below on a small
// program (create a session, write a typed value, resolve the token, read the value back).
// The PostgreSQL and Redis compositions are type-checked here but not built, as they need a
// server (examples/redis-multi-process.ts runs on Redis; spec/ runs every store).
// Run: npx tsx examples/composing.ts
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Config, ConfigProvider, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Persistence, SecureRandom, Session, SessionConfig, Sessions } from "effect-sessions"
import * as Pg from "effect-sessions/Persistence/Pg"
import * as Redis from "effect-sessions/Persistence/Redis"
import * as Sql from "effect-sessions/Persistence/Sql"
import * as Sqlite from "effect-sessions/Persistence/Sqlite"

const dir = mkdtempSync(join(tmpdir(), "effect-sessions-composing-"))
const filename = join(dir, "sessions.db")
const prefix = `example:${process.pid}:`

const options = { idleTimeout: "30 minutes", absoluteTimeout: "12 hours" }

// One process, sessions in memory (gone on restart): the service and its store in one layer.
const onMemory = Sessions.layerMemory(options)

// The service over any store: Sessions.layer(options) and a store layer, which needs nothing else.
const onSqlite = Sessions.layer(options).pipe(Layer.provide(Sqlite.layer({ filename })))
const onPostgres = Sessions.layer(options).pipe(Layer.provide(Pg.layerConfig())) // DATABASE_URL
const onRedis = Sessions.layer(options).pipe(Layer.provide(Redis.layerConfig({ prefix }))) // REDIS_URL

// The SQL store on a client of your own, or on the SQLite file DATABASE_URL names (sqlite:… or file:…).
const onYourClient = Sessions.layer(options).pipe(
  Layer.provide(Sql.layer({ tablePrefix: "myapp_sessions_" })),
  Layer.provide(SqliteClient.layer({ filename: join(dir, "own-client.db") })) // or PgClient.layer(…)
)
const onDatabaseUrl = Sessions.layer(options).pipe(Layer.provide(Sqlite.layerConfig()))

// Options from the environment: a Config for each option you choose …
const fromConfig = Sessions.layerConfig({ idleTimeout: Config.duration("IDLE_TIMEOUT") }).pipe(
  Layer.provide(Persistence.layerMemory)
)
// … or every option under SESSIONS_ (SESSIONS_IDLE_TIMEOUT="30 minutes", SESSIONS_COOKIE_NAME, …).
const fromEnvironment = Sessions.layerConfig(SessionConfig.config).pipe(Layer.provide(Persistence.layerMemory))

// Every part your own (tests): configuration, store and randomness from context, no sweeper.
const fromParts = Sessions.layerFromContext.pipe(
  Layer.provide(Layer.mergeAll(Persistence.layerMemory, SessionConfig.layer(options), SecureRandom.layerSeeded("tests")))
)

// ---- each composition at work

const Theme = Session.key("theme", Schema.Literal("light", "dark"))

const roundTrip = Effect.gen(function*() {
  const sessions = yield* Sessions.Sessions
  const client = Session.client({ ip: "203.0.113.7", userAgent: "example/1.0" })
  const created = yield* sessions.create(client)
  yield* sessions.set(created, Theme, "dark")
  const resolved = yield* sessions.resolve(Redacted.value(created.token), client)
  const handle = yield* resolved.session
  const theme = yield* sessions.get(handle, Theme)
  yield* sessions.destroy(handle)
  return `${resolved.outcome}, theme ${Option.getOrElse(theme, () => "missing")}, idle timeout ${Duration.format(sessions.config.idleTimeout)}`
})

// Stands in for the process environment (ConfigProvider.fromEnv is the default).
const environment = ConfigProvider.fromMap(
  new Map([
    ["IDLE_TIMEOUT", "20 minutes"],
    ["SESSIONS_IDLE_TIMEOUT", "25 minutes"],
    ["DATABASE_URL", `sqlite:${join(dir, "from-url.db")}`]
  ]),
  { pathDelim: "_" }
)

const compositions: ReadonlyArray<readonly [string, Layer.Layer<Sessions.Sessions, unknown>]> = [
  ["Sessions.layerMemory", onMemory],
  ["Sessions.layer + Sqlite.layer", onSqlite],
  ["Sessions.layer + Sql.layer + a SqliteClient of your own", onYourClient],
  ["Sessions.layer + Sqlite.layerConfig (DATABASE_URL=sqlite:…)", onDatabaseUrl],
  ["Sessions.layerConfig (a Config per option)", fromConfig],
  ["Sessions.layerConfig(SessionConfig.config)", fromEnvironment],
  ["Sessions.layerFromContext", fromParts]
]

const main = Effect.forEach(compositions, ([name, layer]) =>
  roundTrip.pipe(
    Effect.provide(layer),
    Effect.tap((result) => Effect.sync(() => console.log(`${name}: ${result}`)))
  ), { discard: true }).pipe(Effect.withConfigProvider(environment))

export { onPostgres, onRedis }

Effect.runPromise(main).then(
  () => rmSync(dir, { recursive: true, force: true }),
  (error: unknown) => {
    console.error(error)
    rmSync(dir, { recursive: true, force: true })
    process.exitCode = 1
  }
)
