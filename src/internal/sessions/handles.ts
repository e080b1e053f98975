/**
 * Handles, and where a handle's token leads. A handle (`ActiveSession`) is only as good as its
 * token: every read and write through one first checks that the token is still the session's
 * current token, or a redirect inside its grace period whose chain (each hop opened and checked
 * against the successor's hash) ends at the current token. A token retired without grace leads
 * nowhere, whatever became of the session, and the operation fails with `SessionGoneError`.
 *
 * @internal
 */
import { Clock, Effect, Option, Redacted } from "effect"
import type { SessionStoreError } from "../persistence.js"
import type { Session } from "../../Session.js"
import * as S from "../../Session.js"
import { logHash } from "../hash.js"
import type { Env } from "./env.js"
import * as Ev from "./events.js"
import { SessionGoneError, type SessionReadError } from "./errors.js"
import type { Records } from "./records.js"
import type { ActiveSession } from "./service.js"
import { MAX_HOPS } from "./tokens.js"

/** @internal */
export interface Reached {
  /** The session's current token, at the end of the handle's chain. */
  readonly token: string
  readonly session: Session
}

/** @internal */
export interface Handles {
  /** A handle on `session` for `token`, whose token key `tokenKey` is known. */
  readonly active: (session: Session, token: string, tokenKey: string) => ActiveSession
  /** The token key of a handle's token (no hashing for a handle this service made). */
  readonly tokenKeyOf: (handle: ActiveSession) => string
  /** The error of an operation through a handle whose session is gone for it. */
  readonly gone: (method: string, handle: ActiveSession) => SessionGoneError
  /**
   * Where the handle's own token leads now: the session, if the chain from that token ends at its
   * current token. The common case — the handle's token is current and cached — costs one cache
   * lookup.
   */
  readonly reach: (handle: ActiveSession) => Effect.Effect<Option.Option<Session>, SessionStoreError>
  /** {@link Handles.reach} from the token key `tokenKey`, with the current token it arrived at. */
  readonly walk: (handle: ActiveSession, tokenKey: string) => Effect.Effect<Option.Option<Reached>, SessionStoreError>
  /** The live session the handle reaches, else gone (a dead one the store may still hold, too). */
  readonly currentAs: (method: string) => (handle: ActiveSession) => Effect.Effect<Session, SessionReadError>
  /**
   * Runs `body` with the current token and the live session the handle's own token leads to;
   * gone when it leads nowhere (an expired session is deleted on the way). The caller holds the
   * session's lock.
   */
  readonly withReached: <A, E>(
    method: string,
    handle: ActiveSession,
    body: (token: string, session: Session) => Effect.Effect<A, E>
  ) => Effect.Effect<A, E | SessionReadError>
}

/**
 * The options of every `Sessions.<method>` span (`Effect.fn(name, spanOptions)`): no stack
 * trace captured per call, as the service's spans always had — it costs more than a write to the
 * memory store.
 *
 * @internal
 */
export const spanOptions = { captureStackTrace: false } as const

/**
 * Names the session in the current span by the short hash of the handle's token (never the
 * token): the last argument of `Effect.fn` for the traced methods that take a handle.
 *
 * @internal
 */
export const traceHandle = <A, E, R>(effect: Effect.Effect<A, E, R>, handle: ActiveSession): Effect.Effect<A, E, R> =>
  Effect.zipRight(Effect.annotateCurrentSpan("session.token_hash", tokenLogHash(handle)), effect)

/**
 * A traced data write through a handle: what `Effect.fn(name, spanOptions)(body, traceHandle)`
 * makes — a span named `name`, the session named by its token's hash — without the call-site
 * `Error` that `Effect.fn` creates on every call for a stack trace these spans never capture
 * (`spanOptions`): 2.2 µs a call on the development VM, 7 % of an `update` to the memory store in
 * its profile. The data writes are the ones a request makes.
 *
 * @internal
 */
export const tracedWrite = <Args extends readonly [ActiveSession, ...Array<any>], A, E, R>(
  name: string,
  body: (...args: Args) => Effect.Effect<A, E, R>
) =>
(...args: Args): Effect.Effect<A, E, R> => Effect.withSpan(traceHandle(body(...args), args[0]), name, spanOptions)

/** Where a handle of this service keeps the log hash of its token, computed on first use. */
const logHashOfHandle: unique symbol = Symbol("effect-sessions/Handle/logHash")

/**
 * The short log hash of a handle's token: remembered by a handle this service made (every traced
 * write names its session by it; hashing again and unwrapping the `Redacted` cost a SHA-256 and a
 * registry entry per call), computed for any other.
 *
 * @internal
 */
export const tokenLogHash = (handle: ActiveSession): string =>
  (handle as { readonly [logHashOfHandle]?: string })[logHashOfHandle] ?? logHash(Redacted.value(handle.token))

/** @internal */
export const makeHandles = ({ cache, clock, config, events, revocation, tokens }: Env, records: Records): Handles => {
  // A handle this service made carries its token key, so that checking it costs no hashing; a
  // handle made elsewhere (another instance, another configuration) is hashed on use. A class of
  // this instance's own rather than a WeakMap of keys: a WeakMap entry per request was the
  // costliest step of the hot path (and weak entries slow every garbage collection).
  // The Redacted wrapper is made on first use: most hot-path answers never read the token again.
  // The token and its key are private fields: a logged or serialized handle shows neither.
  class Handle implements ActiveSession {
    readonly #token: string
    readonly #tokenKey: string
    #redacted: Redacted.Redacted<string> | undefined = undefined
    #logHash: string | undefined = undefined
    constructor(readonly session: Session, token: string, tokenKey: string) {
      this.#token = token
      this.#tokenKey = tokenKey
    }
    get token(): Redacted.Redacted<string> {
      return this.#redacted ??= Redacted.make(this.#token)
    }
    get [logHashOfHandle](): string {
      return this.#logHash ??= logHash(this.#token)
    }
    static keyOf(handle: ActiveSession): string {
      return #tokenKey in handle ? handle.#tokenKey : tokens.keyOf(Redacted.value(handle.token))
    }
  }
  const tokenKeyOf = Handle.keyOf

  const active = (session: Session, token: string, tk: string): ActiveSession => new Handle(session, token, tk)

  const gone = (method: string, handle: ActiveSession) =>
    new SessionGoneError({ method, session: tokenLogHash(handle) })

  const walk = (handle: ActiveSession, tk0: string): Effect.Effect<Option.Option<Reached>, SessionStoreError> =>
    Effect.gen(function*() {
      const sessionKey = handle.session.key
      let token = Redacted.value(handle.token)
      let tk = tk0
      // Hops, plus one re-read per hop for a store whose answer raced a rotation.
      for (let step = 0; step <= 2 * MAX_HOPS; step++) {
        const record = yield* records.load(tk)
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
        const successor = tokens.successorOf(r, token)
        if (Option.isNone(successor)) return Option.none()
        token = successor.value
        tk = r.successorKey
      }
      return Option.none()
    })

  const reach = (handle: ActiveSession): Effect.Effect<Option.Option<Session>, SessionStoreError> => {
    const tk = tokenKeyOf(handle)
    // The revocation instant first: every caller decides on what this returns.
    return Effect.flatMap(Effect.zipRight(revocation.ready, records.cached(tk)), (cached) =>
      Option.isSome(cached) && cached.value._tag === "Session"
        ? Effect.succeed(cached.value.key === handle.session.key && cached.value.tokenKey === tk ? Option.some(cached.value) : Option.none())
        : Effect.map(walk(handle, tk), Option.map((r) => r.session)))
  }

  const currentAs = (method: string) => (handle: ActiveSession): Effect.Effect<Session, SessionReadError> =>
    Effect.flatMap(reach(handle), (s) =>
      Effect.suspend(() =>
        Option.isNone(s) || Option.isSome(S.expiry(s.value, clock.unsafeCurrentTimeMillis(), config)) || revocation.isRevoked(s.value)
          ? Effect.fail(gone(method, handle))
          : Effect.succeed(s.value)
      ))

  const withReached = <A, E>(
    method: string,
    handle: ActiveSession,
    body: (token: string, session: Session) => Effect.Effect<A, E>
  ): Effect.Effect<A, E | SessionReadError> =>
    Effect.gen(function*() {
      yield* revocation.ready
      const reached = yield* walk(handle, tokenKeyOf(handle))
      if (Option.isNone(reached)) return yield* Effect.fail(gone(method, handle))
      const { session, token } = reached.value
      const now = yield* Clock.currentTimeMillis
      const dead = S.expiry(session, now, config)
      if (Option.isSome(dead)) {
        yield* records.drop(session)
        yield* events.emit(Ev.expired(session, now, dead.value))
        return yield* Effect.fail(gone(method, handle))
      }
      // Logged out by logOutEveryone: a handle is only as good as its session.
      if (revocation.isRevoked(session)) {
        yield* revocation.end(session, now, records.drop)
        return yield* Effect.fail(gone(method, handle))
      }
      return yield* body(token, session)
    })

  return { active, tokenKeyOf, gone, reach, walk, currentAs, withReached }
}
