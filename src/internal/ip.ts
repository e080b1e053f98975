/**
 * IP address parsing and prefix comparison for IPv4 and IPv6, used by anomaly detection and by
 * the trusted-proxy resolution of the client address.
 *
 * @internal
 */

/** A parsed address: 4 bytes for IPv4, 16 for IPv6. IPv4-mapped IPv6 is folded to IPv4. @internal */
export interface IpAddress {
  readonly family: 4 | 6
  readonly bytes: Uint8Array
}

/** A parsed CIDR range. @internal */
export interface IpRange {
  readonly address: IpAddress
  readonly prefix: number
}

const parseV4 = (s: string): Uint8Array | undefined => {
  const parts = s.split(".")
  if (parts.length !== 4) return undefined
  const out = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p[0] === "0")) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    out[i] = n
  }
  return out
}

const parseV6 = (input: string): Uint8Array | undefined => {
  let s = input
  const zone = s.indexOf("%")
  if (zone >= 0) {
    // A zone ID is a non-empty interface name or number.
    if (!/^[0-9A-Za-z._~-]+$/.test(s.slice(zone + 1))) return undefined
    s = s.slice(0, zone)
  }
  if (s.length === 0 || s.length > 45) return undefined
  const groups: Array<number> = []
  let tail: Array<number> = []
  const halves = s.split("::")
  if (halves.length > 2) return undefined
  // Dotted IPv4 may only stand for the last 32 bits: at the very end of the address.
  const parseGroups = (part: string, into: Array<number>, last: boolean): boolean => {
    if (part === "") return true
    const items = part.split(":")
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!
      if (last && i === items.length - 1 && item.includes(".")) {
        const v4 = parseV4(item)
        if (!v4) return false
        into.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!)
        continue
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return false
      into.push(parseInt(item, 16))
    }
    return true
  }
  if (!parseGroups(halves[0]!, groups, halves.length === 1)) return undefined
  if (halves.length === 2) {
    if (!parseGroups(halves[1]!, tail, true)) return undefined
    if (groups.length + tail.length > 7) return undefined
    const zeros = new Array<number>(8 - groups.length - tail.length).fill(0)
    tail = [...zeros, ...tail]
  } else if (groups.length !== 8) {
    return undefined
  }
  const all = [...groups, ...tail]
  if (all.length !== 8) return undefined
  const out = new Uint8Array(16)
  all.forEach((g, i) => {
    out[2 * i] = g >> 8
    out[2 * i + 1] = g & 0xff
  })
  return out
}

const isV4Mapped = (b: Uint8Array): boolean =>
  b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff

/** Parses an IPv4 or IPv6 address (brackets and zone IDs allowed); undefined when malformed. @internal */
export const parseIp = (input: string): IpAddress | undefined => {
  let s = input.trim()
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1)
  if (s.includes(":")) {
    const b = parseV6(s)
    if (!b) return undefined
    return isV4Mapped(b) ? { family: 4, bytes: b.slice(12) } : { family: 6, bytes: b }
  }
  const b = parseV4(s)
  return b ? { family: 4, bytes: b } : undefined
}

/** Whether the first `bits` bits of two addresses of one family agree. @internal */
export const samePrefix = (a: IpAddress, b: IpAddress, bits: number): boolean => {
  if (a.family !== b.family) return false
  const full = Math.floor(bits / 8)
  for (let i = 0; i < full; i++) if (a.bytes[i] !== b.bytes[i]) return false
  const rest = bits % 8
  if (rest === 0) return true
  const mask = (0xff << (8 - rest)) & 0xff
  return (a.bytes[full]! & mask) === (b.bytes[full]! & mask)
}

/** Parses `addr/prefix` (or a bare address, a full-length range); undefined when malformed. @internal */
export const parseRange = (input: string): IpRange | undefined => {
  const [addr, prefixText, ...rest] = input.trim().split("/")
  if (rest.length > 0 || addr === undefined) return undefined
  const address = parseIp(addr)
  if (!address) return undefined
  const max = address.family === 4 ? 32 : 128
  if (prefixText === undefined) return { address, prefix: max }
  if (!/^\d{1,3}$/.test(prefixText)) return undefined
  // An IPv4-mapped range written in IPv6 notation counts its prefix over 128 bits.
  const raw = Number(prefixText)
  const prefix = address.family === 4 && addr.includes(":") ? raw - 96 : raw
  if (prefix < 0 || prefix > max) return undefined
  return { address, prefix }
}

/** Whether an address lies in a range. @internal */
export const inRange = (address: IpAddress, range: IpRange): boolean => samePrefix(address, range.address, range.prefix)

/** The canonical text of an address (IPv4 dotted, IPv6 lowercase uncompressed groups). @internal */
export const formatIp = (address: IpAddress): string => {
  if (address.family === 4) return `${address.bytes[0]}.${address.bytes[1]}.${address.bytes[2]}.${address.bytes[3]}`
  const groups: Array<string> = []
  for (let i = 0; i < 16; i += 2) groups.push(((address.bytes[i]! << 8) | address.bytes[i + 1]!).toString(16))
  return groups.join(":")
}
