/**
 * Shared bits of the bench servers: arguments, the port line the runner waits for, and the
 * counters every server exposes (`GET /stats`: increments answered since start).
 */
import type { AddressInfo } from "node:net"

/** The value after `--name` in argv, or `fallback`. */
export const arg = (name: string, fallback?: string): string => {
  const at = process.argv.indexOf(`--${name}`)
  const value = at >= 0 ? process.argv[at + 1] : undefined
  if (value !== undefined) return value
  if (fallback !== undefined) return fallback
  throw new Error(`missing --${name}`)
}

/** The line the runner waits for. */
export const announce = (port: number): void => {
  process.stdout.write(`PORT ${port}\n`)
}

export const announceAddress = (address: string | AddressInfo | null): void => {
  if (address === null || typeof address === "string") throw new Error(`unexpected address ${String(address)}`)
  announce(address.port)
}

/** Increments answered with 200 (so the runner can tell lost updates from requests in flight). */
export const stats = { answered: 0 }

export const HOST = "127.0.0.1"
