/**
 * The in-memory Persistence: three maps (token records, sessions, user index). Values are
 * immutable, so storing them by reference is safe.
 *
 * @internal
 */
import { Clock, Effect, Option, Stream } from "effect"
import { DEFAULT_RETENTION_MILLIS, type PersistenceShape } from "../Persistence.js"
import type { Redirect, Session, TokenRecord } from "../Session.js"

interface StoredSession {
  readonly session: Session
  readonly expiresAt: number
}

/** @internal */
export const makeMemoryStore = (retention: number = DEFAULT_RETENTION_MILLIS): PersistenceShape => {
  // tokenKey → session key (current token) or a redirect (old token)
  const tokens = new Map<string, string | Redirect>()
  const sessions = new Map<string, StoredSession>()
  const users = new Map<string, Set<string>>()

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

  const live = (sessionKey: string, now: number): Option.Option<Session> => {
    const stored = sessions.get(sessionKey)
    if (!stored) return Option.none()
    if (stored.expiresAt + retention <= now) {
      removeSession(sessionKey)
      return Option.none()
    }
    return Option.some(stored.session)
  }

  const load = (tokenKey: string) =>
    Effect.map(Clock.currentTimeMillis, (now): Option.Option<TokenRecord> => {
      const entry = tokens.get(tokenKey)
      if (entry === undefined) return Option.none()
      if (typeof entry === "string") return live(entry, now)
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
      sessions.set(session.key, { session, expiresAt })
      indexUser(stored.session.userId, session)
      return true
    })

  return {
    load,
    loadSession: (sessionKey) => Effect.map(Clock.currentTimeMillis, (now) => live(sessionKey, now)),
    create: (session, expiresAt) =>
      Effect.sync(() => {
        sessions.set(session.key, { session, expiresAt })
        tokens.set(session.tokenKey, session.key)
        indexUser(Option.none(), session)
      }),
    save,
    rotate: (session, expectedVersion, redirect, expiresAt) =>
      Effect.sync(() => {
        const stored = sessions.get(session.key)
        if (!stored || stored.session.version !== expectedVersion || stored.session.tokenKey !== redirect.tokenKey) return false
        sessions.set(session.key, { session, expiresAt })
        tokens.set(redirect.tokenKey, redirect)
        tokens.set(session.tokenKey, session.key)
        indexUser(stored.session.userId, session)
        return true
      }),
    delete: (sessionKey) => Effect.sync(() => removeSession(sessionKey)),
    deleteToken: (tokenKey) =>
      Effect.sync(() => {
        const entry = tokens.get(tokenKey)
        if (typeof entry === "string") removeSession(entry)
        tokens.delete(tokenKey)
      }),
    sessionsOfUser: (userId) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const keys = users.get(userId)
        if (!keys) return []
        return [...keys].flatMap((k) => Option.toArray(live(k, now)))
      }),
    sweep: Effect.map(Clock.currentTimeMillis, (now) => {
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
      return removed
    }),
    invalidations: Stream.empty
  }
}
