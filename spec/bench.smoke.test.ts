/**
 * The bench harness works: `bench/run.ts --smoke` runs every part tiny (micro, HTTP servers in
 * child processes, memory) and exits 0 only if every row produced numbers and no server failed
 * to start. Store rows whose service is down are skipped (unless SESSIONS_REQUIRE_SERVICES=1).
 * The Redis Cluster row starts (and stops) a cluster of its own with scripts/redis-cluster.sh.
 * Never asserts on timings.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"

interface SmokeRow {
  readonly part: string
  readonly name: string
  readonly scenario: string
  readonly value?: number
  readonly extra?: Record<string, number | string>
  readonly skipped?: string
  readonly failed?: string
}

// The runner compiles the bench first (bench/compiled.ts): 10–30 s of tsc before the parts run.
const TIMEOUT_MS = 340_000

const dir = mkdtempSync(join(tmpdir(), "effect-sessions-bench-spec-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const runSmoke = (out: string) =>
  new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn("npx", ["tsx", "bench/run.ts", "--smoke", "--out", out], {
      cwd: process.cwd(),
      stdio: ["ignore", "pipe", "pipe"],
      env: process.env,
      // its own process group, so that a timeout ends the runner and every server it started
      detached: true
    })
    let output = ""
    child.stdout.on("data", (c: Buffer) => (output += c.toString("utf8")))
    child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")))
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
    }, TIMEOUT_MS - 10_000)
    child.once("error", reject)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })

describe("bench --smoke", () => {
  it("runs every part and produces a number for every row", async () => {
    const out = join(dir, "smoke.json")
    const { code, output } = await runSmoke(out)
    expect(code, output.slice(-4000)).toBe(0)

    const results = JSON.parse(readFileSync(out, "utf8")) as {
      readonly mode: string
      readonly settings: Record<string, string | number>
      readonly rows: ReadonlyArray<SmokeRow>
    }
    expect(results.mode).toBe("smoke")
    // it measured the library as it ships: compiled by tsc, run by plain node (bench/compiled.ts)
    expect(results.settings["code"]).toMatch(/^compiled by tsc/)
    expect(results.settings["servers"]).toBe("one child process each (node)")
    const parts = new Set(results.rows.map((r) => r.part))
    expect([...parts].sort()).toEqual(["http", "memory", "micro"])
    for (const r of results.rows) {
      expect(r.failed, `${r.name} / ${r.scenario}`).toBeUndefined()
      if (r.skipped !== undefined) continue
      expect(typeof r.value === "number" && Number.isFinite(r.value) && r.value > 0, `${r.name} / ${r.scenario}`).toBe(true)
    }
    // every HTTP row measured in the two rounds of a smoke run, its result the median of them
    for (const r of results.rows.filter((x) => x.part === "http" && x.skipped === undefined)) {
      expect(String(r.extra?.["rounds"]).split(" / "), `${r.name} / ${r.scenario}`).toHaveLength(2)
    }
    expect(results.settings["httpRounds"]).toBe(2)
    // the servers without a store never skip
    const measured = results.rows.filter((r) => r.part === "http" && r.skipped === undefined).map((r) => r.name)
    expect(measured.some((n) => n.includes("@effect/platform"))).toBe(true)
    expect(measured.some((n) => n.includes("effect-sessions, memory"))).toBe(true)
    expect(measured.some((n) => n.includes("express-session, MemoryStore"))).toBe(true)
    // the Redis Cluster row ran on a cluster of its own (three primaries), and says how its keys spread
    const cluster = results.rows.filter((r) => r.part === "http" && r.name.includes("Redis Cluster") && r.skipped === undefined && r.scenario !== "hot session")
    for (const r of cluster) {
      expect(r.extra?.["primaries"], r.scenario).toBe(3)
      const sizes = [1, 2, 3].map((i) => r.extra?.[`dbsizePrimary${i}`])
      expect(sizes.every((n) => typeof n === "number" && n > 0), `keys on every primary: ${sizes.join("/")}`).toBe(true)
      expect(output).toContain("keys per primary after the run (DBSIZE)")
    }
    expect(output).toContain("part")
    // the chart is drawn beside the results file
    expect(readFileSync(join(dir, "smoke.svg"), "utf8")).toMatch(/^<svg[\s\S]*effect-sessions, memory[\s\S]*<\/svg>\n$/)
  }, TIMEOUT_MS)
})
