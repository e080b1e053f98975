/**
 * Publishing session events (`../../SessionEvents.ts`): the subscribers' bounded queues, and the
 * events built from the values the service already holds. Each subscriber gets a dropping queue
 * of its own: publishing offers synchronously and never waits, a full queue drops the event and
 * counts it (`effect_sessions_events_dropped_total`). Events are built only while somebody
 * subscribes (a public ID costs a hash), so a service without subscribers pays one size check per
 * change. Callers publish after the change is stored, one line at the place it succeeds.
 *
 * @internal
 */
import { Effect, Metric, Option, Queue, Stream } from "effect"
import type { Scope } from "effect"
import type { Binding, Client, Session } from "../../Session.js"
import * as S from "../../Session.js"
import * as E from "../../SessionEvents.js"
import { logHash, publicId } from "../hash.js"
import { parseIp, samePrefix } from "../ip.js"

/** @internal */
export const droppedEvents = Metric.counter("effect_sessions_events_dropped_total", {
  description: "session events a subscriber missed because its queue was full"
})

/** @internal */
export interface EventHub {
  /** Whether anybody subscribes (the log-in reads the user index for `newDevice` only then). */
  readonly active: () => boolean
  /** Publishes the event `make` builds, if anybody subscribes; never waits. */
  readonly emit: (make: () => E.SessionEvent) => Effect.Effect<void>
  readonly subscribe: (options?: { readonly capacity?: number }) => Effect.Effect<Queue.Dequeue<E.SessionEvent>, never, Scope.Scope>
  readonly events: Stream.Stream<E.SessionEvent>
}

/** @internal */
export const makeEventHub = (): EventHub => {
  const subscribers = new Set<Queue.Queue<E.SessionEvent>>()

  const emit = (make: () => E.SessionEvent): Effect.Effect<void> =>
    subscribers.size === 0 ? Effect.void : Effect.suspend(() => {
      const event = make()
      let dropped = 0
      for (const queue of subscribers) if (!queue.unsafeOffer(event)) dropped++
      return dropped === 0 ? Effect.void : Metric.incrementBy(droppedEvents, dropped)
    })

  const subscribe = (options?: { readonly capacity?: number }) =>
    Effect.acquireRelease(
      Effect.tap(Queue.dropping<E.SessionEvent>(Math.max(1, options?.capacity ?? E.DEFAULT_CAPACITY)), (queue) => {
        subscribers.add(queue)
      }),
      (queue) => Effect.zipRight(Effect.sync(() => subscribers.delete(queue)), Queue.shutdown(queue))
    ) as Effect.Effect<Queue.Dequeue<E.SessionEvent>, never, Scope.Scope>

  return {
    active: () => subscribers.size > 0,
    emit,
    subscribe,
    events: Stream.unwrapScoped(Effect.map(subscribe(), (queue) => Stream.fromQueue(queue)))
  }
}

const facts = (b: Binding) => ({ ip: b.ip, userAgentHash: b.userAgentHash })

/** @internal */
export const created = (s: Session, at: number) => () => new E.Created({ sessionId: publicId(s.key), at, ...facts(s) })

/** @internal */
export const loggedIn = (s: Session, at: number, userId: string, newDevice: boolean, exclusive: boolean) => () =>
  new E.LoggedIn({ sessionId: publicId(s.key), at, userId, ...facts(s), newDevice, exclusive })

/** @internal */
export const loggedOut = (before: Session, at: number) => () =>
  new E.LoggedOut({ sessionId: publicId(before.key), at, userId: before.userId })

/** @internal */
export const rotated = (s: Session, at: number, cause: E.Rotated["cause"], grace: boolean) => () =>
  new E.Rotated({ sessionId: publicId(s.key), at, userId: s.userId, cause, grace })

/** @internal */
export const followed = (s: Session, at: number, hops: number) => () =>
  new E.FollowedAfterRotation({ sessionId: publicId(s.key), at, userId: s.userId, hops })

/** @internal */
export const expired = (s: Session, at: number, reason: E.Expired["reason"]) => () =>
  new E.Expired({ sessionId: publicId(s.key), at, userId: s.userId, reason })

/** @internal */
export const anomaly = (s: Session, at: number, kind: E.Anomaly["kind"], client: Client) => () =>
  new E.Anomaly({ sessionId: publicId(s.key), at, userId: s.userId, kind, ...facts(S.bindingOf(client)) })

/** @internal */
export const lateUse = (sessionKey: string, at: number, token: string, lateByMillis: number, client: Client) => () =>
  new E.LateUseOfRotatedToken({
    sessionId: publicId(sessionKey),
    at,
    tokenHash: logHash(token),
    lateByMillis,
    ...facts(S.bindingOf(client))
  })

/** @internal */
export const destroyed = (s: Session, at: number) => () => new E.Destroyed({ sessionId: publicId(s.key), at, userId: s.userId })

/** @internal */
export const revoked = (s: Session, at: number, revokedUntil: number) => () =>
  new E.Revoked({ sessionId: publicId(s.key), at, userId: s.userId, revokedUntil })

/** @internal */
export type EndedBy = E.EndedByOtherSession["by"]

/** @internal */
export const endedElsewhere = (s: Session, at: number, userId: string, by: E.EndedByOtherSession["by"], initiator: Option.Option<string>) => () =>
  new E.EndedByOtherSession({ sessionId: publicId(s.key), at, userId, by, initiator: Option.map(initiator, publicId) })

/**
 * Whether two bindings are the same device for `LoggedIn.newDevice`: the same user agent hash and
 * an IP in the same network (IPv4 /24, IPv6 /64), all four facts known.
 *
 * @internal
 */
export const sameDevice = (a: Binding, b: Binding): boolean => {
  if (Option.isNone(a.userAgentHash) || Option.isNone(b.userAgentHash) || a.userAgentHash.value !== b.userAgentHash.value) return false
  if (Option.isNone(a.ip) || Option.isNone(b.ip)) return false
  if (a.ip.value === b.ip.value) return true
  const x = parseIp(a.ip.value)
  const y = parseIp(b.ip.value)
  return x !== undefined && y !== undefined && x.family === y.family && samePrefix(x, y, x.family === 4 ? 24 : 64)
}
