/**
 * The service-level conformance suite (src/internal/testing/sessionsSuite.ts: invariants 1–10 on the
 * running service) over every store: memory, SQLite (a file), PostgreSQL, Redis and Redis Cluster.
 *
 * PostgreSQL, Redis and Redis Cluster come from DATABASE_URL / REDIS_URL / REDIS_CLUSTER_NODES
 * (spec/services.ts); an unset or unreachable
 * service skips its suite with a message, or fails it with SESSIONS_REQUIRE_SERVICES=1. Every run
 * uses its own table and key prefixes (and SQLite file) and removes them afterwards.
 */
import { afterAll, describe, it } from "@effect/vitest"
import { Layer } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Persistence from "../src/Persistence.js"
import * as PgStore from "../src/Persistence/Pg.js"
import * as RedisStore from "../src/Persistence/Redis.js"
import * as SqliteStore from "../src/Persistence/Sqlite.js"
import * as SecureRandom from "../src/SecureRandom.js"
import { sessionsSuite } from "../src/internal/testing/sessionsSuite.js"
import { deleteRedisClusterKeys, deleteRedisKeys, postgresUrl, redisUrl, withRedisCluster, withService, dropPgTables } from "./services.js"

const runId = randomBytes(4).toString("hex")

// Memory: one store instance; the "second process" of invariant 10 is a second service over it
// (a memory store can only be shared inside one process). The only copy of the running-service
// invariants on the memory store (the run counts spec/Sessions.invariants.test.ts had).
const memory = () => Layer.effect(Persistence.Persistence, Persistence.makeMemory)
sessionsSuite("memory", memory(), { fresh: memory, numRuns: 50, timingRuns: 150, transparencyRuns: 150 })

// SQLite: a file in a temporary directory; the second process opens its own connection to it.
{
  const dir = mkdtempSync(join(tmpdir(), "effect-sessions-stores-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const sqlite = () => SqliteStore.layer({ filename: join(dir, "sessions.db") }).pipe(Layer.provide(SecureRandom.layer))
  // `fresh`: a file of its own per namespace (opened twice for two processes).
  const fresh = (namespace: string) =>
    SqliteStore.layer({ filename: join(dir, `${namespace}.db`) }).pipe(Layer.provide(SecureRandom.layer))
  sessionsSuite("SQLite", sqlite(), { peer: sqlite(), fresh, numRuns: 25, timingRuns: 40 })
}

// PostgreSQL: each "process" has its own pool, listener and origin id.
await withService("PostgreSQL", postgresUrl, () => {
  const prefix = `es_s_${runId}_`
  const pg = () => PgStore.layer({ url: postgresUrl, tablePrefix: prefix }).pipe(Layer.provide(SecureRandom.layer))
  const namespaces = new Set<string>()
  afterAll(() => Promise.all([prefix, ...[...namespaces].map((ns) => `${prefix}${ns}_`)].map(dropPgTables)))
  const fresh = (namespace: string) => {
    namespaces.add(namespace)
    return PgStore.layer({ url: postgresUrl, tablePrefix: `${prefix}${namespace}_` }).pipe(Layer.provide(SecureRandom.layer))
  }
  sessionsSuite("PostgreSQL", pg(), { peer: pg(), fresh, numRuns: 25, timingRuns: 40 })
}, { describe, it })

// Redis: each "process" has its own connections and origin id.
await withService("Redis", redisUrl, () => {
  const prefix = `es:s:${runId}:`
  const redis = () => RedisStore.layer({ url: redisUrl, prefix }).pipe(Layer.provide(SecureRandom.layer))
  afterAll(() => deleteRedisKeys(prefix))
  // Under the suite's prefix, so that deleteRedisKeys removes them too.
  const fresh = (namespace: string) => RedisStore.layer({ url: redisUrl, prefix: `${prefix}${namespace}:` }).pipe(Layer.provide(SecureRandom.layer))
  sessionsSuite("Redis", redis(), { peer: redis(), fresh, numRuns: 25, timingRuns: 40 })
}, { describe, it })

// Redis Cluster (REDIS_CLUSTER_NODES): the same store module over a Cluster client.
await withRedisCluster((nodes) => {
  const prefix = `es:sc:${runId}:`
  const cluster = () => RedisStore.layerCluster({ nodes, prefix }).pipe(Layer.provide(SecureRandom.layer))
  afterAll(() => deleteRedisClusterKeys(prefix, nodes))
  const fresh = (namespace: string) => RedisStore.layerCluster({ nodes, prefix: `${prefix}${namespace}:` }).pipe(Layer.provide(SecureRandom.layer))
  sessionsSuite("Redis Cluster", cluster(), { peer: cluster(), fresh, numRuns: 25, timingRuns: 40 })
}, { describe, it })
