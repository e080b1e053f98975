/**
 * The Redis store's invalidation listener: a second connection subscribed to
 * `${prefix}invalidate`, where every script publishes `${originId}:${tokenKey}` for the token
 * keys it changed and `publishUserInvalidation` publishes `${originId}:!u:${userKey}` (token
 * keys are base64url, never starting with `!`). The subscription is renewed by hand after a
 * reconnect, and the consumers are told (`INVALIDATE_ALL`) once it is back, since messages
 * published while it was down are lost. A process never hears its own messages.
 *
 * @internal
 */
import { Effect, Stream } from "effect"
import type { Scope } from "effect"
import type { Redis } from "ioredis"
import { INVALIDATE_ALL, type Invalidation, type SessionStoreError } from "../persistence.js"
import { parseInvalidation } from "../invalidationMessage.js"
import { connected, openSubscriber, unavailable } from "./connection.js"

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
    // What this process must hear from itself: the records it dropped as corrupt.
    const local = new Set<(invalidation: Invalidation) => void>()
    const onReconnected = () => {
      subscriber.subscribe(channel).then(
        () => resets.forEach((reset) => reset()),
        () => subscriber.disconnect(true) // try again from a fresh connection
      )
    }
    subscriber.on("ready", onReconnected)
    yield* Effect.addFinalizer(() => Effect.sync(() => subscriber.off("ready", onReconnected)))
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
  })
