/**
 * The Persistence over `@effect/platform`'s `KeyValueStore` (`Persistence.layerKeyValueStore`).
 * Keys, under the prefix:
 *
 * - `t:<tokenKey>`: `c:<sessionKey>` for a current token, the Codec JSON of the Redirect for a
 *   rotated-away one;
 * - `s:<sessionKey>`: the Codec JSON of the session;
 * - `m:<sessionKey>`: what the writes compare and clean up by, so that they never decode the
 *   record (a corrupt record can still be saved over and deleted): `{ t, v, e, u }` — the current
 *   token key, the version, the deadline and the user;
 * - `u:<hash>`: the user index, a JSON array of session keys ({@link userIndexKey}: no user ID in
 *   a key, and two IDs that differ only in lone surrogates are two users);
 * - `r`: the revocation instant (`revokeUntil`), epoch milliseconds as JSON;
 * - `x` and `x:<bucket>`: the expiry index that `sweep` walks (a KeyValueStore cannot list its
 *   keys): the minute buckets in use, and for each the sessions and redirects whose retention ends
 *   in that minute.
 *
 * A KeyValueStore has no compare-and-set and no transactions: every operation runs under one
 * semaphore per KeyValueStore instance (shared by every store built over it in this process), and
 * cannot be interrupted half-way. So it is correct for one process only — two processes over one
 * file system directory would lose each other's updates — and a crash between the writes of one
 * operation can leave it half done.
 *
 * @internal
 */
import type * as KeyValueStore from "@effect/platform/KeyValueStore"
import type * as PlatformError from "@effect/platform/Error"
import { Clock, Effect, Either, Option, Stream } from "effect"
import * as Codec from "../Codec.js"
import {
  LimitedRotation,
  type PersistenceShape,
  type Rotation,
  type SessionLimit,
  SessionStoreError,
  sessionsToEnd
} from "./persistence.js"
import type { Session, TokenRecord } from "../Session.js"
import { logHash, sha256 } from "./hash.js"
import { redactCodecError } from "./storeErrors.js"

/** @internal */
export interface KeyValueStoreOptions {
  readonly prefix: string
  readonly retentionMillis: number
}

/**
 * The key of a user's index: a SHA-256 of the ID's JSON text, where every lone surrogate is an
 * escape of its own (hashing the string itself would see them all as U+FFFD).
 *
 * @internal
 */
export const userIndexKey = (userId: string): string => `u:${sha256(JSON.stringify(userId))}`

/** The width of a bucket of the expiry index. @internal */
export const BUCKET_MILLIS = 60_000

/** What the writes of a session compare and clean up by. */
interface Meta {
  /** The current token key. */
  readonly t: string
  /** The version. */
  readonly v: number
  /** The deadline (epoch ms). */
  readonly e: number
  /** The user, or null. */
  readonly u: string | null
}

/** An entry of the expiry index: a session, or a redirect with its own deadline. */
type Due = readonly ["s", string] | readonly ["t", string, number]

const parseMeta = (text: string): Option.Option<Meta> => {
  try {
    const m = JSON.parse(text) as Partial<Meta> | null
    return typeof m === "object" && m !== null && typeof m.t === "string" && typeof m.v === "number" &&
        typeof m.e === "number" && (m.u === null || typeof m.u === "string")
      ? Option.some({ t: m.t, v: m.v, e: m.e, u: m.u })
      : Option.none()
  } catch {
    return Option.none()
  }
}

const parseArray = <A>(text: Option.Option<string>, guard: (u: unknown) => u is A): Array<A> => {
  if (Option.isNone(text)) return []
  try {
    const parsed: unknown = JSON.parse(text.value)
    return Array.isArray(parsed) ? parsed.filter(guard) : []
  } catch {
    return []
  }
}
const isString = (u: unknown): u is string => typeof u === "string"
const isNumber = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u)
const isDue = (u: unknown): u is Due =>
  Array.isArray(u) && ((u.length === 2 && u[0] === "s" && typeof u[1] === "string") ||
    (u.length === 3 && u[0] === "t" && typeof u[1] === "string" && typeof u[2] === "number"))

/** A platform error without its description and path (a path holds a key: with `hashIdsAtRest: false`, a raw token). */
const redactPlatformError = (e: PlatformError.PlatformError): Error => {
  const error = new Error(`${e.module}.${e.method}${e._tag === "SystemError" ? ` (${e.reason})` : ""}`)
  error.name = e._tag
  error.stack = `${error.name}: ${error.message}`
  return error
}

const isNotFound = (e: PlatformError.PlatformError): boolean => e._tag === "SystemError" && e.reason === "NotFound"

/** One lock per KeyValueStore instance, whoever builds a store over it. */
const locks = new WeakMap<KeyValueStore.KeyValueStore, Effect.Semaphore>()
const lockOf = (kv: KeyValueStore.KeyValueStore): Effect.Semaphore => {
  let lock = locks.get(kv)
  if (lock === undefined) locks.set(kv, lock = Effect.unsafeMakeSemaphore(1))
  return lock
}

/** The store over `kv`. @internal */
export const makeKeyValueStore = (kv: KeyValueStore.KeyValueStore, options: KeyValueStoreOptions): PersistenceShape => {
  const { prefix, retentionMillis: retention } = options
  const lock = lockOf(kv)
  const locked = <A>(self: Effect.Effect<A, SessionStoreError>): Effect.Effect<A, SessionStoreError> =>
    lock.withPermits(1)(Effect.uninterruptible(self))

  const unavailable = (method: string) => (e: PlatformError.PlatformError) =>
    new SessionStoreError({ method, reason: e._tag === "SystemError" ? "Unavailable" : "Unknown", cause: redactPlatformError(e) })
  const corrupt = (method: string, key: string, cause: unknown) =>
    new SessionStoreError({ method, reason: "Corrupt", key, cause: cause instanceof Codec.CodecError ? redactCodecError(cause) : cause })

  const get = (method: string, key: string) => Effect.mapError(kv.get(prefix + key), unavailable(method))
  const put = (method: string, key: string, value: string) => Effect.mapError(kv.set(prefix + key, value), unavailable(method))
  const del = (method: string, key: string) =>
    kv.remove(prefix + key).pipe(Effect.catchIf(isNotFound, () => Effect.void), Effect.mapError(unavailable(method)))

  /** The end of a record's retention: past it, a record is hidden, and swept. */
  const end = (deadline: number) => deadline + retention
  const bucketOf = (deadline: number) => Math.floor(end(deadline) / BUCKET_MILLIS)

  // ---- meta and the indexes

  const readMeta = (method: string, sessionKey: string, errorKey: string) =>
    Effect.flatMap(get(method, `m:${sessionKey}`), (text) => {
      if (Option.isNone(text)) return Effect.succeed(Option.none<Meta>())
      const meta = parseMeta(text.value)
      return Option.isSome(meta) ? Effect.succeed(meta) : Effect.fail(corrupt(method, errorKey, new Error("the session's metadata does not parse")))
    })

  const writeList = (method: string, key: string, list: ReadonlyArray<unknown>) =>
    list.length === 0 ? del(method, key) : put(method, key, JSON.stringify(list))

  const indexUser = (method: string, sessionKey: string, before: string | null, after: string | null) =>
    Effect.gen(function*() {
      if (before === after) return
      if (before !== null) {
        const key = userIndexKey(before)
        const list = parseArray(yield* get(method, key), isString)
        yield* writeList(method, key, list.filter((k) => k !== sessionKey))
      }
      if (after !== null) {
        const key = userIndexKey(after)
        const list = parseArray(yield* get(method, key), isString)
        if (!list.includes(sessionKey)) yield* writeList(method, key, [...list, sessionKey])
      }
    })

  const schedule = (method: string, bucket: number, entry: Due) =>
    Effect.gen(function*() {
      const key = `x:${bucket}`
      const list = parseArray(yield* get(method, key), isDue)
      if (list.some((d) => d[0] === entry[0] && d[1] === entry[1])) return
      yield* put(method, key, JSON.stringify([...list, entry]))
      const buckets = parseArray(yield* get(method, "x"), isNumber)
      if (!buckets.includes(bucket)) yield* put(method, "x", JSON.stringify([...buckets, bucket].sort((a, b) => a - b)))
    })

  /** The revocation instant; a value that is not a number is corrupt (it must never be ignored). */
  const readRevocation = (method: string) =>
    Effect.flatMap(get(method, "r"), (text) => {
      if (Option.isNone(text)) return Effect.succeed(Option.none<number>())
      const n = Either.getOrUndefined(Either.try(() => JSON.parse(text.value) as unknown))
      return typeof n === "number" && Number.isFinite(n)
        ? Effect.succeed(Option.some(n))
        : Effect.fail(corrupt(method, "r", new Error("the revocation instant is not a number")))
    })

  // ---- sessions

  const writeSession = (method: string, session: Session, expiresAt: number, before: Option.Option<Meta>) =>
    Effect.gen(function*() {
      const meta: Meta = { t: session.tokenKey, v: session.version, e: expiresAt, u: Option.getOrNull(session.userId) }
      yield* put(method, `s:${session.key}`, Codec.encodeSession(session))
      yield* put(method, `m:${session.key}`, JSON.stringify(meta))
      yield* indexUser(method, session.key, Option.match(before, { onNone: () => null, onSome: (m) => m.u }), meta.u)
      if (Option.isNone(before) || bucketOf(before.value.e) !== bucketOf(expiresAt)) {
        yield* schedule(method, bucketOf(expiresAt), ["s", session.key])
      }
    })

  /** Deletes a session, its current token and its index entry, without decoding anything. */
  const removeSession = (method: string, sessionKey: string) =>
    Effect.gen(function*() {
      const meta = yield* readMeta(method, sessionKey, sessionKey).pipe(
        Effect.catchIf((e) => e.reason === "Corrupt", () => Effect.succeed(Option.none<Meta>()))
      )
      if (Option.isSome(meta)) {
        const pointer = yield* get(method, `t:${meta.value.t}`)
        if (Option.contains(pointer, `c:${sessionKey}`)) yield* del(method, `t:${meta.value.t}`)
        yield* indexUser(method, sessionKey, meta.value.u, null)
      }
      yield* del(method, `s:${sessionKey}`)
      yield* del(method, `m:${sessionKey}`)
    })

  /** The live session under a key (its metadata read already); a record that does not decode is `Corrupt` under `errorKey`. */
  const readSession = (method: string, sessionKey: string, errorKey: string, meta: Meta, now: number) =>
    Effect.gen(function*() {
      if (end(meta.e) <= now) return Option.none<Session>()
      const text = yield* get(method, `s:${sessionKey}`)
      if (Option.isNone(text)) return Option.none<Session>()
      const decoded = Codec.decodeSession(text.value)
      if (Either.isLeft(decoded)) return yield* Effect.fail(corrupt(method, errorKey, decoded.left))
      return Option.some(decoded.right)
    })

  const loadSession = (method: string, sessionKey: string, errorKey: string, tokenKey?: string) =>
    Effect.gen(function*() {
      const meta = yield* readMeta(method, sessionKey, errorKey)
      if (Option.isNone(meta) || (tokenKey !== undefined && meta.value.t !== tokenKey)) return Option.none<Session>()
      return yield* readSession(method, sessionKey, errorKey, meta.value, yield* Clock.currentTimeMillis)
    })

  const load = (tokenKey: string): Effect.Effect<Option.Option<TokenRecord>, SessionStoreError> =>
    locked(Effect.gen(function*() {
      const entry = yield* get("load", `t:${tokenKey}`)
      if (Option.isNone(entry)) return Option.none()
      if (entry.value.startsWith("c:")) return yield* loadSession("load", entry.value.slice(2), tokenKey, tokenKey)
      const decoded = Codec.decode(entry.value)
      if (Either.isLeft(decoded)) return yield* Effect.fail(corrupt("load", tokenKey, decoded.left))
      if (decoded.right._tag !== "Redirect") return yield* Effect.fail(corrupt("load", tokenKey, new Error("a session where a redirect belongs")))
      const now = yield* Clock.currentTimeMillis
      return end(decoded.right.expiresAt) <= now ? Option.none() : Option.some(decoded.right)
    }))

  /** A compare-and-set write: `false`, and nothing written, unless the stored version and token key are the expected ones. */
  const compareAndSet = (
    method: string,
    session: Session,
    expected: { readonly version: number; readonly tokenKey: string },
    expiresAt: number,
    alsoWrite: Effect.Effect<void, SessionStoreError> = Effect.void
  ) =>
    locked(Effect.gen(function*() {
      const meta = yield* readMeta(method, session.key, session.key)
      if (Option.isNone(meta) || meta.value.v !== expected.version || meta.value.t !== expected.tokenKey) return false
      yield* writeSession(method, session, expiresAt, meta)
      yield* alsoWrite
      return true
    }))

  /** The token records of a rotation: the old token becomes the redirect, the new one is current. */
  const writeRedirect = (method: string, { redirect, session }: Rotation) =>
    Effect.gen(function*() {
      yield* put(method, `t:${redirect.tokenKey}`, Codec.encode(redirect))
      yield* put(method, `t:${session.tokenKey}`, `c:${session.key}`)
      yield* schedule(method, bucketOf(redirect.expiresAt), ["t", redirect.tokenKey, redirect.expiresAt])
    })

  const rotate = (rotation: Rotation) => {
    const { expectedVersion, expiresAt, redirect, session } = rotation
    return compareAndSet(
      "rotate",
      session,
      { version: expectedVersion, tokenKey: redirect.tokenKey },
      expiresAt,
      writeRedirect("rotate", rotation)
    )
  }

  /** The retained sessions of a user and their metadata (the caller holds the lock). */
  const retainedOfUser = (method: string, userId: string) =>
    Effect.gen(function*() {
      const indexKey = userIndexKey(userId)
      const keys = parseArray(yield* get(method, indexKey), isString)
      const now = yield* Clock.currentTimeMillis
      const found: Array<readonly [Session, Meta]> = []
      const stale = new Set<string>()
      for (const key of keys) {
        const result = yield* Effect.either(Effect.gen(function*() {
          const meta = yield* readMeta(method, key, key)
          if (Option.isNone(meta) || meta.value.u !== userId) {
            stale.add(key)
            return Option.none<readonly [Session, Meta]>()
          }
          const m = meta.value
          return Option.map(yield* readSession(method, key, key, m, now), (session) => [session, m] as const)
        }))
        if (Either.isRight(result)) {
          if (Option.isSome(result.right)) found.push(result.right.value)
          continue
        }
        if (result.left.reason !== "Corrupt") return yield* Effect.fail(result.left)
        // One bad record must not stop a user from logging out everywhere: skip it, drop it.
        yield* Effect.logWarning("dropped a corrupt session record").pipe(
          Effect.annotateLogs({ event: "corrupt-record", method, key: logHash(key) })
        )
        yield* removeSession(method, key)
        stale.add(key)
      }
      if (stale.size > 0) {
        const left = parseArray(yield* get(method, indexKey), isString).filter((k) => !stale.has(k))
        yield* writeList(method, indexKey, left)
      }
      return found
    })

  const sessionsOfUser = (userId: string) =>
    locked(Effect.map(retainedOfUser("sessionsOfUser", userId), (found) => found.map(([session]) => session)))

  // Under the one lock: nothing else runs between the count and the write.
  const rotateWithinLimit = (rotation: Rotation, limit: SessionLimit): Effect.Effect<LimitedRotation, SessionStoreError> =>
    locked(Effect.gen(function*() {
      const method = "rotateWithinLimit"
      const { expectedVersion, expiresAt, redirect, session } = rotation
      const meta = yield* readMeta(method, session.key, session.key)
      if (Option.isNone(meta) || meta.value.v !== expectedVersion || meta.value.t !== redirect.tokenKey) return LimitedRotation.Lost()
      let ended: ReadonlyArray<Session> = []
      if (Option.isSome(session.userId)) {
        const now = yield* Clock.currentTimeMillis
        // Live: before the deadline last written (retained records past it do not count).
        const others = (yield* retainedOfUser(method, session.userId.value))
          .filter(([s, m]) => s.key !== session.key && m.e > now)
          .map(([s]) => s)
        const victims = sessionsToEnd(others, limit)
        if (victims === "refused") return LimitedRotation.Refused()
        ended = victims
      }
      for (const victim of ended) yield* removeSession(method, victim.key)
      // The victims' removal may have rewritten the user index: read this session's metadata again.
      yield* writeSession(method, session, expiresAt, yield* readMeta(method, session.key, session.key))
      yield* writeRedirect(method, rotation)
      return LimitedRotation.Rotated({ ended: ended.map((s) => s.tokenKey) })
    }))

  const sweep = locked(Effect.gen(function*() {
    const method = "sweep"
    const now = yield* Clock.currentTimeMillis
    const buckets = parseArray(yield* get(method, "x"), isNumber)
    let removed = 0
    const emptied = new Set<number>()
    for (const bucket of buckets) {
      if (bucket * BUCKET_MILLIS > now) break
      const entries = parseArray(yield* get(method, `x:${bucket}`), isDue)
      const keep: Array<Due> = []
      for (const entry of entries) {
        if (entry[0] === "s") {
          const meta = yield* readMeta(method, entry[1], entry[1]).pipe(
            Effect.catchIf((e) => e.reason === "Corrupt", () => Effect.succeed(Option.none<Meta>()))
          )
          if (Option.isNone(meta)) continue
          if (end(meta.value.e) <= now) {
            yield* removeSession(method, entry[1])
            removed++
          } else if (bucketOf(meta.value.e) === bucket) keep.push(entry)
        } else {
          const record = yield* get(method, `t:${entry[1]}`)
          if (Option.isNone(record) || record.value.startsWith("c:")) continue
          if (end(entry[2]) <= now) {
            yield* del(method, `t:${entry[1]}`)
            removed++
          } else keep.push(entry)
        }
      }
      if (keep.length < entries.length) yield* writeList(method, `x:${bucket}`, keep)
      if (keep.length === 0) emptied.add(bucket)
    }
    if (emptied.size > 0) {
      // Read again: nothing else ran meanwhile (the lock), but keep the index's own order.
      yield* writeList(method, "x", parseArray(yield* get(method, "x"), isNumber).filter((b) => !emptied.has(b)))
    }
    return removed
  }))

  return {
    load,
    loadSession: (sessionKey) => locked(loadSession("loadSession", sessionKey, sessionKey)),
    create: (session, expiresAt) =>
      locked(Effect.gen(function*() {
        const before = yield* readMeta("create", session.key, session.key).pipe(
          Effect.catchIf((e) => e.reason === "Corrupt", () => Effect.succeed(Option.none<Meta>()))
        )
        yield* writeSession("create", session, expiresAt, before)
        yield* put("create", `t:${session.tokenKey}`, `c:${session.key}`)
      })),
    save: (session, expectedVersion, expiresAt) =>
      compareAndSet("save", session, { version: expectedVersion, tokenKey: session.tokenKey }, expiresAt),
    rotate,
    rotateWithinLimit,
    delete: (sessionKey) => locked(removeSession("delete", sessionKey)),
    deleteToken: (tokenKey) =>
      locked(Effect.gen(function*() {
        const entry = yield* get("deleteToken", `t:${tokenKey}`)
        if (Option.isSome(entry) && entry.value.startsWith("c:")) yield* removeSession("deleteToken", entry.value.slice(2))
        yield* del("deleteToken", `t:${tokenKey}`)
      })),
    sessionsOfUser,
    sweep,
    revokeUntil: (instant) =>
      locked(Effect.gen(function*() {
        const stored = yield* readRevocation("revokeUntil")
        yield* put("revokeUntil", "r", JSON.stringify(Option.match(stored, { onNone: () => instant, onSome: (t) => Math.max(t, instant) })))
      })),
    revokedUntil: locked(readRevocation("revokedUntil")),
    // One process only: nobody else to tell, nothing to hear.
    publishUserInvalidation: () => Effect.void,
    invalidations: Stream.empty
  }
}

