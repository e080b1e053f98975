/**
 * Reading token records through the local cache, and writing them back to it. The cache answers
 * only for records still before their deadline; past it the store decides (it may keep dead
 * records for a while, or not), so any cache size behaves like none (invariant 7). A record read
 * from the store is cached unless an invalidation overtook the read (`invalidation.ts`).
 *
 * @internal
 */
import { Effect, Metric, Option } from "effect"
import type { SessionStoreError } from "../persistence.js"
import type { Session, TokenRecord } from "../../Session.js"
import * as S from "../../Session.js"
import type { Env } from "./env.js"
import type { InvalidationBook } from "./invalidation.js"
import { metrics } from "./metrics.js"

/** @internal */
export interface Records {
  /** The cached record under a token key, while it is before its deadline (a dead one is dropped). */
  readonly cached: (tokenKey: string) => Effect.Effect<Option.Option<TokenRecord>>
  /** The record under a token key: the cache while it is before its deadline, else the store. */
  readonly load: (tokenKey: string) => Effect.Effect<Option.Option<TokenRecord>, SessionStoreError>
  /**
   * The latest stored value of a session, if `tokenKey` is still its current token: the record
   * under it (cache, then store) must be that session. By token, never by session key alone, so
   * that a token retired meanwhile reaches nothing (a handle is only as good as its token).
   */
  readonly latest: (sessionKey: string, tokenKey: string) => Effect.Effect<Option.Option<Session>, SessionStoreError>
  /** Caches a session just written. */
  readonly remember: (session: Session) => Effect.Effect<void>
  /** Deletes a session from the store and the cache. */
  readonly drop: (session: Session) => Effect.Effect<void, SessionStoreError>
}

/** @internal */
export const makeRecords = ({ cache, clock, config, store }: Env, book: InvalidationBook): Records => {
  const retained = (record: TokenRecord, now: number): boolean =>
    (record._tag === "Session" ? S.expiresAt(record, config) : record.expiresAt) > now

  const cached = (tk: string): Effect.Effect<Option.Option<TokenRecord>> =>
    Effect.flatMap(cache.get(tk), (hit) =>
      Option.isNone(hit)
        ? Effect.succeed(hit)
        : Effect.suspend(() =>
          retained(hit.value, clock.unsafeCurrentTimeMillis())
            ? Effect.succeed(hit)
            : Effect.as(cache.invalidate(tk), Option.none())
        ))

  const load = (tk: string): Effect.Effect<Option.Option<TokenRecord>, SessionStoreError> =>
    Effect.flatMap(cached(tk), (hit) => {
      if (Option.isSome(hit)) return Effect.as(Metric.increment(metrics.cacheHits), hit)
      const epoch = book.epoch()
      return store.load(tk).pipe(
        Effect.tap((record) =>
          Effect.zipRight(
            Metric.increment(metrics.cacheMisses),
            Option.isSome(record) && !book.overtaken(tk, epoch) ? cache.set(tk, record.value) : Effect.void
          )
        )
      )
    })

  // Like `load`, the cache answers only before the record's deadline: past it only the store
  // knows whether the session is still kept (an expiry to report) or already forgotten.
  const latest = (sessionKey: string, tk: string): Effect.Effect<Option.Option<Session>, SessionStoreError> =>
    Effect.flatMap(cached(tk), (hit) =>
      Option.isSome(hit) && hit.value._tag === "Session"
        ? Effect.succeed(hit.value.key === sessionKey && hit.value.tokenKey === tk ? Option.some(hit.value) : Option.none())
        : Effect.map(
          store.load(tk),
          (record) => record.pipe(Option.filter((r): r is Session => r._tag === "Session" && r.key === sessionKey && r.tokenKey === tk))
        ))

  return {
    cached,
    load,
    latest,
    remember: (session) => cache.set(session.tokenKey, session),
    drop: (session) => Effect.zipRight(store.delete(session.key), cache.invalidate(session.tokenKey))
  }
}
