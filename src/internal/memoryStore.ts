/**
 * The in-memory Persistence: three maps (token records, sessions, user index). Values are
 * immutable, so storing them by reference is safe.
 *
 * The sessions map is also the LRU order of the capacity: a `Map` iterates in insertion order, so
 * a session is re-inserted whenever it is used (read by token or by key, or written) and the first
 * entry is always the least recently used one. Every operation stays O(1).
 *
 * @internal
 */
import { Clock, Duration, Effect, Metric, Option, Stream } from "effect"
import { LimitedRotation, type PersistenceShape, type Rotation, type SessionLimit, sessionsToEnd } from "./persistence.js"
import type { Redirect, Session, TokenRecord } from "../Session.js"

/**
 * Options of the memory store.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions {
  /**
   * How many sessions the store holds at most (a positive integer, or `Infinity`; default
   * {@link DEFAULT_MEMORY_CAPACITY}). When a new session would exceed it, the least recently used
   * session goes — a session counts as used when it is read (by token or by key) or written — with
   * its current token and its user-index entry; its rotated-away tokens (redirects) stay until
   * their own expiry, leading nowhere. Evictions are counted in the `effect_sessions_evicted_total`
   * metric and logged as a warning at most once a minute.
   */
  readonly capacity?: number | undefined
  /** How long records are kept past their deadline (default {@link DEFAULT_RETENTION}; 0 hides a record at its deadline). */
  readonly retention?: Duration.DurationInput | undefined
}

interface StoredSession {
  readonly session: Session
  readonly expiresAt: number
}

/** Sessions evicted by the memory store's capacity. @internal */
export const evicted = Metric.counter("effect_sessions_evicted_total", {
  description: "sessions evicted from the memory store at its capacity (least recently used first)"
})

/** At most one warning per this many milliseconds (Clock time) about evictions. @internal */
export const EVICTION_LOG_INTERVAL_MILLIS = 60_000

const validCapacity = (n: number): boolean => n === Number.POSITIVE_INFINITY || (Number.isSafeInteger(n) && n >= 1)

/** The default capacity (`Persistence.DEFAULT_MEMORY_CAPACITY`). @internal */
export const DEFAULT_MEMORY_CAPACITY = 1_000_000

/** The default retention of every built-in store (`Persistence.DEFAULT_RETENTION`). @internal */
export const DEFAULT_RETENTION: Duration.Duration = Duration.minutes(10)

/** @internal */
export const makeMemoryStore = (options: MemoryOptions = {}): PersistenceShape => {
  const retention = Duration.toMillis(options.retention ?? DEFAULT_RETENTION)
  const capacity = options.capacity ?? DEFAULT_MEMORY_CAPACITY
  if (!validCapacity(capacity)) throw new RangeError(`memory store capacity must be a positive integer or Infinity, got ${capacity}`)
  // tokenKey → session key (current token) or a redirect (old token)
  const tokens = new Map<string, string | Redirect>()
  // session key → session, least recently used first
  const sessions = new Map<string, StoredSession>()
  const users = new Map<string, Set<string>>()
  // The revocation instant (`revokeUntil`): none until the first call.
  let revokedUntil = Option.none<number>()

  // Evictions not yet logged, and when the last warning went out (Clock time).
  let unlogged = 0
  let loggedAt = Number.NEGATIVE_INFINITY
  const logEvictions = (now: number): Effect.Effect<void> => {
    if (unlogged === 0 || now - loggedAt < EVICTION_LOG_INTERVAL_MILLIS) return Effect.void
    const count = unlogged
    unlogged = 0
    loggedAt = now
    return Effect.logWarning(`memory session store full: evicted ${count} least recently used sessions`).pipe(
      Effect.annotateLogs({ event: "sessions-evicted", evicted: count, capacity })
    )
  }

  /** Stores a session as the most recently used one. */
  const put = (key: string, stored: StoredSession) => {
    sessions.delete(key)
    sessions.set(key, stored)
  }

  const indexUser = (before: Option.Option<string>, after: Session) => {
    if (Option.isSome(before) && (Option.isNone(after.userId) || after.userId.value !== before.value)) {
      const set = users.get(before.value)
      set?.delete(after.key)
      if (set && set.size === 0) users.delete(before.value)
    }
    if (Option.isSome(after.userId)) {
      let set = users.get(after.userId.value)
      if (!set) users.set(after.userId.value, set = new Set())
      set.add(after.key)
    }
  }

  const removeSession = (sessionKey: string) => {
    const stored = sessions.get(sessionKey)
    if (!stored) return
    sessions.delete(sessionKey)
    if (tokens.get(stored.session.tokenKey) === sessionKey) tokens.delete(stored.session.tokenKey)
    if (Option.isSome(stored.session.userId)) {
      const set = users.get(stored.session.userId.value)
      set?.delete(sessionKey)
      if (set && set.size === 0) users.delete(stored.session.userId.value)
    }
  }

  /** The session under a key if still retained; a read (`use`) makes it the most recently used. */
  const live = (sessionKey: string, now: number, use: boolean): Option.Option<Session> => {
    const stored = sessions.get(sessionKey)
    if (!stored) return Option.none()
    if (stored.expiresAt + retention <= now) {
      removeSession(sessionKey)
      return Option.none()
    }
    if (use) put(sessionKey, stored)
    return Option.some(stored.session)
  }

  const load = (tokenKey: string) =>
    Effect.map(Clock.currentTimeMillis, (now): Option.Option<TokenRecord> => {
      const entry = tokens.get(tokenKey)
      if (entry === undefined) return Option.none()
      if (typeof entry === "string") return live(entry, now, true)
      if (entry.expiresAt + retention <= now) {
        tokens.delete(tokenKey)
        return Option.none()
      }
      return Option.some(entry)
    })

  const save = (session: Session, expectedVersion: number, expiresAt: number) =>
    Effect.sync(() => {
      const stored = sessions.get(session.key)
      if (!stored || stored.session.version !== expectedVersion || stored.session.tokenKey !== session.tokenKey) return false
      put(session.key, { session, expiresAt })
      indexUser(stored.session.userId, session)
      return true
    })

  const create = (session: Session, expiresAt: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      let count = 0
      if (!sessions.has(session.key)) {
        // Full: the least recently used sessions make room (the first entries of the map).
        while (sessions.size >= capacity) {
          const oldest = sessions.keys().next()
          if (oldest.done === true) break
          removeSession(oldest.value)
          count++
        }
      }
      put(session.key, { session, expiresAt })
      tokens.set(session.tokenKey, session.key)
      indexUser(Option.none(), session)
      if (count === 0) return Effect.void
      unlogged += count
      return Effect.zipRight(Metric.incrementBy(evicted, count), logEvictions(now))
    })

  const wins = ({ expectedVersion, redirect, session }: Rotation): boolean => {
    const stored = sessions.get(session.key)
    return stored !== undefined && stored.session.version === expectedVersion && stored.session.tokenKey === redirect.tokenKey
  }

  const writeRotation = ({ expiresAt, redirect, session }: Rotation) => {
    const before = sessions.get(session.key)!.session.userId
    put(session.key, { session, expiresAt })
    tokens.set(redirect.tokenKey, redirect)
    tokens.set(session.tokenKey, session.key)
    indexUser(before, session)
  }

  // One synchronous step: nothing else runs between the count and the write.
  const rotateWithinLimit = (rotation: Rotation, limit: SessionLimit) =>
    Effect.map(Clock.currentTimeMillis, (now): LimitedRotation => {
      if (!wins(rotation)) return LimitedRotation.Lost()
      const user = rotation.session.userId
      let ended: ReadonlyArray<Session> = []
      if (Option.isSome(user)) {
        // Live: before the deadline last written (retained records past it do not count).
        const others = [...(users.get(user.value) ?? [])].flatMap((k) => {
          const stored = sessions.get(k)
          return k !== rotation.session.key && stored !== undefined && stored.expiresAt > now ? [stored.session] : []
        })
        const victims = sessionsToEnd(others, limit)
        if (victims === "refused") return LimitedRotation.Refused()
        ended = victims
      }
      for (const victim of ended) removeSession(victim.key)
      writeRotation(rotation)
      return LimitedRotation.Rotated({ ended: ended.map((s) => s.tokenKey) })
    })

  return {
    load,
    loadSession: (sessionKey) => Effect.map(Clock.currentTimeMillis, (now) => live(sessionKey, now, true)),
    create,
    save,
    rotate: (rotation) =>
      Effect.sync(() => {
        if (!wins(rotation)) return false
        writeRotation(rotation)
        return true
      }),
    rotateWithinLimit,
    delete: (sessionKey) => Effect.sync(() => removeSession(sessionKey)),
    deleteToken: (tokenKey) =>
      Effect.sync(() => {
        const entry = tokens.get(tokenKey)
        if (typeof entry === "string") removeSession(entry)
        tokens.delete(tokenKey)
      }),
    // Records here are values, never text: nothing can fail to decode, so nothing is skipped.
    sessionsOfUser: (userId) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const keys = users.get(userId)
        if (!keys) return []
        return [...keys].flatMap((k) => Option.toArray(live(k, now, false)))
      }),
    sweep: Effect.flatMap(Clock.currentTimeMillis, (now) => {
      let removed = 0
      for (const [key, stored] of sessions) {
        if (stored.expiresAt + retention <= now) {
          removeSession(key)
          removed++
        }
      }
      for (const [key, entry] of tokens) {
        if (typeof entry !== "string" && entry.expiresAt + retention <= now) {
          tokens.delete(key)
          removed++
        }
      }
      // Evictions since the last warning are reported here too, if nothing has evicted since.
      return Effect.as(logEvictions(now), removed)
    }),
    revokeUntil: (instant) =>
      Effect.sync(() => {
        revokedUntil = Option.some(Option.match(revokedUntil, { onNone: () => instant, onSome: (t) => Math.max(t, instant) }))
      }),
    revokedUntil: Effect.sync(() => revokedUntil),
    // One process only: nobody else to tell.
    publishUserInvalidation: () => Effect.void,
    invalidations: Stream.empty
  }
}
