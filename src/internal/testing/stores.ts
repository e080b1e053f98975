/**
 * Store wrappers for tests: one interceptor that every method of a store goes through, and the
 * wrappers built on it — a call counter, an off switch, and a scheduler gate that lets
 * fast-check interleave the calls of concurrent operations.
 *
 * @internal
 */
import { Clock, Effect, type FastCheck, Layer, Option } from "effect"
import { Persistence, type PersistenceShape, SessionStoreError } from "../persistence.js"
import type { Session, TokenRecord } from "../../Session.js"

/**
 * The methods of a store that a wrapper sees (`invalidations`, a stream, passes through as it is).
 *
 * @since 0.1.0
 * @category models
 */
export type StoreMethod =
  | "load"
  | "loadSession"
  | "create"
  | "save"
  | "rotate"
  | "rotateWithinLimit"
  | "delete"
  | "deleteToken"
  | "sessionsOfUser"
  | "sweep"
  | "publishUserInvalidation"
  | "revokeUntil"
  | "revokedUntil"

/**
 * What runs around every call of a store (see `intercept`): it gets the method's name and the
 * call, and returns what to run instead — the call itself, with something before or after it, or a
 * failure.
 *
 * @since 0.1.0
 * @category models
 */
export type Interceptor = <A>(method: StoreMethod, call: Effect.Effect<A, SessionStoreError>) => Effect.Effect<A, SessionStoreError>

/** `store` with every call going through `around`. @internal */
export const intercept = (store: PersistenceShape, around: Interceptor): PersistenceShape => {
  const wrap = <Args extends ReadonlyArray<unknown>, A>(method: StoreMethod, f: (...args: Args) => Effect.Effect<A, SessionStoreError>) =>
  (...args: Args): Effect.Effect<A, SessionStoreError> => Effect.suspend(() => around(method, Effect.suspend(() => f(...args))))
  return {
    load: wrap("load", store.load),
    loadSession: wrap("loadSession", store.loadSession),
    create: wrap("create", store.create),
    save: wrap("save", store.save),
    rotate: wrap("rotate", store.rotate),
    rotateWithinLimit: wrap("rotateWithinLimit", store.rotateWithinLimit),
    delete: wrap("delete", store.delete),
    deleteToken: wrap("deleteToken", store.deleteToken),
    sessionsOfUser: wrap("sessionsOfUser", store.sessionsOfUser),
    publishUserInvalidation: wrap("publishUserInvalidation", store.publishUserInvalidation),
    revokeUntil: wrap("revokeUntil", store.revokeUntil),
    revokedUntil: Effect.suspend(() => around("revokedUntil", store.revokedUntil)),
    sweep: Effect.suspend(() => around("sweep", store.sweep)),
    invalidations: store.invalidations
  }
}

/**
 * A store wrapped by `counted`, and its counts.
 *
 * @since 0.1.0
 * @category models
 */
export interface Counted {
  /** The wrapped store. */
  readonly store: PersistenceShape
  /** How many times each method was called so far (methods never called are absent). */
  readonly calls: () => Record<string, number>
}

/** `store` with every call counted. @internal */
export const counted = (store: PersistenceShape): Counted => {
  const counts: Record<string, number> = {}
  return {
    calls: () => ({ ...counts }),
    store: intercept(store, (method, call) =>
      Effect.suspend(() => {
        counts[method] = (counts[method] ?? 0) + 1
        return call
      }))
  }
}

/**
 * A store wrapped by `switchable`: the store, its layer, and the switch.
 *
 * @since 0.1.0
 * @category models
 */
export interface Switchable {
  /** The wrapped store. */
  readonly store: PersistenceShape
  /** The wrapped store as a layer. */
  readonly layer: Layer.Layer<Persistence>
  /** Switches the store off (`true`: every call fails as `Unavailable`) or on again (`false`). */
  readonly setDown: (down: boolean) => Effect.Effect<void>
}

/** `store` with an off switch: while down, every call fails with `SessionStoreError({ method, reason: "Unavailable" })`. @internal */
export const switchable = (store: PersistenceShape): Switchable => {
  let down = false
  const wrapped = intercept(store, (method, call) =>
    Effect.suspend(() => down ? Effect.fail(new SessionStoreError({ method, reason: "Unavailable", cause: "store switched off" })) : call))
  return {
    store: wrapped,
    layer: Layer.succeed(Persistence, wrapped),
    setDown: (value) =>
      Effect.sync(() => {
        down = value
      })
  }
}

/**
 * Options of `scheduled`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduledOptions {
  /** Prefixes the labels of the scheduled steps (`"A"` gives `A.save call`, `A.save answer`); default `"store"`. */
  readonly name?: string | undefined
  /** Whether calls wait for the scheduler now (checked at every call); default always. */
  readonly enabled?: (() => boolean) | undefined
}

/**
 * `store` with every call waiting for fast-check's scheduler before it reaches the store and
 * again before its answer goes back, so that a property explores interleavings of the store
 * calls of concurrent operations.
 *
 * @internal
 */
export const scheduled = (
  store: PersistenceShape,
  scheduler: Pick<FastCheck.Scheduler, "schedule">,
  options: ScheduledOptions = {}
): PersistenceShape => {
  const name = options.name ?? "store"
  const enabled = options.enabled ?? (() => true)
  const pause = (label: string) =>
    Effect.suspend(() => enabled() ? Effect.promise(() => scheduler.schedule(Promise.resolve(label), label)) : Effect.void)
  return intercept(store, (method, call) =>
    pause(`${name}.${method} call`).pipe(Effect.zipRight(call), Effect.zipLeft(pause(`${name}.${method} answer`))))
}

/**
 * `inner` hiding every record at its deadline (no retention at all), as the Persistence contract
 * allows (a TTL store such as Redis behaves so when configured without retention): the cache must
 * match such a store too, not only the built-in ones, which keep dead records for a while. The
 * deadlines are the ones the service gives with each write.
 *
 * @internal
 */
export const forgetAtDeadline = (inner: PersistenceShape): PersistenceShape => {
  const deadlines = new Map<string, number>() // session key → deadline
  const visible = (r: TokenRecord, now: number) =>
    (r._tag === "Redirect" ? r.expiresAt : deadlines.get(r.key) ?? Number.POSITIVE_INFINITY) > now
  const keep = (s: Session, expiresAt: number) => (ok: boolean) => {
    if (ok) deadlines.set(s.key, expiresAt)
  }
  return {
    ...inner,
    load: (tk) => Effect.zipWith(inner.load(tk), Clock.currentTimeMillis, (r, now) => Option.filter(r, (x) => visible(x, now))),
    loadSession: (key) => Effect.zipWith(inner.loadSession(key), Clock.currentTimeMillis, (r, now) => Option.filter(r, (x) => visible(x, now))),
    create: (s, e) => Effect.tap(inner.create(s, e), () => keep(s, e)(true)),
    save: (s, v, e) => Effect.tap(inner.save(s, v, e), keep(s, e)),
    rotate: (r) => Effect.tap(inner.rotate(r), keep(r.session, r.expiresAt)),
    rotateWithinLimit: (r, limit) => Effect.tap(inner.rotateWithinLimit(r, limit), (a) => keep(r.session, r.expiresAt)(a._tag === "Rotated")),
    sessionsOfUser: (user) => Effect.zipWith(inner.sessionsOfUser(user), Clock.currentTimeMillis, (all, now) => all.filter((x) => visible(x, now)))
  }
}
