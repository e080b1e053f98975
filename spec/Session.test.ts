import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Option, pipe, Pipeable, Schema } from "effect"
import * as Codec from "../src/Codec.js"
import { seal, tokenKey as tokenKeyOf, unseal, userAgentHash } from "../src/internal/hash.js"
import * as Session from "../src/Session.js"
import * as SessionConfig from "../src/SessionConfig.js"
import {
  arbClientInput,
  assertEquivalent,
  arbConfigWithTimes,
  arbDataKey,
  arbInstant,
  arbIpBinding,
  arbIpv4Octets,
  arbIpv6Bytes,
  arbJsonData,
  arbJsonValue,
  arbSession,
  arbStoreKey,
  arbTokenPair,
  arbUserAgent,
  arbUserId,
  type ClientInput,
  configOf,
  type ConfigTimes,
  ipv4Text,
  ipv6CompressedText,
  ipv6FullText,
  isV4MappedBytes
} from "../src/internal/testing/arbitraries.js"
import { numRuns } from "./helpers/runs.js"

const RUNS = { fastCheck: { numRuns: numRuns(1000) } }

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Whether a decision hands the session out (as is, or after rotation). */
const handsOut = (d: Session.Decision): boolean => d._tag === "Valid" || d._tag === "Rotate"

/** A session bound to `client`, born at `createdAt`, with the given token and access times. */
const sessionAt = (p: {
  readonly key: string
  readonly tokenKey: string
  readonly client: ClientInput
  readonly createdAt: number
  readonly idIssuedAt: number
  readonly lastAccessAt: number
  readonly data?: { readonly [key: string]: Session.Json }
  readonly userId?: string | undefined
}): Session.Session => {
  const s = Session.start({ key: p.key, tokenKey: p.tokenKey, now: p.createdAt, client: Session.client(p.client) })
  return new Session.Session({
    ...s,
    idIssuedAt: p.idIssuedAt,
    lastAccessAt: p.lastAccessAt,
    data: p.data ?? {},
    userId: Option.fromNullable(p.userId)
  })
}

/** Session parts with arbitrary times (in any order: the safety rules must hold whatever they are). */
const arbSessionParts = fc.record({
  key: arbStoreKey,
  tokenKey: arbStoreKey,
  client: arbClientInput,
  createdAt: arbInstant,
  issuedOffset: fc.oneof(fc.integer({ min: -1_000_000, max: 2_000_000_000 }), fc.integer({ min: 0, max: 10 })),
  accessOffset: fc.oneof(fc.integer({ min: -1_000_000, max: 2_000_000_000 }), fc.integer({ min: 0, max: 10 })),
  data: arbJsonData,
  userId: fc.option(arbUserId, { nil: undefined })
})

type SessionParts = typeof arbSessionParts extends fc.Arbitrary<infer A> ? A : never

const sessionOfParts = (p: SessionParts): Session.Session =>
  sessionAt({
    ...p,
    idIssuedAt: p.createdAt + p.issuedOffset,
    lastAccessAt: p.createdAt + p.accessOffset
  })

/** Where `now` lies: close to one of the deadlines (to hit the boundaries) or anywhere. */
const arbNowChoice = fc.oneof(
  fc.tuple(fc.constantFrom("idle" as const, "absolute" as const, "rotation" as const), fc.integer({ min: -3, max: 3 })),
  fc.tuple(fc.constant("free" as const), fc.integer({ min: -100_000_000, max: 3_000_000_000 }))
)

type NowChoice = typeof arbNowChoice extends fc.Arbitrary<infer A> ? A : never

const nowOf = ([where, delta]: NowChoice, s: Session.Session, t: ConfigTimes): number => {
  switch (where) {
    case "idle":
      return s.lastAccessAt + t.idleTimeout + delta
    case "absolute":
      return s.createdAt + t.absoluteTimeout + delta
    case "rotation":
      return s.idIssuedAt + t.idRotationInterval + delta
    case "free":
      return s.lastAccessAt + delta
  }
}

const fixedClient: ClientInput = { ip: "203.0.113.7", userAgent: "Mozilla/5.0 test" }

// ---------------------------------------------------------------------------------------------
// Invariants 1–3: idle, absolute, rotation
// ---------------------------------------------------------------------------------------------

describe("Session.decide: timing invariants", () => {
  it.prop(
    "invariant 1: idle — no Valid/Rotate once now - lastAccessAt >= idleTimeout, and Expired idle exactly then (unless absolute-expired)",
    { ct: arbConfigWithTimes, parts: arbSessionParts, choice: arbNowChoice, other: arbClientInput, sameClient: fc.boolean() },
    ({ choice, ct, other, parts, sameClient }) => {
      const s = sessionOfParts(parts)
      const now = nowOf(choice, s, ct.times)
      const client = Session.client(sameClient ? parts.client : other)
      const d = Session.decide(Option.some(s), { now, client, config: ct.config })
      const idle = now - s.lastAccessAt >= ct.times.idleTimeout
      const absolute = now - s.createdAt >= ct.times.absoluteTimeout
      if (idle) assert.isFalse(handsOut(d), `handed out ${d._tag} after ${now - s.lastAccessAt} ms idle`)
      const expiredIdle = d._tag === "Expired" && d.reason === "idle"
      if (!absolute) assert.strictEqual(expiredIdle, idle)
      if (expiredIdle) {
        assert.isTrue(idle)
        assert.strictEqual(d.record, s)
      }
      // With the client the session is bound to, a fresh session is handed out.
      if (sameClient && !idle && !absolute) assert.isTrue(handsOut(d), `a fresh session gave ${d._tag}`)
    },
    RUNS
  )

  it.prop(
    "invariant 2: absolute — no Valid/Rotate at or after createdAt + absoluteTimeout, whatever lastAccessAt",
    { ct: arbConfigWithTimes, parts: arbSessionParts, delta: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.nat()), client: arbClientInput },
    ({ client, ct, delta, parts }) => {
      const s = sessionOfParts(parts)
      const now = s.createdAt + ct.times.absoluteTimeout + delta
      const d = Session.decide(Option.some(s), { now, client: Session.client(client), config: ct.config })
      assert.isFalse(handsOut(d), `handed out ${d._tag} ${delta} ms after the absolute deadline`)
      assert.strictEqual(d._tag, "Expired")
      if (d._tag === "Expired") assert.include(["absolute", "idle"], d.reason)
      if (d._tag === "Expired" && now - s.lastAccessAt < ct.times.idleTimeout) assert.strictEqual(d.reason, "absolute")
    },
    RUNS
  )

  it.prop(
    "invariant 2: absolute — however often a session is touched and rotated, it is never handed out at or after createdAt + absoluteTimeout",
    {
      ct: arbConfigWithTimes,
      born: arbInstant,
      gaps: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 40 }),
      absoluteInIdles: fc.double({ min: 0, max: 20, noNaN: true }),
      overshoot: fc.integer({ min: 0, max: 5 })
    },
    ({ absoluteInIdles, born, ct, gaps, overshoot }) => {
      // An absolute timeout within reach of the sequence: up to 20 idle timeouts.
      const times = { ...ct.times, absoluteTimeout: Math.max(1, Math.floor(absoluteInIdles * ct.times.idleTimeout)) }
      const config = configOf(times)
      const client = Session.client(fixedClient)
      let s = Session.start({ key: "k", tokenKey: "t0", now: born, client })
      let now = born
      let n = 0
      for (const g of gaps) {
        // Each gap is at most idleTimeout - touchInterval, so only the absolute deadline can end the session.
        now += Math.floor(g * (times.idleTimeout - times.touchInterval))
        const d = Session.decide(Option.some(s), { now, client, config })
        const pastAbsolute = now - born >= times.absoluteTimeout
        assert.strictEqual(handsOut(d), !pastAbsolute, `at +${now - born} ms: ${d._tag}`)
        if (pastAbsolute) break
        if (d._tag === "Rotate") s = Session.rotate(s, { tokenKey: `t${++n}`, sealedSuccessor: "x", now, config }).session
        s = Session.touch(s, now, config)
        assert.strictEqual(s.createdAt, born)
      }
      const end = born + times.absoluteTimeout + overshoot
      const d = Session.decide(Option.some(s), { now: Math.max(end, now), client, config })
      assert.isFalse(handsOut(d))
      assert.strictEqual(d._tag, "Expired")
    },
    RUNS
  )

  it.prop(
    "invariant 3: rotation — a token whose idIssuedAt is >= idRotationInterval old never yields Valid",
    { ct: arbConfigWithTimes, parts: arbSessionParts, choice: arbNowChoice, other: arbClientInput, sameClient: fc.boolean() },
    ({ choice, ct, other, parts, sameClient }) => {
      const s = sessionOfParts(parts)
      const now = nowOf(choice, s, ct.times)
      const d = Session.decide(Option.some(s), { now, client: Session.client(sameClient ? parts.client : other), config: ct.config })
      const due = now - s.idIssuedAt >= ct.times.idRotationInterval
      if (due) assert.notStrictEqual(d._tag, "Valid")
      const expired = now - s.lastAccessAt >= ct.times.idleTimeout || now - s.createdAt >= ct.times.absoluteTimeout
      if (sameClient && !expired) assert.strictEqual(d._tag, due ? "Rotate" : "Valid")
      if (d._tag === "Rotate") {
        assert.isTrue(due)
        assert.strictEqual(d.session, s)
      }
    },
    RUNS
  )

  it.prop(
    "invariant 3: rotation — after Session.rotate the session has the new tokenKey and idIssuedAt = now, and is not due again",
    { ct: arbConfigWithTimes, parts: arbSessionParts, newKey: arbStoreKey, delta: fc.integer({ min: -5, max: 1_000_000_000 }) },
    ({ ct, delta, newKey, parts }) => {
      const s = sessionOfParts(parts)
      const now = s.idIssuedAt + ct.times.idRotationInterval + delta
      const options = { tokenKey: newKey, sealedSuccessor: "sealed", now, config: ct.config }
      const r = Session.rotate(s, options)
      assert.strictEqual(r.session.tokenKey, newKey)
      assert.strictEqual(r.session.idIssuedAt, now)
      assertEquivalent(pipe(s, Session.rotate(options)), r)
      const d = Session.decide(Option.some(r.session), { now, client: Session.client(parts.client), config: ct.config })
      assert.notStrictEqual(d._tag, "Rotate")
      const absolute = now - s.createdAt >= ct.times.absoluteTimeout
      assert.strictEqual(d._tag, absolute ? "Expired" : "Valid")
    },
    RUNS
  )
})

// ---------------------------------------------------------------------------------------------
// Invariants 4 and 5: grace, no loss
// ---------------------------------------------------------------------------------------------

describe("Session.rotate: grace and no loss", () => {
  it.prop(
    "invariant 4: grace — the Redirect from rotate at t resolves iff now < t + gracePeriod, else Expired grace",
    {
      ct: arbConfigWithTimes,
      session: arbSession,
      t: arbInstant,
      delta: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -2_000_000_000, max: 2_000_000_000 })),
      client: arbClientInput
    },
    ({ client, ct, delta, session, t }) => {
      const { redirect } = Session.rotate(session, { tokenKey: "new", sealedSuccessor: "sealed", now: t, config: ct.config })
      const now = t + ct.times.gracePeriod + delta
      const d = Session.decide(Option.some(redirect), { now, client: Session.client(client), config: ct.config })
      if (now < t + ct.times.gracePeriod) {
        assert.strictEqual(d._tag, "Follow")
        if (d._tag === "Follow") assert.strictEqual(d.redirect, redirect)
      } else {
        assert.strictEqual(d._tag, "Expired")
        if (d._tag === "Expired") {
          assert.strictEqual(d.reason, "grace")
          assert.strictEqual(d.record, redirect)
        }
      }
      assert.strictEqual(redirect.rotatedAt, t)
      assert.strictEqual(redirect.tokenKey, session.tokenKey)
      assert.strictEqual(redirect.sessionKey, session.key)
    },
    RUNS
  )

  it.prop(
    "invariant 4: grace — unseal(redirect.sealedSuccessor, oldToken) gives the new token whose key is successorKey; a wrong old token does not",
    { ct: arbConfigWithTimes, session: arbSession, tokens: arbTokenPair, wrong: arbTokenPair, t: arbInstant, hashed: fc.boolean() },
    ({ ct, hashed, session, t, tokens: [oldToken, newToken], wrong: [w1, w2] }) => {
      const wrongOld = w1 !== oldToken ? w1 : w2
      const s = new Session.Session({ ...session, tokenKey: tokenKeyOf(oldToken, hashed) })
      const { redirect, session: next } = Session.rotate(s, {
        tokenKey: tokenKeyOf(newToken, hashed),
        sealedSuccessor: seal(newToken, oldToken),
        now: t,
        config: ct.config
      })
      assert.strictEqual(redirect.tokenKey, tokenKeyOf(oldToken, hashed))
      assert.strictEqual(next.tokenKey, redirect.successorKey)
      const opened = unseal(redirect.sealedSuccessor, oldToken)
      assert.strictEqual(opened, newToken)
      assert.strictEqual(tokenKeyOf(opened, hashed), redirect.successorKey)
      // The sealed value is not the token itself.
      assert.notStrictEqual(redirect.sealedSuccessor, newToken)
      const forged = unseal(redirect.sealedSuccessor, wrongOld)
      assert.notStrictEqual(forged, newToken)
      assert.notStrictEqual(tokenKeyOf(forged, hashed), redirect.successorKey)
    },
    RUNS
  )

  type DataOp =
    | { readonly op: "set"; readonly key: string; readonly value: Session.Json }
    | { readonly op: "remove"; readonly key: string }
    | { readonly op: "pop"; readonly key: string }

  const arbSmallKey = fc.constantFrom("a", "b", "c", "toString", "")
  const arbDataOp: fc.Arbitrary<DataOp> = fc.oneof(
    fc.record({ op: fc.constant("set" as const), key: arbSmallKey, value: arbJsonValue }),
    fc.record({ op: fc.constant("remove" as const), key: arbSmallKey }),
    fc.record({ op: fc.constant("pop" as const), key: arbSmallKey })
  )

  const applyOp = (s: Session.Session, o: DataOp): readonly [Option.Option<Session.Json>, Session.Session] => {
    switch (o.op) {
      case "set":
        return [Option.none(), Session.set(s, o.key, o.value)]
      case "remove":
        return [Option.none(), Session.remove(s, o.key)]
      case "pop":
        return Session.pop(s, o.key)
    }
  }

  it.prop(
    "invariant 5: no loss — rotate keeps key, data, userId, createdAt and binding; data ops after rotation behave as on the original",
    {
      ct: arbConfigWithTimes,
      session: arbSession,
      user: fc.option(arbUserId, { nil: undefined }),
      newKey: arbStoreKey,
      now: arbInstant,
      ops: fc.array(arbDataOp, { maxLength: 12 })
    },
    ({ ct, newKey, now, ops, session, user }) => {
      const s = new Session.Session({ ...session, userId: Option.fromNullable(user) })
      const { redirect, session: r } = Session.rotate(s, { tokenKey: newKey, sealedSuccessor: "x", now, config: ct.config })
      assert.strictEqual(r.key, s.key)
      assert.strictEqual(redirect.sessionKey, s.key)
      assertEquivalent(r.data, s.data)
      assertEquivalent(r.userId, s.userId)
      assert.strictEqual(r.createdAt, s.createdAt)
      assertEquivalent(r.ip, s.ip)
      assertEquivalent(r.userAgentHash, s.userAgentHash)
      assert.strictEqual(r.version, s.version)
      let a = s
      let b = r
      for (const o of ops) {
        const [va, na] = applyOp(a, o)
        const [vb, nb] = applyOp(b, o)
        assertEquivalent(vb, va)
        a = na
        b = nb
        assertEquivalent(b.data, a.data)
      }
      assert.strictEqual(b.key, a.key)
      assert.strictEqual(b.createdAt, a.createdAt)
    },
    RUNS
  )
})

// ---------------------------------------------------------------------------------------------
// Invariant 6: anomaly
// ---------------------------------------------------------------------------------------------

/** An address described by its parts, so the expected decision is computed from the parts. */
type IpSpec =
  | { readonly family: 4; readonly octets: ReadonlyArray<number>; readonly form: "dotted" | "mapped" | "mappedHex" }
  | { readonly family: 6; readonly bytes: ReadonlyArray<number>; readonly form: "full" | "compressed" | "upper" | "bracketed" }
  | undefined

const textOf = (ip: IpSpec): string | undefined => {
  if (ip === undefined) return undefined
  if (ip.family === 4) {
    const [a, b, c, d] = ip.octets as [number, number, number, number]
    switch (ip.form) {
      case "dotted":
        return ipv4Text(ip.octets)
      case "mapped":
        return `::ffff:${ipv4Text(ip.octets)}`
      case "mappedHex":
        return `::ffff:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
    }
  }
  switch (ip.form) {
    case "full":
      return ipv6FullText(ip.bytes)
    case "compressed":
      return ipv6CompressedText(ip.bytes)
    case "upper":
      return ipv6FullText(ip.bytes).toUpperCase()
    case "bracketed":
      return `[${ipv6CompressedText(ip.bytes)}]`
  }
}

const bigOf = (bytes: ReadonlyArray<number>): bigint => bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n)

/** The expected IP verdict, from the parts: whether the change is rejected. */
const ipRejected = (binding: false | SessionConfig.IpBinding, before: IpSpec, after: IpSpec): boolean => {
  if (binding === false) return false
  if (before === undefined || after === undefined) return before !== after
  if (before.family !== after.family) return true
  if (before.family === 4 && after.family === 4) {
    // The top `ipv4Prefix` bits of the 32-bit integers must stay.
    const shift = BigInt(32 - binding.ipv4Prefix)
    return bigOf(before.octets) >> shift !== bigOf(after.octets) >> shift
  }
  if (before.family === 6 && after.family === 6) {
    const shift = BigInt(128 - binding.ipv6Prefix)
    return bigOf(before.bytes) >> shift !== bigOf(after.bytes) >> shift
  }
  return true
}

const arbV4Form = fc.constantFrom("dotted" as const, "mapped" as const, "mappedHex" as const)
const arbV6Form = fc.constantFrom("full" as const, "compressed" as const, "upper" as const, "bracketed" as const)

/** Two IPv4 octet quads sharing their first `shared` octets. */
const arbIpv4Pair = fc
  .record({ a: arbIpv4Octets, tail: arbIpv4Octets, shared: fc.integer({ min: 0, max: 4 }) })
  .map(({ a, shared, tail }) => [a, [...a.slice(0, shared), ...tail.slice(shared)]] as const)

/** Two IPv6 byte strings sharing (at least) their first `shared` bits and differing at bit `shared`. */
const arbIpv6Pair = fc
  .record({ a: arbIpv6Bytes, noise: fc.uint8Array({ minLength: 16, maxLength: 16 }), shared: fc.integer({ min: 0, max: 128 }) })
  .map(({ a, noise, shared }) => {
    const b = Array.from(a)
    if (shared < 128) {
      const byte = shared >> 3
      const bit = 7 - (shared & 7)
      b[byte] = (a[byte]! ^ (1 << bit)) & 0xff
      const keep = (0xff << (bit + 1)) & 0xff
      b[byte] = (b[byte]! & (keep | (1 << bit))) | (noise[byte]! & ((1 << bit) - 1))
      for (let i = byte + 1; i < 16; i++) b[i] = noise[i]!
    }
    return [Array.from(a), b] as const
  })
  .filter(([, b]) => !isV4MappedBytes(b))

const arbIpSpecPair: fc.Arbitrary<readonly [IpSpec, IpSpec]> = fc.oneof(
  fc.tuple(arbIpv4Pair, arbV4Form, arbV4Form).map(([[a, b], fa, fb]) =>
    [{ family: 4, octets: a, form: fa }, { family: 4, octets: b, form: fb }] as const
  ),
  fc.tuple(arbIpv6Pair, arbV6Form, arbV6Form).map(([[a, b], fa, fb]) =>
    [{ family: 6, bytes: a, form: fa }, { family: 6, bytes: b, form: fb }] as const
  ),
  // A change of family, an address that appears or disappears, or none at all.
  fc.tuple(
    fc.option(fc.oneof(
      fc.tuple(arbIpv4Octets, arbV4Form).map(([o, form]): IpSpec => ({ family: 4, octets: o, form })),
      fc.tuple(arbIpv6Bytes, arbV6Form).map(([b, form]): IpSpec => ({ family: 6, bytes: Array.from(b), form }))
    ), { nil: undefined }),
    fc.option(fc.oneof(
      fc.tuple(arbIpv4Octets, arbV4Form).map(([o, form]): IpSpec => ({ family: 4, octets: o, form })),
      fc.tuple(arbIpv6Bytes, arbV6Form).map(([b, form]): IpSpec => ({ family: 6, bytes: Array.from(b), form }))
    ), { nil: undefined })
  )
)

const bindingFor = (ip: string | undefined, userAgent: string | undefined): Session.Binding =>
  Session.bindingOf(Session.client({ ip, userAgent }))

describe("Session.detectAnomaly and decide: invariant 6", () => {
  it.prop(
    "invariant 6: anomaly — IPv4 octet prefixes (rivo/sessions' levels 2–4) and off: a change inside the accepted prefix never gives an anomaly, a change outside always does",
    { octets: fc.integer({ min: 0, max: 3 }), off: fc.boolean(), pair: arbIpv4Pair },
    ({ octets, off, pair: [a, b] }) => {
      const config = configOf({ ipBinding: off ? false : { ipv4Prefix: octets * 8 }, acceptChangingUserAgent: true })
      let rejected = false
      if (!off) for (let i = 0; i < octets; i++) rejected ||= a[i] !== b[i]
      const got = Session.detectAnomaly(bindingFor(ipv4Text(a), undefined), Session.client({ ip: ipv4Text(b) }), config)
      assertEquivalent(got, rejected ? Option.some("ip") : Option.none())
    },
    RUNS
  )

  it.prop(
    "invariant 6: anomaly — IPv4 with ipv4Prefix 0..32: a change inside the prefix bits never gives an anomaly, outside always does",
    { prefix: fc.integer({ min: 0, max: 32 }), v6: fc.integer({ min: 0, max: 128 }), pair: arbIpv4Pair },
    ({ pair: [a, b], prefix, v6 }) => {
      const config = configOf({ ipBinding: { ipv4Prefix: prefix, ipv6Prefix: v6 }, acceptChangingUserAgent: true })
      // Independently: compare the top `prefix` bits as 32-bit integers.
      const shift = BigInt(32 - prefix)
      const rejected = bigOf(a) >> shift !== bigOf(b) >> shift
      const got = Session.detectAnomaly(bindingFor(ipv4Text(a), undefined), Session.client({ ip: ipv4Text(b) }), config)
      assertEquivalent(got, rejected ? Option.some("ip") : Option.none())
    },
    RUNS
  )

  it.prop(
    "invariant 6: anomaly — IPv6 with ipv6Prefix 0..128: a change inside the prefix bits never gives an anomaly, outside always does",
    { v4: fc.integer({ min: 0, max: 32 }), prefix: fc.integer({ min: 0, max: 128 }), pair: arbIpv6Pair, fa: arbV6Form, fb: arbV6Form },
    ({ fa, fb, pair: [a, b], prefix, v4 }) => {
      const config = configOf({ ipBinding: { ipv4Prefix: v4, ipv6Prefix: prefix }, acceptChangingUserAgent: true })
      // Independently: compare the top `prefix` bits as 128-bit integers.
      const shift = BigInt(128 - prefix)
      const rejected = bigOf(a) >> shift !== bigOf(b) >> shift
      const before = textOf({ family: 6, bytes: a, form: fa })
      const after = textOf({ family: 6, bytes: b, form: fb })
      const got = Session.detectAnomaly(bindingFor(before, undefined), Session.client({ ip: after }), config)
      assertEquivalent(got, rejected ? Option.some("ip") : Option.none())
    },
    RUNS
  )

  it.prop(
    "invariant 6: anomaly — IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged exactly as IPv4",
    { binding: arbIpBinding, pair: arbIpv4Pair, fa: arbV4Form, fb: arbV4Form },
    ({ binding, fa, fb, pair: [a, b] }) => {
      const config = configOf({ ipBinding: binding, acceptChangingUserAgent: true })
      const plain = Session.detectAnomaly(bindingFor(ipv4Text(a), undefined), Session.client({ ip: ipv4Text(b) }), config)
      const mixed = Session.detectAnomaly(
        bindingFor(textOf({ family: 4, octets: a, form: fa }), undefined),
        Session.client({ ip: textOf({ family: 4, octets: b, form: fb }) }),
        config
      )
      assertEquivalent(mixed, plain)
      assertEquivalent(mixed, ipRejected(binding, { family: 4, octets: a, form: fa }, { family: 4, octets: b, form: fb }) ? Option.some("ip") : Option.none())
    },
    RUNS
  )

  it.prop(
    "invariant 6: anomaly — a change of family, or an address that appears or disappears, is rejected whenever ipBinding is set",
    { binding: arbIpBinding, pair: arbIpSpecPair },
    ({ binding, pair: [a, b] }) => {
      const config = configOf({ ipBinding: binding, acceptChangingUserAgent: true })
      const got = Session.detectAnomaly(bindingFor(textOf(a), undefined), Session.client({ ip: textOf(b) }), config)
      assertEquivalent(got, ipRejected(binding, a, b) ? Option.some("ip") : Option.none())
    },
    RUNS
  )

  it.prop(
    "invariant 6: anomaly — a user-agent change is an anomaly iff !acceptChangingUserAgent",
    {
      accept: fc.boolean(),
      before: fc.option(arbUserAgent, { nil: undefined }),
      after: fc.option(arbUserAgent, { nil: undefined }),
      same: fc.boolean()
    },
    ({ accept, after, before, same }) => {
      const config = configOf({ acceptChangingUserAgent: accept })
      const now = same ? before : after
      const changed = before !== now
      const got = Session.detectAnomaly(bindingFor(undefined, before), Session.client({ userAgent: now }), config)
      assertEquivalent(got, changed && !accept ? Option.some("userAgent") : Option.none())
    },
    RUNS
  )

  it.prop(
    "invariant 6: anomaly — decide destroys (Anomaly, never Valid) on a rejected change and never on an accepted one",
    {
      binding: arbIpBinding,
      acceptUa: fc.boolean(),
      pair: arbIpSpecPair,
      uaBefore: fc.option(arbUserAgent, { nil: undefined }),
      uaAfter: fc.option(arbUserAgent, { nil: undefined }),
      sameUa: fc.boolean(),
      born: arbInstant,
      age: fc.nat(),
      rotationDue: fc.boolean()
    },
    ({ acceptUa, age, binding, born, pair: [a, b], rotationDue, sameUa, uaAfter, uaBefore }) => {
      const config = configOf({
        ipBinding: binding,
        acceptChangingUserAgent: acceptUa,
        idleTimeout: "1 hour",
        absoluteTimeout: "1 day",
        idRotationInterval: "5 minutes"
      })
      const ua = sameUa ? uaBefore : uaAfter
      const s = sessionAt({
        key: "k",
        tokenKey: "t",
        client: { ip: textOf(a), userAgent: uaBefore },
        createdAt: born,
        idIssuedAt: born,
        lastAccessAt: born
      })
      // Not expired: less than the idle timeout since birth; the rotation may or may not be due.
      const now = rotationDue ? born + 300_000 + (age % 3_000_000) : born + (age % 300_000)
      const d = Session.decide(Option.some(s), { now, client: Session.client({ ip: textOf(b), userAgent: ua }), config })
      const ipBad = ipRejected(binding, a, b)
      const uaBad = !acceptUa && uaBefore !== ua
      if (ipBad || uaBad) {
        assert.strictEqual(d._tag, "Anomaly")
        if (d._tag === "Anomaly") {
          assert.strictEqual(d.kind, ipBad ? "ip" : "userAgent")
          assert.strictEqual(d.session, s)
        }
      } else {
        assert.isTrue(handsOut(d), `an accepted change gave ${d._tag}`)
      }
    },
    RUNS
  )
})

// ---------------------------------------------------------------------------------------------
// The rest of the core: start, touch, data, typed data, users, binding
// ---------------------------------------------------------------------------------------------

describe("Session.start", () => {
  it.prop("starts with all clocks at now, no user, no data, version 0, and the client's binding", {
    key: arbStoreKey,
    tokenKey: arbStoreKey,
    now: arbInstant,
    client: arbClientInput
  }, ({ client, key, now, tokenKey }) => {
    const s = Session.start({ key, tokenKey, now, client: Session.client(client) })
    assert.isTrue(Session.isSession(s))
    assert.isFalse(Session.isRedirect(s))
    assert.strictEqual(s.key, key)
    assert.strictEqual(s.tokenKey, tokenKey)
    assert.strictEqual(s.createdAt, now)
    assert.strictEqual(s.idIssuedAt, now)
    assert.strictEqual(s.lastAccessAt, now)
    assert.isTrue(Option.isNone(s.userId))
    assert.isTrue(Option.isNone(s.authenticatedAt))
    assert.isTrue(Option.isNone(s.persistent))
    assertEquivalent(s.data, {})
    assert.strictEqual(s.version, 0)
    assertEquivalent(s.ip, Option.fromNullable(client.ip))
    assertEquivalent(s.userAgentHash, Option.map(Option.fromNullable(client.userAgent), userAgentHash))
    // The raw user agent is never stored.
    if (client.userAgent !== undefined && client.userAgent.length > 0) {
      assert.notStrictEqual(Option.getOrUndefined(s.userAgentHash), client.userAgent)
    }
  }, RUNS)

  it("decide on no record is Missing", () => {
    const d = Session.decide(Option.none(), { now: 0, client: Session.client(), config: SessionConfig.defaults })
    assert.strictEqual(d._tag, "Missing")
  })
})

describe("Session.touch", () => {
  it.prop(
    "moves lastAccessAt to now only once touchInterval has passed, and returns the very same value otherwise",
    { ct: arbConfigWithTimes, session: arbSession, delta: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -1_000_000, max: 2_000_000_000 })), boundary: fc.boolean() },
    ({ boundary, ct, delta, session }) => {
      const now = boundary ? session.lastAccessAt + ct.times.touchInterval + delta : session.lastAccessAt + delta
      const t = Session.touch(session, now, ct.config)
      assertEquivalent(pipe(session, Session.touch(now, ct.config)), t)
      if (now - session.lastAccessAt >= ct.times.touchInterval) {
        assert.notStrictEqual(t, session)
        assert.strictEqual(t.lastAccessAt, now)
        assertEquivalent(new Session.Session({ ...t, lastAccessAt: session.lastAccessAt }), session)
      } else {
        assert.strictEqual(t, session)
      }
    },
    RUNS
  )

  it.prop(
    "a session accessed at least every (idleTimeout - touchInterval) never idles out, though only touches are recorded",
    { ct: arbConfigWithTimes, born: arbInstant, gaps: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 30 }) },
    ({ born, ct, gaps }) => {
      const { times } = ct
      const config2 = configOf({ ...times, absoluteTimeout: Number.MAX_SAFE_INTEGER / 4, idRotationInterval: Number.MAX_SAFE_INTEGER / 4 })
      const client = Session.client(fixedClient)
      let s = Session.start({ key: "k", tokenKey: "t", now: born, client })
      let now = born
      const maxGap = times.idleTimeout - times.touchInterval
      for (const g of gaps) {
        now += Math.floor(g * maxGap)
        const d = Session.decide(Option.some(s), { now, client, config: config2 })
        assert.strictEqual(d._tag, "Valid")
        s = Session.touch(s, now, config2)
        // The recorded access is never more than touchInterval behind the real one.
        assert.isBelow(now - s.lastAccessAt, times.touchInterval)
      }
    },
    RUNS
  )
})

describe("Session data", () => {
  it.prop(
    "get/set/remove/pop behave like a map (model-based), in both dual forms",
    {
      session: arbSession,
      ops: fc.array(
        fc.oneof(
          fc.record({ op: fc.constant("set" as const), key: arbDataKey, value: arbJsonValue }),
          fc.record({ op: fc.constant("remove" as const), key: arbDataKey }),
          fc.record({ op: fc.constant("pop" as const), key: arbDataKey }),
          fc.record({ op: fc.constant("get" as const), key: arbDataKey })
        ),
        { maxLength: 20 }
      )
    },
    ({ ops, session }) => {
      const model = new Map<string, Session.Json>(Object.entries(session.data))
      let s = session
      for (const o of ops) {
        switch (o.op) {
          case "set": {
            const next = Session.set(s, o.key, o.value)
            assertEquivalent(pipe(s, Session.set(o.key, o.value)), next)
            assert.notStrictEqual(next, s)
            model.set(o.key, o.value)
            s = next
            break
          }
          case "remove": {
            const next = Session.remove(s, o.key)
            assertEquivalent(pipe(s, Session.remove(o.key)), next)
            if (!model.has(o.key)) assert.strictEqual(next, s)
            model.delete(o.key)
            s = next
            break
          }
          case "pop": {
            const [value, next] = Session.pop(s, o.key)
            assertEquivalent(pipe(s, Session.pop(o.key)), [value, next])
            assertEquivalent(value, model.has(o.key) ? Option.some(model.get(o.key)) : Option.none())
            model.delete(o.key)
            s = next
            break
          }
          case "get": {
            const value = Session.get(s, o.key)
            assertEquivalent(pipe(s, Session.get(o.key)), value)
            assertEquivalent(value, model.has(o.key) ? Option.some(model.get(o.key)) : Option.none())
            break
          }
        }
        assertEquivalent(Object.keys(s.data).sort(), [...model.keys()].sort())
      }
      // Data ops never touch anything but the data.
      assertEquivalent(new Session.Session({ ...s, data: session.data }), session)
    },
    RUNS
  )

  it("sessions and redirects are Pipeable: s.pipe(Session.set(k, v)) equals Session.set(s, k, v)", () => {
    const s = Session.start({ key: "k", tokenKey: "t", now: 0, client: Session.client() })
    // The value must carry a `pipe` method (Effect's Pipeable), so the data-last form reads `s.pipe(...)`.
    const pipeable = s as unknown as Partial<Pipeable.Pipeable>
    assert.strictEqual(typeof pipeable.pipe, "function", "Session values have no .pipe method")
    const viaMethod = (s as Session.Session & Pipeable.Pipeable).pipe(Session.set("a", 1), Session.set("b", [true]), Session.remove("a"))
    assertEquivalent(viaMethod, Session.remove(Session.set(Session.set(s, "a", 1), "b", [true]), "a"))
    const { redirect } = Session.rotate(s, { tokenKey: "u", sealedSuccessor: "x", now: 1, config: SessionConfig.defaults })
    assert.strictEqual(typeof (redirect as unknown as Partial<Pipeable.Pipeable>).pipe, "function", "Redirect values have no .pipe method")
  })

  it("get does not see inherited properties, and the original value is never mutated", () => {
    const s = Session.start({ key: "k", tokenKey: "t", now: 0, client: Session.client() })
    for (const k of ["toString", "constructor", "hasOwnProperty", "__proto__", "valueOf"]) {
      assert.isTrue(Option.isNone(Session.get(s, k)), k)
    }
    const s1 = Session.set(s, "a", 1)
    const s2 = Session.set(s1, "a", 2)
    assertEquivalent(Session.get(s1, "a"), Option.some(1))
    assertEquivalent(Session.get(s2, "a"), Option.some(2))
    const [popped, s3] = Session.pop(s2, "a")
    assertEquivalent(popped, Option.some(2))
    assertEquivalent(Session.get(s2, "a"), Option.some(2))
    assert.isTrue(Option.isNone(Session.get(s3, "a")))
    const [none, same] = Session.pop(s3, "missing")
    assert.isTrue(Option.isNone(none))
    assert.strictEqual(same, s3)
  })

  class Cart extends Schema.Class<Cart>("Cart")({
    owner: Schema.String,
    total: Schema.BigInt,
    placedAt: Schema.Date,
    items: Schema.Array(Schema.String)
  }) {}

  const roundTripThroughStore = (s: Session.Session): Session.Session => {
    const decoded = Codec.decodeSession(Codec.encodeSession(s))
    assert.isTrue(Either.isRight(decoded))
    return Either.getOrThrow(decoded)
  }

  const arbDate = fc.date({ noInvalidDate: true })

  it.prop(
    "setAs/getAs: a Date survives exactly, in memory and through the codec",
    { session: arbSession, key: arbDataKey, date: arbDate },
    ({ date, key, session }) => {
      const s = Either.getOrThrow(Session.set(session, Session.key(key, Schema.Date), date))
      assertEquivalent(Either.getOrThrow(pipe(session, Session.set(Session.key(key, Schema.Date), date))), s)
      for (const x of [s, roundTripThroughStore(s)]) {
        const back = Either.getOrThrow(Session.get(x, Session.key(key, Schema.Date)))
        assert.isTrue(Option.isSome(back))
        const d = Option.getOrThrow(back)
        assert.instanceOf(d, Date)
        assert.strictEqual(d.getTime(), date.getTime())
        assertEquivalent(Either.getOrThrow(pipe(x, Session.get(Session.key(key, Schema.Date)))), back)
      }
    },
    RUNS
  )

  it.prop(
    "setAs/getAs: a bigint survives exactly, in memory and through the codec",
    { session: arbSession, key: arbDataKey, n: fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }) },
    ({ key, n, session }) => {
      const s = Either.getOrThrow(Session.set(session, Session.key(key, Schema.BigInt), n))
      for (const x of [s, roundTripThroughStore(s)]) {
        const back = Either.getOrThrow(Session.get(x, Session.key(key, Schema.BigInt)))
        assert.strictEqual(Option.getOrThrow(back), n)
      }
    },
    RUNS
  )

  it.prop(
    "setAs/getAs: a Schema.Class instance survives exactly, in memory and through the codec",
    {
      session: arbSession,
      key: arbDataKey,
      owner: fc.string(),
      total: fc.bigInt(),
      placedAt: arbDate,
      items: fc.array(fc.string(), { maxLength: 5 })
    },
    ({ items, key, owner, placedAt, session, total }) => {
      const cart = new Cart({ owner, total, placedAt, items })
      const s = Either.getOrThrow(Session.set(session, Session.key(key, Cart), cart))
      for (const x of [s, roundTripThroughStore(s)]) {
        const back = Option.getOrThrow(Either.getOrThrow(Session.get(x, Session.key(key, Cart))))
        assert.instanceOf(back, Cart)
        assert.notStrictEqual(back, cart)
        assert.strictEqual(back.owner, owner)
        assert.strictEqual(back.total, total)
        assert.strictEqual(back.placedAt.getTime(), placedAt.getTime())
        assertEquivalent(back.items, items)
      }
    },
    RUNS
  )

  it("getAs: a missing key is Right(None); a value of the wrong shape is Left(ParseError)", () => {
    const s = Session.set(Session.start({ key: "k", tokenKey: "t", now: 0, client: Session.client() }), "n", "not a number")
    assertEquivalent(Session.get(s, Session.key("missing", Schema.Date)), Either.right(Option.none()))
    assert.isTrue(Either.isLeft(Session.get(s, Session.key("n", Schema.BigInt))))
    assert.isTrue(Either.isLeft(Session.get(s, Session.key("n", Schema.Date))))
    assert.isTrue(Either.isLeft(Session.get(s, Session.key("n", Cart))))
  })
})

describe("Session.logIn / logOut / bind / expiresAt", () => {
  it.prop("logIn sets the user and logOut removes it; nothing else changes (both dual forms)", {
    session: arbSession,
    user: arbUserId
  }, ({ session, user }) => {
    const inn = Session.logIn(session, user)
    assertEquivalent(pipe(session, Session.logIn(user)), inn)
    assertEquivalent(inn.userId, Option.some(user))
    assertEquivalent(new Session.Session({ ...inn, userId: session.userId, authenticatedAt: session.authenticatedAt, persistent: session.persistent }), session)
    const out = Session.logOut(inn)
    assert.isTrue(Option.isNone(out.userId))
    assertEquivalent(out.data, session.data)
    assert.strictEqual(out.tokenKey, session.tokenKey)
    assert.strictEqual(out.createdAt, session.createdAt)
  }, RUNS)

  it.prop("bind records the new client, and returns the same value when nothing changed", {
    session: arbSession,
    a: arbClientInput,
    b: arbClientInput
  }, ({ a, b, session }) => {
    const s1 = Session.bind(session, Session.client(a))
    assertEquivalent(s1.ip, Option.fromNullable(a.ip))
    assertEquivalent(s1.userAgentHash, Option.map(Option.fromNullable(a.userAgent), userAgentHash))
    assert.strictEqual(Session.bind(s1, Session.client(a)), s1)
    const s2 = pipe(s1, Session.bind(Session.client(b)))
    const same = a.ip === b.ip && a.userAgent === b.userAgent
    if (same) assert.strictEqual(s2, s1)
    else assert.notStrictEqual(s2, s1)
  }, RUNS)

  it.prop("expiresAt is the earlier of the idle and absolute deadlines", {
    ct: arbConfigWithTimes,
    session: arbSession
  }, ({ ct, session }) => {
    assert.strictEqual(
      Session.expiresAt(session, ct.config),
      Math.min(session.lastAccessAt + ct.times.idleTimeout, session.createdAt + ct.times.absoluteTimeout)
    )
  }, RUNS)
})

const MINUTE = 60_000

describe("feature: recent-login gate (Session.isRecentLogin, ASVS 7.5.1, 7.5.2)", () => {
  it.prop("feature: recent-login gate — a log-in or re-authentication at t is recent at now iff the user is logged in and now − t < maxAge, for every maxAge; logOut ends it; rotations, touches and data never change it", {
    session: arbSession,
    user: arbUserId,
    at: arbInstant,
    elapsed: fc.oneof(fc.integer({ min: -10 * MINUTE, max: 30 * MINUTE }), fc.integer({ min: 0, max: 2 }).map((n) => 5 * MINUTE - 1 + n)),
    maxAge: fc.oneof(fc.constant(5 * MINUTE), fc.integer({ min: 0, max: 60 * MINUTE })),
    later: fc.integer({ min: 0, max: 60 * MINUTE })
  }, ({ at, elapsed, later, maxAge, session, user }) => {
    const now = at + elapsed
    const inn = Session.logIn(session, user, { now: at })
    // The rule, stated on its own: a clock behind the log-in (elapsed < 0) counts as age zero.
    const recent = Math.max(0, elapsed) < maxAge
    assert.strictEqual(Session.isRecentLogin(inn, now, maxAge), recent)
    assert.strictEqual(pipe(inn, Session.isRecentLogin(now, maxAge)), recent)
    assert.strictEqual(Session.isRecentLogin(inn, now, `${maxAge} millis`), recent)
    // A re-authentication at t counts exactly like a log-in at t, whatever the session held.
    const again = Session.reauthenticated(Session.logIn(session, user, { now: at - later }), at)
    assert.strictEqual(Session.isRecentLogin(again, now, maxAge), recent)
    assert.strictEqual(pipe(Session.logIn(session, user), Session.reauthenticated(at), Session.isRecentLogin(now, maxAge)), recent)
    // Monotone: once too old, older is never recent again.
    if (!recent) assert.isFalse(Session.isRecentLogin(inn, now + later, maxAge))
    // Nothing but a log-in or a re-authentication moves it.
    const moved = Session.rotate(Session.set(Session.touch(inn, now, SessionConfig.defaults), "k", 1), {
      tokenKey: "t2",
      sealedSuccessor: "sealed",
      now,
      config: SessionConfig.defaults
    }).session
    assert.strictEqual(Session.isRecentLogin(moved, now, maxAge), recent)
    // No user, no recent log-in: after logOut, and for a re-authentication without a user.
    const out = Session.logOut(inn)
    assert.isFalse(Session.isRecentLogin(out, at, maxAge))
    assert.isTrue(Option.isNone(out.authenticatedAt))
    assert.isFalse(Session.isRecentLogin(Session.reauthenticated(out, at), at, maxAge))
    // A log-in without a known time is never recent.
    assert.isFalse(Session.isRecentLogin(Session.logIn(session, user), now, maxAge))
  }, RUNS)

  it("feature: recent-login gate — the boundary: 4:59.999 after the log-in is recent, 5:00 is not; a maxAge of zero never is", () => {
    const s = Session.logIn(Session.start({ key: "k", tokenKey: "t", now: 0, client: Session.client() }), "ada", { now: 1_000 })
    assert.isTrue(Session.isRecentLogin(s, 1_000 + 5 * MINUTE - 1, "5 minutes"))
    assert.isFalse(Session.isRecentLogin(s, 1_000 + 5 * MINUTE, "5 minutes"))
    assert.isFalse(Session.isRecentLogin(s, 1_000, 0))
    assertEquivalent(s.authenticatedAt, Option.some(1_000))
  })
})

describe("feature: logOutEveryone (Session.isRevoked, ASVS 7.4.5)", () => {
  it.prop("feature: logOutEveryone — a session is revoked by the instant T iff it was born at or before T and not logged in to (nor re-authenticated) after T; a later T never brings it back; rotations, touches and data never change it; logOut forgets a later log-in", {
    session: arbSession,
    user: arbUserId,
    until: fc.oneof(arbInstant, fc.integer({ min: -2, max: 2 })),
    born: fc.integer({ min: -2, max: 2 }),
    authenticated: fc.option(fc.integer({ min: -2, max: 2 }), { nil: undefined }),
    later: fc.integer({ min: 0, max: 60 * MINUTE })
  }, ({ authenticated, born, later, session, until, user }) => {
    const createdAt = until + born
    const s0 = new Session.Session({ ...session, createdAt, userId: Option.none(), authenticatedAt: Option.none() })
    const s = authenticated === undefined ? s0 : Session.logIn(s0, user, { now: Math.max(createdAt, until + authenticated) })
    // The rule, stated on its own: the later of birth and last authentication, against T.
    const proof = Math.max(createdAt, Option.getOrElse(s.authenticatedAt, () => createdAt))
    const revoked = proof <= until
    assert.strictEqual(Session.isRevoked(s, until), revoked)
    assert.strictEqual(pipe(s, Session.isRevoked(until)), revoked)
    // Monotone in T: a later switch never brings a session back.
    if (revoked) assert.isTrue(Session.isRevoked(s, until + later))
    // Nothing but a log-in or a re-authentication after T saves it.
    const moved = Session.rotate(Session.set(Session.touch(s, until + later, SessionConfig.defaults), "k", 1), {
      tokenKey: "t2",
      sealedSuccessor: "sealed",
      now: until + later,
      config: SessionConfig.defaults
    }).session
    assert.strictEqual(Session.isRevoked(moved, until), revoked)
    if (authenticated !== undefined) {
      assert.isFalse(Session.isRevoked(Session.reauthenticated(s, until + 1), until))
      assert.strictEqual(Session.isRevoked(Session.logOut(s), until), createdAt <= until)
    }
  }, RUNS)

  it("feature: logOutEveryone — the boundary: born at T is revoked, born at T + 1 ms is not; a log-in at T + 1 ms saves a session born before T", () => {
    const at = (now: number) => Session.start({ key: "k", tokenKey: "t", now, client: Session.client() })
    assert.isTrue(Session.isRevoked(at(1_000), 1_000))
    assert.isFalse(Session.isRevoked(at(1_001), 1_000))
    assert.isFalse(Session.isRevoked(Session.logIn(at(0), "ada", { now: 1_001 }), 1_000))
    assert.isTrue(Session.isRevoked(Session.logIn(at(0), "ada", { now: 1_000 }), 1_000))
    assert.isTrue(Session.isRevoked(Session.logIn(at(0), "ada"), 1_000), "a log-in of unknown time proves nothing")
  })
})

describe("feature: remember me (Session.isPersistent, Session.cookieMaxAge)", () => {
  it.prop("feature: remember me — the log-in's choice wins over the configured default, rotations keep it, logOut forgets it; Max-Age is the time left until the absolute timeout, never more", {
    session: arbSession,
    user: arbUserId,
    choice: fc.option(fc.boolean(), { nil: undefined }),
    configured: fc.boolean(),
    ct: arbConfigWithTimes,
    elapsed: fc.integer({ min: 0, max: 2 * 24 * 3_600_000 })
  }, ({ choice, configured, ct, elapsed, session, user }) => {
    const config: SessionConfig.SessionConfigShape = { ...ct.config, cookie: { ...ct.config.cookie, persistent: configured } }
    const inn = Session.logIn(session, user, { now: session.createdAt, persistent: choice })
    const persistent = choice ?? configured
    assert.strictEqual(Session.isPersistent(inn, config), persistent)
    const now = session.createdAt + elapsed
    const rotated = Session.rotate(inn, { tokenKey: "t2", sealedSuccessor: "sealed", now, config }).session
    assert.strictEqual(pipe(rotated, Session.isPersistent(config)), persistent)
    const maxAge = Session.cookieMaxAge(rotated, now, config)
    if (!persistent) assert.isTrue(Option.isNone(maxAge))
    else {
      const left = session.createdAt + ct.times.absoluteTimeout - now
      assertEquivalent(maxAge, Option.some(Math.max(0, Math.floor(left / 1000))))
      assert.isAtMost(Option.getOrThrow(maxAge) * 1000, Math.max(0, left))
    }
    assert.strictEqual(Session.isPersistent(Session.logOut(inn), config), configured)
  }, RUNS)
})

describe("test helper: assertEquivalent", () => {
  it("tells apart what the comparisons in this suite rely on", () => {
    const differs = (a: unknown, b: unknown) => {
      try {
        assertEquivalent(a, b)
        return false
      } catch {
        return true
      }
    }
    assert.isTrue(differs(Option.some("ip"), Option.none()))
    assert.isTrue(differs(Option.some("ip"), Option.some("userAgent")))
    assert.isTrue(differs({ a: -0 }, { a: 0 }))
    assert.isTrue(differs({ a: 1 }, { a: 1, b: undefined }))
    assert.isTrue(differs([1, 2], { 0: 1, 1: 2 }))
    assert.isTrue(differs(Session.decide(Option.none(), { now: 0, client: Session.client(), config: SessionConfig.defaults }), { _tag: "Missing" }))
    const s = Session.start({ key: "k", tokenKey: "t", now: 0, client: Session.client() })
    assert.isTrue(differs(s, Session.set(s, "a", 1)))
    assert.isTrue(differs(s, Session.logIn(s, "u")))
    assert.isFalse(differs({ constructor: {}, b: [1, { c: null }] }, { b: [1, { c: null }], constructor: {} }))
    assert.isFalse(differs(Session.set(s, "a", { x: [1] }), Session.set(s, "a", { x: [1] })))
  })
})

describe("Session: JSON guards (mutation testing)", () => {
  /** `levels` arrays nested in one another: `nest(1)` is `[]`, `nest(2)` is `[[]]`. */
  const nest = (levels: number): unknown => {
    let value: unknown = []
    for (let i = 1; i < levels; i++) value = [value]
    return value
  }

  it("isJson and JsonObject refuse class instances, Dates and Maps, at the top and nested", () => {
    class Point {
      x = 1
    }
    for (const value of [new Point(), new Date(0), new Map(), new Set(), /re/]) {
      assert.isFalse(Session.isJson(value), String(value))
      assert.isFalse(Session.isJson({ nested: [value] }), `nested ${String(value)}`)
      assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(Session.JsonObject)(value)), `JsonObject ${String(value)}`)
    }
  })

  it("isJson and JsonObject accept objects without a prototype", () => {
    const bare = Object.create(null) as Record<string, unknown>
    bare.a = 1
    assert.isTrue(Session.isJson(bare))
    assert.isTrue(Session.isJson({ inner: bare }))
    assert.isTrue(Either.isRight(Schema.decodeUnknownEither(Session.JsonObject)(bare)))
  })

  it("isJson accepts exactly MAX_JSON_DEPTH levels of nesting and refuses one more", () => {
    assert.isTrue(Session.isJson(nest(Session.MAX_JSON_DEPTH)))
    assert.isFalse(Session.isJson(nest(Session.MAX_JSON_DEPTH + 1)))
    // scalars at the deepest level do not count as a level
    assert.isTrue(Session.isJson([...Array(Session.MAX_JSON_DEPTH - 1)].reduce((inner: unknown) => [inner], [1, "a", null])))
  })
})
