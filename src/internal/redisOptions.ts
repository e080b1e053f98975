/**
 * The ioredis options of the clients the Redis store creates. Kept apart from `redisStore.ts`
 * (which imports ioredis) so that `Persistence/Redis` can export them without loading ioredis:
 * it is an optional peer dependency, imported only when a Redis layer is built.
 *
 * @internal
 */
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
