import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Option } from "effect"
import * as Codec from "../src/Codec.js"
import * as Session from "../src/Session.js"
import { arbJsonValueAny, arbRedirect, arbSession, arbTokenRecord, assertEquivalent } from "../src/internal/testing/arbitraries.js"
import { numRuns } from "./helpers/runs.js"

const RUNS = { fastCheck: { numRuns: numRuns(1000) } }

/** Runs a decoder and requires a typed CodecError: no throw, no success. */
const expectCodecError = (decode: () => Either.Either<unknown, Codec.CodecError>, label = ""): Codec.CodecError => {
  let result: Either.Either<unknown, Codec.CodecError>
  try {
    result = decode()
  } catch (e) {
    return assert.fail(`decode threw instead of returning a CodecError ${label}: ${String(e).slice(0, 200)}`)
  }
  if (Either.isRight(result)) return assert.fail(`garbage decoded ${label}`)
  assert.instanceOf(result.left, Codec.CodecError)
  assert.strictEqual(result.left._tag, "CodecError")
  assert.include(["TooLarge", "Malformed"], result.left.reason)
  return result.left
}

/** Every decoder of the module, applied to one text. */
const allDecoders = (text: string): ReadonlyArray<readonly [string, () => Either.Either<unknown, Codec.CodecError>]> => [
  ["decode", () => Codec.decode(text)],
  ["decodeSession", () => Codec.decodeSession(text)]
]

const sessionEnvelope = (data: string) =>
  `{"v":1,"type":"session","key":"k","tokenKey":"t","createdAt":0,"idIssuedAt":0,"lastAccessAt":0,"userId":null,"ip":null,"userAgentHash":null,"data":${data},"version":0,"authenticatedAt":null,"persistent":null}`

describe("Codec round trips", () => {
  it.prop("invariant 9: codec — decode(encode(s)) deep-equals s for arbitrary sessions", { s: arbSession }, ({ s }) => {
    const text = Codec.encode(s)
    const back = Codec.decode(text)
    assert.isTrue(Either.isRight(back), text)
    const r = Either.getOrThrow(back)
    assert.isTrue(Session.isSession(r))
    assertEquivalent(r, s)
    // The same through the session-only functions and the object form (JSON columns).
    assertEquivalent(Either.getOrThrow(Codec.decodeSession(Codec.encodeSession(s))), s)
    assertEquivalent(Either.getOrThrow(Codec.decodeSessionUnknown(JSON.parse(JSON.stringify(Codec.encodeSessionObject(s))))), s)
    // Stable: encoding the decoded value gives the same text.
    assert.strictEqual(Codec.encode(r), text)
    assert.strictEqual(Codec.encodeSession(s), text)
  }, RUNS)

  it.prop("invariant 9: codec — decode(encode(r)) deep-equals r for arbitrary redirects", { r: arbRedirect }, ({ r }) => {
    const text = Codec.encode(r)
    const back = Either.getOrThrow(Codec.decode(text))
    assert.isTrue(Session.isRedirect(back))
    assertEquivalent(back, r)
    assert.strictEqual(Codec.encode(back), text)
    // A redirect is not a session.
    expectCodecError(() => Codec.decodeSession(text), "(redirect as session)")
  }, RUNS)

  it("the stored form is versioned JSON with no Option wrappers", () => {
    const s = Session.set(
      Session.start({ key: "k", tokenKey: "t", now: 5, client: Session.client({ ip: "10.0.0.1" }) }),
      "cart",
      [1, "two", { three: null }]
    )
    const json = JSON.parse(Codec.encode(Session.logIn(s, "u1", { now: 7, persistent: true })))
    assertEquivalent(json, {
      v: Codec.FORMAT_VERSION,
      type: "session",
      key: "k",
      tokenKey: "t",
      createdAt: 5,
      idIssuedAt: 5,
      lastAccessAt: 5,
      userId: "u1",
      ip: "10.0.0.1",
      userAgentHash: null,
      data: { cart: [1, "two", { three: null }] },
      version: 0,
      authenticatedAt: 7,
      persistent: true
    })
  })

  it("invariant 9: codec — a data key named __proto__ survives a round trip and decoding never replaces a prototype", () => {
    // fast-check generates "__proto__" keys on purpose; session data may hold user-supplied JSON.
    const s = Session.set(
      Session.start({ key: "k", tokenKey: "t", now: 0, client: Session.client() }),
      "__proto__",
      { isAdmin: true }
    )
    assert.isTrue(Object.prototype.hasOwnProperty.call(s.data, "__proto__"))
    const back = Either.getOrThrow(Codec.decode(Codec.encode(s))) as Session.Session
    assertEquivalent(Session.get(back, "__proto__"), Option.some({ isAdmin: true }))
    // A stored record written by anyone (another version, another process) must not set the
    // prototype of the decoded data objects.
    const stored = Codec.decode(sessionEnvelope(`{"__proto__":{"isAdmin":true},"nested":{"__proto__":[1]}}`))
    const decoded = Either.getOrThrow(stored) as Session.Session
    assert.strictEqual(Object.getPrototypeOf(decoded.data), Object.prototype, "the data object got a foreign prototype")
    assert.isUndefined((decoded.data as Record<string, unknown>)["isAdmin"], "an inherited isAdmin appeared in the data")
    assertEquivalent(Object.keys(decoded.data).sort(), ["__proto__", "nested"])
  })
})

describe("Codec garbage: always a typed CodecError, never a throw", () => {
  it.prop("invariant 9: codec — arbitrary strings", { text: fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.json()) }, ({ text }) => {
    for (const [name, f] of allDecoders(text)) expectCodecError(f, name)
  }, RUNS)

  it.prop("invariant 9: codec — arbitrary JSON values, stringified", { value: arbJsonValueAny }, ({ value }) => {
    const text = JSON.stringify(value)
    for (const [name, f] of allDecoders(text)) expectCodecError(f, name)
  }, RUNS)

  it.prop("invariant 9: codec — arbitrary values given to decodeSessionUnknown", { value: fc.anything() }, ({ value }) => {
    expectCodecError(() => Codec.decodeSessionUnknown(value))
  }, RUNS)

  it("invariant 9: codec — a value that is not plain data (a throwing getter, a revoked proxy) given to decodeSessionUnknown", () => {
    const throwing = Object.defineProperty({}, "version", {
      enumerable: true,
      get() {
        throw new Error("boom")
      }
    })
    const { proxy, revoke } = Proxy.revocable({}, {})
    revoke()
    for (const value of [throwing, proxy]) expectCodecError(() => Codec.decodeSessionUnknown(value))
  })

  it.prop(
    "invariant 9: codec — every strict prefix of a valid encoding",
    { record: arbTokenRecord, cut: fc.nat() },
    ({ cut, record }) => {
      const text = Codec.encode(record)
      const prefix = text.slice(0, cut % text.length)
      for (const [name, f] of allDecoders(prefix)) expectCodecError(f, `${name} of ${JSON.stringify(prefix)}`)
    },
    RUNS
  )

  it.prop(
    "invariant 9: codec — a wrong or missing version",
    { record: arbTokenRecord, v: fc.oneof(fc.constantFrom(0, 2, -1, 1.5, "1", "v1", null, true, [1], { v: 1 }), fc.integer().filter((n) => n !== 1)), drop: fc.boolean() },
    ({ drop, record, v }) => {
      const obj = JSON.parse(Codec.encode(record)) as Record<string, unknown>
      if (drop) delete obj["v"]
      else obj["v"] = v
      expectCodecError(() => Codec.decode(JSON.stringify(obj)))
    },
    RUNS
  )

  // What each stored field accepts, written from the format, not from the codec.
  const isString = (x: unknown) => typeof x === "string"
  const isTime = (x: unknown) => typeof x === "number" && Number.isFinite(x)
  const isNullableString = (x: unknown) => x === null || typeof x === "string"
  const isJsonObject = (x: unknown) => typeof x === "object" && x !== null && !Array.isArray(x)
  const sessionFields: Record<string, (x: unknown) => boolean> = {
    v: (x) => x === 1,
    type: (x) => x === "session",
    key: isString,
    tokenKey: isString,
    createdAt: isTime,
    idIssuedAt: isTime,
    lastAccessAt: isTime,
    userId: isNullableString,
    ip: isNullableString,
    userAgentHash: isNullableString,
    data: isJsonObject,
    version: (x) => typeof x === "number" && Number.isInteger(x)
  }
  const redirectFields: Record<string, (x: unknown) => boolean> = {
    v: (x) => x === 1,
    type: (x) => x === "redirect",
    tokenKey: isString,
    sessionKey: isString,
    rotatedAt: isTime,
    expiresAt: isTime,
    ip: isNullableString,
    userAgentHash: isNullableString,
    successorKey: isString,
    sealedSuccessor: isString
  }

  it.prop(
    "invariant 9: codec — a field of the wrong type, a missing field, or an extra field",
    {
      record: arbTokenRecord,
      pick: fc.nat(),
      value: fc.oneof(arbJsonValueAny, fc.constantFrom(null, 0, 1.5, "", "x", true, [], {}, [null], { a: 1 })),
      mode: fc.constantFrom("wrongType" as const, "missing" as const, "extra" as const),
      extraKey: fc.string({ minLength: 1, maxLength: 10 })
    },
    ({ extraKey, mode, pick, record, value }) => {
      const fields = Session.isSession(record) ? sessionFields : redirectFields
      const names = Object.keys(fields)
      const name = names[pick % names.length]!
      const obj = JSON.parse(Codec.encode(record)) as Record<string, unknown>
      switch (mode) {
        case "wrongType":
          if (fields[name]!(value)) return // the value happens to be valid for this field
          obj[name] = value
          break
        case "missing":
          delete obj[name]
          break
        case "extra":
          if (extraKey in fields) return
          obj[extraKey] = value
          break
      }
      expectCodecError(() => Codec.decode(JSON.stringify(obj)), `${mode} ${name}`)
    },
    RUNS
  )

  it("invariant 9: codec — a data value that is not JSON-safe, and a session whose type says redirect", () => {
    for (const text of [
      sessionEnvelope("[]"),
      sessionEnvelope("null"),
      sessionEnvelope("\"x\""),
      sessionEnvelope("{\"a\":1e400}"), // Infinity after parsing
      sessionEnvelope("{}").replace("\"session\"", "\"redirect\""),
      sessionEnvelope("{}").replace("\"version\":0", "\"version\":0.5"),
      sessionEnvelope("{}").replace("\"createdAt\":0", "\"createdAt\":\"0\""),
      // The recent-login and remember-me fields are required (null when unset) and typed.
      sessionEnvelope("{}").replace(",\"authenticatedAt\":null", ""),
      sessionEnvelope("{}").replace(",\"persistent\":null", ""),
      sessionEnvelope("{}").replace("\"authenticatedAt\":null", "\"authenticatedAt\":\"0\""),
      sessionEnvelope("{}").replace("\"authenticatedAt\":null", "\"authenticatedAt\":1e400"),
      sessionEnvelope("{}").replace("\"persistent\":null", "\"persistent\":\"yes\"")
    ]) {
      for (const [name, f] of allDecoders(text)) expectCodecError(f, `${name}: ${text}`)
    }
    // And the envelope itself is valid, so the cases above fail for the reason given.
    assert.isTrue(Either.isRight(Codec.decode(sessionEnvelope("{}"))))
  })

  it("invariant 9: codec — a 2 MB input is refused as TooLarge before parsing", () => {
    const garbage = "x".repeat(2 * 1024 * 1024)
    for (const [name, f] of allDecoders(garbage)) assert.strictEqual(expectCodecError(f, name).reason, "TooLarge")
    const hugeButValid = sessionEnvelope(JSON.stringify({ blob: "y".repeat(2 * 1024 * 1024) }))
    for (const [name, f] of allDecoders(hugeButValid)) assert.strictEqual(expectCodecError(f, name).reason, "TooLarge")
    const hugeArray = `[${"0,".repeat(1024 * 1024)}0]`
    for (const [name, f] of allDecoders(hugeArray)) assert.strictEqual(expectCodecError(f, name).reason, "TooLarge")
  })

  it("invariant 9: codec — special inputs: empty, whitespace, BOM, lone surrogates, non-strings", () => {
    for (const text of ["", " ", "\uFEFF{}", "\uD800", "null", "true", "0", "\"session\"", "[]", "{}", "{\"v\":1}", "[[[[[[[[[[]]]]]]]]]]"]) {
      for (const [name, f] of allDecoders(text)) expectCodecError(f, `${name}: ${JSON.stringify(text)}`)
    }
    for (const value of [undefined, null, 42, {}, [], Symbol.for("x"), () => 1]) {
      expectCodecError(() => Codec.decode(value as unknown as string), String(typeof value))
    }
  })

  it("invariant 9: codec — deeply nested data (a few kilobytes) is a CodecError, not a stack overflow", () => {
    // 20,000 levels are 40 kB of text, far below the 1 MiB limit.
    for (const depth of [5_000, 20_000, 200_000]) {
      const arrays = sessionEnvelope(`{"x":${"[".repeat(depth)}${"]".repeat(depth)}}`)
      const objects = sessionEnvelope(`${"{\"a\":".repeat(depth)}1${"}".repeat(depth)}`)
      for (const text of [arrays, objects]) {
        for (const [name, f] of allDecoders(text)) expectCodecError(f, `${name} at depth ${depth}`)
      }
    }
  })
})

describe("Codec: the session decoders refuse excess properties (mutation testing)", () => {
  it("decodeSession and decodeSessionUnknown refuse a stored session with one field too many", () => {
    fc.assert(
      fc.property(arbSession, fc.constantFrom("extra", "__proto__x", "Data"), (session, key) => {
        const object: Record<string, unknown> = { ...Codec.encodeSessionObject(session), [key]: 1 }
        const unknown = Codec.decodeSessionUnknown(object)
        assert.isTrue(Either.isLeft(unknown), `decodeSessionUnknown accepted ${key}`)
        if (Either.isLeft(unknown)) assert.strictEqual(unknown.left.reason, "Malformed")
        const text = Codec.decodeSession(JSON.stringify(object))
        assert.isTrue(Either.isLeft(text), `decodeSession accepted ${key}`)
        // and without the extra field both decode the session
        assert.isTrue(Either.isRight(Codec.decodeSessionUnknown(Codec.encodeSessionObject(session))))
      }),
      { numRuns: numRuns(100) }
    )
  })
})

describe("Codec: error messages stay readable and bounded (mutation testing)", () => {
  it("a Malformed message is cut at 2000 characters with '…'; a short one is whole; not-JSON says so", () => {
    fc.assert(
      fc.property(arbSession, (session) => {
        const long = Codec.decodeSessionUnknown({ ...Codec.encodeSessionObject(session), ["k".repeat(5000)]: 1 })
        assert.isTrue(Either.isLeft(long))
        if (Either.isLeft(long)) {
          assert.strictEqual(long.left.message.length, 2001)
          assert.isTrue(long.left.message.endsWith("…"))
        }
        const short = Codec.decodeSessionUnknown({ ...Codec.encodeSessionObject(session), extra: 1 })
        assert.isTrue(Either.isLeft(short))
        if (Either.isLeft(short)) {
          assert.include(short.left.message, "extra")
          assert.isFalse(short.left.message.endsWith("…"))
          assert.isBelow(short.left.message.length, 2000)
        }
      }),
      { numRuns: numRuns(20) }
    )
    const notJson = Codec.decode("{nope")
    assert.isTrue(Either.isLeft(notJson))
    if (Either.isLeft(notJson)) assert.match(notJson.left.message, /^not JSON: \S/)
    const tooLarge = Codec.decode(" ".repeat(Codec.MAX_ENCODED_LENGTH + 1))
    assert.isTrue(Either.isLeft(tooLarge))
    if (Either.isLeft(tooLarge)) {
      assert.strictEqual(tooLarge.left.reason, "TooLarge")
      assert.strictEqual(tooLarge.left.message, `${Codec.MAX_ENCODED_LENGTH + 1} characters exceed ${Codec.MAX_ENCODED_LENGTH}`)
    }
  })

  it("a message of exactly 2000 characters is whole, one more is cut", () => {
    fc.assert(
      fc.property(arbSession, (session) => {
        const messageWithKey = (length: number) => {
          const result = Codec.decodeSessionUnknown({ ...Codec.encodeSessionObject(session), ["k".repeat(length)]: 1 })
          return Either.isLeft(result) ? result.left.message : assert.fail("an extra key decoded")
        }
        // The excess key appears once in the message: its length grows one for one with the key's.
        const base = messageWithKey(1).length - 1
        const exact = messageWithKey(2000 - base)
        assert.strictEqual(exact.length, 2000)
        assert.isFalse(exact.endsWith("…"), "a 2000-character message was cut")
        const over = messageWithKey(2001 - base)
        assert.strictEqual(over.length, 2001)
        assert.isTrue(over.endsWith("…"))
      }),
      { numRuns: numRuns(20) }
    )
  })

  it("a text of exactly MAX_ENCODED_LENGTH characters is parsed, not refused as TooLarge", () => {
    const exact = `"${"a".repeat(Codec.MAX_ENCODED_LENGTH - 2)}"`
    assert.strictEqual(exact.length, Codec.MAX_ENCODED_LENGTH)
    for (const [name, f] of allDecoders(exact)) assert.strictEqual(expectCodecError(f, name).reason, "Malformed", name)
    for (const [name, f] of allDecoders(` ${exact}`)) assert.strictEqual(expectCodecError(f, name).reason, "TooLarge", name)
  })

  it("a value that is not a string (from an untyped caller) is Malformed, saying so", () => {
    for (const value of [42, null, undefined, {}, ["{}"]]) {
      for (const [name, f] of allDecoders(value as unknown as string)) {
        const error = expectCodecError(f, name)
        assert.strictEqual(error.reason, "Malformed", name)
        assert.strictEqual(error.message, "not a string", name)
      }
    }
  })
})
