/**
 * The bench chart (`bench/chart.ts`) draws what the results say: one bar per measured HTTP row,
 * lengths on one scale, the lost updates hatched in proportion and named in the label, skipped
 * and failed rows named without a bar, names escaped. No timing is asserted.
 */
import { describe, expect, it } from "@effect/vitest"
import { chart, lostShare } from "../bench/chart.js"
import type { Results, Row } from "../bench/report.js"

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
})
