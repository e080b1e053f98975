/**
 * The Redis store's invalidation listener: a second connection subscribed to
 * `${prefix}invalidate`, where every script publishes `${originId}:${tokenKey}` for the token
 * keys it changed and `publishUserInvalidation` publishes `${originId}:!u:${userKey}` (token
 * keys are base64url, never starting with `!`). The subscription is renewed by hand after a
 * reconnect, and the consumers are told (`INVALIDATE_ALL`) once it is back, since messages
 * published while it was down are lost. A process never hears its own messages.
 *
 * On a cluster the scripts publish with classic `PUBLISH`, which every node relays to the whole
 * cluster, so the listener subscribes on one node of its choice (a connection of its own, not
 * the cluster client's) and moves to another node when that one goes — telling the consumers
 * `INVALIDATE_ALL` each time. Sharded pub/sub (`SSUBSCRIBE`, which ioredis 5.11's `Cluster`
 * supports) was considered and not used: one channel lives in one slot, so it would load one
 * shard exactly as classic pub/sub loads the cluster bus, and `SPUBLISH` inside a script must name
 * a channel in the script's slot, so each write would publish separately after its script — and
 * a process that stops between the two would leave the other processes' caches stale.
 *
 * @internal
 */
import { Effect, Stream } from "effect"
import type { Scope } from "effect"
import { EventEmitter } from "node:events"
import type { Cluster, Redis } from "ioredis"
import { INVALIDATE_ALL, type Invalidation, type SessionStoreError } from "../persistence.js"
import { parseInvalidation } from "../invalidationMessage.js"
import { connected, nodeSubscriber, openSubscriber, unavailable } from "./connection.js"

/**
 * What the listener gives the store: the stream of what other processes changed, and a way to
 * tell this process's own consumers of a change (a record it dropped as corrupt).
 *
 * @internal
 */
export interface Listener {
  readonly invalidations: Stream.Stream<Invalidation>
  readonly tellSelf: (invalidation: Invalidation) => void
}

/**
 * Subscribes to `channel` with a duplicate of `client` (ready within `connectTimeout` ms, or a
 * `SessionStoreError`); unsubscribed and closed when the scope closes.
 *
 * @internal
 */
export const listen = (
  client: Redis,
  channel: string,
  originId: string,
  connectTimeout: number
): Effect.Effect<Listener, SessionStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const subscriber = yield* openSubscriber(client)
    yield* connected(subscriber, connectTimeout)
    yield* Effect.tryPromise({ try: () => subscriber.subscribe(channel), catch: unavailable("connect") })
    const resets = new Set<() => void>()
    const onReconnected = () => {
      subscriber.subscribe(channel).then(
        () => resets.forEach((reset) => reset()),
        () => subscriber.disconnect(true) // try again from a fresh connection
      )
    }
    subscriber.on("ready", onReconnected)
    yield* Effect.addFinalizer(() => Effect.sync(() => subscriber.off("ready", onReconnected)))
    return listener(subscriber, resets, channel, originId)
  })

/**
 * Subscribes to `channel` on one node of `cluster` (ready within `connectTimeout` ms, or a
 * `SessionStoreError`), moving to another node whenever the connection ends; closed when the
 * scope closes.
 *
 * @internal
 */
export const listenCluster = (
  cluster: Cluster,
  seeds: ReadonlyArray<{ readonly host: string; readonly port: number }>,
  channel: string,
  originId: string,
  connectTimeout: number
): Effect.Effect<Listener, SessionStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const hub = new EventEmitter()
    const resets = new Set<() => void>()
    let closed = false
    let current: Redis | undefined
    let next = 0
    const nodes = () => {
      const known = cluster.nodes("all").map((n) => ({ host: n.options.host ?? "127.0.0.1", port: n.options.port ?? 6379 }))
      return known.length > 0 ? known : seeds
    }
    const open = (isReset: boolean): Promise<void> => {
      const candidates = nodes()
      const node = candidates[next++ % candidates.length]!
      const s = nodeSubscriber({
        ...cluster.options.redisOptions,
        ...node,
        connectTimeout: Math.min(connectTimeout, 2000),
        // Named, so that an operator (or a test) can tell this process's subscriber in CLIENT LIST.
        connectionName: `effect-sessions-sub:${originId.replace(/[^A-Za-z0-9_.:-]/g, "_")}`
      })
      s.on("message", (ch: string, message: string) => hub.emit("message", ch, message))
      return s.subscribe(channel).then(
        () => {
          if (closed) return void s.disconnect()
          current = s
          // Moving on when the node goes (it failed, or left the cluster).
          s.once("end", () => {
            if (!closed) reopen()
          })
          if (isReset) resets.forEach((reset) => reset())
        },
        (e: unknown) => {
          s.disconnect()
          throw e
        }
      )
    }
    const reopen = (): void => {
      current = undefined
      setTimeout(() => {
        if (!closed) open(true).catch(reopen)
      }, 100).unref()
    }
    yield* Effect.tryPromise({
      // Every known node in turn, twice, before the layer fails.
      try: async () => {
        const attempts = 2 * Math.max(1, nodes().length)
        for (let i = 1; ; i++) {
          try {
            return await open(false)
          } catch (e) {
            if (i >= attempts) throw e
            await new Promise((resolve) => setTimeout(resolve, 100))
          }
        }
      },
      catch: unavailable("connect")
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        current?.disconnect()
      })
    )
    return listener(hub, resets, channel, originId)
  })

/** The stream over a subscribed connection's messages (any emitter of `message` events). */
const listener = (
  subscriber: Pick<EventEmitter, "on" | "off">,
  resets: Set<() => void>,
  channel: string,
  originId: string
): Listener => {
    // What this process must hear from itself: the records it dropped as corrupt.
    const local = new Set<(invalidation: Invalidation) => void>()
    const own = `${originId}:`
    // Every consumer adds its own listener to the one subscribed connection.
    const invalidations = Stream.asyncPush<Invalidation>((emit) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const onMessage = (ch: string, message: string) => {
            if (ch !== channel || message.startsWith(own)) return
            const i = message.indexOf(":")
            if (i >= 0) emit.single(parseInvalidation(message.slice(i + 1)))
          }
          const onReset = () => emit.single(INVALIDATE_ALL)
          const onLocal = (invalidation: Invalidation) => emit.single(invalidation)
          subscriber.on("message", onMessage)
          resets.add(onReset)
          local.add(onLocal)
          return { onMessage, onReset, onLocal }
        }),
        ({ onLocal, onMessage, onReset }) =>
          Effect.sync(() => {
            subscriber.off("message", onMessage)
            resets.delete(onReset)
            local.delete(onLocal)
          })
      ), { bufferSize: "unbounded" })
    return {
      invalidations,
      tellSelf: (invalidation) => local.forEach((emit) => emit(invalidation))
    }
}
