/**
 * A throw-away Redis Cluster for the tests and the bench: three primaries with one replica each,
 * on six loopback ports, started and stopped by scripts/redis-cluster.sh (the one implementation
 * that .ci/run uses too).
 *
 * - the CI-wide cluster (`REDIS_CLUSTER_NODES`, started by .ci/run) is for tests that only read
 *   and write: `withRedisCluster` and `deleteRedisClusterKeys` of spec/services.ts;
 * - {@link startCluster}: a private cluster in a temporary directory, on six free ports found
 *   from a base port; tests that kill nodes (the failover test) and the bench start their own and
 *   `stop()` it (by the PIDs in its pidfiles), never the CI-wide one.
 */
import { execFile, execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { listening, root } from "./processes.js"

/** The harness script. */
export const SCRIPT: string = join(root, "scripts/redis-cluster.sh")

/** A node's address. */
export interface NodeAddress {
  readonly host: string
  readonly port: number
}

/** Parses `host:port,host:port,…` (the format of `REDIS_CLUSTER_NODES`). */
export const parseNodes = (text: string): Array<NodeAddress> =>
  text.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
    const colon = s.lastIndexOf(":")
    const port = Number(s.slice(colon + 1))
    if (colon <= 0 || !Number.isInteger(port) || port <= 0) throw new Error(`not host:port: ${JSON.stringify(s)}`)
    return { host: s.slice(0, colon), port }
  })

/** Whether the harness can run here (redis-server and redis-cli on the PATH). */
export const haveClusterTools = (): Promise<boolean> =>
  new Promise((resolve) => {
    execFile("bash", ["-c", `command -v "\${REDIS_SERVER:-redis-server}" && command -v "\${REDIS_CLI:-redis-cli}"`], (error) => resolve(error === null))
  })

const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}, timeoutMs = 90_000): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile("bash", [SCRIPT, ...args], { env: { ...process.env, ...env }, timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`redis-cluster.sh ${args.join(" ")}: ${error.message}\n${stderr.trim()}`))
      else resolve(stdout)
    })
  })

/** Whether `base` … `base+5` and their cluster bus ports (+10000) are all free on 127.0.0.1. */
const rangeFree = async (base: number): Promise<boolean> => {
  for (let i = 0; i < 6; i++) {
    if ((await listening(base + i, 200)) || (await listening(base + i + 10_000, 200))) return false
  }
  return true
}

/** A private cluster. */
export interface Cluster {
  readonly dir: string
  readonly ports: ReadonlyArray<number>
  /** `127.0.0.1:p,…` (the format of `REDIS_CLUSTER_NODES`). */
  readonly nodes: string
  readonly addresses: ReadonlyArray<NodeAddress>
  /** The PID of the redis-server on `port` (from its pidfile). */
  readonly pidOf: (port: number) => number
  /** SIGKILL of the node on `port`. */
  readonly kill: (port: number) => void
  /** Stops every node by PID and removes the directory; safe to call twice. */
  readonly stop: () => Promise<void>
}

const started = new Set<Cluster>()

/** Stops every cluster started here that is still running (for `afterAll`). */
export const stopAllClusters = async (): Promise<void> => {
  await Promise.all([...started].map((c) => c.stop()))
}

/** The same, synchronously (for an `exit` or signal handler that cannot wait). */
export const stopAllClustersSync = (): void => {
  for (const c of [...started]) {
    started.delete(c)
    try {
      execFileSync("bash", [SCRIPT, "stop", c.dir], { stdio: "ignore", timeout: 15_000 })
    } catch {
      // best effort: the process is going away
    }
  }
}

/**
 * Starts a private cluster on the first six free consecutive ports from `fromPort` (tried in steps
 * of 10, `attempts` times); `nodeTimeoutMs` is its `cluster-node-timeout` (default 1000).
 */
export const startCluster = async (
  options: { readonly fromPort: number; readonly attempts?: number; readonly nodeTimeoutMs?: number }
): Promise<Cluster> => {
  let base: number | undefined
  for (let i = 0; i < (options.attempts ?? 20); i++) {
    const candidate = options.fromPort + i * 10
    if (await rangeFree(candidate)) {
      base = candidate
      break
    }
  }
  if (base === undefined) throw new Error(`no six free ports from ${options.fromPort}`)
  // An empty directory of its own (the script fills it, and removes it on stop).
  const dir = mkdtempSync(join(tmpdir(), "effect-sessions-cluster-"))
  const stdout = await run(["start", dir, String(base)], { REDIS_CLUSTER_NODE_TIMEOUT: String(options.nodeTimeoutMs ?? 1000) }).catch((e: unknown) => {
    rmSync(dir, { recursive: true, force: true })
    throw e
  })
  const match = /^REDIS_CLUSTER_NODES=(.+)$/m.exec(stdout)
  if (match === null) throw new Error(`redis-cluster.sh start printed no node list:\n${stdout}`)
  const nodes = match[1]!.trim()
  const addresses = parseNodes(nodes)
  const pidOf = (port: number) => Number(readFileSync(join(dir, String(port), "redis.pid"), "utf8").trim())
  let stopped = false
  const cluster: Cluster = {
    dir,
    ports: addresses.map((a) => a.port),
    nodes,
    addresses,
    pidOf,
    kill: (port) => {
      process.kill(pidOf(port), "SIGKILL")
    },
    stop: async () => {
      if (stopped) return
      stopped = true
      started.delete(cluster)
      try {
        await run(["stop", dir])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
  started.add(cluster)
  return cluster
}

/** The primaries of a cluster now (from `CLUSTER NODES` of the first node that answers): their addresses and slot ranges. */
export const primariesOf = async (nodes: string): Promise<Array<NodeAddress & { readonly id: string; readonly slots: ReadonlyArray<readonly [number, number]>; readonly replicas: ReadonlyArray<NodeAddress> }>> => {
  const { Redis } = await import("ioredis")
  let lastError: unknown
  for (const address of parseNodes(nodes)) {
    const client = new Redis({ host: address.host, port: address.port, lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null })
    client.on("error", () => {}) // a dead node: the next one is asked
    try {
      await client.connect()
      const text = (await client.call("CLUSTER", "NODES")) as string
      const lines = text.trim().split("\n").map((l) => l.split(" "))
      const addressOf = (field: string): NodeAddress => {
        const hostPort = field.split("@")[0]!
        const colon = hostPort.lastIndexOf(":")
        return { host: hostPort.slice(0, colon), port: Number(hostPort.slice(colon + 1)) }
      }
      const alive = (flags: string) => !flags.includes("fail") && !flags.includes("handshake") && !flags.includes("noaddr")
      return lines
        .filter((f) => f[2]!.includes("master") && alive(f[2]!) && f.length > 8)
        .map((f) => ({
          id: f[0]!,
          ...addressOf(f[1]!),
          slots: f.slice(8).filter((r) => !r.startsWith("[")).map((r) => {
            const [a, b] = r.split("-")
            return [Number(a), Number(b ?? a)] as const
          }),
          replicas: lines.filter((g) => g[3] === f[0] && alive(g[2]!)).map((g) => addressOf(g[1]!))
        }))
    } catch (e) {
      lastError = e
    } finally {
      client.disconnect()
    }
  }
  throw new Error(`no node of ${nodes} answered CLUSTER NODES: ${String(lastError)}`)
}

/** Runs `f` with a plain (non-cluster) client of one node. */
export const withNode = async <A>(address: NodeAddress, f: (client: import("ioredis").Redis) => Promise<A>): Promise<A> => {
  const { Redis } = await import("ioredis")
  const client = new Redis({ host: address.host, port: address.port, lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: () => null })
  client.on("error", () => {}) // reported by the command that fails
  try {
    await client.connect()
    return await f(client)
  } finally {
    client.disconnect()
  }
}

/** The keys under `prefix` on one node (SCAN). */
export const keysOn = (address: NodeAddress, prefix: string): Promise<Array<string>> =>
  withNode(address, async (client) => {
    const out: Array<string> = []
    let cursor = "0"
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      out.push(...keys)
      cursor = next
    } while (cursor !== "0")
    return out
  })

/** `DBSIZE` of every primary, in the order of their first slot. */
export const dbsizes = async (nodes: string): Promise<Array<{ readonly node: string; readonly slots: string; readonly keys: number }>> => {
  const primaries = (await primariesOf(nodes)).sort((a, b) => (a.slots[0]?.[0] ?? 0) - (b.slots[0]?.[0] ?? 0))
  return Promise.all(primaries.map(async (p) => ({
    node: `${p.host}:${p.port}`,
    slots: p.slots.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(","),
    keys: await withNode(p, (client) => client.dbsize())
  })))
}
