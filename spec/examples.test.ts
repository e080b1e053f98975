/**
 * Every example runs: each top-level `examples/*.ts` file runs under `npx tsx` as a child process,
 * with a 60 s limit. A program must exit 0. A server (it prints `Listening on http://…`) must
 * answer GET / with 200 twice — the second time through the session cookie of the first — and is
 * then stopped. New examples are picked up by themselves; `*.server.ts` files are skipped, and
 * `*.test.ts` files are tests vitest runs itself;
 * folders under examples/ are multi-file apps with their own tests and are not walked.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const dir = join(root, "examples")

const examples = readdirSync(dir, { withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".server.ts") && !e.name.endsWith(".test.ts") && !e.name.endsWith(".d.ts"))
  .map((e) => e.name)
  .sort()

interface Run {
  readonly code: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
}

const TIMEOUT = 60_000 // the examples start side by side, on a machine that may be busy

/**
 * Runs one example in its own process group, so that on a timeout the whole tree (npx, tsx and
 * the node process it starts) is killed, not just npx.
 */
const run = (file: string): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn("npx", ["tsx", join("examples", file)], {
      cwd: root,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PORT: "0" }
    })
    let stdout = ""
    let stderr = ""
    let server: Promise<void> | undefined
    const onOutput = () => {
      const url = /Listening on (http:\/\/[^\s"]+)/.exec(stdout + stderr)?.[1]
      if (url === undefined || server !== undefined) return
      server = visit(url).then(
        (report) => {
          stdout += `\n[examples test] ${report}\n`
          kill(child.pid, "SIGTERM")
        },
        (error: unknown) => {
          stderr += `\n[examples test] the server did not answer as expected: ${String(error)}\n`
          kill(child.pid, "SIGKILL")
        }
      )
    }
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
      onOutput()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
      onOutput()
    })
    const timer = setTimeout(() => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL")
        } catch {
          // already gone
        }
      }
    }, TIMEOUT)
    child.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      void Promise.resolve(server).then(() =>
        resolve(
          server !== undefined && !stderr.includes("[examples test] the server did not")
            ? { code: 0, signal: null, stdout, stderr }
            : { code, signal, stdout, stderr }
        ))
    })
  })

const kill = (pid: number | undefined, signal: NodeJS.Signals) => {
  if (pid === undefined) return
  try {
    process.kill(-pid, signal)
  } catch {
    // already gone
  }
}

/** Two requests to a server example: the second carries the cookie the first one set. */
const visit = async (url: string): Promise<string> => {
  const first = await fetch(url)
  if (first.status !== 200) throw new Error(`GET / answered ${first.status}`)
  const cookie = first.headers.getSetCookie()[0]?.split(";")[0]
  const second = await fetch(url, cookie === undefined ? {} : { headers: { cookie } })
  if (second.status !== 200) throw new Error(`GET / with the cookie answered ${second.status}`)
  return `server answered: ${JSON.stringify(await first.text())}, then ${JSON.stringify(await second.text())}`
}

it("there is at least one example to run", () => {
  expect(examples).toContain("service.ts")
})

// The examples are independent processes: run them side by side.
describe.concurrent("examples", () => {
  for (const file of examples) {
    it(`examples/${file} exits 0`, { timeout: TIMEOUT + 10_000 }, async () => {
      const result = await run(file)
      const output = `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`
      expect(result.signal, `killed (over ${TIMEOUT / 1000} s?)\n${output}`).toBeNull()
      expect(result.code, output).toBe(0)
    })
  }
})
