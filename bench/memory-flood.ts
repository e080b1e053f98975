/**
 * A session-creation flood against the memory store's capacity: `--creations` sessions (default
 * 1,000,000) into a store of `--capacity` sessions (default 100,000), as the HTTP middleware makes
 * them (random keys, a SHA-256 token key, an IP and user-agent binding, one counter), and the heap
 * (`process.memoryUsage().heapUsed` after `global.gc()`) every tenth of the way: it stops growing
 * once the store is full.
 *
 *   node --expose-gc --import tsx bench/memory-flood.ts [--capacity 100000] [--creations 1000000]
 */
import { Effect, Logger, LogLevel, Metric } from "effect"
import { randomBytes } from "node:crypto"
import { parseArgs } from "node:util"
import { evicted, makeMemoryStore } from "../src/internal/memoryStore.js"
import * as Session from "../src/Session.js"
import { defaults as DEFAULT_CONFIG } from "../src/SessionConfig.js"

declare const gc: undefined | (() => void)

const { values } = parseArgs({
  options: { capacity: { type: "string", default: "100000" }, creations: { type: "string", default: "1000000" } }
})
const capacity = Number(values.capacity)
const creations = Number(values.creations)
if (typeof gc !== "function") throw new Error("run with node --expose-gc")

const T = 1_700_000_000_000
const heapMiB = () => {
  gc!()
  gc!()
  return process.memoryUsage().heapUsed / 2 ** 20
}

// Entropy drawn in blocks outside the JS heap (a Buffer), so that it does not count.
const block = randomBytes(64 * 65_536)
const makeSession = (i: number): Session.Session => {
  const client = Session.client({
    ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
  })
  const at = (i % 65_536) * 64
  // The counter makes every key unique although the entropy block repeats.
  const key = `${block.toString("base64url", at, at + 32).slice(0, 36)}${i.toString(36).padStart(7, "0")}`
  const tokenKey = `${block.toString("base64url", at + 32, at + 64).slice(0, 36)}${i.toString(36).padStart(7, "0")}`
  return Session.withVersion(Session.set(Session.start({ key, tokenKey, now: T, client }), "count", i % 1000), 2)
}

const store = makeMemoryStore({ capacity })
const base = heapMiB()
console.log(`memory store flood: capacity ${capacity.toLocaleString("en-US")}, ${creations.toLocaleString("en-US")} creations`)
console.log(`heap before: ${base.toFixed(1)} MiB`)
const step = Math.max(1, Math.floor(creations / 10))
let peak = 0
const started = performance.now()
for (let done = 0; done < creations;) {
  const until = Math.min(creations, done + step)
  Effect.runSync(Effect.gen(function*() {
    for (let i = done; i < until; i++) {
      const s = makeSession(i)
      yield* store.create(s, Session.expiresAt(s, DEFAULT_CONFIG))
    }
  }).pipe(Logger.withMinimumLogLevel(LogLevel.Error))) // the once-a-minute eviction warning
  done = until
  const now = heapMiB() - base
  peak = Math.max(peak, now)
  console.log(`  after ${done.toLocaleString("en-US").padStart(9)}: heap +${now.toFixed(1)} MiB`)
}
const count = Effect.runSync(Metric.value(evicted)).count
console.log(
  `peak +${peak.toFixed(1)} MiB (${((peak * 2 ** 20) / Math.min(capacity, creations)).toFixed(0)} bytes per held session); ` +
    `${count.toLocaleString("en-US")} evicted; ${((performance.now() - started) / 1000).toFixed(1)} s`
)
