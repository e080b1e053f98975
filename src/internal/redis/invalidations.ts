/**
 * The Redis store's invalidation listener. Every script publishes `${originId}:${tokenKey}` for
 * the token keys it changed and `publishUserInvalidation` publishes `${originId}:!u:${userKey}`
 * (token keys are base64url, never starting with `!`). The consumers are told `INVALIDATE_ALL`
 * whenever a subscription is back after it was interrupted, since messages published meanwhile are
 * lost. A process never hears its own messages.
 *
 * - **Single server** ({@link listen}): a second connection subscribed to `${prefix}invalidate`,
 *   renewed by hand after a reconnect.
 * - **Cluster with sharded pub/sub** ({@link listenSharded}, Redis 7): each script `SPUBLISH`es on
 *   the channel of its own slot (`shardChannels.ts`), so a message stays on the shard that owns
 *   the slot. The listener opens one connection of its own to each primary (named, not the
 *   cluster client's) and `SSUBSCRIBE`s there to the channels of the slots it owns, per ioredis's
 *   slot map. When any of those connections ends or errs (the server drops the channels of a
 *   slot that moves away), when an `SSUBSCRIBE` meets `MOVED`, or when the cluster client's slot
 *   map (read again every 5 s) changes, it closes them all, subscribes everything again on the current map and tells the
 *   consumers `INVALIDATE_ALL`. (ioredis 5.11's own sharded subscribers, the `Cluster` option
 *   `shardedSubscribers`, are not used: they are an option of the client, which may be the
 *   caller's, and they resubscribe without telling anyone that messages may have been lost.)
 * - **Cluster without it** ({@link listenCluster}): scripts `PUBLISH` on `${prefix}invalidate`,
 *   which every node relays to the whole cluster, so the listener subscribes on one node of its
 *   choice (a connection of its own) and moves to another node when that one goes.
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
import { type ShardChannels, SLOTS } from "./shardChannels.js"

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
    return listener(subscriber, resets, (ch) => ch === channel, originId)
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
        connectionName: subscriberName(originId)
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
    return listener(hub, resets, (ch) => ch === channel, originId)
  })

/** How often the sharded listener has the cluster client read the slot map again, in milliseconds. */
const SLOT_MAP_CHECK_MILLIS = 5000

/** The name of a process's subscriber connections (so that an operator, or a test, can tell them in CLIENT LIST). */
const subscriberName = (originId: string) => `effect-sessions-sub:${originId.replace(/[^A-Za-z0-9_.:-]/g, "_")}`

/** The primaries of a cluster as the client's slot map has them, each with the slots it owns. */
const primaries = (cluster: Cluster): Map<string, Array<number>> | undefined => {
  const owners = new Map<string, Array<number>>()
  for (let slot = 0; slot < SLOTS; slot++) {
    const owner = cluster.slots[slot]?.[0]
    if (owner === undefined) return undefined
    const slots = owners.get(owner)
    if (slots === undefined) owners.set(owner, [slot])
    else slots.push(slot)
  }
  return owners
}

/** The slot map as text: whether it changed since the subscriptions were made. */
const slotMap = (cluster: Cluster): string => {
  const owners: Array<string> = []
  for (let slot = 0; slot < SLOTS; slot++) owners.push(cluster.slots[slot]?.[0] ?? "")
  return owners.join(",")
}

/**
 * Subscribes (`SSUBSCRIBE`) to every slot's channel of `channels` on the primary that owns the
 * slot, with a connection of its own to each primary (ready within `connectTimeout` ms, or a
 * `SessionStoreError`), and subscribes everything again, telling the consumers `INVALIDATE_ALL`,
 * whenever one of them ends or errs or the slot map changes; closed when the scope closes.
 *
 * @internal
 */
export const listenSharded = (
  cluster: Cluster,
  channels: ShardChannels,
  originId: string,
  connectTimeout: number
): Effect.Effect<Listener, SessionStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const hub = new EventEmitter()
    const resets = new Set<() => void>()
    let closed = false
    // Each (re)subscription has a number: what an older one does afterwards is ignored.
    let generation = 0
    let current: ReadonlyArray<Redis> = []
    let subscribedMap = ""
    let pending = false
    let failures = 0
    const byKey = () =>
      new Map<string, { readonly host: string; readonly port: number }>(cluster.nodes("all").map((n) => {
        const node = { host: n.options.host ?? "127.0.0.1", port: n.options.port ?? 6379 }
        return [`${node.host}:${node.port}`, node]
      }))
    const closeCurrent = () => {
      const old = current
      current = []
      for (const s of old) {
        s.removeAllListeners("smessage")
        s.disconnect()
      }
    }
    const open = async (isReset: boolean): Promise<void> => {
      const mine = ++generation
      closeCurrent()
      const owners = primaries(cluster)
      if (owners === undefined) throw new Error("the cluster's slot map is incomplete")
      const map = slotMap(cluster)
      const nodes = byKey()
      const opened: Array<Redis> = []
      let failed: (e: unknown) => void = () => {}
      const failure = new Promise<never>((_, reject) => {
        failed = reject
      })
      failure.catch(() => {})
      let timer: ReturnType<typeof setTimeout> | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`sharded subscriptions not ready after ${connectTimeout} ms`)), connectTimeout)
      })
      timeout.catch(() => {})
      const settle = <A>(p: Promise<A>): Promise<A> => Promise.race([failure, timeout, p])
      try {
        const subscribers = [...owners].map(([key, slots]) => {
          const i = key.lastIndexOf(":")
          const node = nodes.get(key) ?? { host: key.slice(0, i), port: Number(key.slice(i + 1)) }
          const s = nodeSubscriber({
            ...cluster.options.redisOptions,
            host: node.host,
            port: node.port,
            connectTimeout: Math.min(connectTimeout, 2000),
            connectionName: subscriberName(originId)
          })
          opened.push(s)
          s.on("smessage", (ch: string, message: string) => {
            if (mine === generation) hub.emit("message", ch, message)
          })
          const trouble = () => {
            if (mine !== generation) return
            failed(new Error("a sharded subscriber connection ended or failed"))
            // Once subscribed; while subscribing, the caller of `open` tries again.
            if (current === opened) retry()
          }
          // An error: the connection failed, or the server dropped the channels of a slot that
          // moved away (an `sunsubscribe` ioredis did not ask for); `moved`: an SSUBSCRIBE met MOVED.
          s.once("end", trouble)
          s.on("error", trouble)
          s.once("moved", trouble)
          return { s, slots, ready: new Promise<void>((resolve) => s.once("ready", () => resolve())) }
        })
        // Every primary reachable before any subscription (a dead one fails the attempt cheaply).
        await settle(Promise.all(subscribers.map((x) => x.ready)))
        // One slot per SSUBSCRIBE (a cluster refuses channels of several slots in one).
        await settle(Promise.all(subscribers.flatMap(({ s, slots }) => slots.map((slot) => s.ssubscribe(channels.ofSlot(slot))))))
      } catch (e) {
        for (const s of opened) s.disconnect()
        throw e
      } finally {
        clearTimeout(timer)
      }
      if (closed || mine !== generation) {
        for (const s of opened) s.disconnect()
        return
      }
      current = opened
      subscribedMap = map
      failures = 0
      if (isReset) resets.forEach((reset) => reset())
    }
    /**
     * Subscribes everything again, soon (once, however many connections report trouble), after
     * 100 ms and up to 1 s while attempts fail (a primary is failing over).
     */
    const retry = (): void => {
      if (closed || pending) return
      pending = true
      generation++
      closeCurrent()
      // The slot map may be what changed: ask the cluster for it again first.
      cluster.refreshSlotsCache()
      setTimeout(() => {
        pending = false
        if (!closed) {
          open(true).catch(() => {
            failures++
            retry()
          })
        }
      }, Math.min(100 * 2 ** failures, 1000)).unref()
    }
    const onRefresh = () => {
      if (!closed && !pending && current.length > 0 && slotMap(cluster) !== subscribedMap) retry()
    }
    cluster.on("refresh", onRefresh)
    // The server drops the channels of a slot that moves away (seen as an error above); in case a
    // client misses that, the slot map is also read again every few seconds.
    const refresher = setInterval(() => {
      if (!closed && !pending) cluster.refreshSlotsCache()
    }, SLOT_MAP_CHECK_MILLIS)
    refresher.unref()
    const first = Effect.tryPromise({
      try: async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await open(false)
          } catch (e) {
            if (attempt >= 3 || closed) throw e
            await new Promise((resolve) => setTimeout(resolve, 100))
          }
        }
      },
      catch: unavailable("connect")
    })
    const stop = Effect.sync(() => {
      closed = true
      // An attempt still under way drops what it opened when it ends.
      generation++
      cluster.off("refresh", onRefresh)
      clearInterval(refresher)
      closeCurrent()
    })
    yield* Effect.onError(first, () => stop)
    yield* Effect.addFinalizer(() => stop)
    return listener(hub, resets, channels.owns, originId)
  })

/** The stream over a subscribed connection's messages (any emitter of `message` events). */
const listener = (
  subscriber: Pick<EventEmitter, "on" | "off">,
  resets: Set<() => void>,
  accepts: (channel: string) => boolean,
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
            if (!accepts(ch) || message.startsWith(own)) return
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
