/**
 * Example tests that pin the boundaries of the pure session rules that the properties of
 * spec/Session.test.ts reach only in some of their cases (under mutation they run 25).
 */
import { assert, describe, it } from "@effect/vitest"
import { assertNone, assertSome } from "@effect/vitest/utils"
import { Either, Option, pipe, Schema } from "effect"
import * as Session from "../src/Session.js"
import { configOf } from "../src/internal/testing/arbitraries.js"

const bound = (ip: string): Session.Binding => Session.bindingOf(Session.client({ ip }))
const strictIp = configOf({ ipBinding: { ipv4Prefix: 32, ipv6Prefix: 128 }, acceptChangingUserAgent: true })
const looseIp = configOf({ ipBinding: { ipv4Prefix: 0, ipv6Prefix: 0 }, acceptChangingUserAgent: true })

describe("Session.detectAnomaly: addresses that do not parse", () => {
  // The middleware only hands over parsed, formatted addresses, but `Session.client` takes any
  // text and a stored record may hold one: a text that is not an address fails closed.
  it("invariant 6: an address that does not parse, bound or seen, is an ip anomaly when the other differs (fail closed, no throw)", () => {
    for (const config of [strictIp, looseIp]) {
      assertSome(Session.detectAnomaly(bound("203.0.113.7"), Session.client({ ip: "not an address" }), config), "ip")
      assertSome(Session.detectAnomaly(bound("not an address"), Session.client({ ip: "203.0.113.7" }), config), "ip")
      assertSome(Session.detectAnomaly(bound("2001:db8::1"), Session.client({ ip: "2001:db8::1::2" }), config), "ip")
      assertSome(Session.detectAnomaly(bound("garbage-1"), Session.client({ ip: "garbage-2" }), config), "ip")
    }
  })

  it("invariant 6: the same text, address or not, is no change", () => {
    for (const config of [strictIp, looseIp]) {
      assertNone(Session.detectAnomaly(bound("not an address"), Session.client({ ip: "not an address" }), config))
      assertNone(Session.detectAnomaly(bound("203.0.113.7"), Session.client({ ip: "203.0.113.7" }), config))
    }
  })

  it("invariant 6: a change of family is an ip anomaly even with zero-bit prefixes", () => {
    assertSome(Session.detectAnomaly(bound("203.0.113.7"), Session.client({ ip: "2001:db8::1" }), looseIp), "ip")
    assertSome(Session.detectAnomaly(bound("2001:db8::1"), Session.client({ ip: "203.0.113.7" }), looseIp), "ip")
  })
})

describe("Session.decide: the rotation instant", () => {
  const config = configOf({ idleTimeout: "30 minutes", absoluteTimeout: "1 day", idRotationInterval: "15 minutes" })
  const client = Session.client({ ip: "203.0.113.7", userAgent: "curl/8" })
  const s = Session.start({ key: "k", tokenKey: "t", now: 1_000, client })
  const interval = 15 * 60_000

  it("invariant 3: a token exactly idRotationInterval old rotates; one millisecond younger is Valid", () => {
    // Keep the session fresh so that only the rotation rule decides.
    const fresh = (now: number) => new Session.Session({ ...s, lastAccessAt: now })
    assert.strictEqual(Session.decide(Option.some(fresh(1_000 + interval)), { now: 1_000 + interval, client, config })._tag, "Rotate")
    assert.strictEqual(
      Session.decide(Option.some(fresh(1_000 + interval - 1)), { now: 1_000 + interval - 1, client, config })._tag,
      "Valid"
    )
  })
})

describe("Session: typed keys through update, pop, isKey and pipe; withVersion", () => {
  const s = Session.start({ key: "k", tokenKey: "t", now: 0, client: Session.client() })
  const Count = Session.key("count", Schema.NumberFromString)

  it("update and pop with a typed key decode the stored value and encode the new one", () => {
    const one = Either.getOrThrow(Session.set(s, Count, 1))
    const two = Either.getOrThrow(Session.update(one, Count, (old) => Option.getOrElse(old, () => 0) + 1))
    assertSome(Session.get(two, "count"), "2")
    assertSome(Session.get(Session.update(s, "n", () => 1), "n"), 1)
    const [value, popped] = Either.getOrThrow(Session.pop(two, Count))
    assertSome(value, 2)
    assertNone(Session.get(popped, "count"))
    // A stored value its schema refuses is an error, not a silent default.
    assert.isTrue(Either.isLeft(Session.update(Session.set(s, "count", "x"), Count, () => 1)))
    assert.isTrue(Either.isLeft(Session.pop(Session.set(s, "count", "x"), Count)))
  })

  it("isKey tells a typed key from a string, null and other objects; a key pipes", () => {
    assert.isTrue(Session.isKey(Count))
    for (const u of ["count", null, undefined, {}, { name: "count" }, 1]) assert.isFalse(Session.isKey(u))
    assert.strictEqual(Count.pipe((k) => k.name), "count")
  })

  it("withVersion sets the version only", () => {
    const v = Session.withVersion(s, 7)
    assert.strictEqual(v.version, 7)
    assert.strictEqual(pipe(s, Session.withVersion(3)).version, 3)
    assert.strictEqual(v.tokenKey, s.tokenKey)
  })

  it("the Json and JsonObject schemas say why a value is refused", () => {
    const json = Either.getLeft(Schema.decodeUnknownEither(Session.Json)(new Date(0)))
    assert.include(Option.getOrThrow(json).message, "not JSON")
    const object = Either.getLeft(Schema.decodeUnknownEither(Session.JsonObject)([1]))
    assert.include(Option.getOrThrow(object).message, "not a plain object of JSON values")
  })
})
