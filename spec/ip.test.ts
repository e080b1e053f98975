import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { FastCheck as fc } from "effect"
import { isIP } from "node:net"
import { formatIp, inRange, type IpAddress, parseIp, parseRange, samePrefix } from "../src/internal/ip.js"
import { arbIpv4Octets, arbIpv6Bytes, ipv4Text, ipv6CompressedText, ipv6FullText } from "../src/internal/testing/arbitraries.js"
import { numRuns } from "./helpers/runs.js"

const RUNS = { numRuns: numRuns(1000) }

const bytesOf = (a: IpAddress | undefined): Array<number> | undefined => (a ? Array.from(a.bytes) : undefined)

/** The 128-bit (or 32-bit) integer of an address's bytes. */
const bigOf = (bytes: ReadonlyArray<number> | Uint8Array): bigint => Array.from(bytes).reduce((acc, b) => (acc << 8n) | BigInt(b), 0n)

/** Whether the first `bits` bits of two equally long byte strings agree, computed on integers. */
const samePrefixBig = (a: ReadonlyArray<number> | Uint8Array, b: ReadonlyArray<number> | Uint8Array, bits: number): boolean => {
  const shift = BigInt(a.length * 8 - bits)
  return bigOf(a) >> shift === bigOf(b) >> shift
}

describe("parseIp / formatIp: IPv4", () => {
  it("parses and formats every octet quad (property)", () => {
    fc.assert(
      fc.property(arbIpv4Octets, (o) => {
        const p = parseIp(ipv4Text(o))
        assert.isDefined(p)
        assert.strictEqual(p!.family, 4)
        deepStrictEqual(bytesOf(p), [...o])
        assert.strictEqual(formatIp(p!), ipv4Text(o))
        // Surrounding whitespace and brackets are tolerated.
        deepStrictEqual(bytesOf(parseIp(` ${ipv4Text(o)}\t`)), [...o])
      }),
      RUNS
    )
  })

  it("rejects malformed IPv4 text", () => {
    for (const s of [
      "",
      " ",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "1.2.3.256",
      "01.2.3.4",
      "1.02.3.4",
      "1.2.3.04",
      "1..3.4",
      ".1.2.3",
      "1.2.3.",
      "-1.2.3.4",
      "+1.2.3.4",
      "1.2.3.4a",
      "0x1.2.3.4",
      "1.2.3. 4",
      "1 .2.3.4",
      "1e1.2.3.4",
      "1000.2.3.4",
      "١.٢.٣.٤",
      "localhost",
      "1.2.3.4/32",
      "1.2.3.4%eth0",
      "1.2.3.4:80"
    ]) {
      assert.isUndefined(parseIp(s), JSON.stringify(s))
    }
  })

  it("agrees with node:net on which digit-and-dot strings are IPv4 (property)", () => {
    const arbNearV4 = fc
      .array(fc.constantFrom("0", "1", "9", "25", "255", "256", "00", "01", "999", ".", "."), { maxLength: 10 })
      .map((parts) => parts.join(""))
    fc.assert(
      fc.property(arbNearV4, (s) => {
        assert.strictEqual(parseIp(s) !== undefined, isIP(s) === 4, JSON.stringify(s))
      }),
      RUNS
    )
  })
})

describe("parseIp / formatIp: IPv6", () => {
  it("parses full, compressed, upper-case, zoned and bracketed forms to the same bytes (property)", () => {
    fc.assert(
      fc.property(arbIpv6Bytes, fc.stringMatching(/^[a-z0-9]{1,8}$/), (b, zone) => {
        const expected = Array.from(b)
        const forms = [
          ipv6FullText(b),
          ipv6CompressedText(b),
          ipv6FullText(b).toUpperCase(),
          `${ipv6CompressedText(b)}%${zone}`,
          `[${ipv6CompressedText(b)}]`,
          `[${ipv6FullText(b)}]`
        ]
        for (const s of forms) {
          const p = parseIp(s)
          assert.isDefined(p, s)
          assert.strictEqual(p!.family, 6, s)
          deepStrictEqual(bytesOf(p), expected, s)
        }
        // formatIp gives eight lower-case groups, which parse back and which the URL parser
        // canonicalises to the same address.
        const text = formatIp(parseIp(forms[1]!)!)
        assert.match(text, /^([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$/)
        deepStrictEqual(bytesOf(parseIp(text)), expected)
        assert.strictEqual(new URL(`http://[${text}]/`).hostname, `[${ipv6CompressedText(b)}]`)
      }),
      RUNS
    )
  })

  it("parses every placement of :: (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }),
        fc.nat(8),
        fc.nat(8),
        (groups, x, y) => {
          // Replace the groups [from, to) by "::" after zeroing them.
          const from = Math.min(x, y)
          const to = Math.max(x, y)
          const g = groups.map((v, i) => (i >= from && i < to ? 0 : v))
          const hex = g.map((v) => v.toString(16))
          const text = to > from ? `${hex.slice(0, from).join(":")}::${hex.slice(to).join(":")}` : hex.join(":")
          const bytes = g.flatMap((v) => [v >> 8, v & 0xff])
          const p = parseIp(text)
          assert.isDefined(p, text)
          const mapped = bytes.slice(0, 10).every((v) => v === 0) && bytes[10] === 0xff && bytes[11] === 0xff
          deepStrictEqual(bytesOf(p), mapped ? bytes.slice(12) : bytes, text)
        }
      ),
      RUNS
    )
  })

  it("embedded IPv4: IPv4-mapped folds to IPv4, other embeddings stay IPv6", () => {
    for (const [s, family, bytes] of [
      ["::ffff:1.2.3.4", 4, [1, 2, 3, 4]],
      ["::FFFF:1.2.3.4", 4, [1, 2, 3, 4]],
      ["0:0:0:0:0:ffff:1.2.3.4", 4, [1, 2, 3, 4]],
      ["::ffff:102:304", 4, [1, 2, 3, 4]],
      ["[::ffff:10.0.0.1]", 4, [10, 0, 0, 1]],
      ["64:ff9b::1.2.3.4", 6, [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]],
      ["::1.2.3.4", 6, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]],
      ["1:2:3:4:5:6:1.2.3.4", 6, [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4]],
      ["::", 6, new Array(16).fill(0)],
      ["::1", 6, [...new Array(15).fill(0), 1]],
      ["fe80::1%eth0", 6, [0xfe, 0x80, ...new Array(13).fill(0), 1]],
      ["fe80::1%25", 6, [0xfe, 0x80, ...new Array(13).fill(0), 1]]
    ] as const) {
      const p = parseIp(s)
      assert.isDefined(p, s)
      assert.strictEqual(p!.family, family, s)
      deepStrictEqual(bytesOf(p), [...bytes], s)
    }
    assert.strictEqual(formatIp(parseIp("::ffff:1.2.3.4")!), "1.2.3.4")
  })

  it("only ten zero bytes then ffff fold to IPv4: one byte off stays IPv6", () => {
    // Each breaks one of the three conditions of the IPv4-mapped prefix ::ffff:0:0/96.
    for (const [s, bytes] of [
      ["2001:db8::ffff:1.2.3.4", [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]],
      ["1::ffff:1.2.3.4", [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]],
      ["::ff00:1.2.3.4", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 1, 2, 3, 4]],
      ["::ff:1.2.3.4", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3, 4]],
      ["2001:db8::ff:0:1", [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 1]]
    ] as const) {
      const p = parseIp(s)
      assert.isDefined(p, s)
      assert.strictEqual(p!.family, 6, s)
      deepStrictEqual(bytesOf(p), [...bytes], s)
    }
  })

  it("the longest address text (45 characters, six full groups and a dotted quad) is parsed", () => {
    const s = "1111:2222:3333:4444:5555:6666:255.255.255.254"
    assert.strictEqual(s.length, 45)
    deepStrictEqual(bytesOf(parseIp(s)), [0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x66, 0x66, 255, 255, 255, 254])
  })

  it("rejects malformed IPv6 text", () => {
    for (const s of [
      ":",
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8::",
      "::1:2:3:4:5:6:7:8",
      ":1:2:3:4:5:6:7:8",
      "1:2:3:4:5:6:7:8:",
      "12345::",
      "gggg::",
      "1::2:",
      ":1::2",
      "::ffff:1.2.3.256",
      "::ffff:1.2.3",
      "::1.2.3.4:5",
      "1:2:3:4:5:6:7:1.2.3.4",
      "[::1",
      "::1]",
      "[[::1]]",
      "%eth0",
      "::-1",
      "::+1",
      " :: 1",
      "0x1::",
      // A zone ID holds interface-name characters only, from its first to its last.
      "fe80::1%eth 0",
      "fe80::1%a%b",
      "fe80::1%!eth0",
      "fe80::1%eth0!",
      // Three "::" even when the first part alone is eight groups.
      "1:2:3:4:5:6:7:8::9::a"
    ]) {
      assert.isUndefined(parseIp(s), JSON.stringify(s))
    }
  })

  it("rejects an IPv4 part that is not the last 32 bits, and an empty zone ID", () => {
    // RFC 4291 §2.2: the dotted IPv4 form may only stand for the low-order 32 bits;
    // RFC 4007 §11: a zone ID is non-empty. node:net rejects all of these.
    for (const s of ["1.2.3.4::", "1:2:1.2.3.4::", "1.2.3.4::5", "fe80::1%"]) {
      assert.strictEqual(isIP(s), 0, `node:net accepts ${s}`)
      assert.isUndefined(parseIp(s), JSON.stringify(s))
    }
  })

  it("agrees with node:net on which strings over the IPv6 alphabet are addresses (property)", () => {
    // An address part, then at most one zone ID (node:net allows [0-9A-Za-z.:-] in zones; the
    // generated zones stay inside that set so that only the address and the emptiness matter).
    const arbNearV6 = fc
      .tuple(
        fc.array(fc.constantFrom("0", "1", "a", "F", "ff", "ffff", "fffff", "12", ":", ":", "::", ".", "1.2.3.4", "255", "256", "01", "g"), {
          maxLength: 14
        }),
        fc.option(fc.stringMatching(/^[a-z0-9]{0,5}$/), { nil: undefined })
      )
      .map(([parts, zone]) => parts.join("") + (zone === undefined ? "" : `%${zone}`))
    fc.assert(
      fc.property(arbNearV6, (s) => {
        assert.strictEqual(parseIp(s) !== undefined, isIP(s) !== 0, `${JSON.stringify(s)}: node:net says ${isIP(s)}`)
      }),
      RUNS
    )
  })

  it("never throws on arbitrary strings, and what it accepts formats and re-parses to itself (property)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.array(fc.constantFrom(..."0123456789abcdefABCDEF:.%[]"), { maxLength: 50 }).map((c) => c.join(""))), (s) => {
        const p = parseIp(s)
        if (p !== undefined) {
          assert.include([4, 6], p.family)
          assert.strictEqual(p.bytes.length, p.family === 4 ? 4 : 16)
          deepStrictEqual(bytesOf(parseIp(formatIp(p))), bytesOf(p))
        }
      }),
      RUNS
    )
  })
})

describe("parseRange / inRange / samePrefix", () => {
  it("IPv4 ranges: membership is prefix equality of the 32-bit integers (property)", () => {
    fc.assert(
      fc.property(arbIpv4Octets, arbIpv4Octets, fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 4 }), (net, other, prefix, shared) => {
        const addr = [...net.slice(0, shared), ...other.slice(shared)]
        const range = parseRange(`${ipv4Text(net)}/${prefix}`)
        assert.isDefined(range)
        assert.strictEqual(range!.prefix, prefix)
        const a = parseIp(ipv4Text(addr))!
        const n = (o: ReadonlyArray<number>) => ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0
        const expected = prefix === 0 || n(net) >>> (32 - prefix) === n(addr) >>> (32 - prefix)
        assert.strictEqual(inRange(a, range!), expected)
        assert.strictEqual(samePrefix(a, range!.address, prefix), expected)
      }),
      RUNS
    )
  })

  it("IPv6 ranges: membership is prefix equality of the 128-bit integers (property)", () => {
    fc.assert(
      fc.property(arbIpv6Bytes, arbIpv6Bytes, fc.integer({ min: 0, max: 128 }), fc.integer({ min: 0, max: 16 }), (net, other, prefix, shared) => {
        const addr = [...Array.from(net).slice(0, shared), ...Array.from(other).slice(shared)]
        const range = parseRange(`${ipv6CompressedText(net)}/${prefix}`)
        assert.isDefined(range)
        const a = parseIp(ipv6FullText(addr))
        if (a === undefined || a.family !== 6) return // the mix happened to be IPv4-mapped
        assert.strictEqual(inRange(a, range!), samePrefixBig(net, addr, prefix))
      }),
      RUNS
    )
  })

  it("a bare address is a full-length range; IPv4-mapped ranges count their prefix over 128 bits", () => {
    assert.strictEqual(parseRange("10.1.2.3")!.prefix, 32)
    assert.strictEqual(parseRange("::1")!.prefix, 128)
    const mapped = parseRange("::ffff:10.0.0.0/104")!
    assert.strictEqual(mapped.address.family, 4)
    assert.strictEqual(mapped.prefix, 8)
    assert.isTrue(inRange(parseIp("10.200.3.4")!, mapped))
    assert.isFalse(inRange(parseIp("11.0.0.1")!, mapped))
    assert.isTrue(inRange(parseIp("::ffff:10.9.9.9")!, parseRange("10.0.0.0/8")!))
    assert.isTrue(inRange(parseIp("192.168.1.7")!, parseRange("0.0.0.0/0")!))
    assert.isTrue(inRange(parseIp("2001:db8::1")!, parseRange("::/0")!))
    // Families never mix.
    assert.isFalse(inRange(parseIp("10.0.0.1")!, parseRange("::/0")!))
    assert.isFalse(inRange(parseIp("::1")!, parseRange("0.0.0.0/0")!))
    assert.isTrue(inRange(parseIp("2001:db8:0:1::5")!, parseRange("2001:db8::/32")!))
    assert.isFalse(inRange(parseIp("2001:db9::5")!, parseRange("2001:db8::/32")!))
  })

  it("the full-length prefix (/32, /128, /128 over IPv4-mapped) is accepted, and surrounding spaces are trimmed", () => {
    assert.strictEqual(parseRange("10.0.0.1/32")?.prefix, 32)
    assert.strictEqual(parseRange("2001:db8::1/128")?.prefix, 128)
    const mapped = parseRange("::ffff:10.0.0.1/128")
    assert.strictEqual(mapped?.address.family, 4)
    assert.strictEqual(mapped?.prefix, 32)
    // An entry with spaces around it (as in a hand-written, comma-separated list) is read.
    assert.strictEqual(parseRange(" 10.0.0.0/8 ")?.prefix, 8)
    assert.strictEqual(parseRange("192.168.0.0/16\t")?.prefix, 16)
  })

  it("rejects malformed ranges", () => {
    for (const s of [
      "",
      "/8",
      "10.0.0.0/",
      "10.0.0.0/33",
      "10.0.0.0/-1",
      "10.0.0.0/8/8",
      "10.0.0.0/8.5",
      "10.0.0.0/x",
      "10.0.0.0/1000",
      "::/129",
      "::ffff:1.2.3.4/95",
      "::ffff:1.2.3.4/129",
      "example.com/8",
      "10.0.0/8"
    ]) {
      assert.isUndefined(parseRange(s), JSON.stringify(s))
    }
  })
})
