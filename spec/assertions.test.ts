/**
 * Why the specs never compare with chai's deep equality (lint refuses `assert.deepStrictEqual`,
 * `deepEqual`, `notDeepStrictEqual` and `notDeepEqual` in spec/ and examples/): chai compares
 * iterables by their iterator, and every Effect `Option` (`Either`, `Exit` …) yields one opaque
 * wrapper, so it holds `Option.none()` equal to `Option.some(x)` — and a stored `Session` that
 * lost its `userId` equal to the original. The helpers used instead fail where chai passes.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { assertLeft, assertNone, assertRight, assertSome, deepStrictEqual, notDeepStrictEqual } from "@effect/vitest/utils"
import { Either, Equal, Exit, Option } from "effect"
import { chai } from "vitest"
import { Session } from "../src/Session.js"

type Fields = ConstructorParameters<typeof Session>[0]

const base: Fields = {
  key: "key-1",
  tokenKey: "tok-1",
  createdAt: 1_000,
  idIssuedAt: 2_000,
  lastAccessAt: 3_000,
  userId: Option.some("ada"),
  ip: Option.some("203.0.113.7"),
  userAgentHash: Option.some("dWEtaGFzaA"),
  data: { cart: ["book", "pen"], n: 1 },
  version: 4,
  authenticatedAt: Option.some(2_500),
  persistent: Option.some(true)
}

/** For every field, a session that differs from `base` in that field only. */
const oneFieldChanged: ReadonlyArray<readonly [keyof Fields, Session]> = [
  ["key", new Session({ ...base, key: "key-2" })],
  ["tokenKey", new Session({ ...base, tokenKey: "tok-2" })],
  ["createdAt", new Session({ ...base, createdAt: 1_001 })],
  ["idIssuedAt", new Session({ ...base, idIssuedAt: 2_001 })],
  ["lastAccessAt", new Session({ ...base, lastAccessAt: 3_001 })],
  ["userId", new Session({ ...base, userId: Option.none() })],
  ["ip", new Session({ ...base, ip: Option.some("203.0.113.8") })],
  ["userAgentHash", new Session({ ...base, userAgentHash: Option.none() })],
  ["data", new Session({ ...base, data: { cart: ["book"], n: 1 } })],
  ["version", new Session({ ...base, version: 5 })],
  ["authenticatedAt", new Session({ ...base, authenticatedAt: Option.some(2_501) })],
  ["persistent", new Session({ ...base, persistent: Option.some(false) })]
]

/** Asserts that `f` fails as an assertion does (an AssertionError, not some other throw). */
const throwsAssertion = (f: () => void, what = "the assertion") => {
  try {
    f()
  } catch (e) {
    assert.strictEqual((e as Error).name, "AssertionError", `${what} threw something else: ${String(e)}`)
    return
  }
  assert.fail(`${what} passed`)
}

// chai's assert.deepStrictEqual / deepEqual / notDeepEqual decide with chai.util.eql (deep-eql):
// the trap is shown with it, so that no chai deep-equality assertion is left in the specs.
const chaiHoldsEqual = (a: unknown, b: unknown): boolean => chai.util.eql(a, b)

describe("chai's deep equality: the trap (why lint refuses it)", () => {
  it("holds Option.none() equal to Option.some(1), either way round, and { ip: None } equal to { ip: Some }", () => {
    assert.isTrue(chaiHoldsEqual(Option.none(), Option.some(1)))
    assert.isTrue(chaiHoldsEqual(Option.some(1), Option.none()))
    assert.isTrue(chaiHoldsEqual({ ip: Option.none() }, { ip: Option.some("203.0.113.7") }))
  })

  it("holds a Session equal to one whose store lost its userId, ip or userAgentHash (so such a store passed)", () => {
    for (const field of ["userId", "ip", "userAgentHash"] as const) {
      const lost = new Session({ ...base, [field]: Option.none() })
      assert.isTrue(chaiHoldsEqual(lost, new Session(base)), field)
      throwsAssertion(() => deepStrictEqual(lost, new Session(base)), field)
    }
  })
})

describe("the assertions the specs use instead fail where chai passes", () => {
  it("deepStrictEqual (@effect/vitest/utils, node:assert strict) fails for None vs Some(1), Some(1) vs Some(2), Right vs Left, and different Exits", () => {
    throwsAssertion(() => deepStrictEqual<Option.Option<number>>(Option.none(), Option.some(1)))
    throwsAssertion(() => deepStrictEqual(Option.some(1), Option.some(2)))
    throwsAssertion(() => deepStrictEqual<Either.Either<number, number>>(Either.right(1), Either.left(1)))
    throwsAssertion(() => deepStrictEqual(Exit.succeed(1), Exit.succeed(2)))
    throwsAssertion(() => deepStrictEqual<Exit.Exit<number, number>>(Exit.succeed(1), Exit.fail(1)))
    deepStrictEqual(Option.some([1, 2]), Option.some([1, 2]))
  })

  it("deepStrictEqual fails for two Sessions that differ in any one field, Options and the data record included", () => {
    deepStrictEqual(new Session(base), new Session({ ...base, data: { cart: ["book", "pen"], n: 1 } }))
    for (const [field, changed] of oneFieldChanged) {
      throwsAssertion(() => deepStrictEqual(changed, new Session(base)), field)
    }
  })

  it("deepStrictEqual fails for plain records that hold different Options ({ ip: None } vs { ip: Some })", () => {
    throwsAssertion(() => deepStrictEqual<{ ip: Option.Option<string> }>({ ip: Option.none() }, { ip: Option.some("203.0.113.7") }))
    throwsAssertion(() => deepStrictEqual([Option.some("a")], [Option.some("b")]))
  })

  it("assertSome, assertNone, assertRight, assertLeft fail on the wrong variant and on the wrong value", () => {
    throwsAssertion(() => assertSome(Option.none(), 1))
    throwsAssertion(() => assertSome(Option.some(1), 2))
    throwsAssertion(() => assertSome(Option.some(new Session(base)), oneFieldChanged[5]![1]))
    throwsAssertion(() => assertNone(Option.some(1)))
    throwsAssertion(() => assertRight(Either.left(1), 1))
    throwsAssertion(() => assertRight(Either.right(1), 2))
    throwsAssertion(() => assertLeft(Either.right(1), 1))
    throwsAssertion(() => assertLeft(Either.left(1), 2))
    assertSome(Option.some(["book", "pen"]), ["book", "pen"])
    assertNone(Option.none())
  })

  it("notDeepStrictEqual (@effect/vitest/utils) tells None from Some, which chai's notDeepEqual holds equal", () => {
    notDeepStrictEqual<Option.Option<number>>(Option.none(), Option.some(1))
    notDeepStrictEqual(Option.some(1), Option.some(2))
    throwsAssertion(() => notDeepStrictEqual(Option.some(1), Option.some(1)))
  })

  it("vitest's expect(a).toStrictEqual(b) fails for None vs Some(1), Some(1) vs Some(2), and Sessions differing in any one field", () => {
    throwsAssertion(() => expect(Option.none()).toStrictEqual(Option.some(1)))
    throwsAssertion(() => expect(Option.some(1)).toStrictEqual(Option.some(2)))
    throwsAssertion(() => expect({ ip: Option.none() }).toStrictEqual({ ip: Option.some("203.0.113.7") }))
    expect(new Session(base)).toStrictEqual(new Session({ ...base }))
    for (const [field, changed] of oneFieldChanged) {
      throwsAssertion(() => expect(changed).toStrictEqual(new Session(base)), field)
    }
  })

  it("Effect's Equal is no way to compare Sessions: it compares the data record by reference (equal content, not Equal)", () => {
    // So the specs compare Sessions with deepStrictEqual, not with Equal.equals or assertEquals.
    assert.isFalse(Equal.equals(new Session(base), new Session({ ...base, data: { ...base.data } })))
    assert.isTrue(Equal.equals(Option.some("ada"), Option.some("ada")))
  })
})
