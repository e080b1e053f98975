/**
 * Which address is the client's: the socket's peer, or — only when that peer is a trusted
 * proxy — the rightmost `X-Forwarded-For` hop that is not itself a trusted proxy. The leftmost
 * entry is whatever the client wrote, so it is never believed on its own.
 *
 * The binding of a peer that stands for itself is remembered (bounded): most requests come from
 * few peers (keep-alive connections, a proxy, a NAT), so a request skips parsing its address
 * again, and the sessions of one address share one value (88 bytes a session less in the memory
 * store), as they share the user agent's hash.
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
  // No proxy chain to read: the peer is the client.
  if (trusted.length === 0 || forwardedFor === undefined) return peerBinding(remoteAddress.value)
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

const peerMemo = new Map<string, Option.Option<string>>()
const PEER_MEMO_SIZE = 512

/** The binding of a peer address that is the client: the same value for the same address. */
const peerBinding = (remoteAddress: string): Option.Option<string> => {
  let binding = peerMemo.get(remoteAddress)
  if (binding === undefined) {
    const peer = parseIp(remoteAddress)
    binding = peer ? Option.some(formatIp(peer)) : Option.none()
    if (peerMemo.size >= PEER_MEMO_SIZE) peerMemo.clear()
    if (remoteAddress.length <= 64) peerMemo.set(remoteAddress, binding)
  }
  return binding
}

// "203.0.113.7:1234" and "[2001:db8::1]:443" carry ports some proxies append.
const stripPort = (hop: string): string => {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop)
  if (bracketed) return bracketed[1]!
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop)
  return v4 ? v4[1]! : hop
}
