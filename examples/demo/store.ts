/**
 * The demo's store switch: `SESSIONS_STORE` picks the Persistence.
 *
 * | `SESSIONS_STORE` | store | connection |
 * |---|---|---|
 * | `memory` (default) | in-process memory | at most `SESSIONS_MEMORY_CAPACITY` sessions (default 1,000,000; the least recently used go first) |
 * | `sqlite` | SQLite file | `SESSIONS_SQLITE_FILENAME` (default `<tmpdir>/effect-sessions-demo.sqlite`) |
 * | `postgres` | PostgreSQL | `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) |
 * | `redis` | Redis | `REDIS_URL` (default `redis://127.0.0.1:6379`) |
 * | `redis-cluster` | Redis Cluster | `REDIS_CLUSTER_NODES` (required: `127.0.0.1:7000,127.0.0.1:7001,…`) |
 *
 * Each real store is loaded with a dynamic `import()`, so the memory demo never loads
 * better-sqlite3, pg or ioredis.
 */
import { Config, Effect, Layer, Redacted } from "effect"
import type { ConfigError } from "effect/ConfigError"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Persistence } from "../../src/index.js"
import type { SecureRandom } from "../../src/index.js"

/** The stores the demo knows. */
export const storeKinds = ["memory", "sqlite", "postgres", "redis", "redis-cluster"] as const

/** One of {@link storeKinds}. */
export type StoreKind = (typeof storeKinds)[number]

/** `SESSIONS_STORE`, default `memory`. */
export const storeKind: Config.Config<StoreKind> = Config.literal(...storeKinds)("SESSIONS_STORE").pipe(
  Config.withDefault("memory" as const)
)

/**
 * `SESSIONS_MEMORY_CAPACITY`: how many sessions the memory store holds at most (a positive
 * integer; default `Persistence.DEFAULT_MEMORY_CAPACITY`, 1,000,000).
 */
export const memoryCapacity: Config.Config<number> = Config.integer("SESSIONS_MEMORY_CAPACITY").pipe(
  Config.validate({ message: "must be a positive integer", validation: (n) => n >= 1 }),
  Config.withDefault(Persistence.DEFAULT_MEMORY_CAPACITY)
)

/** Where the SQLite demo keeps its database. */
export const defaultSqliteFilename = join(tmpdir(), "effect-sessions-demo.sqlite")

/** The PostgreSQL the demo connects to when `DATABASE_URL` is not set. */
export const defaultDatabaseUrl = "postgres://postgres@127.0.0.1:5432/postgres"

const load = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({
    try: f,
    catch: (cause) => new Persistence.SessionStoreError({ method: `demo.load(${what})`, reason: "Unknown", cause })
  })

/**
 * A short description of a store, for the home page and the startup line (never a password:
 * the credentials of a URL are removed).
 */
export const describe = (kind: StoreKind, target?: string): string => {
  if (target === undefined) return kind
  try {
    const url = new URL(target)
    url.password = ""
    return `${kind} (${url.toString()})`
  } catch {
    return `${kind} (${target})`
  }
}

/**
 * The Persistence named by `kind`. The SQL and Redis layers need `SecureRandom` (for their
 * process id in invalidation messages).
 */
export const layerFor = (
  kind: StoreKind
): Layer.Layer<Persistence.Persistence, Persistence.SessionStoreError | ConfigError, SecureRandom.SecureRandom> => {
  switch (kind) {
    case "memory":
      return Layer.unwrapEffect(Effect.map(memoryCapacity, (capacity) => Persistence.layerMemoryWith({ capacity })))
    case "sqlite":
      return Layer.unwrapEffect(Effect.gen(function*() {
        const filename = yield* Config.string("SESSIONS_SQLITE_FILENAME").pipe(Config.withDefault(defaultSqliteFilename))
        const Sqlite = yield* load("sqlite", () => import("../../src/Persistence/Sqlite.js"))
        return Sqlite.layer({ filename })
      }))
    case "postgres":
      return Layer.unwrapEffect(Effect.gen(function*() {
        const Pg = yield* load("postgres", () => import("../../src/Persistence/Pg.js"))
        return Pg.layerConfig({
          url: Config.redacted("DATABASE_URL").pipe(Config.withDefault(Redacted.make(defaultDatabaseUrl)))
        })
      }))
    case "redis":
      return Layer.unwrapEffect(Effect.gen(function*() {
        const Redis = yield* load("redis", () => import("../../src/Persistence/Redis.js"))
        return Redis.layerConfig()
      }))
    case "redis-cluster":
      return Layer.unwrapEffect(Effect.gen(function*() {
        const Redis = yield* load("redis", () => import("../../src/Persistence/Redis.js"))
        return Redis.layerClusterConfig()
      }))
  }
}

/** Where the chosen store lives, for the startup line and the home page. */
export const storeTarget = (kind: StoreKind): Effect.Effect<string, ConfigError> => {
  switch (kind) {
    case "memory":
      return Effect.map(memoryCapacity, (capacity) => `memory (at most ${capacity.toLocaleString("en-US")} sessions)`)
    case "sqlite":
      return Effect.map(
        Config.string("SESSIONS_SQLITE_FILENAME").pipe(Config.withDefault(defaultSqliteFilename)),
        (f) => `sqlite (${f})`
      )
    case "postgres":
      return Effect.map(
        Config.redacted("DATABASE_URL").pipe(Config.withDefault(Redacted.make(defaultDatabaseUrl))),
        (url) => describe(kind, Redacted.value(url))
      )
    case "redis":
      return Effect.map(
        Config.string("REDIS_URL").pipe(Config.withDefault("redis://127.0.0.1:6379")),
        (url) => describe(kind, url)
      )
    case "redis-cluster":
      return Effect.map(Config.string("REDIS_CLUSTER_NODES"), (nodes) => `redis-cluster (${nodes})`)
  }
}

/** The store that `SESSIONS_STORE` names. */
export const layer: Layer.Layer<Persistence.Persistence, Persistence.SessionStoreError | ConfigError, SecureRandom.SecureRandom> =
  Layer.unwrapEffect(Effect.map(storeKind, layerFor))
