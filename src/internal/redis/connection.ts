/**
 * The Redis store's connections (ioredis): the client it creates (fail fast during an outage,
 * reconnecting in the background) or the one it is given, waiting for a connection when the
 * layer is built, defining the scripts, and closing what it opened when the scope closes.
 *
 * @internal
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import { Redis, type RedisOptions } from "ioredis"
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

/** Resolves when a client is ready, rejects after `timeout` ms (with its last error, if any). */
const whenReady = (client: Redis, timeout: number): Promise<void> =>
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
export const connected = (client: Redis, timeout: number): Effect.Effect<void, SessionStoreError> =>
  Effect.tryPromise({ try: () => whenReady(client, timeout), catch: unavailable("connect") })

/** Closes a client politely, then for sure. */
const close = (client: Redis): Effect.Effect<void> =>
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
 * Defines the store's scripts on a client (once: a client shared by two stores keeps them).
 *
 * @internal
 */
export const withCommands = (client: Redis): Commands => {
  for (const [name, lua] of Object.entries(COMMANDS)) {
    if (!(name in client)) client.defineCommand(name, { numberOfKeys: 1, lua })
  }
  return client as unknown as Commands
}
