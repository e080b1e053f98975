/**
 * The limit on session data (docs/security.md, "Capacity"): `maxDataBytes` is enforced on every write with a typed
 * SessionDataError, a write above it changes nothing, and no sequence of accepted writes can
 * produce a record the codec refuses to read (its 1 MiB ceiling).
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { assertRight, deepStrictEqual } from "@effect/vitest/utils"
import { ConfigProvider, Effect, Either, FastCheck as fc, Option, Redacted, Schema } from "effect"
import * as Codec from "../src/Codec.js"
import * as Persistence from "../src/Persistence.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { serviceLayer } from "./helpers/service.js"

const browser = Session.client({ ip: "198.51.100.7", userAgent: "Mozilla/5.0 Firefox/128.0" })

/** `{"k":"…"}` is 8 bytes plus the string's. */
const withinRecord = (bytes: number) => bytes - 8

const tooLarge = (e: unknown): Sessions.SessionDataTooLargeError => {
  assert.instanceOf(e, Sessions.SessionDataError)
  const cause = (e as Sessions.SessionDataError).cause
  assert.instanceOf(cause, Sessions.SessionDataTooLargeError)
  return cause as Sessions.SessionDataTooLargeError
}

describe("Sessions: maxDataBytes", () => {
  it.effect("security: a write above maxDataBytes fails with SessionDataError (the message says the limit and the size) and leaves the session as it was; exactly at the limit succeeds", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        // exactly at the limit: 100 bytes of JSON
        const at = yield* Effect.zipRight(sessions.set(h, "k", "x".repeat(withinRecord(100))), sessions.current(h))
        assert.strictEqual(JSON.stringify(at.data).length, 100)
        const before = yield* store.loadSession(h.session.key)
        // one byte more
        const e = yield* Effect.flip(sessions.set(h, "k", "x".repeat(withinRecord(101))))
        const cause = tooLarge(e)
        assert.strictEqual(cause.bytes, 101)
        assert.strictEqual(cause.maxBytes, 100)
        assert.strictEqual(e._tag, "SessionDataError")
        assert.include(e.message, "101")
        assert.include(e.message, "100")
        assert.include(e.message, "maxDataBytes")
        assert.strictEqual((e as Sessions.SessionDataError).key, "k")
        assert.strictEqual((e as Sessions.SessionDataError).method, "set")
        deepStrictEqual(yield* store.loadSession(h.session.key), before)
        // bytes, not characters: "é" takes two
        const accented = yield* Effect.flip(sessions.set(h, "k", "é".repeat(47)))
        assert.strictEqual(tooLarge(accented).bytes, 8 + 94)
        yield* sessions.set(h, "k", "é".repeat(46))
        // every write path: update, setAs, modify
        tooLarge(yield* Effect.flip(sessions.update(h, "other", () => "y".repeat(100))))
        tooLarge(yield* Effect.flip(sessions.set(h, Session.key("other", Schema.Array(Schema.Number)), new Array<number>(50).fill(1) as ReadonlyArray<number>)))
        tooLarge(yield* Effect.flip(sessions.modify(h, (s) => Session.set(s, "other", "z".repeat(100)))))
        expect(Object.keys((yield* sessions.current(h)).data)).toStrictEqual(["k"])
      }).pipe(Effect.provide(serviceLayer({ maxDataBytes: 100 }, { store })))
    }))

  it.effect("security: by default (64 KiB) a thief cannot write 1.1 MB into a session, and the owner can still log out everywhere", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      const h = yield* sessions.logIn(yield* sessions.create(browser), "ada")
      tooLarge(yield* Effect.flip(sessions.set(h, "blob", "x".repeat(1_100_000))))
      // in pieces: the writes stop at the limit
      let written = 0
      for (let i = 0; i < 40; i++) {
        const r = yield* Effect.either(sessions.set(h, `piece${i}`, "x".repeat(30_000)))
        if (Either.isLeft(r)) {
          tooLarge(r.left)
          break
        }
        written++
      }
      assert.strictEqual(written, 2)
      assert.isAtMost(JSON.stringify((yield* sessions.current(h)).data).length, 65_536)
      assert.strictEqual((yield* sessions.listSessions("ada")).length, 1)
      assert.strictEqual(yield* sessions.logOutEverywhere("ada"), 1)
    }).pipe(Effect.provide(serviceLayer())))

  it.effect("a lowered limit never traps a session: a write that shrinks its data is accepted", () =>
    Effect.gen(function*() {
      const store = yield* Persistence.makeMemory
      const first = yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = yield* sessions.create(browser)
        yield* sessions.set(h, "a", "x".repeat(500))
        yield* sessions.set(h, "b", "x".repeat(500))
        return h
      }).pipe(Effect.provide(serviceLayer({ maxDataBytes: 2_000 }, { store })))
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        const h = Option.getOrThrow((yield* sessions.resolve(Redacted.value(first.token), browser)).session)
        tooLarge(yield* Effect.flip(sessions.set(h, "c", 1)))
        yield* sessions.remove(h, "a")
        expect(Object.keys((yield* sessions.current(h)).data)).toStrictEqual(["b"])
      }).pipe(Effect.provide(serviceLayer({ maxDataBytes: 100 }, { store })))
    }))

  // Values of every kind of character: 1-byte, 2-byte, 4-byte (two UTF-16 units), escaped
  // control characters and lone surrogates (6 characters of JSON each).
  const units = ["a", "é", "€", "😀", "\u0000", "\n", "\ud800", "\""]
  const arbWrite = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        _tag: fc.constant("set" as const),
        key: fc.constantFrom("a", "b", "c", "d"),
        unit: fc.constantFrom(...units),
        // up to the whole ceiling of the data, in units
        fraction: fc.double({ min: 0, max: 1, noNaN: true })
      })
    },
    { weight: 1, arbitrary: fc.record({ _tag: fc.constant("remove" as const), key: fc.constantFrom("a", "b", "c", "d") }) }
  )

  it.effect.prop(
    "security: no sequence of accepted writes, at the largest maxDataBytes, produces a record the codec refuses to read",
    { writes: fc.array(arbWrite, { minLength: 1, maxLength: 8 }), userLength: fc.constantFrom(0, 1_000, 10_000) },
    ({ userLength, writes }) =>
      Effect.gen(function*() {
        const sessions = yield* Sessions.Sessions
        let h = yield* sessions.create(browser)
        if (userLength > 0) h = yield* sessions.logIn(h, "u".repeat(userLength))
        let accepted = 0
        for (const w of writes) {
          const r = w._tag === "remove"
            ? yield* Effect.either(Effect.zipRight(sessions.remove(h, w.key), sessions.current(h)))
            : yield* Effect.either(Effect.zipRight(sessions.set(h, w.key, w.unit.repeat(Math.floor(w.fraction * SessionConfig.MAX_DATA_BYTES_CEILING / w.unit.length))), sessions.current(h)))
          if (Either.isLeft(r)) {
            tooLarge(r.left)
            continue
          }
          accepted++
          const session = r.right
          assert.isAtMost(Buffer.byteLength(JSON.stringify(session.data), "utf8"), SessionConfig.MAX_DATA_BYTES_CEILING)
          const encoded = Codec.encode(session)
          assert.isAtMost(encoded.length, Codec.MAX_ENCODED_LENGTH)
          assertRight(Either.map(Codec.decode(encoded), (s) => s._tag), "Session")
          assertRight(Either.map(Codec.decodeSession(Codec.encodeSession(session)), (s) => s.version), session.version)
        }
        assert.isAtLeast(accepted, 0)
      }).pipe(Effect.provide(serviceLayer({ maxDataBytes: SessionConfig.MAX_DATA_BYTES_CEILING }))),
    { fastCheck: { numRuns: 30 } }
  )
})

describe("SessionConfig: maxDataBytes", () => {
  it("defaults to 64 KiB; accepts 1 … MAX_DATA_BYTES_CEILING, which keeps a 64 KiB margin under the codec's read ceiling", () => {
    assert.strictEqual(SessionConfig.defaults.maxDataBytes, 65_536)
    assert.strictEqual(SessionConfig.MAX_DATA_BYTES_CEILING, Codec.MAX_ENCODED_LENGTH - 64 * 1024)
    assert.strictEqual(Either.getOrThrow(SessionConfig.make({})).maxDataBytes, 65_536)
    for (const ok of [1, 4096, SessionConfig.MAX_DATA_BYTES_CEILING]) {
      assert.strictEqual(Either.getOrThrow(SessionConfig.make({ maxDataBytes: ok })).maxDataBytes, ok)
    }
    for (const bad of [0, -1, 1.5, Number.NaN, SessionConfig.MAX_DATA_BYTES_CEILING + 1, Number.POSITIVE_INFINITY]) {
      const r = SessionConfig.make({ maxDataBytes: bad })
      assert.isTrue(Either.isLeft(r), `maxDataBytes ${bad}`)
      if (Either.isLeft(r)) assert.strictEqual(r.left.option, "maxDataBytes")
    }
  })

  it.effect("layerConfig reads SESSIONS_MAX_DATA_BYTES", () =>
    Effect.gen(function*() {
      const config = yield* Effect.provide(SessionConfig.SessionConfig, SessionConfig.layerConfig())
      assert.strictEqual(config.maxDataBytes, 4096)
    }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["SESSIONS_MAX_DATA_BYTES", "4096"]]), { pathDelim: "_" }))))
})
