/**
 * `resolveClientIp`: the socket's peer, or — only behind a trusted proxy — the rightmost
 * untrusted X-Forwarded-For hop. Table-driven, plus properties: a client can never choose the
 * address by writing to the header.
 */
import { assert, describe, it } from "@effect/vitest"
import { assertNone, deepStrictEqual } from "@effect/vitest/utils"
import { FastCheck as fc, Option } from "effect"
import { resolveClientIp } from "../src/internal/clientIp.js"
import { type IpRange, parseRange } from "../src/internal/ip.js"
import { canonicalIp } from "./helpers/http.js"
import { numRuns } from "./helpers/runs.js"

const ranges = (...specs: ReadonlyArray<string>): ReadonlyArray<IpRange> =>
  specs.map((s) => {
    const r = parseRange(s)
    if (!r) throw new Error(`bad range in test: ${s}`)
    return r
  })

const resolve = (peer: string | undefined, xff: string | undefined, trusted: ReadonlyArray<string>): string | null =>
  Option.getOrNull(Option.map(resolveClientIp(Option.fromNullable(peer), xff, ranges(...trusted)), canonicalIp))

interface Case {
  readonly name: string
  readonly peer: string | undefined
  readonly xff?: string
  readonly trusted: ReadonlyArray<string>
  readonly expected: string | null
}

const LOCAL = ["127.0.0.1"]
const LOCAL_AND_10 = ["127.0.0.1", "10.0.0.0/8"]

const cases: ReadonlyArray<Case> = [
  // no peer, no address
  { name: "no socket address", peer: undefined, xff: "203.0.113.7", trusted: LOCAL, expected: null },
  { name: "a malformed socket address", peer: "not-an-ip", xff: "203.0.113.7", trusted: LOCAL, expected: null },
  // without trusted proxies the header means nothing
  { name: "no trusted proxies, no header", peer: "198.51.100.1", trusted: [], expected: "198.51.100.1" },
  { name: "no trusted proxies: X-Forwarded-For ignored", peer: "127.0.0.1", xff: "203.0.113.7", trusted: [], expected: "127.0.0.1" },
  { name: "an untrusted peer cannot forward", peer: "198.51.100.1", xff: "203.0.113.7", trusted: LOCAL, expected: "198.51.100.1" },
  // behind a trusted proxy
  { name: "trusted peer, no header", peer: "127.0.0.1", trusted: LOCAL, expected: "127.0.0.1" },
  { name: "trusted peer, empty header", peer: "127.0.0.1", xff: "", trusted: LOCAL, expected: "127.0.0.1" },
  { name: "one hop", peer: "127.0.0.1", xff: "203.0.113.7", trusted: LOCAL, expected: "203.0.113.7" },
  { name: "spoofed leftmost entry", peer: "127.0.0.1", xff: "6.6.6.6, 203.0.113.7", trusted: LOCAL, expected: "203.0.113.7" },
  { name: "many spoofed entries", peer: "127.0.0.1", xff: "1.1.1.1, 2.2.2.2, 6.6.6.6, 203.0.113.7", trusted: LOCAL, expected: "203.0.113.7" },
  { name: "a chain of trusted proxies", peer: "127.0.0.1", xff: "6.6.6.6, 203.0.113.7, 10.0.0.2, 10.9.8.7", trusted: LOCAL_AND_10, expected: "203.0.113.7" },
  { name: "no spaces", peer: "127.0.0.1", xff: "6.6.6.6,203.0.113.7,10.0.0.2", trusted: LOCAL_AND_10, expected: "203.0.113.7" },
  { name: "whitespace around hops", peer: "127.0.0.1", xff: "  6.6.6.6 ,\t203.0.113.7  ", trusted: LOCAL, expected: "203.0.113.7" },
  { name: "a trusted peer in a CIDR range", peer: "10.1.2.3", xff: "203.0.113.7", trusted: ["10.0.0.0/8"], expected: "203.0.113.7" },
  // every hop trusted: the furthest one (still a proxy, never an untrusted claim)
  { name: "every hop trusted", peer: "127.0.0.1", xff: "10.0.0.2, 10.0.0.3", trusted: LOCAL_AND_10, expected: "10.0.0.2" },
  // malformed hops end the chain: nothing left of them is believed
  { name: "a malformed rightmost hop", peer: "127.0.0.1", xff: "6.6.6.6, junk", trusted: LOCAL, expected: "127.0.0.1" },
  { name: "a malformed hop behind a trusted one", peer: "127.0.0.1", xff: "6.6.6.6, junk, 10.0.0.2", trusted: LOCAL_AND_10, expected: "10.0.0.2" },
  { name: "empty hops", peer: "127.0.0.1", xff: "6.6.6.6,,", trusted: LOCAL, expected: "127.0.0.1" },
  { name: "an octet over 255", peer: "127.0.0.1", xff: "6.6.6.6, 203.0.113.256", trusted: LOCAL, expected: "127.0.0.1" },
  { name: "a zero-padded octet", peer: "127.0.0.1", xff: "6.6.6.6, 203.0.113.07", trusted: LOCAL, expected: "127.0.0.1" },
  { name: "five octets", peer: "127.0.0.1", xff: "6.6.6.6, 203.0.113.7.1", trusted: LOCAL, expected: "127.0.0.1" },
  { name: "a hostname", peer: "127.0.0.1", xff: "6.6.6.6, evil.example", trusted: LOCAL, expected: "127.0.0.1" },
  { name: "the 'unknown' token of some proxies", peer: "127.0.0.1", xff: "6.6.6.6, unknown", trusted: LOCAL, expected: "127.0.0.1" },
  // ports some proxies append
  { name: "IPv4 with a port", peer: "127.0.0.1", xff: "203.0.113.7:4711", trusted: LOCAL, expected: "203.0.113.7" },
  { name: "bracketed IPv6 with a port", peer: "127.0.0.1", xff: "[2001:db8::7]:443", trusted: LOCAL, expected: "2001:db8::7" },
  { name: "bracketed IPv6", peer: "127.0.0.1", xff: "[2001:db8::7]", trusted: LOCAL, expected: "2001:db8::7" },
  // IPv6 and IPv4-mapped addresses
  { name: "IPv6 loopback peer, untrusted", peer: "::1", xff: "203.0.113.7", trusted: LOCAL, expected: "::1" },
  { name: "IPv6 loopback peer, trusted", peer: "::1", xff: "203.0.113.7", trusted: ["::1"], expected: "203.0.113.7" },
  { name: "IPv6 hop, upper case", peer: "::1", xff: "2001:DB8::7", trusted: ["::1"], expected: "2001:db8::7" },
  { name: "IPv6 hop with a zone", peer: "::1", xff: "fe80::1%eth0", trusted: ["::1"], expected: "fe80::1" },
  { name: "IPv6 trusted range", peer: "2001:db8:1::5", xff: "6.6.6.6, 203.0.113.7, 2001:db8:1::9", trusted: ["2001:db8:1::/48"], expected: "203.0.113.7" },
  { name: "IPv4-mapped peer counts as IPv4 (trusted)", peer: "::ffff:127.0.0.1", xff: "203.0.113.7", trusted: LOCAL, expected: "203.0.113.7" },
  { name: "IPv4-mapped peer counts as IPv4 (untrusted)", peer: "::ffff:127.0.0.1", xff: "203.0.113.7", trusted: [], expected: "127.0.0.1" },
  { name: "IPv4-mapped hop", peer: "127.0.0.1", xff: "::ffff:203.0.113.7", trusted: LOCAL, expected: "203.0.113.7" },
  { name: "a trusted IPv4-mapped range", peer: "10.1.2.3", xff: "203.0.113.7", trusted: ["::ffff:10.0.0.0/104"], expected: "203.0.113.7" },
  { name: "an IPv4 range does not trust IPv6", peer: "::1", xff: "203.0.113.7", trusted: ["0.0.0.0/0"], expected: "::1" },
  { name: "an IPv6 range does not trust IPv4", peer: "127.0.0.1", xff: "203.0.113.7", trusted: ["::/0"], expected: "127.0.0.1" }
]

describe("resolveClientIp", () => {
  for (const c of cases) {
    it(c.name, () => {
      assert.strictEqual(resolve(c.peer, c.xff, c.trusted), c.expected === null ? null : canonicalIp(c.expected))
    })
  }

  const octet = fc.integer({ min: 0, max: 255 })
  /** A public-looking IPv4 address outside 10/8 and 127/8. */
  const untrusted = fc.tuple(octet.filter((o) => o !== 10 && o !== 127), octet, octet, octet).map((o) => o.join("."))
  const proxy = fc.tuple(octet, octet, octet).map((o) => `10.${o.join(".")}`)

  it("whatever a client writes left of its own address, the rightmost untrusted hop wins", () =>
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 30 }), { maxLength: 6 }), untrusted, fc.array(proxy, { maxLength: 5 }), (spoofed, client, proxies) => {
        const xff = [...spoofed, client, ...proxies].join(", ")
        assert.strictEqual(resolve("127.0.0.1", xff, LOCAL_AND_10), client)
      }),
      { numRuns: numRuns(1000) }
    ))

  it("without a trusted peer the header never matters", () =>
    fc.assert(
      fc.property(untrusted, fc.option(fc.string({ maxLength: 200 }), { nil: undefined }), (peer, xff) => {
        assert.strictEqual(resolve(peer, xff, LOCAL_AND_10), peer)
        assert.strictEqual(resolve("127.0.0.1", xff, []), "127.0.0.1")
      }),
      { numRuns: numRuns(1000) }
    ))

  it("any header: the result is the peer, a header entry, or nothing — never invented", () =>
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (xff) => {
        const got = resolve("127.0.0.1", xff, LOCAL_AND_10)
        assert.isNotNull(got)
        if (got === "127.0.0.1") return
        const entries = xff.split(",").map((h) => h.trim().replace(/^\[([^\]]+)\](?::\d+)?$/, "$1").replace(/^(\d+\.\d+\.\d+\.\d+):\d+$/, "$1"))
        assert.isTrue(entries.some((e) => {
          try {
            return canonicalIp(e.replace(/%.*$/, "").replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, "$1")) === got
          } catch {
            return false
          }
        }), `${got} from ${JSON.stringify(xff)}`)
      }),
      { numRuns: numRuns(1000) }
    ))
})

describe("resolveClientIp: the edges of a hop (mutation testing)", () => {
  it("only the last 32 hops are read: past them the oldest trusted hop read stands for the client", () => {
    const proxies = Array.from({ length: 39 }, (_, i) => `10.0.0.${i + 1}`)
    const xff = ["203.0.113.9", ...proxies].join(", ")
    // hops 8 … 39 (32 of them) are read, all trusted: the chain stops at 10.0.0.8
    assert.strictEqual(resolve("127.0.0.1", xff, LOCAL_AND_10), "10.0.0.8")
    assert.strictEqual(resolve("127.0.0.1", ["203.0.113.9", ...proxies.slice(8)].join(", "), LOCAL_AND_10), "203.0.113.9")
  })

  it("a hop with a port after the comma's space is read (trimmed before the port is cut)", () => {
    assert.strictEqual(resolve("127.0.0.1", "10.0.0.2, 203.0.113.7:1234", LOCAL_AND_10), "203.0.113.7")
    assert.strictEqual(resolve("127.0.0.1", "10.0.0.2,  [2001:db8::1]:443", LOCAL_AND_10), "2001:db8::1")
  })

  it("text before or after an address with a port makes the hop malformed: the last trusted hop stands", () => {
    for (const hop of ["x[2001:db8::1]:443", "[2001:db8::1]:443x", "x203.0.113.7:80", "203.0.113.7:80x"]) {
      assert.strictEqual(resolve("127.0.0.1", `198.51.100.1, ${hop}, 10.0.0.3`, LOCAL_AND_10), "10.0.0.3", hop)
    }
  })
})

describe("resolveClientIp: one peer, one binding", () => {
  const some = (s: string) => Option.some(s)

  it("the sessions of one address share one binding value (and a request skips parsing it again)", () => {
    const first = resolveClientIp(some("203.0.113.7"), undefined, [])
    const second = resolveClientIp(some("203.0.113.7"), undefined, [])
    assert.strictEqual(first, second, "the same object")
    deepStrictEqual(first, Option.some("203.0.113.7"))
    const v6 = resolveClientIp(some("2001:DB8::1"), undefined, [])
    assert.strictEqual(resolveClientIp(some("2001:DB8::1"), undefined, []), v6)
    deepStrictEqual(Option.map(v6, canonicalIp), Option.some(canonicalIp("2001:db8::1")))
    assertNone(resolveClientIp(some("not an address"), undefined, []))
    assertNone(resolveClientIp(some("not an address"), undefined, []))
  })

  it("a remembered peer does not stand for the client behind it: a trusted proxy's X-Forwarded-For is still read", () => {
    const proxy = ranges("10.0.0.0/8")
    deepStrictEqual(resolveClientIp(some("10.0.0.9"), undefined, proxy), Option.some("10.0.0.9"))
    deepStrictEqual(resolveClientIp(some("10.0.0.9"), "198.51.100.4", proxy), Option.some("198.51.100.4"))
    deepStrictEqual(resolveClientIp(some("10.0.0.9"), undefined, proxy), Option.some("10.0.0.9"))
  })

  it("past the memo's bound every address still gets its own binding", () => {
    const addresses = Array.from({ length: 1500 }, (_, i) => `198.${(i >> 8) & 255}.${i & 255}.${(i * 7) & 255}`)
    for (const a of addresses) deepStrictEqual(resolveClientIp(some(a), undefined, []), Option.some(a))
    for (const a of addresses.slice(0, 20)) deepStrictEqual(resolveClientIp(some(a), undefined, []), Option.some(a))
  })
})
