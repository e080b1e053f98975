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
