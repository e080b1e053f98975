/**
 * Rows, the one plain-text table, the JSON results file, the targets, and a reader of
 * `.cpuprofile` files (top self-time frames) for the profiles of missed targets.
 */
import { readFileSync } from "node:fs"
import { cpus, loadavg, totalmem } from "node:os"

export type Part = "micro" | "http" | "memory"

/** One measured (or skipped, or failed) row. */
export interface Row {
  readonly part: Part
  readonly name: string
  /** e.g. "hot session", "10,000 sessions", "1M entries"; "" when the row has no scenario. */
  readonly scenario: string
  /** The main number: ops/s (micro; Effect steps per request for the step counts), requests/s (http), bytes per session (memory). */
  value?: number
  readonly unit: "ops/s" | "req/s" | "B/session" | "steps/request"
  /** HTTP: latency percentiles in milliseconds. */
  p50Ms?: number
  p99Ms?: number
  /** HTTP: non-2xx answers plus connection errors (timeouts included). */
  errors?: number
  /** HTTP: requests autocannon sent during the measured run. */
  sent?: number
  /** HTTP, hot session: 2xx answers to the measured run (a fixed amount of requests, all completed). */
  answered?: number
  /** HTTP, hot session: how much the session's counter grew during the measured run. */
  counterDelta?: number
  /** HTTP, hot session: answered − counterDelta (increments answered with 200 that another request overwrote). */
  lost?: number
  /** HTTP: req/s relative to the bare @effect/platform server, same scenario. */
  vsPlatform?: number
  /** HTTP: req/s relative to express-session (MemoryStore), same scenario. */
  vsExpress?: number
  /** A target this row is compared against. */
  target?: { readonly text: string; readonly pass: boolean }
  /** Extra figures (micro: per-call runSync variant; password: first check …). */
  extra?: Record<string, number | string>
  /** Why the row was not measured (an unreachable service). */
  skipped?: string
  /** Why the row failed (a server that did not start, a crash). */
  failed?: string
}

export interface Machine {
  readonly cpu: string
  readonly cores: number
  readonly node: string
  readonly platform: string
  readonly totalMemoryGiB: number
  readonly date: string
  /** 1-minute load average when the run started: other processes compete for the cores when it is high. */
  readonly loadAverageAtStart: number
}

export const machine = (): Machine => ({
  cpu: cpus()[0]?.model.trim() ?? "unknown",
  cores: cpus().length,
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  totalMemoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  date: new Date().toISOString(),
  loadAverageAtStart: Math.round((loadavg()[0] ?? 0) * 100) / 100
})

export interface Results {
  readonly machine: Machine
  readonly mode: "full" | "smoke"
  readonly command: string
  readonly settings: Record<string, number | string>
  readonly durationSeconds: number
  /** 1-minute load average when the run ended. */
  readonly loadAverageAtEnd: number
  readonly rows: ReadonlyArray<Row>
}

// ---- formatting ------------------------------------------------------------------------------

const grouped = (n: number): string => Math.round(n).toLocaleString("en-US")

const formatValue = (row: Row): string => {
  if (row.failed !== undefined) return `FAILED: ${row.failed}`
  if (row.skipped !== undefined) return `skipped: ${row.skipped}`
  if (row.value === undefined) return "—"
  if (row.unit === "B/session") return `${grouped(row.value)} B/session`
  return `${row.value >= 100 ? grouped(row.value) : row.value.toFixed(1)} ${row.unit}`
}

/** autocannon records whole milliseconds: 0 means under one. */
const ms = (n: number | undefined): string =>
  n === undefined ? "" : Number.isInteger(n) ? (n === 0 ? "<1" : String(n)) : n < 10 ? n.toFixed(2) : n.toFixed(1)
const ratio = (n: number | undefined): string => n === undefined ? "" : `${n.toFixed(2)}×`

const COLUMNS: ReadonlyArray<{ readonly title: string; readonly right: boolean; readonly cell: (r: Row) => string }> = [
  { title: "part", right: false, cell: (r) => r.part },
  { title: "row", right: false, cell: (r) => r.name },
  { title: "scenario", right: false, cell: (r) => r.scenario },
  { title: "result", right: true, cell: formatValue },
  // HTTP rows over several rounds: the req/s of each (the result is their median).
  { title: "rounds", right: false, cell: (r) => typeof r.extra?.["rounds"] === "string" ? r.extra["rounds"] : "" },
  { title: "p50 ms", right: true, cell: (r) => ms(r.p50Ms) },
  { title: "p99 ms", right: true, cell: (r) => ms(r.p99Ms) },
  { title: "errors", right: true, cell: (r) => r.errors === undefined ? "" : grouped(r.errors) },
  {
    title: "counter/answered",
    right: true,
    cell: (r) => r.answered === undefined || r.counterDelta === undefined ? "" : `${grouped(r.counterDelta)}/${grouped(r.answered)}`
  },
  { title: "lost", right: true, cell: (r) => r.lost === undefined ? "" : grouped(r.lost) },
  { title: "vs platform", right: true, cell: (r) => ratio(r.vsPlatform) },
  { title: "vs express", right: true, cell: (r) => ratio(r.vsExpress) },
  { title: "target", right: false, cell: (r) => r.target === undefined ? "" : `${r.target.pass ? "PASS" : "MISS"} ${r.target.text}` }
]

/** The table: aligned plain text, one line per row, parts separated by a rule. */
export const table = (rows: ReadonlyArray<Row>): string => {
  const cells = rows.map((r) => COLUMNS.map((c) => c.cell(r)))
  const widths = COLUMNS.map((c, i) => Math.max(c.title.length, ...cells.map((line) => line[i]!.length)))
  const line = (values: ReadonlyArray<string>) =>
    values.map((v, i) => (COLUMNS[i]!.right ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join("  ").trimEnd()
  const rule = widths.map((w) => "-".repeat(w)).join("  ")
  const out: Array<string> = [line(COLUMNS.map((c) => c.title)), rule]
  rows.forEach((r, i) => {
    if (i > 0 && rows[i - 1]!.part !== r.part) out.push(rule)
    out.push(line(cells[i]!))
  })
  return out.join("\n")
}

/** Lines printed under the table: how a cluster row's keys spread over its primaries (their DBSIZE after the run). */
export const notes = (rows: ReadonlyArray<Row>): Array<string> =>
  rows.flatMap((r) =>
    typeof r.extra?.["dbsizePerPrimary"] === "string" ? [`${r.name}: keys per primary after the run (DBSIZE): ${r.extra["dbsizePerPrimary"]}`] : []
  )

export const header = (results: Omit<Results, "rows" | "durationSeconds" | "loadAverageAtEnd">): string => {
  const m = results.machine
  return [
    `effect-sessions bench (${results.mode}) — ${m.date}`,
    `machine: ${m.cpu}, ${m.cores} cores, ${m.totalMemoryGiB} GiB, ${m.platform}, node ${m.node}, load average ${m.loadAverageAtStart}`,
    `command: ${results.command}`,
    `settings: ${Object.entries(results.settings).map(([k, v]) => `${k}=${v}`).join(", ")}`
  ].join("\n")
}

// ---- targets ---------------------------------------------------------------------------------

const find = (rows: ReadonlyArray<Row>, name: string, scenario: string) =>
  rows.find((r) => r.name === name && r.scenario === scenario && r.value !== undefined)

/** Names of the rows that {@link applyTargets} and the ratios look for. */
export const NAMES = {
  platform: "(a) @effect/platform, no sessions",
  platformFloor: "(a) @effect/platform + a pass-through middleware, no sessions",
  memory: "(b) effect-sessions, memory",
  sqlite: "(b) effect-sessions, SQLite",
  pg: "(b) effect-sessions, PostgreSQL",
  redis: "(b) effect-sessions, Redis",
  redisCluster: "(b) effect-sessions, Redis Cluster",
  expressMemory: "(c) express-session, MemoryStore",
  expressRedis: "(c) express-session, connect-redis",
  node: "(d) node:http, no sessions",
  start: "Sessions.start hit (cache on)",
  cacheGetApi: "SessionCache.get via Effect API",
  memoryStore: "memory store",
  bareHandler: "web handler: bare route",
  floorHandler: "web handler floor: a pass-through middleware of the same shape",
  handlerGet: "web handler: Http.middleware + get",
  handlerUpdate: "web handler: Http.middleware + update"
} as const

/** Microseconds a web-handler row costs over the bare route (both in ops/s). */
export const overheadMicros = (row: number, bare: number): number => 1e6 / row - 1e6 / bare

/** Fills the ratios of HTTP rows and the PASS/MISS of every target. */
export const applyTargets = (rows: ReadonlyArray<Row>): void => {
  for (const r of rows) {
    if (r.part !== "http" || r.value === undefined) continue
    const platform = find(rows, NAMES.platform, r.scenario)
    const express = find(rows, NAMES.expressMemory, r.scenario)
    if (platform?.value) r.vsPlatform = r.value / platform.value
    if (express?.value) r.vsExpress = r.value / express.value
  }
  for (const r of rows) {
    if (r.value === undefined) continue
    const noLoss = r.lost === undefined || r.lost === 0
    if (r.part === "http" && r.name === NAMES.memory && r.scenario === HOT) {
      const platform = find(rows, NAMES.platform, HOT)
      const express = find(rows, NAMES.expressMemory, HOT)
      if (platform?.value && express?.value) {
        // What a middleware of the same shape that does no session work reaches in the same run.
        const floor = find(rows, NAMES.platformFloor, HOT)
        const floorText = floor?.value ? ` (pass-through floor ${(floor.value / platform.value).toFixed(2)}×)` : ""
        r.target = {
          text: `≥ 0.8× platform and ≥ 1.2× express-session req/s (hot), 0 lost${floorText}`,
          pass: r.value >= 0.8 * platform.value && r.value >= 1.2 * express.value && noLoss
        }
      }
    }
    if (r.part === "http" && r.name === NAMES.redis) {
      const express = find(rows, NAMES.expressRedis, r.scenario)
      if (express?.value) {
        // One hot session serialises its writes on one lock; 10,000 sessions do not.
        const ratio = r.scenario === HOT ? 0.6 : 1
        r.target = {
          text: `≥ ${ratio.toFixed(1)}× connect-redis req/s, 0 lost`,
          pass: r.value >= ratio * express.value && noLoss
        }
      }
    }
    if (r.part === "micro" && (r.name === NAMES.handlerGet || r.name === NAMES.handlerUpdate)) {
      const bare = find(rows, NAMES.bareHandler, r.scenario)
      if (bare?.value) {
        const budget = r.name === NAMES.handlerGet ? 6 : 15
        const over = overheadMicros(r.value, bare.value)
        // What any middleware of this shape costs in the same run: what the budget is up against.
        const floor = find(rows, NAMES.floorHandler, r.scenario)
        const floorText = floor?.value ? `; pass-through floor ${overheadMicros(floor.value, bare.value).toFixed(1)} µs` : ""
        r.target = { text: `≤ ${budget} µs over the bare route (${over.toFixed(1)} µs${floorText})`, pass: over <= budget }
      }
    }
    if (r.part === "micro" && r.name === NAMES.start) {
      r.target = { text: "≥ 1,000,000 ops/s", pass: r.value >= 1_000_000 }
    }
    if (r.part === "micro" && r.name === NAMES.cacheGetApi && r.scenario.startsWith("1M")) {
      r.target = { text: "≥ 2,000,000 ops/s", pass: r.value >= 2_000_000 }
    }
    if (r.part === "memory" && r.name === NAMES.memoryStore) {
      r.target = { text: "≤ 400 B/session", pass: r.value <= 400 }
    }
  }
}

/**
 * One row from the same row's rounds: the round with the median req/s (the lower one of the
 * middle two), its latencies and errors; the hot session's answers, counter growth and lost
 * updates summed over every round (0 lost means none in any round); the req/s of every round in
 * `extra.rounds`. A row that failed in any round fails; one skipped in every round is skipped.
 */
export const mergeRounds = (rounds: ReadonlyArray<Row>): Row => {
  if (rounds.length === 1) return rounds[0]!
  const failed = rounds.find((r) => r.failed !== undefined)
  if (failed !== undefined) return failed
  const measured = rounds.filter((r) => r.skipped === undefined && r.value !== undefined)
  if (measured.length === 0) return rounds[0]!
  const sorted = [...measured].sort((a, b) => a.value! - b.value!)
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!
  const sum = (pick: (r: Row) => number | undefined) =>
    measured.every((r) => pick(r) !== undefined) ? measured.reduce((n, r) => n + pick(r)!, 0) : undefined
  const answered = sum((r) => r.answered)
  const counterDelta = sum((r) => r.counterDelta)
  const lost = sum((r) => r.lost)
  return {
    ...median,
    ...(answered === undefined ? {} : { answered }),
    ...(counterDelta === undefined ? {} : { counterDelta }),
    ...(lost === undefined ? {} : { lost }),
    extra: { ...median.extra, rounds: measured.map((r) => Math.round(r.value!)).join(" / ") }
  }
}

export const HOT = "hot session"
export const distinctScenario = (n: number): string => `${n.toLocaleString("en-US")} sessions`

/** Problems that make a smoke run fail: failed rows, rows without a finite positive number. */
export const problems = (rows: ReadonlyArray<Row>): ReadonlyArray<string> =>
  rows.flatMap((r) => {
    const id = `${r.part} / ${r.name} / ${r.scenario}`
    if (r.failed !== undefined) return [`${id}: failed: ${r.failed}`]
    if (r.skipped !== undefined) return []
    if (r.value === undefined || !Number.isFinite(r.value) || r.value <= 0) return [`${id}: no number`]
    if (r.part === "http" && (r.p50Ms === undefined || r.p99Ms === undefined || r.errors === undefined)) return [`${id}: no latency/errors`]
    return []
  })

// ---- CPU profiles ----------------------------------------------------------------------------

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number }
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

export interface Frame {
  readonly frame: string
  readonly selfPercent: number
  readonly selfMs: number
}

const shortUrl = (url: string): string =>
  url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/(src|bench)\//, "$1/").replace(/\?.*$/, "")

/**
 * The top self-time frames of a `.cpuprofile` (idle, GC and program frames included, as V8
 * reports them). `by: "file"` sums self time per script (src/… files, packages, node internals).
 */
export const topFrames = (file: string, top = 25, by: "frame" | "file" = "frame"): ReadonlyArray<Frame> => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    const node = byId.get(id)
    if (node === undefined) return
    const f = node.callFrame
    const url = shortUrl(f.url)
    const key = by === "file"
      ? (url === "" ? f.functionName || "(native)" : url.startsWith("node:") ? "node: internals" : url)
      : `${f.functionName || "(anonymous)"}${url === "" ? "" : ` ${url}:${f.lineNumber + 1}:${f.columnNumber + 1}`}`
    self.set(key, (self.get(key) ?? 0) + dt)
    total += dt
  })
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([frame, micros]) => ({ frame, selfPercent: (100 * micros) / total, selfMs: micros / 1000 }))
}

/**
 * Who spends the self time of the frames named `name`: their call stacks (up to `depth` callers),
 * summed, largest first.
 */
export const callersOf = (file: string, name: string, depth = 6, top = 10): ReadonlyArray<Frame> => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const label = (n: ProfileNode) => {
    const url = shortUrl(n.callFrame.url)
    return `${n.callFrame.functionName || "(anonymous)"}${url === "" ? "" : ` ${url}:${n.callFrame.lineNumber + 1}:${n.callFrame.columnNumber + 1}`}`
  }
  const stacks = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const node = byId.get(id)
    if (node === undefined || node.callFrame.functionName !== name) return
    const dt = profile.timeDeltas[i] ?? 0
    const chain: Array<string> = []
    let p = parent.get(id)
    while (p !== undefined && chain.length < depth) {
      const pn = byId.get(p)!
      chain.push(label(pn))
      p = parent.get(p)
    }
    const key = chain.join("  <  ")
    stacks.set(key, (stacks.get(key) ?? 0) + dt)
    total += dt
  })
  return [...stacks.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([frame, micros]) => ({ frame, selfPercent: (100 * micros) / Math.max(total, 1), selfMs: micros / 1000 }))
}

export const formatFrames = (frames: ReadonlyArray<Frame>): string =>
  frames.map((f) => `${f.selfPercent.toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(6)} ms  ${f.frame}`).join("\n")
