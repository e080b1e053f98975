/**
 * The options of the Redis store that can be read without loading ioredis: the fail-fast client
 * options and the checks of the store's configuration. `Persistence/Redis` imports this module
 * on import; ioredis, an optional peer dependency, is imported only when a Redis layer is built.
 *
 * @internal
 */
import { ConfigError, Either } from "effect"
import type { RedisOptions } from "ioredis"

/**
 * Connection options that make a request during an outage fail fast (no offline queue, one retry,
 * a command timeout) while the client keeps reconnecting in the background.
 *
 * @internal
 */
export const failFastOptions: RedisOptions = {
  // Commands issued in one tick travel in one write: many concurrent requests, few syscalls.
  enableAutoPipelining: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 1000,
  connectTimeout: 2000,
  retryStrategy: (times) => Math.min(50 * times, 1000)
}

/**
 * A Redis connection URL as ioredis reads it: `redis://` or `rediss://` (TLS), with a host. The
 * message of a bad one never quotes it (it may hold a password).
 *
 * @internal
 */
export const checkRedisUrl = (url: string, path: ReadonlyArray<string>): Either.Either<string, ConfigError.ConfigError> => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return Either.left(ConfigError.InvalidData([...path], "Expected a Redis URL (redis://host:port or rediss://host:port), got text that is not a URL"))
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    return Either.left(ConfigError.InvalidData([...path], `Expected a Redis URL (redis:// or rediss://), got the scheme ${JSON.stringify(parsed.protocol)}`))
  }
  if (parsed.hostname === "") return Either.left(ConfigError.InvalidData([...path], "Expected a Redis URL with a host"))
  return Either.right(url)
}

/**
 * A node of a Redis Cluster as the store takes it: `host:port` (an IPv6 host in brackets,
 * `[::1]:7000`), optionally as a `redis://` URL, or `{ host, port }`.
 *
 * @internal
 */
export type ClusterNodeInput = string | { readonly host: string; readonly port: number }

const validPort = (port: number) => Number.isInteger(port) && port >= 1 && port <= 65535

/**
 * The starting nodes of a cluster: a non-empty list (an array, or text separated by commas, as
 * `REDIS_CLUSTER_NODES` holds it) of {@link ClusterNodeInput}s, or a `ConfigError` naming `path`.
 * The message quotes no entry (a URL may hold a password).
 *
 * @internal
 */
export const checkClusterNodes = (
  input: string | ReadonlyArray<ClusterNodeInput>,
  path: ReadonlyArray<string>
): Either.Either<ReadonlyArray<{ readonly host: string; readonly port: number }>, ConfigError.ConfigError> => {
  const entries = typeof input === "string" ? input.split(",").map((s) => s.trim()).filter((s) => s !== "") : input
  if (entries.length === 0) return Either.left(ConfigError.InvalidData([...path], "Expected at least one cluster node (host:port, separated by commas)"))
  const out: Array<{ host: string; port: number }> = []
  for (const [i, entry] of entries.entries()) {
    if (typeof entry !== "string") {
      if (typeof entry.host !== "string" || entry.host === "" || !validPort(entry.port)) {
        return Either.left(ConfigError.InvalidData([...path], `Expected a cluster node { host, port } with a port from 1 to 65535 (entry ${i + 1})`))
      }
      out.push({ host: entry.host, port: entry.port })
      continue
    }
    let url: URL | undefined
    try {
      url = new URL(entry.includes("://") ? entry : `redis://${entry}`)
    } catch {
      url = undefined
    }
    const port = url === undefined || url.port === "" ? NaN : Number(url.port)
    if (url === undefined || (url.protocol !== "redis:" && url.protocol !== "rediss:") || url.hostname === "" || !validPort(port) || (url.pathname !== "" && url.pathname !== "/")) {
      return Either.left(ConfigError.InvalidData([...path], `Expected cluster nodes as host:port separated by commas (entry ${i + 1} is not one)`))
    }
    out.push({ host: url.hostname.replace(/^\[|\]$/g, ""), port })
  }
  return Either.right(out)
}
