/**
 * `npm run bench`: micro benchmarks, HTTP servers under load and memory per session, measured in
 * one run on this machine, printed as one table and written to `bench/results/latest.json`, with
 * the HTTP figures drawn beside it in `bench/results/latest.svg` (`./chart.ts`).
 *
 *   npx tsx bench/run.ts                 full run (≈ 4–5 minutes)
 *   npx tsx bench/run.ts --smoke         every part tiny; exits 1 unless every row has numbers
 *   options: --only-part micro|http|memory (repeatable)   --only <text> (rows/servers whose name contains it)
 *            --out <file> (results JSON; smoke default: a file in the OS temp dir)
 *            --duration <s> --warmup <s> --distinct <n> --rounds <n> (HTTP; full run: 3 s, 2 s, 10,000, 3 rounds; smoke: 2 rounds)
 *            --cpu-prof <dir> (profile every server)
 *            --table <results.json> (print the table of a results file and exit)
 *            --chart <results.json> (draw its chart, the .svg beside it, and exit; a run draws its own)
 *            --summarize-profile <file.cpuprofile> [--top n] [--by-file]
 *              (print its top self-time frames and exit; --callers <function> [--depth n]: the stacks of that frame)
 *
 * Store rows whose service (PostgreSQL 127.0.0.1:5432, Redis 127.0.0.1:6379; override with
 * BENCH_PG_URL / BENCH_REDIS_URL) is unreachable are skipped, unless SESSIONS_REQUIRE_SERVICES=1.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { killAll, runHttp } from "./http.js"
import { killMemoryChildren, runMemory } from "./memory.js"
import { runMicro } from "./micro.js"
import { chart } from "./chart.js"
import { codeSetting, isCompiled, runCompiled } from "./compiled.js"
import { stopAllClustersSync } from "../spec/helpers/redisCluster.js"
import { applyTargets, callersOf, formatFrames, header, machine, notes, type Part, problems, type Results, type Row, table, topFrames } from "./report.js"

const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(`--${name}`)
const option = (name: string): string | undefined => {
  const at = argv.indexOf(`--${name}`)
  return at >= 0 ? argv[at + 1] : undefined
}
const options = (name: string): Array<string> => argv.flatMap((a, i) => (a === `--${name}` && argv[i + 1] !== undefined ? [argv[i + 1]!] : []))

const main = async (): Promise<number> => {
  const profile = option("summarize-profile")
  if (profile !== undefined) {
    const callers = option("callers")
    console.log(formatFrames(
      callers === undefined
        ? topFrames(profile, Number(option("top") ?? 30), flag("by-file") ? "file" : "frame")
        : callersOf(profile, callers, Number(option("depth") ?? 6), Number(option("top") ?? 10))
    ))
    return 0
  }

  const render = option("table")
  if (render !== undefined) {
    const saved = JSON.parse(readFileSync(render, "utf8")) as Results
    console.log(`${header(saved)}\n\n${[table(saved.rows), ...notes(saved.rows)].join("\n")}\n\n${saved.rows.length} rows in ${saved.durationSeconds} s (load average at the end ${saved.loadAverageAtEnd})`)
    return 0
  }

  const redraw = option("chart")
  if (redraw !== undefined) {
    const svg = `${redraw.replace(/\.json$/, "")}.svg`
    writeFileSync(svg, chart(JSON.parse(readFileSync(redraw, "utf8")) as Results))
    console.log(`chart of ${redraw} written to ${svg}`)
    return 0
  }

  // Measure the library as it ships (bench/compiled.ts), unless asked to run the TypeScript.
  if (!isCompiled && !flag("source")) return runCompiled(argv)

  const smoke = flag("smoke")
  const parts = new Set<Part>((options("only-part") as Array<Part>).length > 0 ? (options("only-part") as Array<Part>) : ["micro", "http", "memory"])
  const only = option("only")
  const requireServices = process.env["SESSIONS_REQUIRE_SERVICES"] === "1"
  const out = option("out") ?? (smoke ? join(tmpdir(), "effect-sessions-bench-smoke.json") : "bench/results/latest.json")
  const http = {
    duration: Number(option("duration") ?? (smoke ? 0.3 : 3)),
    warmup: Number(option("warmup") ?? (smoke ? 0.1 : 2)),
    connections: 50,
    distinct: Number(option("distinct") ?? (smoke ? 200 : 10_000)),
    rounds: Number(option("rounds") ?? (smoke ? 2 : 3))
  }
  const command = `npx tsx bench/run.ts${argv.length > 0 ? ` ${argv.join(" ")}` : ""}`
  const settings: Record<string, number | string> = {
    httpSecondsPerScenario: http.duration,
    httpWarmupSeconds: http.warmup,
    httpRounds: http.rounds,
    connections: http.connections,
    distinctSessions: http.distinct,
    loadGenerator: "autocannon 8 (in the runner process)",
    servers: isCompiled ? "one child process each (node)" : "one child process each (node --import tsx)",
    code: codeSetting
  }
  const head = { machine: machine(), mode: smoke ? "smoke" as const : "full" as const, command, settings }
  const log = (line: string) => console.log(line)
  log(header(head))
  log("")

  const started = performance.now()
  const rows: Array<Row> = []
  if (parts.has("micro")) {
    log("micro benchmarks …")
    rows.push(...(await runMicro({ smoke, only, log })))
  }
  if (parts.has("http")) {
    log("HTTP benchmarks …")
    rows.push(...(await runHttp({
      smoke,
      ...http,
      requireServices,
      only,
      profileDir: option("cpu-prof"),
      log
    })))
  }
  if (parts.has("memory")) {
    log("memory per session …")
    rows.push(...(await runMemory({ smoke, log })))
  }
  applyTargets(rows)
  const durationSeconds = Math.round((performance.now() - started) / 100) / 10

  const loadAverageAtEnd = Math.round((loadavg()[0] ?? 0) * 100) / 100
  const results: Results = { ...head, durationSeconds, loadAverageAtEnd, rows }
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`)
  const svg = out.replace(/\.json$/, "") + ".svg"
  writeFileSync(svg, chart(results))

  log("")
  log(table(rows))
  for (const line of notes(rows)) log(line)
  log("")
  log(`${rows.length} rows in ${durationSeconds} s (load average at the end ${loadAverageAtEnd}); results written to ${out}, the chart to ${svg}`)

  const found = problems(rows)
  if (found.length > 0) {
    log(`\n${found.length} problem(s):\n${found.map((p) => `  - ${p}`).join("\n")}`)
    return 1
  }
  return 0
}

const killChildren = () => {
  killAll()
  killMemoryChildren()
  // the Redis Cluster row's own cluster, when a run ends before the row's clean-up
  stopAllClustersSync()
}

const bail = (why: string) => {
  killChildren()
  console.error(why)
  process.exit(130)
}
process.on("SIGINT", () => bail("interrupted"))
process.on("SIGTERM", () => bail("terminated"))
process.on("exit", killChildren)

main().then(
  (code) => {
    killChildren()
    process.exit(code)
  },
  (e: unknown) => {
    killChildren()
    console.error(e)
    process.exit(1)
  }
)
