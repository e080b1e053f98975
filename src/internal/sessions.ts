/**
 * The implementation of the Sessions service: resolution of a token (README, "The timing rules"), write-through
 * to cache and store, per-session locks, compare-and-set retries, users, metrics and spans.
 *
 * @internal
 */
import { Clock, Duration, Effect, Either, Metric, Option, Random, Redacted, Schema, Stream } from "effect"
import { ParseError, Type } from "effect/ParseResult"
import * as Ids from "../Ids.js"
import { Persistence, type SessionStoreError } from "../Persistence.js"
import { SecureRandom } from "../SecureRandom.js"
import type { Client, KeyLike, Redirect, Session, TokenRecord } from "../Session.js"
import * as S from "../Session.js"
import { SessionCache } from "../SessionCache.js"
import { SessionConfig } from "../SessionConfig.js"
import type { ActiveSession, Outcome, Resolution, SessionError, SessionInfo, SessionReadError, SessionsShape, SessionWriteError } from "../Sessions.js"
import { SessionConflictError, SessionDataError, SessionDataTooLargeError, SessionGoneError, UserLoader } from "../Sessions.js"
import { makeKeyedLock } from "./keyedLock.js"
import { sleepReal } from "./realTime.js"
import { logHash, publicId, safeEqual, seal, tokenKey as hashToken, unseal } from "./hash.js"
import { makeUserCache } from "./userCache.js"

/** `noteInvalidation`'s key for "everything" (token keys are never empty). */
const INVALIDATE_ALL = ""

/** Attempts of a compare-and-set before giving up (another process keeps winning). */
const MAX_ATTEMPTS = 32

/**
 * After a lost compare-and-set race: wait a random 0…2^attempt ms (at most 64) so that writers in
 * several processes stop colliding in lockstep. The wait is scheduling, not timekeeping: it uses
 * the event loop's timer so that it also passes under a paused TestClock; the jitter comes from
 * Effect's `Random` (nothing secret depends on it).
 */
const backoff = (attempt: number): Effect.Effect<void> =>
  Effect.flatMap(Random.nextIntBetween(0, Math.min(64, 2 ** attempt) + 1), sleepReal)
/**
 * Redirect hops followed at most. A chain forms when a session rotates again within the grace
 * period of an earlier token (`regenerateId` in a loop, a short rotation interval: a 10-second
 * grace over a 300-millisecond interval makes chains of 33); each hop is one lookup, and a chain
 * cannot loop (every successor is fresh randomness checked against its hash).
 */
const MAX_HOPS = 64

/**
 * Re-resolutions of one token after a lost race (a rotation or a touch that another writer won).
 * Counted apart from the hops: under contention a request may lose several races without its
 * token being any further from the current one, and running out must never fork the session.
 */
const MAX_RERESOLVES = MAX_ATTEMPTS

const metrics = {
  created: Metric.counter("effect_sessions_created_total", { description: "sessions created" }),
  rotated: Metric.counter("effect_sessions_rotated_total", { description: "session tokens rotated" }),
  expired: Metric.counter("effect_sessions_expired_total", { description: "sessions or tokens found expired, by reason" }),
  anomalies: Metric.counter("effect_sessions_anomalies_total", { description: "sessions destroyed for a client change, by kind" }),
  destroyed: Metric.counter("effect_sessions_destroyed_total", { description: "sessions destroyed on request" }),
  cacheHits: Metric.counter("effect_sessions_cache_hits_total", { description: "token lookups answered by the local cache" }),
  cacheMisses: Metric.counter("effect_sessions_cache_misses_total", { description: "token lookups that went to the store" }),
  conflicts: Metric.counter("effect_sessions_conflicts_total", { description: "compare-and-set races lost to another writer" })
}

/** @internal */
export { metrics }

/** @internal */
export const makeSessions = Effect.gen(function*() {
  const store = yield* Persistence
  const cache = yield* SessionCache
  const config = yield* SessionConfig
  const random = yield* SecureRandom
  const userLoader = yield* Effect.serviceOption(UserLoader)
  // The clock in context when the service is built (a TestClock in tests): read once per call.
  const clock = yield* Effect.clock

  const keyOf = (token: string) => hashToken(token, config.hashIdsAtRest)
  const base64url = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64url")
  const newToken = Effect.map(random.bytes(config.tokenBytes), base64url)
  // The internal key is never sent anywhere; 256 bits make it unguessable all the same.
  const newKey = Effect.map(random.bytes(32), base64url)
  // Privilege changes (log in, log out) rotate without a grace period: the old token must die now.
  const noGrace = { ...config, gracePeriod: Duration.zero }

  // ---- per-session locks: one fiber at a time per session key, first come first served
  const { withLock } = makeKeyedLock()

  // ---- cached reads
  // The cache answers only for records still before their deadline; past it, the store decides
  // (it may keep dead records for a while, or not), so any cache size behaves like none (invariant 7).
  const retained = (record: TokenRecord, now: number): boolean =>
    (record._tag === "Session" ? S.expiresAt(record, config) : record.expiresAt) > now

  // Invalidations from other processes are numbered. A record read from the store is cached only
  // if no invalidation of its key (nor a clear) arrived during the read: an invalidation that
  // overtook the read must not be undone by it.
  let invalidationEpoch = 0
  let clearedAtEpoch = 0
  const invalidatedAt = new Map<string, number>()
  const noteInvalidation = (tk: string) => {
    invalidationEpoch++
    if (tk === INVALIDATE_ALL || invalidatedAt.size >= 10_000) {
      // Forgetting per-key numbers is safe: every read in flight now counts as overtaken.
      invalidatedAt.clear()
      clearedAtEpoch = invalidationEpoch
    }
    if (tk !== INVALIDATE_ALL) invalidatedAt.set(tk, invalidationEpoch)
  }
  const overtaken = (tk: string, since: number) => clearedAtEpoch > since || (invalidatedAt.get(tk) ?? 0) > since

  const loadRecord = (tk: string): Effect.Effect<Option.Option<TokenRecord>, SessionStoreError> =>
    Effect.flatMap(cache.get(tk), (cached) => {
      if (Option.isSome(cached)) {
        return Effect.suspend(() =>
          retained(cached.value, clock.unsafeCurrentTimeMillis())
            ? Effect.as(Metric.increment(metrics.cacheHits), cached)
            : Effect.zipRight(cache.invalidate(tk), loadRecord(tk))
        )
      }
      const epoch = invalidationEpoch
      return store.load(tk).pipe(
        Effect.tap((record) =>
          Effect.zipRight(
            Metric.increment(metrics.cacheMisses),
            Option.isSome(record) && !overtaken(tk, epoch) ? cache.set(tk, record.value) : Effect.void
          )
        )
      )
    })

  /**
   * The latest stored value of a session, if `tk` is still its current token: the record under
   * `tk` (cache, then store) must be that session. By token, never by session key alone, so that a
   * token retired meanwhile reaches nothing (a handle is only as good as its token).
   */
  const latest = (sessionKey: string, tk: string): Effect.Effect<Option.Option<Session>, SessionStoreError> =>
    Effect.flatMap(cache.get(tk), (cached) =>
      Option.isSome(cached) && cached.value._tag === "Session"
        ? Effect.succeed(cached.value.key === sessionKey && cached.value.tokenKey === tk ? Option.some(cached.value) : Option.none())
        : Effect.map(
          store.load(tk),
          (record) => record.pipe(Option.filter((r): r is Session => r._tag === "Session" && r.key === sessionKey && r.tokenKey === tk))
        ))

  const remember = (session: Session) => cache.set(session.tokenKey, session)

  const drop = (session: Session) => Effect.zipRight(store.delete(session.key), cache.invalidate(session.tokenKey))

  // The token key of each handle this service made (`tk` = keyOf(token), known when it is made),
  // so that checking a handle costs no hashing; a handle made elsewhere is hashed on use.
  const handleKeys = new WeakMap<ActiveSession, string>()
  const tokenKeyOf = (handle: ActiveSession): string => handleKeys.get(handle) ?? keyOf(Redacted.value(handle.token))

  // The Redacted wrapper is made on first use: most hot-path answers never read the token again.
  const active = (session: Session, token: string, tk: string): ActiveSession => {
    let redacted: Redacted.Redacted<string> | undefined
    const handle: ActiveSession = {
      session,
      get token() {
        return redacted ??= Redacted.make(token)
      }
    }
    handleKeys.set(handle, tk)
    return handle
  }
  const touchMillis = Duration.toMillis(config.touchInterval)

  const resolution = (session: Option.Option<ActiveSession>, cookie: Resolution["cookie"], outcome: Outcome): Resolution => ({
    session,
    cookie,
    outcome
  })

  // ---- creation
  const create = (client: Client): Effect.Effect<ActiveSession, SessionStoreError> =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const token = yield* newToken
      const key = yield* newKey
      const session = S.withVersion(S.start({ key, tokenKey: keyOf(token), now, client }), 1)
      yield* store.create(session, S.expiresAt(session, config))
      yield* remember(session)
      yield* Metric.increment(metrics.created)
      return active(session, token, session.tokenKey)
    }).pipe(Effect.withSpan("Sessions.create", { captureStackTrace: false }))

  // ---- rotation: replace the token of the session that `token` currently leads to
  const rotateLocked = (
    sessionKey: string,
    token: string,
    options: { readonly grace: boolean; readonly change?: (s: Session) => Session }
  ): Effect.Effect<Option.Option<ActiveSession>, SessionStoreError> =>
    Effect.gen(function*() {
      const tk = keyOf(token)
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const current = yield* latest(sessionKey, tk)
        if (Option.isNone(current)) return Option.none()
        // Someone else rotated first: the caller follows the redirect instead.
        if (current.value.tokenKey !== tk) return Option.none()
        const now = yield* Clock.currentTimeMillis
        const successor = yield* newToken
        const changed = options.change ? options.change(current.value) : current.value
        const rotation = S.rotate(changed, {
          tokenKey: keyOf(successor),
          sealedSuccessor: config.hashIdsAtRest ? seal(successor, token) : successor,
          now,
          config: options.grace ? config : noGrace
        })
        const next = S.withVersion(rotation.session, current.value.version + 1)
        const won = yield* store.rotate({ session: next, expectedVersion: current.value.version, redirect: rotation.redirect, expiresAt: S.expiresAt(next, config) })
        if (won) {
          yield* cache.set(rotation.redirect.tokenKey, rotation.redirect)
          yield* remember(next)
          yield* Metric.increment(metrics.rotated)
          return Option.some(active(next, successor, next.tokenKey))
        }
        yield* Metric.increment(metrics.conflicts)
        yield* backoff(attempt)
        yield* cache.invalidate(tk)
        // Lost to another process: if the token is no longer current the caller follows.
        const fresh = yield* store.load(tk)
        if (Option.isNone(fresh) || fresh.value._tag !== "Session") return Option.none()
      }
      return Option.none()
    })

  // ---- resolution (README, "The timing rules")
  const resolveToken = (
    token: string,
    client: Client,
    hops: number,
    followed: boolean,
    reresolves = 0
  ): Effect.Effect<Resolution, SessionStoreError> =>
    Effect.gen(function*() {
      const tk = keyOf(token)
      const record = yield* loadRecord(tk).pipe(
        Effect.catchIf((e) => e.reason === "Corrupt", (e) =>
          Effect.zipRight(
            Effect.logWarning("dropped a corrupt session record").pipe(
              Effect.annotateLogs({ event: "corrupt-record", token: logHash(token), cause: String(e.cause) })
            ),
            Effect.as(store.deleteToken(tk), Option.none<TokenRecord>())
          ))
      )
      const now = yield* Clock.currentTimeMillis
      const decision = S.decide(record, { now, client, config })
      switch (decision._tag) {
        // An unknown token, or an old one past its grace period, leaves the cookie alone: the
        // browser may already hold a newer token under the same name (a response to an older
        // request can arrive last), and removing the cookie by name would log it out.
        case "Missing":
          return resolution(Option.none(), "none", "missing")
        case "Follow": {
          const r = decision.redirect
          const successor = config.hashIdsAtRest ? unseal(r.sealedSuccessor, token) : r.sealedSuccessor
          if (!safeEqual(keyOf(successor), r.successorKey)) {
            yield* Effect.logWarning("a redirect did not open with its token").pipe(
              Effect.annotateLogs({ event: "bad-redirect", token: logHash(token) })
            )
            return resolution(Option.none(), "clear", "missing")
          }
          if (hops >= MAX_HOPS) {
            // Not proven dead, only too far behind: the cookie is left alone.
            yield* Effect.logWarning("a redirect chain was longer than its limit").pipe(
              Effect.annotateLogs({ event: "long-redirect-chain", token: logHash(token), hops })
            )
            return resolution(Option.none(), "none", "missing")
          }
          return yield* resolveToken(successor, client, hops + 1, true, reresolves)
        }
        case "Expired": {
          yield* Metric.increment(Metric.tagged(metrics.expired, "reason", decision.reason))
          if (decision.record._tag === "Session") {
            yield* drop(decision.record)
            return resolution(Option.none(), "clear", "expired")
          }
          yield* lateUse(decision.record, token, now)
          return resolution(Option.none(), "none", "expired")
        }
        case "Anomaly": {
          yield* Metric.increment(Metric.tagged(metrics.anomalies, "kind", decision.kind))
          yield* drop(decision.session)
          yield* Effect.logWarning("session destroyed: client changed").pipe(
            Effect.annotateLogs({ event: "anomaly", kind: decision.kind, token: logHash(token) })
          )
          return resolution(Option.none(), "clear", "anomaly")
        }
        case "Rotate": {
          const rotated = yield* withLock(decision.session.key)(rotateLocked(decision.session.key, token, { grace: true }))
          if (Option.isSome(rotated)) return resolution(rotated, "set", "rotated")
          // Lost the race: the token is now a redirect (or gone); resolve it again.
          if (reresolves >= MAX_RERESOLVES) return resolution(Option.none(), "none", "missing")
          return yield* resolveToken(token, client, hops, followed, reresolves + 1)
        }
        case "Valid": {
          const session = decision.session
          const touched = S.touch(session, now, config)
          const result = touched === session
            ? Option.some(session)
            : yield* withLock(session.key)(writeTouch(session.key, tk, now))
          // The token is no longer current (rotated or retired meanwhile, or the session was
          // destroyed): resolve it again, so that it follows its redirect or leads nowhere.
          if (Option.isNone(result)) {
            if (reresolves >= MAX_RERESOLVES) return resolution(Option.none(), "none", "missing")
            return yield* resolveToken(token, client, hops, followed, reresolves + 1)
          }
          return resolution(Option.some(active(result.value, token, tk)), followed ? "set" : "none", followed ? "followed" : "valid")
        }
      }
    })

  const lateUse = (redirect: Redirect, token: string, now: number) =>
    Effect.logWarning("a rotated session token was used after its grace period").pipe(
      Effect.annotateLogs({ event: "late-token-use", token: logHash(token), lateByMillis: now - redirect.expiresAt })
    )

  /**
   * Writes a moved last-access time (CAS, re-read on a lost race). Recording an access is best
   * effort: if other writers keep winning, the session is served as it is rather than lost.
   */
  const writeTouch = (sessionKey: string, hint: string, now: number) =>
    Effect.gen(function*() {
      let seen = Option.none<Session>()
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const current = yield* latest(sessionKey, hint)
        if (Option.isNone(current)) return Option.none<Session>()
        seen = current
        const touched = S.touch(current.value, now, config)
        if (touched === current.value) return current
        const next = S.withVersion(touched, current.value.version + 1)
        if (yield* store.save(next, current.value.version, S.expiresAt(next, config))) {
          yield* remember(next)
          return Option.some(next)
        }
        yield* Metric.increment(metrics.conflicts)
        yield* backoff(attempt)
        yield* cache.invalidate(current.value.tokenKey)
      }
      return seen
    })

  const identity = (r: Resolution) => r
  // Hot path: a cached, valid session whose last access needs no write is answered without a
  // store call, a lock or a generator; everything else takes `resolveToken`.
  const resolveAs = <A>(
    token: string | undefined,
    client: Client,
    options: { readonly create?: boolean } | undefined,
    project: (r: Resolution) => A
  ): Effect.Effect<A, SessionStoreError> => {
    const create_ = options?.create === true
    const orCreate = (r: Resolution): Effect.Effect<Resolution, SessionStoreError> =>
      Option.isSome(r.session) || !create_
        ? Effect.succeed(r)
        : Effect.map(create(client), (h) => resolution(Option.some(h), "set", "created"))
    if (token === undefined || token === "") return Effect.map(orCreate(resolution(Option.none(), "none", "absent")), project)
    if (!Ids.isWellFormedToken(token, config.tokenBytes)) {
      return Effect.map(orCreate(resolution(Option.none(), "clear", "malformed")), project)
    }
    const tk = keyOf(token)
    return Effect.flatMap(cache.get(tk), (cached) => {
      if (Option.isSome(cached) && cached.value._tag === "Session") {
        const now = clock.unsafeCurrentTimeMillis()
        const decision = S.decide(cached, { now, client, config })
        if (decision._tag === "Valid" && S.touch(decision.session, now, config) === decision.session) {
          metrics.cacheHits.unsafeUpdate(1, [])
          return Effect.succeed(project(resolution(Option.some(active(decision.session, token, tk)), "none", "valid")))
        }
      }
      return resolveToken(token, client, 0, false).pipe(
        Effect.flatMap(orCreate),
        Effect.map(project),
        Effect.withSpan("Sessions.resolve", { attributes: { "session.token_hash": logHash(token) }, captureStackTrace: false })
      )
    })
  }
  const resolve: SessionsShape["resolve"] = (token, client, options) => resolveAs(token, client, options, identity)

  // ---- changes to an active session
  const gone = (method: string, handle: ActiveSession) =>
    new SessionGoneError({ method, session: logHash(Redacted.value(handle.token)) })

  /**
   * Where the handle's own token leads now (a handle is only as good as its token): the session, if that token is still its
   * current token or a redirect inside its grace period whose chain (each hop checked by the
   * sealed successor) ends at the current token. A token retired without grace leads nowhere,
   * whatever became of the session. The common case — the handle's token is current and cached —
   * costs one cache lookup.
   */
  const reach = (handle: ActiveSession): Effect.Effect<Option.Option<Session>, SessionStoreError> => {
    const tk = tokenKeyOf(handle)
    return Effect.flatMap(cache.get(tk), (cached) =>
      Option.isSome(cached) && cached.value._tag === "Session"
        ? Effect.succeed(cached.value.key === handle.session.key && cached.value.tokenKey === tk ? Option.some(cached.value) : Option.none())
        : Effect.map(walk(handle, tk), Option.map((r) => r.session)))
  }

  /** {@link reach}, with the current token it arrived at. */
  const walk = (handle: ActiveSession, tk0: string): Effect.Effect<Option.Option<{ readonly token: string; readonly session: Session }>, SessionStoreError> =>
    Effect.gen(function*() {
      const sessionKey = handle.session.key
      let token = Redacted.value(handle.token)
      let tk = tk0
      // Hops, plus one re-read per hop for a store whose answer raced a rotation.
      for (let step = 0; step <= 2 * MAX_HOPS; step++) {
        const record = yield* loadRecord(tk)
        if (Option.isNone(record)) return Option.none()
        const r = record.value
        if (r._tag === "Session") {
          if (r.key !== sessionKey) return Option.none()
          if (r.tokenKey === tk) return Option.some({ token, session: r })
          // The session moved on while the record was read: read again (it is a redirect now).
          yield* cache.invalidate(tk)
          continue
        }
        if (r.sessionKey !== sessionKey) return Option.none()
        if (r.expiresAt <= (yield* Clock.currentTimeMillis)) return Option.none()
        const successor = config.hashIdsAtRest ? unseal(r.sealedSuccessor, token) : r.sealedSuccessor
        if (!safeEqual(keyOf(successor), r.successorKey)) return Option.none()
        token = successor
        tk = r.successorKey
      }
      return Option.none()
    })

  /** Bytes of the encoded JSON of session data (what `maxDataBytes` limits). */
  const dataBytes = (data: Session["data"]): number => {
    const json = JSON.stringify(data)
    // UTF-8 takes at most 3 bytes per UTF-16 code unit: short data needs no exact count.
    return json.length * 3 <= config.maxDataBytes ? json.length : Buffer.byteLength(json, "utf8")
  }

  /**
   * The one write path of data changes: under the session's lock, reach the session through the
   * handle's own token, apply `f`, check the data (JSON, `maxDataBytes`), and compare-and-set on
   * the version of the session reached. Every retirement of a token bumps the version or deletes
   * the session, so a lost race re-checks the token from the start, in any process.
   */
  const modifyWith = <B>(
    method: string,
    key: string,
    handle: ActiveSession,
    f: (session: Session) => Either.Either<readonly [B, Session], ParseError>
  ): Effect.Effect<readonly [B, Session], SessionError> =>
    withLock(handle.session.key)(Effect.gen(function*() {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const current = yield* reach(handle)
        if (Option.isNone(current)) return yield* Effect.fail(gone(method, handle))
        const now = yield* Clock.currentTimeMillis
        // A dead session takes no writes (invariants 1 and 2 hold for writers too).
        if (Option.isSome(S.expiry(current.value, now, config))) {
          yield* drop(current.value)
          return yield* Effect.fail(gone(method, handle))
        }
        const applied = f(current.value)
        if (Either.isLeft(applied)) return yield* Effect.fail(new SessionDataError({ method, key, cause: applied.left }))
        const [result, changed] = applied.right
        if (changed === current.value) return [result, current.value] as const
        if (changed.data !== current.value.data) {
          if (!S.isJson(changed.data)) return yield* Effect.fail(invalidData(method, changed.data))
          // Above the limit only if it grew: a lowered limit never traps a session that shrinks.
          const bytes = dataBytes(changed.data)
          if (bytes > config.maxDataBytes && bytes > dataBytes(current.value.data)) {
            return yield* Effect.fail(
              new SessionDataError({ method, key, cause: new SessionDataTooLargeError({ bytes, maxBytes: config.maxDataBytes }) })
            )
          }
        }
        // One new value: the change, its access time (touched when due) and the next version.
        const next = new S.Session({
          ...changed,
          lastAccessAt: now - changed.lastAccessAt >= touchMillis ? now : changed.lastAccessAt,
          version: current.value.version + 1
        })
        if (yield* store.save(next, current.value.version, S.expiresAt(next, config))) {
          yield* remember(next)
          return [result, next] as const
        }
        yield* Metric.increment(metrics.conflicts)
        yield* backoff(attempt)
        yield* cache.invalidate(current.value.tokenKey)
      }
      return yield* Effect.fail(
        new SessionConflictError({ method, session: logHash(Redacted.value(handle.token)), attempts: MAX_ATTEMPTS })
      )
    })).pipe(Effect.withSpan(`Sessions.${method}`, {
      attributes: { "session.token_hash": logHash(Redacted.value(handle.token)) },
      captureStackTrace: false
    }))

  const invalidData = (method: string, data: unknown) => {
    const parsed = Schema.decodeUnknownEither(S.JsonObject)(data)
    const key = Object.keys(data as object).find((k) => !S.isJson((data as Record<string, unknown>)[k])) ?? ""
    return Either.isLeft(parsed)
      ? new SessionDataError({ method, key, cause: parsed.left })
      : new SessionDataError({ method, key, cause: new ParseError({ issue: new Type(S.JsonObject.ast, data) }) })
  }

  const modify: SessionsShape["modify"] = (handle, f) =>
    Effect.map(modifyWith("modify", "", handle, (s) => {
      const changed = f(s)
      return S.isSession(changed) ? Either.right([undefined, changed] as const) : Either.map(changed, (c) => [undefined, c] as const)
    }), ([, s]) => s)

  // The data operations, for string keys (JSON) and typed keys (through their Schema) alike.
  const right = <A>(a: A) => Either.right(a) as Either.Either<A, ParseError>
  const get = (handle: ActiveSession, k: KeyLike): Effect.Effect<Option.Option<unknown>, SessionError> =>
    Effect.flatMap(currentAs("get")(handle), (s) => {
      if (typeof k === "string") return Effect.succeed(S.get(s, k))
      return Either.match(S.get(s, k), {
        onLeft: (cause) => Effect.fail(new SessionDataError({ method: "get", key: k.name, cause })),
        onRight: Effect.succeed
      })
    })
  const set = (handle: ActiveSession, k: KeyLike, value: any) =>
    Effect.asVoid(
      modifyWith("set", S.keyName(k), handle, (s) =>
        typeof k === "string" ? right([undefined, S.set(s, k, value)] as const) : Either.map(S.set(s, k, value), (c) => [undefined, c] as const))
    )
  // Removing a key never makes data that is not JSON or larger: no SessionDataError is possible.
  const shrinks = <A>(e: Effect.Effect<A, SessionError>) => e as Effect.Effect<A, SessionWriteError>
  const remove = (handle: ActiveSession, k: KeyLike) =>
    shrinks(Effect.asVoid(modifyWith("remove", S.keyName(k), handle, (s) => right([undefined, S.remove(s, k)] as const))))
  const pop = (handle: ActiveSession, k: KeyLike) =>
    Effect.map(
      modifyWith("pop", S.keyName(k), handle, (s): Either.Either<readonly [Option.Option<unknown>, Session], ParseError> =>
        typeof k === "string" ? right(S.pop(s, k)) : S.pop(s, k)),
      ([v]) => v
    )
  const update = (handle: ActiveSession, k: KeyLike, f: (old: Option.Option<any>) => any) =>
    Effect.map(
      modifyWith("update", S.keyName(k), handle, (s): Either.Either<readonly [unknown, Session], ParseError> => {
        if (typeof k === "string") {
          const value = f(S.get(s, k))
          return right([value, S.set(s, k, value)] as const)
        }
        return Either.flatMap(S.get(s, k), (old) => {
          const value = f(old)
          return Either.map(S.set(s, k, value), (c) => [value, c] as const)
        })
      }),
      ([v]) => v
    )

  // Reads see only live sessions reached through the handle's own token: a dead one (the store
  // may still hold it) is gone, and so is one whose token was retired.
  const currentAs = (method: string) => (handle: ActiveSession): Effect.Effect<Session, SessionReadError> =>
    Effect.flatMap(reach(handle), (s) =>
      Effect.suspend(() =>
        Option.isNone(s) || Option.isSome(S.expiry(s.value, clock.unsafeCurrentTimeMillis(), config))
          ? Effect.fail(gone(method, handle))
          : Effect.succeed(s.value)
      ))
  const current: SessionsShape["current"] = currentAs("current")

  /**
   * Runs `body` with the live session and the current token the handle's own token leads to,
   * under the session's lock; gone when it leads nowhere.
   */
  const withReached = <A, E>(
    method: string,
    handle: ActiveSession,
    body: (token: string, session: Session) => Effect.Effect<A, E>
  ): Effect.Effect<A, E | SessionReadError> =>
    Effect.gen(function*() {
      const reached = yield* walk(handle, tokenKeyOf(handle))
      if (Option.isNone(reached)) return yield* Effect.fail(gone(method, handle))
      const { session, token } = reached.value
      if (Option.isSome(S.expiry(session, yield* Clock.currentTimeMillis, config))) {
        yield* drop(session)
        return yield* Effect.fail(gone(method, handle))
      }
      return yield* body(token, session)
    })

  const rotateHandle = (
    method: string,
    handle: ActiveSession,
    options: { readonly grace: boolean; readonly change?: (s: Session) => Session }
  ): Effect.Effect<ActiveSession, SessionWriteError> =>
    withLock(handle.session.key)(Effect.gen(function*() {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        // The rotation itself is a compare-and-set on the current token and the version: a token
        // retired after this check loses it, and the next round finds the handle dead.
        const rotated = yield* withReached(method, handle, (token) => rotateLocked(handle.session.key, token, options))
        if (Option.isSome(rotated)) return rotated.value
      }
      return yield* Effect.fail(
        new SessionConflictError({ method, session: logHash(Redacted.value(handle.token)), attempts: MAX_ATTEMPTS })
      )
    })).pipe(Effect.withSpan(`Sessions.${method}`, {
      attributes: { "session.token_hash": logHash(Redacted.value(handle.token)) },
      captureStackTrace: false
    }))

  /**
   * Ends the session the handle reaches, and only that one. The store's `delete` is not
   * conditional, so the session is first rotated (a compare-and-set on its current token and
   * version) to a token nobody holds, with no grace: from then on no handle in any process reaches
   * it, and a concurrent log-in through the same token wins or loses that race as a whole — a dead
   * handle never deletes the session someone else just logged in to.
   */
  const destroyHandle = (handle: ActiveSession): Effect.Effect<void, SessionStoreError | SessionGoneError | SessionConflictError> =>
    withLock(handle.session.key)(Effect.gen(function*() {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const reached = yield* walk(handle, tokenKeyOf(handle))
        if (Option.isNone(reached)) return yield* Effect.fail(gone("destroy", handle))
        const { session, token } = reached.value
        const now = yield* Clock.currentTimeMillis
        if (Option.isSome(S.expiry(session, now, config))) {
          yield* drop(session)
          return yield* Effect.fail(gone("destroy", handle))
        }
        const nobodys = yield* newToken
        const rotation = S.rotate(session, {
          tokenKey: keyOf(nobodys),
          sealedSuccessor: config.hashIdsAtRest ? seal(nobodys, token) : nobodys,
          now,
          config: noGrace
        })
        const sealed = S.withVersion(rotation.session, session.version + 1)
        const won = yield* store.rotate({ session: sealed, expectedVersion: session.version, redirect: rotation.redirect, expiresAt: S.expiresAt(sealed, config) })
        yield* cache.invalidate(session.tokenKey)
        if (won) {
          yield* store.delete(session.key)
          // The zero-grace redirect goes too: a later use of the token is "missing", not a late use.
          yield* store.deleteToken(session.tokenKey)
          yield* Metric.increment(metrics.destroyed)
          return
        }
        yield* Metric.increment(metrics.conflicts)
        yield* backoff(attempt)
      }
      return yield* Effect.fail(
        new SessionConflictError({ method: "destroy", session: logHash(Redacted.value(handle.token)), attempts: MAX_ATTEMPTS })
      )
    })).pipe(Effect.withSpan("Sessions.destroy", { captureStackTrace: false }))

  const endSessions = (sessions: ReadonlyArray<Session>) =>
    Effect.forEach(sessions, (s) => Effect.zipRight(drop(s), Metric.increment(metrics.destroyed)), { discard: true })

  /** The user's sessions that are still alive (stores keep dead ones for a while: see `retained`). */
  const liveSessionsOf = (userId: string) =>
    Effect.flatMap(store.sessionsOfUser(userId), (sessions) =>
      Effect.suspend(() => {
        const now = clock.unsafeCurrentTimeMillis()
        return Effect.succeed(sessions.filter((s) => Option.isNone(S.expiry(s, now, config))))
      }))

  const logOutEverywhere = (userId: string, except?: string) =>
    Effect.flatMap(liveSessionsOf(userId), (sessions) => {
      const victims = sessions.filter((s) => s.key !== except)
      return Effect.as(endSessions(victims), victims.length)
    })

  // ---- users: bounded, with a time to live, forgotten everywhere on refreshUser
  const users = yield* makeUserCache(userLoader, store)

  const info = (s: Session): SessionInfo => ({
    id: publicId(s.key),
    createdAt: s.createdAt,
    lastAccessAt: s.lastAccessAt,
    idIssuedAt: s.idIssuedAt,
    ip: s.ip,
    userAgentHash: s.userAgentHash
  })

  // Other processes sharing the store tell us which token keys they changed and which users they
  // refreshed; "All" means the channel was interrupted and anything cached may be stale.
  yield* store.invalidations.pipe(
    Stream.runForEach((invalidation) =>
      Effect.suspend(() => {
        switch (invalidation._tag) {
          case "Token":
            noteInvalidation(invalidation.tokenKey)
            return cache.invalidate(invalidation.tokenKey)
          case "User":
            return users.forgetKey(invalidation.userKey)
          case "All":
            noteInvalidation(INVALIDATE_ALL)
            return Effect.zipRight(cache.clear, users.forgetAll)
        }
      })
    ),
    Effect.catchAllCause((cause) => Effect.logWarning("session invalidation stream ended", cause)),
    Effect.forkScoped
  )

  const service: SessionsShape = {
    config,
    resolve,
    create,
    current,
    get: get as SessionsShape["get"],
    set: set as SessionsShape["set"],
    remove,
    pop: pop as SessionsShape["pop"],
    update: update as SessionsShape["update"],
    modify,
    regenerateId: (handle, options) => rotateHandle("regenerateId", handle, { grace: options?.grace ?? true }),
    logIn: (handle, userId, options) =>
      Effect.gen(function*() {
        // A dead handle ends nobody's sessions: check it before the exclusive log-out.
        if (options?.exclusive) {
          yield* currentAs("logIn")(handle)
          yield* logOutEverywhere(userId, handle.session.key)
        }
        const client = options?.client
        return yield* rotateHandle("logIn", handle, {
          grace: false,
          change: (s) => {
            const withUser = S.logIn(s, userId)
            return client ? S.bind(withUser, client) : withUser
          }
        })
      }),
    logOut: (handle, options) =>
      rotateHandle("logOut", handle, {
        grace: false,
        change: options?.keepData === false ? (s) => new S.Session({ ...S.logOut(s), data: {} }) : S.logOut
      }),
    logOutEverywhere: (userId) => logOutEverywhere(userId).pipe(Effect.withSpan("Sessions.logOutEverywhere", { captureStackTrace: false })),
    listSessions: (userId) => Effect.map(liveSessionsOf(userId), (sessions) => sessions.map(info)),
    endSession: (userId, id) =>
      Effect.flatMap(liveSessionsOf(userId), (sessions) => {
        const victim = sessions.find((s) => publicId(s.key) === id)
        return victim ? Effect.as(endSessions([victim]), true) : Effect.succeed(false)
      }),
    destroy: destroyHandle,
    clearCache: cache.clear,
    user: (handle) =>
      Effect.gen(function*() {
        const s = yield* current(handle)
        if (Option.isNone(s.userId)) return Option.none()
        return yield* users.get(s.userId.value)
      }),
    refreshUser: (userId) => users.refresh(userId)
  }
  return service
})
