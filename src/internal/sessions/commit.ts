/**
 * Compare-and-set writes of a session's value through a handle, and the data vocabulary over
 * them. `modifyWith` is the one write path of data changes: under the session's lock it reaches
 * the session through the handle's own token, applies a pure change, checks the data (JSON that
 * survives a round trip, at most `maxDataBytes`) and saves at the next version if the stored
 * version is still the one read. Every retirement of a token bumps the version or deletes the
 * session, so a lost race re-checks the token from the start, in any process. `writeTouch`
 * records a moved last-access time the same way, best effort. `get`, `set`, `remove`, `pop`,
 * `update` and `modify` are the service methods for string keys (JSON) and typed keys (through
 * their Schema) alike; the writes are traced as `Sessions.<method>`.
 *
 * @internal
 */
import { Clock, Duration, Effect, Either, Option, Schema } from "effect"
import { ParseError, Type } from "effect/ParseResult"
import type { SessionStoreError } from "../persistence.js"
import type { KeyLike, Session } from "../../Session.js"
import * as S from "../../Session.js"
import type { Env } from "./env.js"
import { type SessionError, SessionDataError, SessionDataTooLargeError, type SessionReadError, type SessionWriteError } from "./errors.js"
import * as Ev from "./events.js"
import { type Handles, spanOptions, traceHandle } from "./handles.js"
import type { Records } from "./records.js"
import { conflictError, lostCompareAndSet, retryLostRaces } from "./retry.js"
import type { ActiveSession, SessionsShape } from "./service.js"

/** @internal */
export interface Commits {
  /**
   * Writes a moved last-access time (the caller holds the lock): the session as written, the
   * session as it is when the change was not needed or other writers kept winning (recording an
   * access is best effort: the session is served as it is rather than lost), none when `tokenKey`
   * is no longer its current token.
   */
  readonly writeTouch: (sessionKey: string, tokenKey: string, now: number) => Effect.Effect<Option.Option<Session>, SessionStoreError>
  readonly get: SessionsShape["get"]
  readonly set: SessionsShape["set"]
  readonly remove: SessionsShape["remove"]
  readonly pop: SessionsShape["pop"]
  readonly update: SessionsShape["update"]
  readonly modify: SessionsShape["modify"]
}

/** @internal */
export const makeCommits = (env: Env, records: Records, handles: Handles): Commits => {
  const { cache, config, events, revocation, store, withLock } = env
  const touchMillis = Duration.toMillis(config.touchInterval)

  const writeTouch: Commits["writeTouch"] = (sessionKey, hint, now) =>
    Effect.suspend(() => {
      let seen = Option.none<Session>()
      const attempt = Effect.gen(function*() {
        const current = yield* records.latest(sessionKey, hint)
        if (Option.isNone(current)) return Option.none<Session>()
        seen = current
        const touched = S.touch(current.value, now, config)
        if (touched === current.value) return current
        const next = S.withVersion(touched, current.value.version + 1)
        if (!(yield* store.save(next, current.value.version, S.expiresAt(next, config)))) {
          return yield* lostCompareAndSet(cache.invalidate(current.value.tokenKey))
        }
        yield* records.remember(next)
        return Option.some(next)
      })
      return retryLostRaces(attempt, () => Effect.succeed(seen))
    })

  /** Bytes of the encoded JSON of session data (what `maxDataBytes` limits). */
  const dataBytes = (data: Session["data"]): number => {
    const json = JSON.stringify(data)
    // UTF-8 takes at most 3 bytes per UTF-16 code unit: short data needs no exact count.
    return json.length * 3 <= config.maxDataBytes ? json.length : Buffer.byteLength(json, "utf8")
  }

  const invalidData = (method: string, data: unknown) => {
    const parsed = Schema.decodeUnknownEither(S.JsonObject)(data)
    const key = Object.keys(data as object).find((k) => !S.isJson((data as Record<string, unknown>)[k])) ?? ""
    return Either.isLeft(parsed)
      ? new SessionDataError({ method, key, cause: parsed.left })
      : new SessionDataError({ method, key, cause: new ParseError({ issue: new Type(S.JsonObject.ast, data) }) })
  }

  const modifyWith = <B>(
    method: string,
    key: string,
    handle: ActiveSession,
    f: (session: Session) => Either.Either<readonly [B, Session], ParseError>
  ): Effect.Effect<readonly [B, Session], SessionError> => {
    const attempt = Effect.gen(function*() {
      const current = yield* handles.reach(handle)
      if (Option.isNone(current)) return yield* Effect.fail(handles.gone(method, handle))
      const now = yield* Clock.currentTimeMillis
      // A dead session takes no writes (invariants 1 and 2 hold for writers too).
      const dead = S.expiry(current.value, now, config)
      if (Option.isSome(dead)) {
        yield* records.drop(current.value)
        yield* events.emit(Ev.expired(current.value, now, dead.value))
        return yield* Effect.fail(handles.gone(method, handle))
      }
      // Nor does a session logged out by logOutEveryone.
      if (revocation.isRevoked(current.value)) {
        yield* revocation.end(current.value, now, records.drop)
        return yield* Effect.fail(handles.gone(method, handle))
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
      if (!(yield* store.save(next, current.value.version, S.expiresAt(next, config)))) {
        return yield* lostCompareAndSet(cache.invalidate(current.value.tokenKey))
      }
      yield* records.remember(next)
      return [result, next] as const
    })
    return withLock(handle.session.key)(retryLostRaces(attempt, () => Effect.fail(conflictError(method, handle))))
  }

  const right = <A>(a: A) => Either.right(a) as Either.Either<A, ParseError>

  const get = (handle: ActiveSession, k: KeyLike): Effect.Effect<Option.Option<unknown>, SessionReadError | SessionDataError> =>
    Effect.flatMap(handles.currentAs("get")(handle), (s) => {
      if (typeof k === "string") return Effect.succeed(S.get(s, k))
      return Either.match(S.get(s, k), {
        onLeft: (cause) => Effect.fail(new SessionDataError({ method: "get", key: k.name, cause })),
        onRight: Effect.succeed
      })
    })

  const set = Effect.fn("Sessions.set", spanOptions)(
    (handle: ActiveSession, k: KeyLike, value: any) =>
      Effect.asVoid(
        modifyWith("set", S.keyName(k), handle, (s) =>
          typeof k === "string" ? right([undefined, S.set(s, k, value)] as const) : Either.map(S.set(s, k, value), (c) => [undefined, c] as const))
      ),
    traceHandle
  )

  // Removing a key never makes data that is not JSON or larger: no SessionDataError is possible.
  const shrinks = <A>(e: Effect.Effect<A, SessionError>) => e as Effect.Effect<A, SessionWriteError>
  const remove = Effect.fn("Sessions.remove", spanOptions)(
    (handle: ActiveSession, k: KeyLike) =>
      shrinks(Effect.asVoid(modifyWith("remove", S.keyName(k), handle, (s) => right([undefined, S.remove(s, k)] as const)))),
    traceHandle
  )

  const pop = Effect.fn("Sessions.pop", spanOptions)(
    (handle: ActiveSession, k: KeyLike) =>
      Effect.map(
        modifyWith("pop", S.keyName(k), handle, (s): Either.Either<readonly [Option.Option<unknown>, Session], ParseError> =>
          typeof k === "string" ? right(S.pop(s, k)) : S.pop(s, k)),
        ([v]) => v
      ),
    traceHandle
  )

  const update = Effect.fn("Sessions.update", spanOptions)(
    (handle: ActiveSession, k: KeyLike, f: (old: Option.Option<any>) => any) =>
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
      ),
    traceHandle
  )

  const modify = Effect.fn("Sessions.modify", spanOptions)(
    (handle: ActiveSession, f: (session: Session) => Session | Either.Either<Session, ParseError>) =>
      Effect.map(modifyWith("modify", "", handle, (s) => {
        const changed = f(s)
        return S.isSession(changed) ? Either.right([undefined, changed] as const) : Either.map(changed, (c) => [undefined, c] as const)
      }), ([, s]) => s),
    traceHandle
  )

  return {
    writeTouch,
    get: get as SessionsShape["get"],
    set: set as SessionsShape["set"],
    remove,
    pop: pop as SessionsShape["pop"],
    update: update as SessionsShape["update"],
    modify
  }
}
