/**
 * Password check benchmark.
 *
 *   npx tsx bench/password.ts
 *
 * Measures (1) the first `checkPassword` call in a fresh process, which loads and indexes the
 * word lists, and (2) the time per check afterwards over a varied, seeded set of 12,000
 * passwords (random strings of 8–64 characters, common passwords, decorated dictionary
 * words, keyboard runs, repetitions, Unicode text), with a context on every call.
 */
import { pathToFileURL } from "node:url"
import * as lists from "../src/internal/password/lists.js"
import * as Password from "../src/Password.js"

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
const WORDS = ["sunshine", "Internationalization", "dragon", "monkey", "Responsibilities", "keyboard", "orchard"]
const RUNS = ["abcdefgh", "qwertyuiop", "azertyuiop", "qwertzuiop", "0987654321", "asdfghjkl", "zyxwvuts"]
const UNICODE = ["Ünïcödé", "日本語のパスワード", "🦊🐙🦉🐝", "e\u0301te\u0301", "ﬁﬂ", "Ωmega", "straße"]

const xorshift32 = (seed: number) => {
  let x = seed >>> 0 || 1
  return (): number => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

/** A varied, reproducible set of `n` passwords. */
export const passwordSet = (n: number, seed = 2024): ReadonlyArray<string> => {
  const next = xorshift32(seed)
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[next() % xs.length]!
  const random = (len: number) => {
    let s = ""
    for (let i = 0; i < len; i++) s += BASE62[next() % 62]
    return s
  }
  // read after the first check, so that importing this file does not pre-load the list
  const common = Array.from(lists.compromisedSet())
  const out: Array<string> = []
  for (let i = 0; i < n; i++) {
    switch (i % 7) {
      case 0:
        out.push(random(8 + (next() % 57)))
        break
      case 1:
        out.push(pick(common))
        break
      case 2:
        out.push(`${pick(WORDS)}${next() % 10_000}${pick(["", "!", "?#"])}`)
        break
      case 3:
        out.push(`${pick(RUNS)}${pick(["", "1", "2024", "!!"])}`)
        break
      case 4:
        out.push(random(1 + (next() % 4)).repeat(2 + (next() % 8)))
        break
      case 5:
        out.push(`${pick(UNICODE)} ${random(4)} ${pick(UNICODE)}`)
        break
      default:
        out.push(`${pick(WORDS)} ${pick(WORDS)} ${random(3)} janedoe`)
    }
  }
  return out
}

const CONTEXT: Password.PasswordOptions = {
  context: { userName: "janedoe", email: "jane.doe@example.com", names: ["Jane Doe"], serviceName: "Acme" }
}

/**
 * Runs the benchmark. `firstCheckMs` is only a cold measurement when nothing in this process
 * has loaded the word lists yet (the standalone script guarantees that).
 */
export const runPasswordBench = async (): Promise<{ firstCheckMs: number; perCheckMicros: number }> => {
  const result = measure()
  return { firstCheckMs: result.firstCheckMs, perCheckMicros: result.perCheckMicros }
}

const measure = () => {
  const cold = !lists.isLoaded()
  const t0 = performance.now()
  Password.checkPassword("first check of the process", CONTEXT)
  const firstCheckMs = performance.now() - t0

  const inputs = passwordSet(12_000)
  // warm the JIT
  for (let i = 0; i < 2; i++) for (const p of inputs) Password.checkPassword(p, CONTEXT)

  const rounds: Array<number> = []
  let refused = 0
  for (let r = 0; r < 7; r++) {
    refused = 0
    const start = performance.now()
    for (const p of inputs) if (!Password.checkPassword(p, CONTEXT).ok) refused++
    rounds.push(((performance.now() - start) * 1000) / inputs.length)
  }
  rounds.sort((a, b) => a - b)
  const perCheckMicros = rounds[Math.floor(rounds.length / 2)]!
  return {
    cold,
    firstCheckMs,
    perCheckMicros,
    fastestMicros: rounds[0]!,
    slowestMicros: rounds[rounds.length - 1]!,
    inputs: inputs.length,
    refused
  }
}

const main = () => {
  const r = measure()
  const rows: ReadonlyArray<[string, string]> = [
    ["node", process.version],
    ["first check incl. list loading", `${r.firstCheckMs.toFixed(1)} ms${r.cold ? "" : " (lists were already loaded!)"}`],
    ["passwords per round", `${r.inputs} (${r.refused} refused)`],
    ["per check, median of 7 rounds", `${r.perCheckMicros.toFixed(2)} µs`],
    ["per check, fastest / slowest round", `${r.fastestMicros.toFixed(2)} / ${r.slowestMicros.toFixed(2)} µs`]
  ]
  const width = Math.max(...rows.map(([k]) => k.length))
  console.log("| measure".padEnd(width + 2) + " | value |")
  console.log(`|${"-".repeat(width + 2)}|-------|`)
  for (const [k, v] of rows) console.log(`| ${k.padEnd(width)} | ${v} |`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main()
