/**
 * Compare-and-set writes of a session's value through a handle, and the data vocabulary over
 * them. `modifyWith` is the one write path of data changes: under the session's lock it reaches
 * the session through the handle's own token, applies a pure change, checks the data (JSON that
 * survives a round trip, at most `maxDataBytes`) and saves at the next version if the stored
 * version is still the one read. Every retirement of a token bumps the version or deletes the
 * session, so a lost race re-checks the token from the start, in any process. Writers queued on
 * one session's lock are committed together by the next holder (write coalescing, below): one
 * compare-and-set for the batch, each writer answered with its own outcome. `writeTouch`
 * records a moved last-access time the same way, best effort. `get`, `set`, `remove`, `pop`,
 * `update` and `modify` are the service methods for string keys (JSON) and typed keys (through
 * their Schema) alike; the writes are traced as `Sessions.<method>`.
 *
 * @internal
 */
import { Clock, Duration, Effect, Either, Exit, Option, Schema } from "effect"
import { ParseError, Type } from "effect/ParseResult"
import type { SessionStoreError } from "../persistence.js"
import type { KeyLike, Session } from "../../Session.js"
import * as S from "../../Session.js"
import type { Env } from "./env.js"
import { type SessionError, SessionDataError, SessionDataTooLargeError, type SessionReadError, type SessionWriteError } from "./errors.js"
import * as Ev from "./events.js"
import { type Handles, tracedWrite } from "./handles.js"
import type { Records } from "./records.js"
import { conflictError, type LostRace, lostCompareAndSet, retryLostRaces } from "./retry.js"
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

/** A writer's answer: its result and the session after its change, or its own error. */
type Outcome = Exit.Exit<readonly [unknown, Session], SessionError>

/** A change waiting on its session's lock (see write coalescing in `makeCommits`). */
interface Writer {
  readonly method: string
  readonly key: string
  readonly handle: ActiveSession
  readonly f: (session: Session) => Either.Either<readonly [unknown, Session], ParseError>
  /** A lock holder took it into its batch: it is answered by that batch, never run again. */
  taken: boolean
  exit: Outcome | undefined
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

  // Write coalescing. A writer queues its change under the session key, then waits for the
  // session's lock; whoever holds the lock next takes every change queued by then and commits
  // them together: applied in arrival order (each to the previous one's result), one
  // compare-and-set, and each writer answered with its own outcome. The others find their answer
  // when the lock reaches them. On a hot session, the changes that queue while one save is in
  // flight cost one more save, not one each.
  const queued = new Map<string, Array<Writer>>()

  const enqueue = (sessionKey: string, writer: Writer) => {
    const queue = queued.get(sessionKey)
    if (queue === undefined) queued.set(sessionKey, [writer])
    else queue.push(writer)
  }

  /** A writer interrupted before it got the lock leaves the queue, unless a holder took its change. */
  const leave = (sessionKey: string, writer: Writer) => {
    const queue = queued.get(sessionKey)
    if (writer.taken || queue === undefined) return
    const i = queue.indexOf(writer)
    if (i >= 0) queue.splice(i, 1)
    if (queue.length === 0) queued.delete(sessionKey)
  }

  /**
   * One attempt of a batch: every writer's outcome (none for those left to the next batch), or a
   * lost race (the whole batch again).
   */
  const commitBatch = (batch: ReadonlyArray<Writer>): Effect.Effect<Array<Outcome | undefined>, SessionStoreError | LostRace> =>
    Effect.gen(function*() {
      // Each writer's own handle must lead to the session (a dead handle fails, batch or not).
      const reached: Array<Option.Option<Session>> = []
      for (const w of batch) reached.push(yield* handles.reach(w.handle))
      const base = reached.find(Option.isSome)
      if (base === undefined) return batch.map((w) => Exit.fail(handles.gone(w.method, w.handle)))
      const current = base.value
      // Every handle that leads somewhere read the same session at the same version; else another
      // process wrote meanwhile: the batch starts again from the store.
      if (reached.some((r) => Option.isSome(r) && (r.value.tokenKey !== current.tokenKey || r.value.version !== current.version))) {
        return yield* lostCompareAndSet(cache.invalidate(current.tokenKey))
      }
      const now = yield* Clock.currentTimeMillis
      // A dead session takes no writes (invariants 1 and 2 hold for writers too).
      const dead = S.expiry(current, now, config)
      if (Option.isSome(dead)) {
        yield* records.drop(current)
        yield* events.emit(Ev.expired(current, now, dead.value))
        return batch.map((w) => Exit.fail(handles.gone(w.method, w.handle)))
      }
      // Nor does a session logged out by logOutEveryone.
      if (revocation.isRevoked(current)) {
        yield* revocation.end(current, now, records.drop)
        return batch.map((w) => Exit.fail(handles.gone(w.method, w.handle)))
      }
      let value = current
      const outcomes: Array<Outcome | undefined> = []
      for (let i = 0; i < batch.length; i++) {
        const w = batch[i]!
        // The handles were checked against `current`: after a change of the session's identity
        // (a `modify` that replaced its token key) the rest wait for the next batch.
        if (value.tokenKey !== current.tokenKey || value.key !== current.key) break
        if (Option.isNone(reached[i]!)) {
          outcomes.push(Exit.fail(handles.gone(w.method, w.handle)))
          continue
        }
        const outcome = apply(w, value, now, current.version + 1)
        if (Exit.isSuccess(outcome)) value = outcome.value[1]
        outcomes.push(outcome)
      }
      if (value === current) return outcomes
      if (!(yield* store.save(value, current.version, S.expiresAt(value, config)))) {
        return yield* lostCompareAndSet(cache.invalidate(current.tokenKey))
      }
      yield* records.remember(value)
      return outcomes
    })

  /**
   * One writer's change to `current` (the session as the previous writer left it): its result
   * and the new value at `version`, or its own error. A change that fails leaves `current` as it
   * was for the next writer.
   */
  const apply = (w: Writer, current: Session, now: number, version: number): Outcome => {
    let applied: Either.Either<readonly [unknown, Session], ParseError>
    try {
      applied = w.f(current)
    } catch (defect) {
      return Exit.die(defect)
    }
    if (Either.isLeft(applied)) return Exit.fail(new SessionDataError({ method: w.method, key: w.key, cause: applied.left }))
    const [result, changed] = applied.right
    if (changed === current) return Exit.succeed([result, current])
    if (changed.data !== current.data) {
      if (!S.isJson(changed.data)) return Exit.fail(invalidData(w.method, changed.data))
      // Above the limit only if it grew: a lowered limit never traps a session that shrinks.
      const bytes = dataBytes(changed.data)
      if (bytes > config.maxDataBytes && bytes > dataBytes(current.data)) {
        return Exit.fail(
          new SessionDataError({ method: w.method, key: w.key, cause: new SessionDataTooLargeError({ bytes, maxBytes: config.maxDataBytes }) })
        )
      }
    }
    // One new value: the change, its access time (touched when due) and the next version.
    return Exit.succeed([result, new S.Session({
      ...changed,
      lastAccessAt: now - changed.lastAccessAt >= touchMillis ? now : changed.lastAccessAt,
      version
    })])
  }

  /**
   * The lock holder's turn: takes the queued changes and commits them, retrying the whole batch
   * on a lost compare-and-set, and answers every writer taken. A holder alone in its batch is
   * interruptible, as any write; one that commits the changes of others finishes first: they wait
   * on it for their answers, and a save that may have landed must not be applied again.
   */
  const runBatch = (sessionKey: string): Effect.Effect<void> =>
    Effect.uninterruptibleMask((restore) => {
      const batch = queued.get(sessionKey) ?? []
      queued.delete(sessionKey)
      for (const w of batch) w.taken = true
      const settle = (outcome: (i: number) => Outcome | undefined) => {
        const left: Array<Writer> = []
        for (let i = 0; i < batch.length; i++) {
          const w = batch[i]!
          w.exit = outcome(i)
          if (w.exit === undefined) left.push(w)
        }
        if (left.length > 0) {
          for (const w of left) w.taken = false
          queued.set(sessionKey, [...left, ...(queued.get(sessionKey) ?? [])])
        }
      }
      const commit = Effect.matchCause(
        retryLostRaces(commitBatch(batch), () => Effect.succeed(batch.map((w): Outcome => Exit.fail(conflictError(w.method, w.handle))))),
        {
          onFailure: (cause) => settle(() => Exit.failCause(cause)),
          onSuccess: (outcomes) => settle((i) => outcomes[i])
        }
      )
      return batch.length > 1 ? commit : restore(commit)
    })

  const modifyWith = <B>(
    method: string,
    key: string,
    handle: ActiveSession,
    f: (session: Session) => Either.Either<readonly [B, Session], ParseError>
  ): Effect.Effect<readonly [B, Session], SessionError> =>
    Effect.suspend(() => {
      const sessionKey = handle.session.key
      const writer: Writer = { method, key, handle, f, taken: false, exit: undefined }
      enqueue(sessionKey, writer)
      const answer: Effect.Effect<readonly [unknown, Session], SessionError> = Effect.suspend(() =>
        writer.exit ?? Effect.zipRight(runBatch(sessionKey), answer)
      )
      return withLock(sessionKey, () => leave(sessionKey, writer))(answer)
    }) as Effect.Effect<readonly [B, Session], SessionError>

  const right = <A>(a: A) => Either.right(a) as Either.Either<A, ParseError>

  const get = (handle: ActiveSession, k: KeyLike): Effect.Effect<Option.Option<unknown>, SessionReadError | SessionDataError> =>
    Effect.flatMap(handles.currentAs("get")(handle), (s) => {
      if (typeof k === "string") return Effect.succeed(S.get(s, k))
      return Either.match(S.get(s, k), {
        onLeft: (cause) => Effect.fail(new SessionDataError({ method: "get", key: k.name, cause })),
        onRight: Effect.succeed
      })
    })

  const set = tracedWrite(
    "Sessions.set",
    (handle: ActiveSession, k: KeyLike, value: any) =>
      Effect.asVoid(
        modifyWith("set", S.keyName(k), handle, (s) =>
          typeof k === "string" ? right([undefined, S.set(s, k, value)] as const) : Either.map(S.set(s, k, value), (c) => [undefined, c] as const))
      )
  )

  // Removing a key never makes data that is not JSON or larger: no SessionDataError is possible.
  const shrinks = <A>(e: Effect.Effect<A, SessionError>) => e as Effect.Effect<A, SessionWriteError>
  const remove = tracedWrite(
    "Sessions.remove",
    (handle: ActiveSession, k: KeyLike) =>
      shrinks(Effect.asVoid(modifyWith("remove", S.keyName(k), handle, (s) => right([undefined, S.remove(s, k)] as const))))
  )

  const pop = tracedWrite(
    "Sessions.pop",
    (handle: ActiveSession, k: KeyLike) =>
      Effect.map(
        modifyWith("pop", S.keyName(k), handle, (s): Either.Either<readonly [Option.Option<unknown>, Session], ParseError> =>
          typeof k === "string" ? right(S.pop(s, k)) : S.pop(s, k)),
        ([v]) => v
      )
  )

  const update = tracedWrite(
    "Sessions.update",
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
      )
  )

  const modify = tracedWrite(
    "Sessions.modify",
    (handle: ActiveSession, f: (session: Session) => Session | Either.Either<Session, ParseError>) =>
      Effect.map(modifyWith("modify", "", handle, (s) => {
        const changed = f(s)
        return S.isSession(changed) ? Either.right([undefined, changed] as const) : Either.map(changed, (c) => [undefined, c] as const)
      }), ([, s]) => s)
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
