/**
 * The bench chart (`bench/chart.ts`) draws what the results say: one bar per measured HTTP row,
 * lengths on one scale, the lost updates hatched in proportion and named in the label, skipped
 * and failed rows named without a bar, names escaped. No timing is asserted.
 */
import { describe, expect, it } from "@effect/vitest"
import { chart, lostShare } from "../bench/chart.js"
import { applyTargets, mergeRounds, NAMES, notes, overheadMicros, type Results, type Row, table } from "../bench/report.js"

const results = (rows: ReadonlyArray<Row>): Results => ({
  machine: { cpu: "Test CPU", cores: 2, node: "v20.0.0", platform: "linux x64", totalMemoryGiB: 1, date: "2026-12-01T00:00:00.000Z", loadAverageAtStart: 0 },
  mode: "full",
  command: "npx tsx bench/run.ts",
  settings: { connections: 50 },
  durationSeconds: 1,
  loadAverageAtEnd: 0,
  rows
})

const http = (name: string, scenario: string, value: number | undefined, more: Partial<Row> = {}): Row => ({
  part: "http",
  name,
  scenario,
  unit: "req/s",
  ...(value === undefined ? {} : { value }),
  ...more
})

const widths = (svg: string, cls: string): Array<number> =>
  [...svg.matchAll(new RegExp(`class="${cls}"[^>]*width="([0-9.]+)"`, "g"))].map((m) => Number(m[1]))

describe("bench chart", () => {
  it("draws one bar per measured HTTP row, lengths proportional to req/s", () => {
    const svg = chart(results([
      http("(a) @effect/platform, no sessions", "hot session", 8000),
      http("(b) effect-sessions, memory", "hot session", 4000, { answered: 100, lost: 0 }),
      { part: "micro", name: "Session.decide", scenario: "", unit: "ops/s", value: 1e7 }
    ]))
    const bars = widths(svg, "bar")
    expect(bars).toHaveLength(2)
    expect(bars[0]! / bars[1]!).toBeCloseTo(2, 1)
    expect(svg).toContain("8,000 req/s")
    expect(svg).toContain("4,000 req/s, no update lost")
    expect(svg).not.toContain("Session.decide")
    expect(svg.startsWith("<svg")).toBe(true)
  })

  it("hatches the lost share of a bar and says how many updates were lost", () => {
    const lossy = http("(c) express-session, MemoryStore", "hot session", 5000, { answered: 1000, counterDelta: 250, lost: 750 })
    expect(lostShare(lossy)).toBe(0.75)
    const svg = chart(results([lossy]))
    const [bar] = widths(svg, "bar")
    const [lost] = widths(svg, "lost")
    expect(lost! / bar!).toBeCloseTo(0.75, 2)
    expect(svg).toContain("lost 750 of 1,000 updates (75 %)")
    expect(widths(chart(results([http("x", "hot session", 5000, { answered: 1000, lost: 0 })])), "lost")).toHaveLength(0)
  })

  it("groups rows by scenario, names skipped and failed rows without a bar, escapes names", () => {
    const svg = chart(results([
      http("a <b> & \"c\"", "hot session", 10),
      http("redis", "10,000 sessions", undefined, { skipped: "Redis unreachable" }),
      http("pg", "10,000 sessions", undefined, { failed: "server crashed" })
    ]))
    expect(svg).toContain("a &lt;b&gt; &amp; &quot;c&quot;")
    expect(svg).toContain(">hot session<")
    expect(svg).toContain(">10,000 sessions<")
    expect(svg).toContain("skipped: Redis unreachable")
    expect(svg).toContain("failed: server crashed")
    expect(widths(svg, "bar")).toHaveLength(1)
  })

  it("scales to the frameworks and draws the raw node:http baseline broken", () => {
    const svg = chart(results([
      http("(d) node:http, no sessions", "hot session", 80000),
      http("(a) @effect/platform, no sessions", "hot session", 16000),
      http("(b) effect-sessions, memory", "hot session", 8000)
    ]))
    const [raw, platform, ours] = widths(svg, "bar")
    expect(platform! / ours!).toBeCloseTo(2, 1)
    expect(raw!).toBeGreaterThan(platform!)
    expect(raw!).toBeLessThan(platform! * 1.1)
    expect(svg).toContain(`class="break"`)
    expect(svg).toContain("80,000 req/s")
  })

  it("widens the label column to the longest server name and the chart to the longest value text", () => {
    const long = "(a) @effect/platform + a pass-through middleware, no sessions"
    const svg = chart(results([
      http("(a) @effect/platform, no sessions", "hot session", 8000),
      http(long, "hot session", 6000),
      http("(c) express-session, MemoryStore", "hot session", 7900, { answered: 23_045, lost: 22_127 })
    ]))
    const labelX = Number(/x="([0-9.]+)"[^>]*class="label"[^>]*>\(a\) @effect\/platform \+/.exec(svg)?.[1])
    // text-anchor="end" at labelX: the name must fit left of it (≥ 6 px a character at 12 px)
    expect(labelX).toBeGreaterThanOrEqual(long.length * 6)
    const barX = Number(/class="bar" x="([0-9.]+)"/.exec(svg)?.[1])
    expect(barX).toBeGreaterThan(labelX)
    const width = Number(/<svg[^>]* width="(\d+)"/.exec(svg)?.[1])
    const lostText = "7,900 req/s, lost 22,127 of 23,045 updates (96 %)"
    expect(svg).toContain(lostText)
    const valueX = Number(new RegExp(`x="([0-9.]+)"[^>]*class="value">${lostText.replace(/[()]/g, "\\$&")}`).exec(svg)?.[1])
    expect(width).toBeGreaterThanOrEqual(valueX + lostText.length * 6)
    // a chart of short names keeps the usual size
    expect(/<svg[^>]* width="(\d+)"/.exec(chart(results([http("x", "hot session", 5000)])))?.[1]).toBe("860")
  })
})

describe("bench targets", () => {
  const micro = (name: string, value: number): Row => ({ part: "micro", name, scenario: "memory, 1 session", unit: "ops/s", value })

  it("judges the in-process middleware by its microseconds over the bare route", () => {
    const rows = [micro(NAMES.bareHandler, 50_000), micro(NAMES.handlerGet, 40_000), micro(NAMES.handlerUpdate, 30_000)]
    applyTargets(rows)
    // 1e6/40k − 1e6/50k = 5 µs (budget 6); 1e6/30k − 1e6/50k ≈ 13.3 µs (budget 15)
    expect(overheadMicros(40_000, 50_000)).toBeCloseTo(5, 6)
    expect(rows[1]!.target).toStrictEqual({ text: "≤ 6 µs over the bare route (5.0 µs)", pass: true })
    expect(rows[2]!.target?.pass).toBe(true)
    const slow = [micro(NAMES.bareHandler, 50_000), micro(NAMES.handlerGet, 30_000)]
    applyTargets(slow)
    expect(slow[1]!.target?.pass).toBe(false)
  })

  it("asks the hot memory row for both ratios and no lost update, and the Redis rows for theirs", () => {
    const rows: Array<Row> = [
      http(NAMES.platform, "hot session", 10_000),
      http(NAMES.expressMemory, "hot session", 6_000),
      http(NAMES.memory, "hot session", 8_000, { answered: 100, lost: 0 }),
      http(NAMES.expressRedis, "hot session", 5_000),
      http(NAMES.redis, "hot session", 3_100, { answered: 100, lost: 0 })
    ]
    applyTargets(rows)
    // 8,000 ≥ 0.8 × 10,000 and ≥ 1.2 × 6,000: both ratios met
    expect(rows[2]!.target?.pass).toBe(true)
    expect(rows[4]!.target).toStrictEqual({ text: "≥ 0.6× connect-redis req/s, 0 lost", pass: true })
    const lossy = [
      http(NAMES.platform, "hot session", 10_000),
      http(NAMES.expressMemory, "hot session", 6_000),
      http(NAMES.memory, "hot session", 9_000, { answered: 100, lost: 1 })
    ]
    applyTargets(lossy)
    expect(lossy[2]!.target?.pass).toBe(false)
  })

  it("names, in the hot memory row's target, the ratio a pass-through middleware reached in the same run", () => {
    const rows: Array<Row> = [
      http(NAMES.platform, "hot session", 10_000),
      http(NAMES.platformFloor, "hot session", 7_500),
      http(NAMES.expressMemory, "hot session", 6_000),
      http(NAMES.memory, "hot session", 4_000, { answered: 100, lost: 0 })
    ]
    applyTargets(rows)
    expect(rows[3]!.target).toStrictEqual({
      text: "≥ 0.8× platform and ≥ 1.2× express-session req/s (hot), 0 lost (pass-through floor 0.75×)",
      pass: false
    })
    expect(rows[1]!.vsPlatform).toBeCloseTo(0.75, 6)
  })

  it("prints, under the table, how the Redis Cluster row's keys spread over its primaries, and nothing for other rows", () => {
    const spread = "127.0.0.1:7020 (slots 0-5460): 6614; 127.0.0.1:7021 (slots 5461-10922): 6636; 127.0.0.1:7022 (slots 10923-16383): 6754"
    const rows = [
      http(NAMES.redis, "10,000 sessions", 700, { extra: { answered: 3500 } }),
      http(NAMES.redisCluster, "hot session", 250),
      http(NAMES.redisCluster, "10,000 sessions", 800, { extra: { primaries: 3, dbsizePerPrimary: spread } })
    ]
    expect(notes(rows)).toStrictEqual([`(b) effect-sessions, Redis Cluster: keys per primary after the run (DBSIZE): ${spread}`])
    expect(notes(rows.slice(0, 2))).toStrictEqual([])
  })
})

describe("bench rounds", () => {
  it("a row reports its median round, the answers and lost updates of every round summed, and each round's req/s", () => {
    const round = (value: number, answered: number, lost: number, p99Ms: number) =>
      http(NAMES.expressMemory, "hot session", value, { answered, counterDelta: answered - lost, lost, p99Ms, extra: { amount: answered } })
    const merged = mergeRounds([round(4000, 100, 90, 30), round(6000, 120, 110, 20), round(5000, 110, 100, 25)])
    expect(merged.value).toBe(5000)
    expect(merged.p99Ms).toBe(25)
    expect([merged.answered, merged.counterDelta, merged.lost]).toStrictEqual([330, 30, 300])
    expect(merged.extra).toStrictEqual({ amount: 110, rounds: "4000 / 6000 / 5000" })
    expect(table([merged])).toMatch(/ 5,000 req\/s {2}4000 \/ 6000 \/ 5000 /)
    // of two middle rounds, the lower
    expect(mergeRounds([round(4000, 1, 0, 1), round(6000, 1, 0, 1)]).value).toBe(4000)
    // one round: the row as it is
    const one = round(4000, 1, 0, 1)
    expect(mergeRounds([one])).toBe(one)
  })

  it("a row failed in any round fails, one skipped in every round is skipped, a round without a counter sums none", () => {
    const ok = http(NAMES.memory, "10,000 sessions", 3000)
    const failed = http(NAMES.memory, "10,000 sessions", undefined, { failed: "server: exited" })
    expect(mergeRounds([ok, failed, ok]).failed).toBe("server: exited")
    const skipped = http(NAMES.redis, "hot session", undefined, { skipped: "Redis unreachable" })
    expect(mergeRounds([skipped, skipped]).skipped).toBe("Redis unreachable")
    const merged = mergeRounds([ok, http(NAMES.memory, "10,000 sessions", 2000)])
    expect(merged.value).toBe(2000)
    expect(merged.answered).toBeUndefined()
    expect(merged.lost).toBeUndefined()
  })
})
