/**
 * The invalidation channels of the Redis store on a cluster with sharded pub/sub: one channel per
 * hash slot, `${prefix}inv{${tag}}`, where `tag` is the first short base62 string (by length,
 * then in alphabet order) whose CRC16 lands in the slot. A script that writes in a slot publishes
 * (`SPUBLISH`) on that slot's channel — which Redis requires to be in the script's own slot — and
 * the listener subscribes (`SSUBSCRIBE`) to every slot's channel on the primary that owns it.
 *
 * The slot function is `cluster-key-slot`, the one ioredis routes by, loaded from ioredis's own
 * dependencies (it is not a dependency of this package). The tags are found once per process,
 * on first use, and kept as 16,384 numbers (64 KiB); channel names are built when asked for.
 *
 * @internal
 */
import { createRequire } from "node:module"

/**
 * The number of hash slots of a Redis Cluster.
 *
 * @internal
 */
export const SLOTS = 16_384

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
const BASE = ALPHABET.length

/** The `n`-th string over the alphabet, shortest first (0 → "0", 61 → "z", 62 → "00", …). */
const nth = (n: number): string => {
  let length = 1
  let count = BASE
  while (n >= count) {
    n -= count
    length++
    count *= BASE
  }
  let out = ""
  for (let i = 0; i < length; i++) {
    out = ALPHABET[n % BASE]! + out
    n = Math.floor(n / BASE)
  }
  return out
}

let keySlot: ((key: string) => number) | undefined

/**
 * The hash slot of a key (or shard channel), as ioredis and Redis compute it. Throws if
 * `cluster-key-slot` cannot be loaded from ioredis's place.
 *
 * @internal
 */
export const slotOf = (key: string): number => {
  if (keySlot === undefined) {
    const ioredis = createRequire(import.meta.url).resolve("ioredis")
    keySlot = createRequire(ioredis)("cluster-key-slot") as (key: string) => number
  }
  return keySlot(key)
}

let tags: Uint32Array | undefined

/** For each slot, the index (in {@link nth}'s order) of the first tag that hashes to it. */
const slotTags = (): Uint32Array => {
  if (tags !== undefined) return tags
  const found = new Uint32Array(SLOTS).fill(0xffffffff)
  let missing = SLOTS
  // Every slot is reached by strings of at most 4 characters (62^3 already covers all but a few).
  for (let n = 0; missing > 0 && n < BASE + BASE ** 2 + BASE ** 3 + BASE ** 4; n++) {
    const slot = slotOf(`{${nth(n)}}`)
    if (found[slot] === 0xffffffff) {
      found[slot] = n
      missing--
    }
  }
  if (missing > 0) throw new Error(`no short channel tag for ${missing} hash slots`)
  tags = found
  return found
}

/**
 * The routing tag of a slot's channel: hashes to `slot`.
 *
 * @internal
 */
export const slotTag = (slot: number): string => nth(slotTags()[slot]!)

/**
 * The shard channels of a store with key prefix `prefix` (which holds no `{`).
 *
 * @internal
 */
export interface ShardChannels {
  /** The channel of a slot. */
  readonly ofSlot: (slot: number) => string
  /** The channel in the slot of a key: where a script writing that key publishes. */
  readonly ofKey: (key: string) => string
  /** Whether a channel is one of this store's. */
  readonly owns: (channel: string) => boolean
}

/**
 * The shard channels of the store with key prefix `prefix`. Finds the tags on first use (throws
 * if `cluster-key-slot` cannot be loaded).
 *
 * @internal
 */
export const makeShardChannels = (prefix: string): ShardChannels => {
  const head = `${prefix}inv{`
  const ofSlot = (slot: number) => `${head}${slotTag(slot)}}`
  slotTags()
  return {
    ofSlot,
    ofKey: (key) => ofSlot(slotOf(key)),
    owns: (channel) => channel.startsWith(head) && channel.endsWith("}")
  }
}
