/**
 * Resolution of a request's token by the timing rules (docs/how-it-works.md, "The timing rules"), and creation.
 * A token is decided on its record: missing, expired (idle, absolute, or a redirect past its
 * grace period), an anomaly (a rejected client change destroys the session), due for rotation,
 * logged out by `logOutEveryone` (the revocation instant of `revocation.ts`, read before the
 * first decision and again when it is stale), or valid (its last access written through when
 * `touchInterval` has passed). A redirect inside
 * its grace period is followed hop by hop (at most `MAX_HOPS`, each hop opened with the token
 * before it); a rotation or a touch that finds its token no longer current resolves the token
 * again (at most `MAX_RERESOLVES` times, counted apart from the hops: running out never forks the
 * session, the request just gets none); a rotation whose every compare-and-set lost while the
 * token stayed current serves the session unrotated. The hot path — a cached, valid session whose last access needs no
 * write — is answered without a store call, a lock, a generator or a span; everything else runs in
 * a `Sessions.resolve` span.
 *
 * @internal
 */
import { Clock, Effect, Metric, Option } from "effect"
import * as Ids from "../../Ids.js"
import type { SessionStoreError } from "../persistence.js"
import type { Client, Redirect, Session, TokenRecord } from "../../Session.js"
import * as S from "../../Session.js"
import { logHash } from "../hash.js"
import type { Commits } from "./commit.js"
import type { Env } from "./env.js"
import * as Ev from "./events.js"
import { type Handles, spanOptions } from "./handles.js"
import { metrics } from "./metrics.js"
import type { Records } from "./records.js"
import { MAX_ATTEMPTS } from "./retry.js"
import type { Rotations } from "./rotate.js"
import type { ActiveSession, Outcome, Resolution, SessionsShape } from "./service.js"
import { MAX_HOPS } from "./tokens.js"

/**
 * Re-resolutions of one token after a lost race (a rotation or a touch that another writer won).
 * Counted apart from the hops: under contention a request may lose several races without its
 * token being any further from the current one, and running out must never fork the session.
 *
 * @internal
 */
export const MAX_RERESOLVES = MAX_ATTEMPTS

/** @internal */
export interface Resolver {
  readonly create: SessionsShape["create"]
  readonly resolve: SessionsShape["resolve"]
}

const resolution = (session: Option.Option<ActiveSession>, cookie: Resolution["cookie"], outcome: Outcome): Resolution => ({
  session,
  cookie,
  outcome
})

/** @internal */
export const makeResolver = (
  env: Env,
  records: Records,
  handles: Handles,
  rotations: Rotations,
  commits: Commits
): Resolver => {
  const { cache, clock, config, events, revocation, store, tokens, withLock } = env

  const create = Effect.fn("Sessions.create", spanOptions)(function*(client: Client) {
    const now = yield* Clock.currentTimeMillis
    const key = yield* tokens.newKey
    const token = yield* tokens.newToken(key)
    const session = S.withVersion(S.start({ key, tokenKey: tokens.keyOf(token), now, client }), 1)
    yield* store.create(session, S.expiresAt(session, config))
    yield* records.remember(session)
    yield* Metric.increment(metrics.created)
    yield* events.emit(Ev.created(session, now))
    return handles.active(session, token, session.tokenKey)
  })

  const lateUse = (redirect: Redirect, token: string, now: number, client: Client) =>
    Effect.logWarning("a rotated session token was used after its grace period").pipe(
      Effect.annotateLogs({ event: "late-token-use", token: logHash(token), lateByMillis: now - redirect.expiresAt }),
      Effect.zipRight(events.emit(Ev.lateUse(redirect.sessionKey, now, token, now - redirect.expiresAt, client)))
    )

  const resolveToken = (
    token: string,
    client: Client,
    hops: number,
    followed: boolean,
    reresolves = 0
  ): Effect.Effect<Resolution, SessionStoreError> =>
    Effect.gen(function*() {
      const tk = tokens.keyOf(token)
      const record = yield* records.load(tk).pipe(
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
      // Logged out by logOutEveryone (a session that is expired anyway is reported as expired).
      const met = decision._tag === "Anomaly" || decision._tag === "Rotate" || decision._tag === "Valid" ? decision.session : undefined
      if (met !== undefined && revocation.isRevoked(met)) {
        yield* revocation.end(met, now, records.drop)
        return resolution(Option.none(), "clear", "expired")
      }
      // Lost a race: the token is now a redirect (or gone, or its session destroyed); resolve it
      // again, so that it follows its redirect or leads nowhere.
      const again = () =>
        reresolves >= MAX_RERESOLVES
          ? Effect.succeed(resolution(Option.none(), "none", "missing"))
          : resolveToken(token, client, hops, followed, reresolves + 1)
      // The session served under this token as it is; reached through a redirect, the request
      // answers with the current token (and says it followed one).
      const serve = (session: Session) =>
        Effect.as(
          followed ? events.emit(Ev.followed(session, now, hops)) : Effect.void,
          resolution(Option.some(handles.active(session, token, tk)), followed ? "set" : "none", followed ? "followed" : "valid")
        )
      switch (decision._tag) {
        // An unknown token, or an old one past its grace period, leaves the cookie alone: the
        // browser may already hold a newer token under the same name (a response to an older
        // request can arrive last), and removing the cookie by name would log it out.
        case "Missing":
          return resolution(Option.none(), "none", "missing")
        case "Follow": {
          const successor = tokens.successorOf(decision.redirect, token)
          if (Option.isNone(successor)) {
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
          return yield* resolveToken(successor.value, client, hops + 1, true, reresolves)
        }
        case "Expired": {
          yield* Metric.increment(Metric.tagged(metrics.expired, "reason", decision.reason))
          if (decision.record._tag === "Session") {
            yield* records.drop(decision.record)
            yield* events.emit(Ev.expired(decision.record, now, decision.reason === "absolute" ? "absolute" : "idle"))
            return resolution(Option.none(), "clear", "expired")
          }
          yield* lateUse(decision.record, token, now, client)
          return resolution(Option.none(), "none", "expired")
        }
        case "Anomaly": {
          yield* Metric.increment(Metric.tagged(metrics.anomalies, "kind", decision.kind))
          yield* records.drop(decision.session)
          yield* events.emit(Ev.anomaly(decision.session, now, decision.kind, client))
          yield* Effect.logWarning("session destroyed: client changed").pipe(
            Effect.annotateLogs({ event: "anomaly", kind: decision.kind, token: logHash(token) })
          )
          return resolution(Option.none(), "clear", "anomaly")
        }
        case "Rotate": {
          const rotated = yield* withLock(decision.session.key)(rotations.rotateLocked(decision.session.key, token, {
            grace: true,
            onStored: (_, next, at) => events.emit(Ev.rotated(next, at, "interval", true))
          }))
          // Every compare-and-set lost while the token stayed current (other writers kept
          // winning): the session is valid, only its rotation is late — serve it as it is (the
          // next request rotates) rather than hold the request or drop its session.
          if (rotated === "lost") return yield* serve(decision.session)
          if (Option.isSome(rotated)) {
            if (followed) yield* events.emit(Ev.followed(rotated.value.session, now, hops))
            return resolution(rotated, "set", "rotated")
          }
          return yield* again()
        }
        case "Valid": {
          const session = decision.session
          const touched = S.touch(session, now, config)
          const result = touched === session
            ? Option.some(session)
            : yield* withLock(session.key)(commits.writeTouch(session.key, tk, now))
          // The token is no longer current (rotated or retired meanwhile, or the session was destroyed).
          if (Option.isNone(result)) return yield* again()
          return yield* serve(result.value)
        }
      }
    })

  // Everything but the hot path: from the store, under a span.
  const resolveTraced = Effect.fn("Sessions.resolve", spanOptions)(
    function*(token: string, client: Client, create_: boolean) {
      yield* revocation.ready
      const r = yield* resolveToken(token, client, 0, false)
      return yield* orCreate(r, client, create_)
    },
    (effect, token) => Effect.zipRight(Effect.annotateCurrentSpan("session.token_hash", logHash(token)), effect)
  )

  const orCreate = (r: Resolution, client: Client, create_: boolean): Effect.Effect<Resolution, SessionStoreError> =>
    Option.isSome(r.session) || !create_
      ? Effect.succeed(r)
      : Effect.map(create(client), (h) => resolution(Option.some(h), "set", "created"))

  const resolve: SessionsShape["resolve"] = (token, client, options) => {
    const create_ = options?.create === true
    if (token === undefined || token === "") return orCreate(resolution(Option.none(), "none", "absent"), client, create_)
    if (!Ids.isWellFormedToken(token, config.tokenBytes)) return orCreate(resolution(Option.none(), "clear", "malformed"), client, create_)
    const tk = tokens.keyOf(token)
    return Effect.flatMap(cache.get(tk), (cached) => {
      if (Option.isSome(cached) && cached.value._tag === "Session") {
        const now = clock.unsafeCurrentTimeMillis()
        const decision = S.decide(cached, { now, client, config })
        if (
          decision._tag === "Valid" && S.touch(decision.session, now, config) === decision.session &&
          revocation.fresh(now) && !revocation.isRevoked(decision.session)
        ) {
          metrics.cacheHits.unsafeUpdate(1, [])
          return Effect.succeed(resolution(Option.some(handles.active(decision.session, token, tk)), "none", "valid"))
        }
      }
      return resolveTraced(token, client, create_)
    })
  }

  return { create, resolve }
}
