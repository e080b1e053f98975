/**
 * Several server processes sharing one store, on the real Redis, on a Redis Cluster (three
 * primaries with a replica each, `REDIS_CLUSTER_NODES`: .ci/run starts one with
 * scripts/redis-cluster.sh) and on the real PostgreSQL: three child processes run spec/multiprocess/server.ts (token rotation every 300 ms, 60 s grace
 * period), and 50 concurrent clients that share ONE session send 3,000 `POST /api/counter` in
 * all, round-robin over the three. Every client keeps the newest token it has been given, so a
 * client may carry an old token (inside the grace period) while others rotated it.
 *
 * Then: log in on process 1, log out everywhere on process 2, and the next `GET /api/me` on every
 * process (with the cookie still held) sees nobody.
 *
 * Budget: under 150 s per store (start-up included; 15–25 s on an idle machine). Every child is killed in `afterAll`, also
 * when a test fails.
 */
import { randomBytes } from "node:crypto"
import { performance } from "node:perf_hooks"
import { afterAll, assert, describe, it } from "vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { killAll, type Running, setCookieValue, startScript } from "./helpers/processes.js"
import { deleteRedisKeys, postgresUrl, redisUrl, withService, dropPgTables, deleteRedisClusterKeys, withRedisCluster } from "./services.js"

const runId = randomBytes(4).toString("hex")
const SERVER = "spec/multiprocess/server.ts"
const PROCESSES = 3
const CLIENTS = 50
const REQUESTS = 3_000
/** No single request may take longer (a hung request fails the test instead of the budget). */
const REQUEST_TIMEOUT_MS = 30_000
/**
 * The load phase must end by then: far above the run's length on an idle machine (15–25 s), so
 * that a machine busy with other test files is not reported as a failure; what the test judges is
 * that no update is lost and no session forks, not the speed.
 */
const LOAD_DEADLINE_MS = 100_000

afterAll(killAll)

interface Reply {
  readonly status: number
  readonly body: string
  readonly cookie: { readonly value: string; readonly removal: boolean } | undefined
}

const request = async (url: string, options: { readonly method?: string; readonly token?: string | undefined; readonly body?: unknown } = {}): Promise<Reply> => {
  const headers: Record<string, string> = {}
  if (options.token !== undefined) headers["cookie"] = `id=${options.token}`
  if (options.body !== undefined) headers["content-type"] = "application/json"
  const response = await fetch(url, {
    method: options.method ?? "GET",
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
  })
  return { status: response.status, body: await response.text(), cookie: setCookieValue(response.headers.getSetCookie(), "id") }
}

const json = (reply: Reply): any => {
  try {
    return JSON.parse(reply.body)
  } catch {
    throw new Error(`not JSON (status ${reply.status}): ${reply.body.slice(0, 200)}`)
  }
}

/**
 * The grace period of the run: far above the longest request (REQUEST_TIMEOUT_MS), so that a
 * request that waited long on a loaded machine never carries a token past its grace period —
 * which would report a slow machine as a lost session.
 */
const GRACE = "60 seconds"

/** Starts the server processes (in parallel) for a store. */
const startServers = (env: Record<string, string>): Promise<Array<Running & { readonly url: string }>> =>
  Promise.all(Array.from({ length: PROCESSES }, (_, i) => startScript(SERVER, { GRACE, ...env, ORIGIN_ID: `mp-${runId}-${i + 1}` })))

/** Figures of the last run of each store, printed at the end. */
const figures: Array<string> = []
afterAll(() => {
  if (figures.length > 0) console.info(`multi-process figures:\n${figures.map((f) => `  ${f}`).join("\n")}`)
})

const scenario = (store: string, env: () => Record<string, string>) => {
  describe(`${PROCESSES} processes on ${store}`, () => {
    let servers: Array<Running & { readonly url: string }> = []
    afterAll(async () => {
      await Promise.all(servers.map((s) => s.stop(3000)))
    })

    const urlOf = (i: number) => servers[i % servers.length]!.url
    const output = () => servers.map((s, i) => `--- process ${i + 1}:\n${s.output().slice(-1500)}`).join("\n")

    it(`${CLIENTS} clients sharing one session: ${REQUESTS} increments round-robin over ${PROCESSES} processes end at exactly ${REQUESTS}; then logOutEverywhere on one process logs out every process`, async () => {
      servers = await startServers(env())
      const started = performance.now()

      // The session: the first increment creates it.
      const first = await request(`${urlOf(0)}/api/counter`, { method: "POST" })
      assert.strictEqual(first.status, 200, first.body)
      deepStrictEqual(json(first), { count: 1 })
      assert.isDefined(first.cookie)
      const initial = first.cookie!.value

      const tokens = new Set<string>([initial])
      const counts: Array<number> = [1]
      const failures: Array<string> = []
      let issued = 1
      const deadline = performance.now() + LOAD_DEADLINE_MS

      const runClient = async (c: number) => {
        let token = initial
        let last = 0
        let i = 0
        while (issued < REQUESTS && performance.now() < deadline && failures.length < 20) {
          issued++
          const target = urlOf(c + i++)
          let reply: Reply
          try {
            reply = await request(`${target}/api/counter`, { method: "POST", token })
          } catch (e) {
            failures.push(`client ${c} → ${target}: ${String(e)}`)
            continue
          }
          if (reply.status !== 200) {
            failures.push(`client ${c} → ${target}: status ${reply.status} ${reply.body.slice(0, 200)}`)
            continue
          }
          const count = json(reply).count as number
          counts.push(count)
          if (!(count > last)) failures.push(`client ${c} → ${target}: count ${count} after ${last} (the session was lost or forked)`)
          last = count
          if (reply.cookie !== undefined) {
            if (reply.cookie.removal) failures.push(`client ${c} → ${target}: the response removed the cookie (count ${count})`)
            else {
              token = reply.cookie.value
              tokens.add(token)
            }
          }
        }
      }
      await Promise.all(Array.from({ length: CLIENTS }, (_, c) => runClient(c)))
      const loadMs = performance.now() - started
      figures.push(
        `${store}: ${counts.length} increments by ${CLIENTS} clients over ${PROCESSES} processes in ${(loadMs / 1000).toFixed(2)} s ` +
          `(${(counts.length / (loadMs / 1000)).toFixed(0)} req/s); ${tokens.size} distinct tokens; ${failures.length} failures; highest count ${Math.max(...counts)}`
      )

      deepStrictEqual(failures, [], `failed requests:\n${failures.join("\n")}\n${output()}`)
      assert.strictEqual(counts.length, REQUESTS, `only ${counts.length} of ${REQUESTS} increments answered within ${LOAD_DEADLINE_MS} ms`)
      // Every increment returned a distinct value: exactly 1 … 3000.
      const sorted = [...counts].sort((a, b) => a - b)
      deepStrictEqual(sorted[0], 1)
      deepStrictEqual(sorted[sorted.length - 1], REQUESTS)
      assert.strictEqual(new Set(counts).size, REQUESTS, "two increments returned the same count: an update was lost")
      assert.isAbove(tokens.size, 1, "the token rotated during the run")

      // The final counter, as every process sees it (with the newest token any client holds —
      // every token of the run still leads to the session within the grace period).
      const newest = [...tokens].pop()!
      for (let p = 0; p < PROCESSES; p++) {
        const reply = await request(`${urlOf(p)}/api/counter`, { token: newest })
        assert.strictEqual(reply.status, 200)
        deepStrictEqual(json(reply), { count: REQUESTS }, `process ${p + 1}`)
      }

      // Log in on process 1 …
      const login = await request(`${urlOf(0)}/api/login`, { method: "POST", token: newest, body: { user: `alice-${runId}` } })
      assert.strictEqual(login.status, 200, login.body)
      assert.isDefined(login.cookie, "logIn rotates the token")
      const held = login.cookie!.value
      for (let p = 0; p < PROCESSES; p++) {
        const me = await request(`${urlOf(p)}/api/me`, { token: held })
        deepStrictEqual(json(me), { user: `alice-${runId}`, count: REQUESTS }, `process ${p + 1} before the logout`)
      }
      // … log out everywhere on process 2 …
      const out = await request(`${urlOf(1)}/api/logout-everywhere`, { method: "POST", token: held })
      assert.strictEqual(out.status, 200, out.body)
      deepStrictEqual(json(out), { ended: 1 })
      // … and the next request on EVERY process, with the cookie still held, sees nobody.
      for (let p = 0; p < PROCESSES; p++) {
        const me = await request(`${urlOf(p)}/api/me`, { token: held })
        assert.strictEqual(me.status, 200)
        deepStrictEqual(json(me), { user: null, count: 0 }, `process ${p + 1} after the logout everywhere`)
      }
      figures.push(`${store}: final counter ${REQUESTS} on every process; logOutEverywhere seen by the next request on every process`)
    }, 150_000)
  })
}

await withService("Redis", redisUrl, () => {
  const prefix = `es:mp:${runId}:`
  afterAll(() => deleteRedisKeys(prefix))
  scenario("Redis", () => ({ STORE: "redis", REDIS_URL: redisUrl, PREFIX: prefix }))
}, { describe, it })

await withRedisCluster((nodes) => {
  const prefix = `es:mp:${runId}:c:`
  afterAll(() => deleteRedisClusterKeys(prefix, nodes))
  scenario("Redis Cluster", () => ({ STORE: "redis-cluster", REDIS_CLUSTER_NODES: nodes, PREFIX: prefix }))
}, { describe, it })

await withService("PostgreSQL", postgresUrl, () => {
  const prefix = `es_mp_${runId}_`
  afterAll(() => dropPgTables(prefix))
  scenario("PostgreSQL", () => ({ STORE: "postgres", DATABASE_URL: postgresUrl, PREFIX: prefix }))
}, { describe, it })
