/**
 * Which address is the client's: the socket's peer, or — only when that peer is a trusted
 * proxy — the rightmost `X-Forwarded-For` hop that is not itself a trusted proxy. The leftmost
 * entry is whatever the client wrote, so it is never believed on its own.
 *
 * @internal
 */
import { Option } from "effect"
import { formatIp, inRange, type IpRange, parseIp } from "./ip.js"

/** @internal */
export const resolveClientIp = (
  remoteAddress: Option.Option<string>,
  forwardedFor: string | undefined,
  trusted: ReadonlyArray<IpRange>
): Option.Option<string> => {
  if (Option.isNone(remoteAddress)) return Option.none()
  const peer = parseIp(remoteAddress.value)
  if (!peer) return Option.none()
  const isTrusted = (a: NonNullable<ReturnType<typeof parseIp>>) => trusted.some((r) => inRange(a, r))
  let client = peer
  if (trusted.length > 0 && forwardedFor !== undefined && isTrusted(peer)) {
    const hops = forwardedFor.split(",").slice(-32)
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = parseIp(stripPort(hops[i]!.trim()))
      // A malformed hop ends the chain: the last trusted address stands for the client.
      if (!hop) break
      client = hop
      if (!isTrusted(hop)) break
    }
  }
  return Option.some(formatIp(client))
}

// "203.0.113.7:1234" and "[2001:db8::1]:443" carry ports some proxies append.
const stripPort = (hop: string): string => {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop)
  if (bracketed) return bracketed[1]!
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop)
  return v4 ? v4[1]! : hop
}
