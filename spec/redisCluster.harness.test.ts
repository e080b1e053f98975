/**
 * The Redis Cluster harness (scripts/redis-cluster.sh through spec/helpers/redisCluster.ts), the
 * one .ci/run, the failover test and the bench use: a start gives three primaries that share all
 * 16384 slots, each with one replica in sync, on the six ports it reports; `stop` ends exactly
 * those processes (by their PIDs) and removes the directory. A private cluster on free ports from
 * `REDIS_CLUSTER_HARNESS_BASE_PORT` (default 7030); never the CI-wide one.
 */
import { existsSync } from "node:fs"
import { afterAll, assert, describe, it } from "vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { dbsizes, haveClusterTools, primariesOf, startCluster, stopAllClusters, withNode } from "./helpers/redisCluster.js"
import { requireServices } from "./services.js"

const BASE_PORT = Number(process.env["REDIS_CLUSTER_HARNESS_BASE_PORT"] ?? 7030)

afterAll(stopAllClusters)

const tools = await haveClusterTools()
const suite = tools || requireServices ? describe : describe.skip
if (!tools && !requireServices) {
  console.warn("[effect-sessions] redis-server / redis-cli not found: the Redis Cluster harness test is skipped (set SESSIONS_REQUIRE_SERVICES=1 to fail instead)")
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

suite("scripts/redis-cluster.sh", () => {
  it("starts three primaries with a replica each, all slots covered and the replicas in sync; stop ends those PIDs and removes the directory", async () => {
    assert.isTrue(tools, "redis-server and redis-cli are required (SESSIONS_REQUIRE_SERVICES=1)")
    const cluster = await startCluster({ fromPort: BASE_PORT })
    const pids = cluster.ports.map(cluster.pidOf)
    try {
      deepStrictEqual(cluster.ports.length, 6)
      deepStrictEqual(cluster.nodes, cluster.ports.map((p) => `127.0.0.1:${p}`).join(","))
      for (const pid of pids) assert.isTrue(alive(pid), `redis-server ${pid} runs`)

      const primaries = await primariesOf(cluster.nodes)
      deepStrictEqual(primaries.length, 3)
      deepStrictEqual(primaries.map((p) => p.replicas.length), [1, 1, 1])
      const covered = primaries.flatMap((p) => p.slots).reduce((n, [a, b]) => n + (b - a + 1), 0)
      deepStrictEqual(covered, 16384)
      for (const port of cluster.ports) {
        const info = await withNode({ host: "127.0.0.1", port }, (c) => c.call("CLUSTER", "INFO") as Promise<string>)
        assert.match(info, /^cluster_state:ok/m, `node ${port}`)
      }
      for (const p of primaries) {
        const replication = await withNode(p.replicas[0]!, (c) => c.info("replication"))
        assert.match(replication, /^master_link_status:up/m, `replica of ${p.port}`)
      }
      // Every primary starts empty.
      deepStrictEqual((await dbsizes(cluster.nodes)).map((d) => d.keys), [0, 0, 0])
    } finally {
      await cluster.stop()
    }
    deepStrictEqual(pids.filter(alive), [], "every node stopped")
    assert.isFalse(existsSync(cluster.dir), "the directory is removed")
  }, 120_000)
})
