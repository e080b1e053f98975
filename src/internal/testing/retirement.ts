/**
 * The retirements of a token without grace and every operation through a handle, for
 * the "a dead handle reads and writes nothing" tests (spec/Sessions.test.ts on the memory store,
 * sessionsSuite.ts on every store).
 *
 * The scenario: an attacker plants token T; the attacker's request and the victim's request both
 * resolve T (two handles); the victim's request retires T; from then on every operation through
 * the attacker's handle fails with SessionGoneError and changes nothing.
 *
 * @internal
 */
import { assert } from "@effect/vitest"
import { Effect, Either, Option, Redacted, Schema } from "effect"
import * as Session from "../../Session.js"
import type * as Sessions from "../../Sessions.js"

/** A way to retire the handle's token without grace. */
export interface Retirement {
  readonly name: string
  /** Whether the session is logged in (as `user`) before the handles are resolved. */
  readonly loggedIn: boolean
  /**
   * Retires the token of `victim`; returns the handle of the session when it lives on under a
   * new token (logIn, logOut, regenerateId without grace), none when it ended.
   */
  readonly retire: (
    sessions: Sessions.SessionsShape,
    victim: Sessions.ActiveSession,
    user: string
  ) => Effect.Effect<Option.Option<Sessions.ActiveSession>, unknown>
}

const rejectedClient = Session.client({ ip: "198.51.100.7", userAgent: "curl/8.0 (another agent)" })
const otherDevice = Session.client({ ip: "203.0.113.40", userAgent: "Mozilla/5.0 (iPhone) Safari/604.1" })

/** Every way to retire a token without grace. */
export const retirements: ReadonlyArray<Retirement> = [
  { name: "logIn", loggedIn: false, retire: (s, h, user) => Effect.map(s.logIn(h, user), Option.some) },
  { name: "logOut", loggedIn: true, retire: (s, h) => Effect.map(s.logOut(h), Option.some) },
  { name: "regenerateId({ grace: false })", loggedIn: true, retire: (s, h) => Effect.map(s.regenerateId(h, { grace: false }), Option.some) },
  { name: "destroy", loggedIn: true, retire: (s, h) => Effect.as(s.destroy(h), Option.none()) },
  {
    name: "endSession",
    loggedIn: true,
    retire: (s, _h, user) =>
      Effect.gen(function*() {
        const listed = yield* s.listSessions(user)
        assert.strictEqual(listed.length, 1)
        assert.isTrue(yield* s.endSession(user, listed[0]!.id))
        return Option.none()
      })
  },
  {
    name: "logOutEverywhere",
    loggedIn: true,
    retire: (s, _h, user) => Effect.map(s.logOutEverywhere(user), (n) => (assert.strictEqual(n, 1), Option.none()))
  },
  {
    name: "exclusive logIn elsewhere",
    loggedIn: true,
    retire: (s, _h, user) =>
      Effect.gen(function*() {
        const elsewhere = yield* s.create(otherDevice)
        yield* s.logIn(elsewhere, user, { exclusive: true })
        return Option.none()
      })
  },
  {
    name: "anomaly",
    loggedIn: true,
    retire: (s, h) =>
      Effect.gen(function*() {
        const r = yield* s.resolve(Redacted.value(h.token), rejectedClient)
        assert.strictEqual(r.outcome, "anomaly")
        return Option.none()
      })
  }
]

/** Every operation through a handle, by name (the reads first, the destructive ones last). */
export const handleOperations = (
  sessions: Sessions.SessionsShape,
  h: Sessions.ActiveSession
): ReadonlyArray<readonly [string, Effect.Effect<unknown, { readonly _tag: string }>]> => [
  ["current", sessions.current(h)],
  ["get", sessions.get(h, "cart")],
  ["getAs", sessions.get(h, Session.key("cart", Schema.Array(Schema.Number)))],
  ["user", sessions.user(h)],
  ["set", sessions.set(h, "stolen", true)],
  ["setAs", sessions.set(h, Session.key("stolenAt", Schema.Date), new Date(0))],
  ["remove", sessions.remove(h, "cart")],
  ["pop", sessions.pop(h, "cart")],
  ["update", sessions.update(h, "visits", () => 666)],
  ["modify", sessions.modify(h, (s) => Session.set(s, "stolen", "via modify"))],
  ["regenerateId", sessions.regenerateId(h)],
  ["regenerateId({ grace: false })", sessions.regenerateId(h, { grace: false })],
  ["logOut", sessions.logOut(h)],
  ["logIn", sessions.logIn(h, "mallory")],
  ["logIn exclusive", sessions.logIn(h, "mallory", { exclusive: true })],
  ["destroy", sessions.destroy(h)]
]

/** The names of the operations of {@link handleOperations} that did not fail with SessionGoneError. */
export const notGone = (sessions: Sessions.SessionsShape, h: Sessions.ActiveSession) =>
  Effect.gen(function*() {
    const alive: Array<string> = []
    for (const [name, op] of handleOperations(sessions, h)) {
      const result = yield* Effect.either(op)
      if (Either.isRight(result) || result.left._tag !== "SessionGoneError") {
        alive.push(`${name}: ${Either.isRight(result) ? "succeeded" : result.left._tag}`)
      }
    }
    return alive
  })
