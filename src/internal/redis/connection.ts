/**
 * The Redis store's connections (ioredis): the client it creates — a `Redis` for a single server,
 * a `Cluster` for Redis Cluster; both fail fast during an outage and reconnect in the background —
 * or the one it is given, waiting for a connection when the layer is built, defining the scripts,
 * and closing what it opened when the scope closes.
 *
 * @internal
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from "ioredis"
import { SessionStoreError } from "../persistence.js"
import { redactDriverError } from "../storeErrors.js"
import { failFastOptions } from "./options.js"
import { type Commands, COMMANDS } from "./scripts.js"

/**
 * A store error for a failed call to Redis: the server is out of reach (or answered an error),
 * and the error keeps only the class name and message of ioredis's (its `ReplyError` carries
 * the command and every argument: keys, the user ID, the record).
 *
 * @internal
 */
export const unavailable = (method: string) => (cause: unknown): SessionStoreError =>
  new SessionStoreError({ method, reason: "Unavailable", cause: redactDriverError(cause) })

/**
 * What the store talks to: one server or a cluster (the same commands and scripts on both).
 *
 * @internal
 */
export type Client = Redis | Cluster

/** Resolves when a client is ready, rejects after `timeout` ms (with its last error, if any). */
const whenReady = (client: Client, timeout: number): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    if (client.status === "ready") return resolve()
    // A client made with `lazyConnect` waits for a first command: connect it now.
    if (client.status === "wait") client.connect().catch(() => {})
    let last: unknown = undefined
    const onError = (e: unknown) => {
      last = e
    }
    const cleanup = () => {
      clearTimeout(timer)
      client.off("ready", onReady)
      client.off("error", onError)
      client.off("end", onEnd)
    }
    const onReady = () => {
      cleanup()
      resolve()
    }
    const onEnd = () => {
      cleanup()
      reject(last ?? new Error("Redis connection ended"))
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(last ?? new Error(`Redis not ready after ${timeout} ms`))
    }, timeout)
    client.on("ready", onReady)
    client.on("error", onError)
    client.on("end", onEnd)
  })

/**
 * Waits until a client is connected (at most `timeout` ms); a `SessionStoreError` (method
 * `connect`, reason `Unavailable`) otherwise.
 *
 * @internal
 */
export const connected = (client: Client, timeout: number): Effect.Effect<void, SessionStoreError> =>
  Effect.tryPromise({ try: () => whenReady(client, timeout), catch: unavailable("connect") })

/** Closes a client politely, then for sure. */
const close = (client: Client): Effect.Effect<void> =>
  Effect.promise(() =>
    client.status === "ready"
      ? Promise.race([
        client.quit().then(() => undefined, () => undefined),
        new Promise<void>((resolve) => setTimeout(resolve, 1000).unref())
      ])
      : Promise.resolve()
  ).pipe(Effect.ensuring(Effect.sync(() => client.disconnect())))

// A client's errors reach the requests that fail; the client's own "error" events are noise.
const ignoreErrors = () => {}

/**
 * Opens a client at `url` (with `redisOptions` over {@link failFastOptions}), closed with the scope.
 *
 * @internal
 */
export const openClient = (url: string, redisOptions: RedisOptions | undefined): Effect.Effect<Redis, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const c = new Redis(url, { ...failFastOptions, ...redisOptions })
      c.on("error", ignoreErrors)
      return c
    }),
    close
  )

/**
 * Opens a cluster client over the starting `nodes` (with `redisOptions` over {@link failFastOptions}
 * for each node's connection), failing fast as {@link openClient} does: no offline queue, and
 * commands during a failover fail after the node's command timeout instead of queueing. Closed
 * with the scope.
 *
 * @internal
 */
export const openCluster = (
  nodes: ReadonlyArray<ClusterNode>,
  redisOptions: RedisOptions | undefined,
  clusterOptions: ClusterOptions | undefined
): Effect.Effect<Cluster, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const { enableAutoPipelining: _pipelining, enableOfflineQueue: _queue, retryStrategy: _retry, ...nodeOptions } = failFastOptions
      const c = new Cluster([...nodes], {
        enableAutoPipelining: true,
        enableOfflineQueue: false,
        clusterRetryStrategy: (times) => Math.min(50 * times, 1000),
        slotsRefreshTimeout: 2000,
        ...clusterOptions,
        redisOptions: { ...nodeOptions, ...redisOptions, ...clusterOptions?.redisOptions }
      })
      c.on("error", ignoreErrors)
      return c
    }),
    close
  )

/**
 * A second connection for the subscription (`SUBSCRIBE` takes a connection over), not
 * resubscribing by itself: the store renews the subscription after a reconnect. Closed with the
 * scope.
 *
 * @internal
 */
export const openSubscriber = (client: Redis): Effect.Effect<Redis, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const s = client.duplicate({ autoResubscribe: false })
      s.on("error", ignoreErrors)
      return s
    }),
    close
  )

/**
 * A connection to one node of a cluster for the subscription: no reconnecting of its own (the
 * listener moves to another node when it ends), not resubscribing by itself. The caller closes it.
 *
 * @internal
 */
export const nodeSubscriber = (options: RedisOptions): Redis => {
  const s = new Redis({ ...options, lazyConnect: false, enableOfflineQueue: true, autoResubscribe: false, retryStrategy: () => null })
  s.on("error", ignoreErrors)
  return s
}

/**
 * Defines the store's scripts on a client (once: a client shared by two stores keeps them).
 *
 * @internal
 */
export const withCommands = (client: Client): Commands => {
  for (const [name, [lua, numberOfKeys]] of Object.entries(COMMANDS)) {
    if (!(name in client)) client.defineCommand(name, { numberOfKeys, lua })
  }
  return client as unknown as Commands
}
