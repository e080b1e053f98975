/**
 * The shared services of the store-backed tests: where PostgreSQL and Redis are, whether they
 * are required, and a quick TCP check of whether they answer.
 */
import { connect } from "node:net"

/** PostgreSQL for the tests (`DATABASE_URL`). */
export const postgresUrl: string = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** Redis for the tests (`REDIS_URL`). */
export const redisUrl: string = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

/** When set (`SESSIONS_REQUIRE_SERVICES=1`), an unreachable service fails the tests instead of skipping them. */
export const requireServices: boolean = process.env.SESSIONS_REQUIRE_SERVICES === "1"

const defaultPorts: Record<string, number> = { "postgres:": 5432, "postgresql:": 5432, "redis:": 6379, "rediss:": 6379 }

/** The URL without its credentials, for messages. */
export const redact = (url: string): string => {
  try {
    const u = new URL(url)
    if (u.password) u.password = "***"
    return u.toString()
  } catch {
    return "(unparsable URL)"
  }
}

/** Whether a TCP connection to the URL's host and port opens within `timeoutMs`. */
export const reachable = (url: string, timeoutMs = 1000): Promise<boolean> =>
  new Promise((resolve) => {
    let u: URL
    try {
      u = new URL(url)
    } catch {
      return resolve(false)
    }
    const port = u.port === "" ? defaultPorts[u.protocol] : Number(u.port)
    if (port === undefined) return resolve(false)
    const host = u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1"
    const socket = connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

/**
 * Registers `register` when the service answers; otherwise a failing test (when services are
 * required) or a visibly skipped suite with the reason.
 */
export const withService = async (
  name: string,
  url: string,
  register: () => void,
  api: { readonly describe: { (name: string, f: () => void): void; skip: (name: string, f: () => void) => void }; readonly it: (name: string, f: () => void) => void }
): Promise<void> => {
  if (await reachable(url)) return register()
  const where = redact(url)
  if (requireServices) {
    api.describe(name, () => {
      api.it(`${name} is reachable`, () => {
        throw new Error(`${name} required but unreachable at ${where} (SESSIONS_REQUIRE_SERVICES=1)`)
      })
    })
    return
  }
  console.warn(`[effect-sessions] ${name} unreachable at ${where}: its tests are skipped (set SESSIONS_REQUIRE_SERVICES=1 to fail instead)`)
  api.describe.skip(`${name} (skipped: unreachable at ${where})`, () => {
    api.it("needs the service", () => {})
  })
}

/** Deletes every Redis key under `prefix` (test clean-up), through a client of its own unless given one. */
export const deleteRedisKeys = async (prefix: string, client?: import("ioredis").Redis): Promise<void> => {
  const { Redis } = await import("ioredis")
  const redis = client ?? new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  try {
    let cursor = "0"
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      if (keys.length > 0) await redis.del(...keys)
      cursor = next
    } while (cursor !== "0")
  } finally {
    if (client === undefined) redis.disconnect()
  }
}

/** Drops the session and token tables of a SQL table prefix in PostgreSQL (test clean-up). */
export const dropPgTables = async (prefix: string): Promise<void> => {
  const [{ Effect, Redacted }, PgClient, { SqlClient }] = await Promise.all([
    import("effect"),
    import("@effect/sql-pg/PgClient"),
    import("@effect/sql/SqlClient")
  ])
  await Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* SqlClient
      yield* sql`DROP TABLE IF EXISTS ${sql(`${prefix}sessions`)}`
      yield* sql`DROP TABLE IF EXISTS ${sql(`${prefix}tokens`)}`
      yield* sql`DROP TABLE IF EXISTS ${sql(`${prefix}revocations`)}`
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(postgresUrl) })), Effect.ignoreLogged)
  )
}

/**
 * Redis Cluster for the tests (`REDIS_CLUSTER_NODES`: `host:port` of some nodes, separated by
 * commas), or `undefined` when it is not set.
 */
export const redisClusterNodes: string | undefined = process.env.REDIS_CLUSTER_NODES?.trim() || undefined

/**
 * Registers `register` with the cluster's starting nodes when `REDIS_CLUSTER_NODES` is set and its
 * first node answers; otherwise a failing test (when services are required) or a visibly skipped
 * suite with the reason, as {@link withService} does.
 */
export const withRedisCluster = async (
  register: (nodes: string) => void,
  api: Parameters<typeof withService>[3]
): Promise<void> => {
  const nodes = redisClusterNodes
  if (nodes !== undefined) {
    const first = nodes.split(",")[0]!.trim()
    return withService("Redis Cluster", first.includes("://") ? first : `redis://${first}`, () => register(nodes), api)
  }
  const reason = "REDIS_CLUSTER_NODES is not set"
  if (requireServices) {
    api.describe("Redis Cluster", () => {
      api.it("Redis Cluster is configured", () => {
        throw new Error(`Redis Cluster required but ${reason} (SESSIONS_REQUIRE_SERVICES=1)`)
      })
    })
    return
  }
  console.warn(`[effect-sessions] ${reason}: the Redis Cluster tests are skipped (set it, e.g. 127.0.0.1:7000,127.0.0.1:7001, to run them)`)
  api.describe.skip(`Redis Cluster (skipped: ${reason})`, () => {
    api.it("needs the service", () => {})
  })
}

/**
 * Deletes every key under `prefix` on every primary of the cluster whose starting nodes are `nodes`
 * (test clean-up: SCAN sees one node's keys only).
 */
export const deleteRedisClusterKeys = async (prefix: string, nodes: string): Promise<void> => {
  const { Cluster } = await import("ioredis")
  const seeds = nodes.split(",").map((n) => n.trim()).filter((n) => n !== "").map((n) => {
    const u = new URL(n.includes("://") ? n : `redis://${n}`)
    return { host: u.hostname, port: Number(u.port) }
  })
  const cluster = new Cluster(seeds, { redisOptions: { maxRetriesPerRequest: 1 } })
  try {
    await new Promise<void>((resolve, reject) => {
      cluster.once("ready", () => resolve())
      cluster.once("error", reject)
    })
    for (const node of cluster.nodes("master")) {
      let cursor = "0"
      do {
        const [next, keys] = await node.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
        // One key per DEL: the keys of one node may lie in many slots.
        for (const key of keys) await node.del(key)
        cursor = next
      } while (cursor !== "0")
    }
  } finally {
    cluster.disconnect()
  }
}
