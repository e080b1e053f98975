/**
 * The Persistence conformance suite (invariant 8): the same tests for every store —
 * memory, SQL (SQLite, PostgreSQL), Redis. A store passes when it behaves like the reference
 * memory store on everything the contract (src/Persistence.ts) promises.
 *
 * Every test makes its own keys (random), so the tests share one store instance per suite
 * without seeing each other's records.
 *
 * @internal
 */
import { assert, describe, layer } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Cause, Clock, Context, Effect, Exit, FastCheck as fc, Layer, Option, Queue, Stream, TestClock, TestContext } from "effect"
import { randomBytes } from "../live/secureRandom.js"
import * as Codec from "../../Codec.js"
import { logHash } from "../hash.js"
import { type Invalidation, LimitedRotation, Persistence, SessionStoreError, type PersistenceShape, userKey } from "../persistence.js"
import { Redirect, Session, type TokenRecord } from "../../Session.js"
import { arbSession } from "./arbitraries.js"

/**
 * What a test left behind in the backend (rows or keys), for the stores that can tell: a
 * session's key, its token keys and its user.
 *
 * @since 0.1.0
 * @category models
 */
export interface Residue {
  readonly sessionKey: string
  readonly tokenKeys: ReadonlyArray<string>
  readonly userId?: string | undefined
}

/**
 * Options of the Persistence conformance suite (`persistenceConformance`): hooks into the backend
 * that the store API cannot reach. A test whose hook is missing is skipped or reduced.
 *
 * @since 0.1.0
 * @category models
 */
export interface SuiteOptions<R> {
  /**
   * Writes `garbage` over the record under a token key, directly in the backend: the session's
   * record for a current token, the redirect for a rotated-away one.
   */
  readonly corrupt?: ((tokenKey: string, garbage: string) => Effect.Effect<void, unknown, R>) | undefined
  /**
   * How many raw records (rows, keys, user-index entries) of a session are still stored,
   * expired or not — to check that delete, sweep and TTLs really remove them.
   */
  readonly residue?: ((residue: Residue) => Effect.Effect<number, unknown, R>) | undefined
  /**
   * A second, independent instance on the same backend (another "process"), for the
   * invalidation tests. Only for stores that several processes share.
   */
  readonly peer?: Layer.Layer<Persistence, unknown, never> | undefined
  /**
   * The store expires records by TTLs on the backend's real clock (Redis): the expiry tests
   * then wait in real time instead of moving a TestClock, and `sweep` must return 0.
   */
  readonly ttl?: boolean | undefined
  /** Runs of each property (default 25). */
  readonly numRuns?: number | undefined
}

const HOUR = 3_600_000

/** An invalidation as text, for the queues of the tests: a token key, `user:<userKey>`, or `*`. */
export const invalidationText = (i: Invalidation): string =>
  i._tag === "Token" ? i.tokenKey : i._tag === "User" ? `user:${i.userKey}` : "*"

/** A random id for this test run (so that parallel runs and tests never share keys). */
export const uid = (tag: string): string => `${tag}-${Buffer.from(randomBytes(9)).toString("base64url")}`

/**
 * A random key of kind `kind` (`tok`, `key` …) in the routing tag of `sibling` (its first 4
 * characters; a fresh tag without one): the store contract has a session's key and all its token
 * keys start with the same tag (Redis Cluster keeps them in one slot).
 */
export const uidIn = (kind: string, sibling?: string): string =>
  (sibling === undefined ? Buffer.from(randomBytes(3)).toString("base64url") : sibling.slice(0, 4)) + uid(kind)

/** A fresh session at `now`, with a little of everything in it. */
export const makeSession = (now: number, patch: Partial<ConstructorParameters<typeof Session>[0]> = {}): Session => {
  const key = patch.key ?? uidIn("key")
  return new Session({
    key,
    tokenKey: uidIn("tok", key),
    createdAt: now,
    idIssuedAt: now,
    lastAccessAt: now,
    userId: Option.none(),
    ip: Option.some("203.0.113.7"),
    userAgentHash: Option.some("dWEtaGFzaC1vZi1icm93c2Vy"),
    data: { n: 1, s: "x", nested: { a: [1, "b", null, true], f: 1.5 } },
    version: 0,
    authenticatedAt: Option.none(),
    persistent: Option.none(),
    ...patch
  })
}

const copy = (s: Session, patch: Partial<ConstructorParameters<typeof Session>[0]>): Session => new Session({ ...s, ...patch })

/** The rotation of `s` to a new token at `now`: the new session value and the redirect. */
export const rotation = (s: Session, now: number, options: { readonly tokenKey?: string; readonly grace?: number; readonly userId?: Option.Option<string> } = {}) => {
  const next = options.tokenKey ?? uidIn("tok", s.key)
  return {
    session: copy(s, {
      tokenKey: next,
      idIssuedAt: now,
      lastAccessAt: now,
      version: s.version + 1,
      ...(options.userId ? { userId: options.userId } : {})
    }),
    redirect: new Redirect({
      tokenKey: s.tokenKey,
      sessionKey: s.key,
      rotatedAt: now,
      expiresAt: now + (options.grace ?? 60_000),
      ip: s.ip,
      userAgentHash: s.userAgentHash,
      successorKey: next,
      sealedSuccessor: uid("sealed")
    })
  }
}

const byKey = (a: Session, b: Session) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
const sorted = (xs: ReadonlyArray<Session>) => [...xs].sort(byKey)

const assertSome = <A>(o: Option.Option<A>, expected: A) => {
  assert.isTrue(Option.isSome(o), "expected a record, got none")
  if (Option.isSome(o)) deepStrictEqual(o.value, expected)
}
const assertNone = (o: Option.Option<unknown>, what = "record") => assert.isTrue(Option.isNone(o), `expected no ${what}, got one`)

/** The error of a failed effect — which must be a typed SessionStoreError, never a defect. */
const persistenceFailure = <A>(exit: Exit.Exit<A, SessionStoreError>): SessionStoreError => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  if (Exit.isSuccess(exit)) throw new Error("unreachable")
  assert.isFalse(Cause.isDie(exit.cause), `a defect instead of a typed error: ${Cause.pretty(exit.cause)}`)
  const failure = Cause.failureOption(exit.cause)
  assert.isTrue(Option.isSome(failure), `no typed failure: ${Cause.pretty(exit.cause)}`)
  const e = Option.getOrThrow(failure)
  assert.instanceOf(e, SessionStoreError)
  return e
}

const assertCorrupt = (exit: Exit.Exit<unknown, SessionStoreError>, method: string, key: string) => {
  const e = persistenceFailure(exit)
  assert.strictEqual(e.reason, "Corrupt")
  assert.strictEqual(e.method, method)
  // Only a fingerprint of the key: a token key is the raw token when hashIdsAtRest is off.
  assert.strictEqual(e.key, logHash(key))
}

/** Garbage that no codec accepts as a session record. */
const arbGarbage: fc.Arbitrary<string> = fc.oneof(
  fc.string(),
  fc.json(),
  fc.constantFrom("", "{", "null", "[]", "{\"v\":1,\"type\":\"session\"}", "{\"v\":2}", "\"c:\"", "x".repeat(5000))
)

/**
 * Registers the conformance suite for one store. `storeLayer` provides the store (and whatever
 * the hooks need, `R`); it is built once for the suite and closed after it.
 */
export const persistenceSuite = <R = never>(
  name: string,
  storeLayer: Layer.Layer<Persistence | R, unknown, never>,
  options: SuiteOptions<R> = {}
): void => {
  const numRuns = options.numRuns ?? 25
  const ttl = options.ttl ?? false

  layer(storeLayer, { excludeTestServices: true, timeout: "60 seconds" })(`Persistence conformance: ${name}`, (it) => {
    /** Runs a test on a TestClock (starting at `start`), for the stores whose expiry reads Clock. */
    const onTestClock = <A, E, R2>(start: number, self: Effect.Effect<A, E, R2>) =>
      Effect.zipRight(TestClock.setTime(start), self).pipe(Effect.provide(TestContext.TestContext))

    const residue = (r: Residue): Effect.Effect<Option.Option<number>, unknown, R> =>
      options.residue ? Effect.map(options.residue(r), Option.some) : Effect.succeed(Option.none())
    const assertNoResidue = (r: Residue) =>
      Effect.map(residue(r), (n) => {
        if (Option.isSome(n)) assert.strictEqual(n.value, 0, `records left in the backend for ${r.sessionKey}`)
      })

    describe("load", () => {
      it.effect("an unknown token key or session key is none, never an error", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          assertNone(yield* store.load(uid("nope")))
          assertNone(yield* store.loadSession(uid("nope")))
          deepStrictEqual(yield* store.sessionsOfUser(uid("nobody")), [])
        }))

      it.effect("create then load: the very session, by token and by key", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          assertSome(yield* store.load(s.tokenKey), s as TokenRecord)
          assertSome(yield* store.loadSession(s.key), s)
        }))

      it.effect.prop(
        "any session round-trips through create/load and save/load",
        [arbSession],
        ([arb]) =>
          Effect.gen(function*() {
            const store = yield* Persistence
            const now = yield* Clock.currentTimeMillis
            // Any key shape, made unique for this run.
            const tag = uidIn("")
            const s = copy(arb, { key: `${uidIn("k", tag)}:${arb.key}`, tokenKey: `${uidIn("t", tag)}:${arb.tokenKey}` })
            yield* store.create(s, now + HOUR)
            assertSome(yield* store.load(s.tokenKey), s as TokenRecord)
            const next = copy(s, { version: s.version + 1, data: { ...s.data, more: [1, 2] } })
            assert.isTrue(yield* store.save(next, s.version, now + HOUR))
            assertSome(yield* store.loadSession(s.key), next)
            if (Option.isSome(s.userId)) {
              assert.isTrue((yield* store.sessionsOfUser(s.userId.value)).some((x) => x.key === s.key))
            }
            yield* store.delete(s.key)
            assertNone(yield* store.load(s.tokenKey))
          }),
        { fastCheck: { numRuns } }
      )
    })

    describe("save", () => {
      it.effect("with the expected version: true, and persisted", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          const s1 = copy(s, { version: 1, lastAccessAt: now + 5, data: { counter: 1 } })
          assert.isTrue(yield* store.save(s1, 0, now + HOUR))
          assertSome(yield* store.load(s.tokenKey), s1 as TokenRecord)
          assertSome(yield* store.loadSession(s.key), s1)
          const s2 = copy(s1, { version: 2, data: { counter: 2 } })
          assert.isTrue(yield* store.save(s2, 1, now + HOUR))
          assertSome(yield* store.loadSession(s.key), s2)
        }))

      it.effect("with a wrong version: false, and nothing changes", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          for (const expected of [1, -1, 7]) {
            assert.isFalse(yield* store.save(copy(s, { version: expected + 1, data: { lost: true } }), expected, now + HOUR))
          }
          assertSome(yield* store.loadSession(s.key), s)
          assertSome(yield* store.load(s.tokenKey), s as TokenRecord)
        }))

      it.effect("with another token key than the stored one: false, and nothing changes", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          const other = copy(s, { tokenKey: uidIn("tok", s.key), version: 1 })
          assert.isFalse(yield* store.save(other, 0, now + HOUR))
          assertSome(yield* store.loadSession(s.key), s)
          assertNone(yield* store.load(other.tokenKey))
        }))

      it.effect("of an absent session: false", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          assert.isFalse(yield* store.save(copy(s, { version: 1 }), 0, now + HOUR))
          assertNone(yield* store.loadSession(s.key))
          assertNone(yield* store.load(s.tokenKey))
        }))

      it.effect("50 concurrent saves with the same expected version: exactly one wins", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          const results = yield* Effect.all(
            Array.from({ length: 50 }, (_, i) => store.save(copy(s, { version: 1, data: { writer: i } }), 0, now + HOUR)),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(results.filter((won) => won).length, 1)
          const winner = results.indexOf(true)
          const stored = yield* store.loadSession(s.key)
          assertSome(stored, copy(s, { version: 1, data: { writer: winner } }))
        }))

      it.effect.prop(
        "a chain of saves with the right versions all succeed; any stale one fails",
        [fc.array(fc.record({ stale: fc.boolean(), n: fc.integer() }), { minLength: 1, maxLength: 8 })],
        ([steps]) =>
          Effect.gen(function*() {
            const store = yield* Persistence
            const now = yield* Clock.currentTimeMillis
            let current = makeSession(now)
            yield* store.create(current, now + HOUR)
            for (const step of steps) {
              const next = copy(current, { version: current.version + 1, data: { n: step.n } })
              const expected = step.stale ? current.version - 1 : current.version
              const won = yield* store.save(next, expected, now + HOUR)
              assert.strictEqual(won, !step.stale)
              if (won) current = next
            }
            assertSome(yield* store.loadSession(current.key), current)
          }),
        { fastCheck: { numRuns } }
      )
    })

    describe("rotate", () => {
      it.effect("the old token becomes the redirect, the new one leads to the session", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          const r = rotation(s, now + 10)
          assert.isTrue(yield* store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: now + HOUR }))
          assertSome(yield* store.load(s.tokenKey), r.redirect as TokenRecord)
          assertSome(yield* store.load(r.session.tokenKey), r.session as TokenRecord)
          assertSome(yield* store.loadSession(s.key), r.session)
          // The session is saved under its new token from now on; the old one no longer works.
          const s2 = copy(r.session, { version: 2, data: { after: "rotation" } })
          assert.isTrue(yield* store.save(s2, 1, now + HOUR))
          assert.isFalse(yield* store.save(copy(s2, { tokenKey: s.tokenKey, version: 3 }), 2, now + HOUR))
          assertSome(yield* store.load(r.session.tokenKey), s2 as TokenRecord)
        }))

      it.effect("a second rotation of the same old token: false, whatever the version", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          const first = rotation(s, now + 10)
          assert.isTrue(yield* store.rotate({ session: first.session, expectedVersion: 0, redirect: first.redirect, expiresAt: now + HOUR }))
          const again = rotation(s, now + 20)
          assert.isFalse(yield* store.rotate({ session: again.session, expectedVersion: 0, redirect: again.redirect, expiresAt: now + HOUR }))
          // Even with the current version: the old token is no longer the current one.
          const stale = rotation(copy(s, { version: 1 }), now + 30)
          assert.isFalse(yield* store.rotate({ session: stale.session, expectedVersion: 1, redirect: stale.redirect, expiresAt: now + HOUR }))
          assertSome(yield* store.load(s.tokenKey), first.redirect as TokenRecord)
          assertSome(yield* store.load(first.session.tokenKey), first.session as TokenRecord)
          assertNone(yield* store.load(again.session.tokenKey))
          assertNone(yield* store.load(stale.session.tokenKey))
        }))

      it.effect("with a wrong version: false, and nothing changes", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          const r = rotation(s, now + 10)
          assert.isFalse(yield* store.rotate({ session: r.session, expectedVersion: 5, redirect: r.redirect, expiresAt: now + HOUR }))
          assertSome(yield* store.load(s.tokenKey), s as TokenRecord)
          assertNone(yield* store.load(r.session.tokenKey))
        }))

      it.effect("20 concurrent rotations of one token: exactly one wins, the losers leave no trace", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now, { userId: Option.some(uid("user")) })
          yield* store.create(s, now + HOUR)
          const rotations = Array.from({ length: 20 }, () => rotation(s, now + 10))
          const results = yield* Effect.all(
            rotations.map((r) => store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: now + HOUR })),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(results.filter((won) => won).length, 1)
          const winner = rotations[results.indexOf(true)]!
          assertSome(yield* store.load(s.tokenKey), winner.redirect as TokenRecord)
          assertSome(yield* store.load(winner.session.tokenKey), winner.session as TokenRecord)
          assertSome(yield* store.loadSession(s.key), winner.session)
          for (const r of rotations) if (r !== winner) assertNone(yield* store.load(r.session.tokenKey))
          deepStrictEqual(yield* store.sessionsOfUser(Option.getOrThrow(s.userId)), [winner.session])
        }))

      it.effect.prop(
        "concurrent rotations of one token, any number: exactly one wins",
        [fc.integer({ min: 2, max: 12 })],
        ([n]) =>
          Effect.gen(function*() {
            const store = yield* Persistence
            const now = yield* Clock.currentTimeMillis
            const s = makeSession(now)
            yield* store.create(s, now + HOUR)
            const rotations = Array.from({ length: n }, () => rotation(s, now + 1))
            const results = yield* Effect.all(
              rotations.map((r) => store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: now + HOUR })),
              { concurrency: "unbounded" }
            )
            assert.strictEqual(results.filter((won) => won).length, 1)
          }),
        { fastCheck: { numRuns: Math.min(numRuns, 10) } }
      )
    })

    describe("delete", () => {
      it.effect("removes the session, its token and its user-index entry", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const user = uid("user")
          const s = makeSession(now, { userId: Option.some(user) })
          const other = makeSession(now, { userId: Option.some(user) })
          yield* store.create(s, now + HOUR)
          yield* store.create(other, now + HOUR)
          yield* store.delete(s.key)
          assertNone(yield* store.loadSession(s.key))
          assertNone(yield* store.load(s.tokenKey))
          deepStrictEqual(yield* store.sessionsOfUser(user), [other])
          yield* assertNoResidue({ sessionKey: s.key, tokenKeys: [s.tokenKey], userId: user })
          // A deleted session cannot be saved or rotated back to life.
          assert.isFalse(yield* store.save(copy(s, { version: 1 }), 0, now + HOUR))
          const r = rotation(s, now + 1)
          assert.isFalse(yield* store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: now + HOUR }))
          assertNone(yield* store.loadSession(s.key))
        }))

      it.effect("of a rotated session: its current token goes", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          const r = rotation(s, now + 1)
          assert.isTrue(yield* store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: now + HOUR }))
          yield* store.delete(s.key)
          assertNone(yield* store.loadSession(s.key))
          assertNone(yield* store.load(r.session.tokenKey))
        }))

      it.effect("of an absent key, and twice: a no-op", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          yield* store.delete(uid("absent"))
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          yield* store.delete(s.key)
          yield* store.delete(s.key)
          assertNone(yield* store.loadSession(s.key))
        }))
    })

    describe("deleteToken", () => {
      it.effect("of a redirect: the redirect goes, the session stays", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          const r = rotation(s, now + 1)
          assert.isTrue(yield* store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: now + HOUR }))
          yield* store.deleteToken(s.tokenKey)
          assertNone(yield* store.load(s.tokenKey))
          assertSome(yield* store.load(r.session.tokenKey), r.session as TokenRecord)
          assertSome(yield* store.loadSession(s.key), r.session)
        }))

      it.effect("of a current token: whatever it holds goes — the session with it", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const user = uid("user")
          const s = makeSession(now, { userId: Option.some(user) })
          yield* store.create(s, now + HOUR)
          yield* store.deleteToken(s.tokenKey)
          assertNone(yield* store.load(s.tokenKey))
          assertNone(yield* store.loadSession(s.key))
          deepStrictEqual(yield* store.sessionsOfUser(user), [])
          yield* assertNoResidue({ sessionKey: s.key, tokenKeys: [s.tokenKey], userId: user })
        }))

      it.effect("of an absent token: a no-op", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          yield* store.deleteToken(uid("absent"))
          yield* store.deleteToken(uid("absent"))
        }))
    })

    describe("user index", () => {
      it.effect("follows create, save (user changed or cleared), rotate and delete", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const u = uid("user")
          const w = uid("user")
          const s1 = makeSession(now, { userId: Option.some(u) })
          const s2 = makeSession(now, { userId: Option.some(u) })
          const s3 = makeSession(now, { userId: Option.some(w) })
          const anonymous = makeSession(now)
          for (const s of [s1, s2, s3, anonymous]) yield* store.create(s, now + HOUR)
          deepStrictEqual(sorted(yield* store.sessionsOfUser(u)), sorted([s1, s2]))
          deepStrictEqual(yield* store.sessionsOfUser(w), [s3])

          // logIn as another user (a save that changes the userId)
          const s1w = copy(s1, { version: 1, userId: Option.some(w) })
          assert.isTrue(yield* store.save(s1w, 0, now + HOUR))
          deepStrictEqual(yield* store.sessionsOfUser(u), [s2])
          deepStrictEqual(sorted(yield* store.sessionsOfUser(w)), sorted([s1w, s3]))

          // logOut (a save that clears it)
          const s2out = copy(s2, { version: 1, userId: Option.none() })
          assert.isTrue(yield* store.save(s2out, 0, now + HOUR))
          deepStrictEqual(yield* store.sessionsOfUser(u), [])

          // a failed save changes nothing in the index
          assert.isFalse(yield* store.save(copy(s2out, { version: 9, userId: Option.some(u) }), 0, now + HOUR))
          deepStrictEqual(yield* store.sessionsOfUser(u), [])

          // logIn rotates: the rotation carries the new user
          const r = rotation(s3, now + 1, { userId: Option.some(u) })
          assert.isTrue(yield* store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: now + HOUR }))
          deepStrictEqual(yield* store.sessionsOfUser(u), [r.session])
          deepStrictEqual(yield* store.sessionsOfUser(w), [s1w])

          // logIn of an anonymous session
          const anonU = copy(anonymous, { version: 1, userId: Option.some(u) })
          assert.isTrue(yield* store.save(anonU, 0, now + HOUR))
          deepStrictEqual(sorted(yield* store.sessionsOfUser(u)), sorted([r.session, anonU]))

          yield* store.delete(s1.key)
          deepStrictEqual(yield* store.sessionsOfUser(w), [])
          yield* store.deleteToken(r.session.tokenKey)
          deepStrictEqual(yield* store.sessionsOfUser(u), [anonU])
        }))

      // Redis keys, SQL text and hashes see a string as UTF-8, where every lone surrogate is
      // U+FFFD: ids that differ only there are still different users.
      it.effect("users whose ids differ only in lone surrogates (one UTF-8 form) are different users", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const u = uid("user")
          const ids = [`${u}\ud800`, `${u}\udbff`, `${u}\udfff`, `${u}\ufffd`]
          const sessions = ids.map((id) => makeSession(now, { userId: Option.some(id) }))
          for (const s of sessions) yield* store.create(s, now + HOUR)
          for (const [i, id] of ids.entries()) deepStrictEqual(yield* store.sessionsOfUser(id), [sessions[i]!], JSON.stringify(id))
          for (const s of sessions) yield* store.delete(s.key)
          for (const id of ids) deepStrictEqual(yield* store.sessionsOfUser(id), [], JSON.stringify(id))
        }))
    })

    describe("rotateWithinLimit (maxSessionsPerUser)", () => {
      /** `n` sessions of `user`, the i-th last used at `now + i` (so the first is the least recently used). */
      const sessionsOf = (store: PersistenceShape, user: string, now: number, n: number, deadline = now + HOUR) =>
        Effect.forEach(Array.from({ length: n }, (_, i) => makeSession(now, { userId: Option.some(user), lastAccessAt: now + i })), (s) =>
          Effect.as(store.create(s, deadline), s))
      /** The log-in of `s` as `user`: its rotation, ready for the store. */
      const logIn = (s: Session, user: string, now: number, expiresAt = now + HOUR) => {
        const r = rotation(s, now, { userId: Option.some(user), grace: 0 })
        return { session: r.session, expectedVersion: s.version, redirect: r.redirect, expiresAt }
      }

      it.effect("feature: maxSessionsPerUser — a log-in within the limit ends nothing; beyond it the least recently used other sessions end in the same step, the rotated session itself never counted twice", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const u = uid("user")
          const [a, b] = yield* sessionsOf(store, u, now, 2)
          const limit = { max: 3, policy: "endLeastRecentlyUsed" } as const
          const c = makeSession(now)
          yield* store.create(c, now + HOUR)
          const first = logIn(c, u, now + 10)
          deepStrictEqual(yield* store.rotateWithinLimit(first, limit), LimitedRotation.Rotated({ ended: [] }))
          deepStrictEqual(sorted(yield* store.sessionsOfUser(u)), sorted([a!, b!, first.session]))
          // Logging the same session in again (a re-log-in) at the limit ends nobody.
          const again = logIn(first.session, u, now + 11)
          deepStrictEqual(yield* store.rotateWithinLimit(again, limit), LimitedRotation.Rotated({ ended: [] }))
          // A fourth session: the least recently used one (a) goes, with its token.
          const d = makeSession(now)
          yield* store.create(d, now + HOUR)
          const fourth = logIn(d, u, now + 12)
          deepStrictEqual(yield* store.rotateWithinLimit(fourth, limit), LimitedRotation.Rotated({ ended: [a!.tokenKey] }))
          deepStrictEqual(sorted(yield* store.sessionsOfUser(u)), sorted([b!, again.session, fourth.session]))
          assertNone(yield* store.load(a!.tokenKey), "token of the ended session")
          assertNone(yield* store.loadSession(a!.key), "ended session")
          assertSome(yield* store.load(fourth.session.tokenKey), fourth.session)
          // A lower limit ends as many as needed, oldest first.
          const e = makeSession(now)
          yield* store.create(e, now + HOUR)
          const fifth = logIn(e, u, now + 13)
          const answer = yield* store.rotateWithinLimit(fifth, { max: 1, policy: "endLeastRecentlyUsed" })
          deepStrictEqual(answer, LimitedRotation.Rotated({ ended: [b!.tokenKey, again.session.tokenKey, fourth.session.tokenKey] }))
          deepStrictEqual(yield* store.sessionsOfUser(u), [fifth.session])
          yield* store.delete(e.key)
        }))

      it.effect("feature: maxSessionsPerUser — with \"refuse\", a log-in beyond the limit writes and ends nothing; within it, it rotates", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const u = uid("user")
          const existing = yield* sessionsOf(store, u, now, 2)
          const c = makeSession(now)
          yield* store.create(c, now + HOUR)
          const r = logIn(c, u, now + 10)
          deepStrictEqual(yield* store.rotateWithinLimit(r, { max: 2, policy: "refuse" }), LimitedRotation.Refused())
          assertSome(yield* store.load(c.tokenKey), c)
          assertNone(yield* store.load(r.session.tokenKey), "token of a refused log-in")
          deepStrictEqual(sorted(yield* store.sessionsOfUser(u)), sorted(existing))
          deepStrictEqual(yield* store.rotateWithinLimit(r, { max: 3, policy: "refuse" }), LimitedRotation.Rotated({ ended: [] }))
          deepStrictEqual(sorted(yield* store.sessionsOfUser(u)), sorted([...existing, r.session]))
          for (const s of [...existing, c]) yield* store.delete(s.key)
        }))

      it.effect("feature: maxSessionsPerUser — a lost compare-and-set (stale version or token) ends nothing and writes nothing", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const u = uid("user")
          const existing = yield* sessionsOf(store, u, now, 2)
          const c = makeSession(now)
          yield* store.create(c, now + HOUR)
          const r = logIn(c, u, now + 10)
          const limit = { max: 1, policy: "endLeastRecentlyUsed" } as const
          deepStrictEqual(yield* store.rotateWithinLimit({ ...r, expectedVersion: 7 }, limit), LimitedRotation.Lost())
          deepStrictEqual(yield* store.rotateWithinLimit({ ...r, redirect: new Redirect({ ...r.redirect, tokenKey: uidIn("tok", c.key) }) }, limit), LimitedRotation.Lost())
          deepStrictEqual(yield* store.rotateWithinLimit(logIn(makeSession(now), u, now), limit), LimitedRotation.Lost(), "an unknown session")
          deepStrictEqual(sorted(yield* store.sessionsOfUser(u)), sorted(existing))
          assertSome(yield* store.load(c.tokenKey), c)
          for (const s of [...existing, c]) yield* store.delete(s.key)
        }))

      it.effect("feature: maxSessionsPerUser — a session past its deadline does not count (the store's clock against the deadline last written)", () =>
        onTestClock(1_700_000_000_000, Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const u = uid("user")
          // Two sessions whose deadline is in 5 s, one in an hour.
          const dying = yield* sessionsOf(store, u, now, 2, now + 5_000)
          const [alive] = yield* sessionsOf(store, u, now, 1)
          yield* TestClock.adjust("6 seconds")
          const later = now + 6_000
          const c = makeSession(later)
          yield* store.create(c, later + HOUR)
          deepStrictEqual(yield* store.rotateWithinLimit(logIn(c, u, later), { max: 2, policy: "refuse" }), LimitedRotation.Rotated({ ended: [] }))
          for (const s of [...dying, alive!, c]) yield* store.delete(s.key)
        })))

      it.effect("feature: maxSessionsPerUser — 24 concurrent log-ins of one user (through two store instances where the store has a peer) never leave more than 3 live sessions", () =>
        Effect.scoped(Effect.gen(function*() {
          const a = yield* Persistence
          const b = options.peer === undefined ? a : Context.get(yield* Layer.build(options.peer), Persistence)
          const now = yield* Clock.currentTimeMillis
          const u = uid("user")
          for (const policy of ["endLeastRecentlyUsed", "refuse"] as const) {
            const fresh = Array.from({ length: 24 }, () => makeSession(now))
            yield* Effect.forEach(fresh, (s) => a.create(s, now + HOUR), { discard: true })
            const answers = yield* Effect.forEach(fresh, (s, i) => (i % 2 === 0 ? a : b).rotateWithinLimit(logIn(s, u, now + i), { max: 3, policy }), {
              concurrency: "unbounded"
            })
            const live = yield* a.sessionsOfUser(u)
            assert.isAtMost(live.length, 3, policy)
            const rotated = answers.filter((x) => x._tag === "Rotated").length
            if (policy === "refuse") assert.strictEqual(rotated, 3, "exactly the limit was let in")
            else assert.strictEqual(rotated, 24)
            assert.strictEqual(live.length, 3)
            for (const s of live) yield* a.delete(s.key)
            for (const s of fresh) yield* a.delete(s.key)
          }
        })))
    })

    describe("revocation instant (logOutEveryone)", () => {
      // The first test of the suite to touch the instant: nobody stored one before it.
      it.effect("feature: logOutEveryone — revokedUntil is none until revokeUntil stores an instant, which only rises (a lower one changes nothing, 20 concurrent ones leave the largest); the sessions themselves are untouched", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          assertNone(yield* store.revokedUntil)
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now - 5_000, { userId: Option.some(uid("user")) })
          yield* store.create(s, now + HOUR)
          yield* store.revokeUntil(now)
          assertSome(yield* store.revokedUntil, now)
          yield* store.revokeUntil(now - 1_000)
          assertSome(yield* store.revokedUntil, now)
          const instants = Array.from({ length: 20 }, (_, i) => now + ((i * 7) % 20) * 1_000)
          const b = options.peer === undefined ? store : Context.get(yield* Layer.build(options.peer), Persistence)
          yield* Effect.forEach(instants, (t, i) => (i % 2 === 0 ? store : b).revokeUntil(t), { concurrency: "unbounded", discard: true })
          assertSome(yield* store.revokedUntil, now + 19_000)
          assertSome(yield* b.revokedUntil, now + 19_000)
          // Revocation is the service's rule: the store keeps, loads and lists the session as before.
          assertSome(yield* store.load(s.tokenKey), s as TokenRecord)
          deepStrictEqual(yield* store.sessionsOfUser(Option.getOrThrow(s.userId)), [s])
        }).pipe(Effect.scoped))

      it.effect.prop(
        "feature: logOutEveryone — revokedUntil is the largest instant stored, whatever the order of the calls",
        [fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 6 })],
        ([offsets]) =>
          Effect.gen(function*() {
            const store = yield* Persistence
            const base = Option.getOrElse(yield* store.revokedUntil, () => 0)
            for (const o of offsets) yield* store.revokeUntil(base + o)
            assertSome(yield* store.revokedUntil, base + Math.max(...offsets))
          }),
        { fastCheck: { numRuns } }
      )
    })

    describe("expiry", () => {
      it.effect("a save with a deadline already past: accepted, and the session is no longer returned", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          assert.isTrue(yield* store.save(copy(s, { version: 1 }), 0, now - 1))
          assertNone(yield* store.load(s.tokenKey))
          assertNone(yield* store.loadSession(s.key))
          // A TTL store drops it at once; the others in their next sweep.
          if (ttl) yield* assertNoResidue({ sessionKey: s.key, tokenKeys: [s.tokenKey] })
        }))

      if (ttl) {
        it.effect("records past their deadline are gone (real TTLs), and sweep has nothing to do", () =>
          Effect.gen(function*() {
            const store = yield* Persistence
            const now = yield* Clock.currentTimeMillis
            const user = uid("user")
            const s = makeSession(now, { userId: Option.some(user) })
            const long = makeSession(now, { userId: Option.some(user) })
            yield* store.create(s, now + 600)
            yield* store.create(long, now + HOUR)
            const r = rotation(s, now, { grace: 300 })
            assert.isTrue(yield* store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: now + 600 }))
            assertSome(yield* store.load(s.tokenKey), r.redirect as TokenRecord)
            assertSome(yield* store.load(r.session.tokenKey), r.session as TokenRecord)

            yield* Effect.sleep("450 millis")
            assertNone(yield* store.load(s.tokenKey), "redirect after its grace period")
            assertSome(yield* store.load(r.session.tokenKey), r.session as TokenRecord)

            yield* Effect.sleep("300 millis")
            assertNone(yield* store.load(r.session.tokenKey), "session after its deadline")
            assertNone(yield* store.loadSession(s.key), "session after its deadline")
            deepStrictEqual(yield* store.sessionsOfUser(user), [long])
            assert.strictEqual(yield* store.sweep, 0)
            yield* assertNoResidue({ sessionKey: s.key, tokenKeys: [s.tokenKey, r.session.tokenKey], userId: user })
          }))

      } else {
        it.effect("records at or past their deadline are not returned (TestClock)", () =>
          onTestClock(
            1_000_000,
            Effect.gen(function*() {
              const store = yield* Persistence
              const now = yield* Clock.currentTimeMillis
              const user = uid("user")
              const s = makeSession(now, { userId: Option.some(user) })
              const long = makeSession(now, { userId: Option.some(user) })
              yield* store.create(s, now + 1000)
              yield* store.create(long, now + HOUR)
              const r = rotation(s, now, { grace: 500 })
              assert.isTrue(yield* store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: now + 1000 }))

              yield* TestClock.adjust(499)
              assertSome(yield* store.load(s.tokenKey), r.redirect as TokenRecord)
              yield* TestClock.adjust(1)
              assertNone(yield* store.load(s.tokenKey), "redirect at its expiresAt")
              assertSome(yield* store.load(r.session.tokenKey), r.session as TokenRecord)

              yield* TestClock.adjust(499)
              assertSome(yield* store.loadSession(s.key), r.session)
              assert.strictEqual((yield* store.sessionsOfUser(user)).length, 2)
              yield* TestClock.adjust(1)
              assertNone(yield* store.load(r.session.tokenKey), "session at its deadline")
              assertNone(yield* store.loadSession(s.key), "session at its deadline")
              deepStrictEqual(yield* store.sessionsOfUser(user), [long])
            })
          ))

        it.effect("sweep removes expired sessions (with their tokens) and expired redirects", () =>
          Effect.gen(function*() {
            // Start from the real time, so that records of the other tests are not expired.
            const start = yield* Clock.currentTimeMillis
            yield* onTestClock(
              start,
              Effect.gen(function*() {
                const store = yield* Persistence
                const now = yield* Clock.currentTimeMillis
                const user = uid("user")
                const a = makeSession(now, { userId: Option.some(user) })
                const b = makeSession(now)
                const c = makeSession(now, { userId: Option.some(user) })
                yield* store.create(a, now + 1000)
                yield* store.create(b, now + 10 * HOUR)
                yield* store.create(c, now + 10 * HOUR)
                const r = rotation(b, now, { grace: 500 })
                assert.isTrue(yield* store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: now + 10 * HOUR }))

                yield* TestClock.adjust(2000)
                const removed = yield* store.sweep
                assert.isAtLeast(removed, 2, "a's session and b's redirect")
                assert.strictEqual(yield* store.sweep, 0, "a second sweep finds nothing")
                yield* assertNoResidue({ sessionKey: a.key, tokenKeys: [a.tokenKey, b.tokenKey], userId: user })
                assertNone(yield* store.load(a.tokenKey))
                assertNone(yield* store.load(b.tokenKey))
                assertSome(yield* store.load(r.session.tokenKey), r.session as TokenRecord)
                assertSome(yield* store.loadSession(c.key), c)
                deepStrictEqual(yield* store.sessionsOfUser(user), [c])
                // The clock going back does not bring swept records back.
                yield* TestClock.setTime(now + 100)
                assertNone(yield* store.loadSession(a.key), "a swept session")
                assertNone(yield* store.load(b.tokenKey), "a swept redirect")
              })
            )
          }))
      }
    })

    describe("corrupt records", () => {
      const corrupt = options.corrupt
      if (corrupt === undefined) {
        it.effect.skip("a corrupt record is a typed Corrupt error, and sessionsOfUser skips it (this store holds values, not text: it cannot hold garbage)", () => Effect.void)
        return
      }

      it.effect("a corrupt session is a typed Corrupt error, and deleteToken drops it", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const user = uid("user")
          const s = makeSession(now, { userId: Option.some(user) })
          yield* store.create(s, now + HOUR)
          yield* corrupt(s.tokenKey, "{not json")
          assertCorrupt(yield* Effect.exit(store.load(s.tokenKey)), "load", s.tokenKey)
          assertCorrupt(yield* Effect.exit(store.loadSession(s.key)), "loadSession", s.key)
          yield* store.deleteToken(s.tokenKey)
          assertNone(yield* store.load(s.tokenKey))
          assertNone(yield* store.loadSession(s.key))
          deepStrictEqual(yield* store.sessionsOfUser(user), [])
        }))

      it.effect("security: sessionsOfUser skips a record that does not decode (or is over the read ceiling), deletes it, and returns every other session", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const user = uid("user")
          const [a, garbage, c, huge] = [0, 1, 2, 3].map(() => makeSession(now, { userId: Option.some(user) }))
          for (const s of [a!, garbage!, c!, huge!]) yield* store.create(s, now + HOUR)
          yield* corrupt(garbage!.tokenKey, "{\"v\":1,\"type\":\"session\",\"data\":\"not an object\"")
          // A well-formed record longer than the read ceiling is corrupt too.
          const big = copy(huge!, { data: { blob: "x".repeat(Codec.MAX_ENCODED_LENGTH) } })
          yield* corrupt(huge!.tokenKey, Codec.encodeSession(big))
          deepStrictEqual(sorted(yield* store.sessionsOfUser(user)), sorted([a!, c!]))
          // The bad records are gone (not corrupt any more), with their tokens and index entries.
          for (const bad of [garbage!, huge!]) {
            assertNone(yield* store.load(bad.tokenKey))
            assertNone(yield* store.loadSession(bad.key))
            yield* assertNoResidue({ sessionKey: bad.key, tokenKeys: [bad.tokenKey], userId: user })
          }
          deepStrictEqual(sorted(yield* store.sessionsOfUser(user)), sorted([a!, c!]))
          yield* store.delete(a!.key)
          yield* store.delete(c!.key)
        }))

      it.effect("a corrupt redirect is a typed Corrupt error, and deleteToken drops only it", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          const r = rotation(s, now + 1)
          assert.isTrue(yield* store.rotate({ session: r.session, expectedVersion: 0, redirect: r.redirect, expiresAt: now + HOUR }))
          yield* corrupt(s.tokenKey, "{\"v\":1,\"type\":\"redirect\"}")
          assertCorrupt(yield* Effect.exit(store.load(s.tokenKey)), "load", s.tokenKey)
          yield* store.deleteToken(s.tokenKey)
          assertNone(yield* store.load(s.tokenKey))
          assertSome(yield* store.load(r.session.tokenKey), r.session as TokenRecord)
        }))

      it.effect("a session record that is a redirect is corrupt too", () =>
        Effect.gen(function*() {
          const store = yield* Persistence
          const now = yield* Clock.currentTimeMillis
          const s = makeSession(now)
          yield* store.create(s, now + HOUR)
          const { redirect } = rotation(s, now)
          yield* corrupt(s.tokenKey, Codec.encode(redirect))
          assertCorrupt(yield* Effect.exit(store.load(s.tokenKey)), "load", s.tokenKey)
          yield* store.delete(s.key)
        }))

      it.effect.prop(
        "any garbage in a session record: a typed error, never a throw or a defect",
        [arbGarbage],
        ([garbage]) =>
          Effect.gen(function*() {
            const store = yield* Persistence
            const now = yield* Clock.currentTimeMillis
            const user = uid("user")
            const s = makeSession(now, { userId: Option.some(user) })
            const other = makeSession(now, { userId: Option.some(user) })
            yield* store.create(s, now + HOUR)
            yield* store.create(other, now + HOUR)
            yield* corrupt(s.tokenKey, garbage)
            assertCorrupt(yield* Effect.exit(store.load(s.tokenKey)), "load", s.tokenKey)
            assertCorrupt(yield* Effect.exit(store.loadSession(s.key)), "loadSession", s.key)
            // A listing skips (and deletes) it, and still returns the user's other session.
            deepStrictEqual(yield* store.sessionsOfUser(user), [other])
            yield* store.delete(other.key)
            // Writes do not decode: they still work on a corrupt record.
            yield* store.delete(s.key)
            assertNone(yield* store.load(s.tokenKey))
          }),
        { fastCheck: { numRuns } }
      )
    })

    describe("invalidations", () => {
      const peer = options.peer
      if (peer === undefined) {
        it.effect("a single-process store has no invalidations", () =>
          Effect.gen(function*() {
            const store = yield* Persistence
            const now = yield* Clock.currentTimeMillis
            const s = makeSession(now)
            yield* store.create(s, now + HOUR)
            assert.isTrue(yield* store.save(copy(s, { version: 1 }), 0, now + HOUR))
            // Nobody to tell: a no-op that succeeds.
            yield* store.publishUserInvalidation(userKey(uid("user")))
            const seen = yield* Stream.runCollect(store.invalidations).pipe(Effect.timeout("50 millis"), Effect.option)
            // Either the stream is empty and ends, or it never yields this process's own writes.
            if (Option.isSome(seen)) deepStrictEqual([...seen.value], [])
          }))
        return
      }

      it.effect("writes on one process reach the other within 100 ms; a process does not hear itself", () =>
        Effect.scoped(Effect.gen(function*() {
          const a = yield* Persistence
          const b = Context.get(yield* Layer.build(peer), Persistence)
          const heardByA = yield* Queue.unbounded<string>()
          const heardByB = yield* Queue.unbounded<string>()
          yield* Effect.forkScoped(Stream.runForEach(a.invalidations, (k) => Queue.offer(heardByA, invalidationText(k))))
          yield* Effect.forkScoped(Stream.runForEach(b.invalidations, (k) => Queue.offer(heardByB, invalidationText(k))))
          const now = yield* Clock.currentTimeMillis
          const writtenByB = new Set<string>()

          // Subscriptions start asynchronously: write until each side hears the other once.
          const warmUp = (writer: PersistenceShape, heard: Queue.Queue<string>, mark: (k: string) => void) =>
            Effect.gen(function*() {
              let probe = makeSession(now)
              yield* writer.create(probe, now + HOUR)
              mark(probe.tokenKey)
              for (let i = 0; i < 100; i++) {
                const next = copy(probe, { version: probe.version + 1 })
                assert.isTrue(yield* writer.save(next, probe.version, now + HOUR))
                probe = next
                const got = yield* Queue.take(heard).pipe(Effect.timeout("50 millis"), Effect.option)
                if (Option.isSome(got) && got.value === probe.tokenKey) {
                  yield* Effect.sleep("50 millis")
                  yield* Queue.takeAll(heard)
                  return
                }
              }
              assert.fail("the peer never heard a write")
            })
          yield* warmUp(a, heardByB, () => {})
          yield* warmUp(b, heardByA, (k) => writtenByB.add(k))

          const expectHeard = (heard: Queue.Queue<string>, keys: ReadonlyArray<string>, what: string) =>
            Effect.gen(function*() {
              const got: Array<string> = []
              for (let i = 0; i < keys.length; i++) {
                const k = yield* Queue.take(heard).pipe(
                  Effect.timeoutFail({ duration: "100 millis", onTimeout: () => new Error(`${what}: not heard within 100 ms`) })
                )
                got.push(k)
              }
              deepStrictEqual([...got].sort(), [...keys].sort(), what)
            })

          const s = makeSession(now, { userId: Option.some(uid("user")) })
          yield* a.create(s, now + HOUR)
          const s1 = copy(s, { version: 1, data: { x: 1 } })
          assert.isTrue(yield* a.save(s1, 0, now + HOUR))
          yield* expectHeard(heardByB, [s.tokenKey], "save")

          const r = rotation(s1, now + 1)
          assert.isTrue(yield* a.rotate({ session: r.session, expectedVersion: 1, redirect: r.redirect, expiresAt: now + HOUR }))
          yield* expectHeard(heardByB, [s.tokenKey, r.session.tokenKey], "rotate")

          // A failed compare-and-set changes nothing, and says nothing.
          assert.isFalse(yield* a.save(copy(s1, { version: 5 }), 1, now + HOUR))

          // The peer sees the change.
          assertSome(yield* b.load(r.session.tokenKey), r.session as TokenRecord)

          // The other direction: b writes, a hears.
          const r2 = copy(r.session, { version: 3 })
          assert.isTrue(yield* b.save(r2, 2, now + HOUR))
          writtenByB.add(r2.tokenKey)
          yield* expectHeard(heardByA, [r2.tokenKey], "save by the peer")

          yield* a.deleteToken(s.tokenKey)
          yield* expectHeard(heardByB, [s.tokenKey], "deleteToken")

          yield* a.delete(s.key)
          yield* expectHeard(heardByB, [r.session.tokenKey], "delete")

          // A refreshed user: the peer hears its key (a hash of the ID, which is not sent).
          const refreshed = userKey(uid("user"))
          yield* a.publishUserInvalidation(refreshed)
          yield* expectHeard(heardByB, [`user:${refreshed}`], "publishUserInvalidation")
          yield* b.publishUserInvalidation(refreshed)
          writtenByB.add(`user:${refreshed}`)
          yield* expectHeard(heardByA, [`user:${refreshed}`], "publishUserInvalidation by the peer")

          // Logging everyone out: the peer hears "everything" and reads the same instant.
          yield* a.revokeUntil(now)
          yield* expectHeard(heardByB, ["*"], "revokeUntil")
          deepStrictEqual(yield* b.revokedUntil, yield* a.revokedUntil)

          // Nothing else arrives at b, and a never heard its own writes.
          yield* Effect.sleep("100 millis")
          deepStrictEqual([...(yield* Queue.takeAll(heardByB))], [])
          for (const k of yield* Queue.takeAll(heardByA)) {
            assert.isTrue(writtenByB.has(k), `a heard its own write (${k})`)
          }
        })))
    })
  })
}
