/**
 * A planted token over HTTP, across processes (docs/security.md, the first promise): two server processes
 * (spec/multiprocess/server.ts) share a store with the local cache off (`MAX_CACHE_SIZE=0`). An
 * attacker plants token T; 20 pollers (10 readers of `GET /api/me`, 10 writers of
 * `POST /api/mark`) hammer both processes with T while the victim logs in with T through the
 * second process. Ten log-ins per store (Redis, a Redis Cluster when `REDIS_CLUSTER_NODES` is
 * set, PostgreSQL).
 *
 * What must hold: no poller response shows the victim's user — in particular none that started
 * (was sent) after the log-in's answer arrived — and no poller write lands in the victim's session
 * after the log-in (its data at the end holds only keys it had right after the log-in).
 *
 * Budget: a few seconds per store (start-up included). Every child is killed in `afterAll`.
 */
import { randomBytes } from "node:crypto"
import { performance } from "node:perf_hooks"
import { afterAll, assert, describe, it } from "vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { killAll, type Running, setCookieValue, sleep, startScript } from "./helpers/processes.js"
import { deleteRedisKeys, postgresUrl, redisUrl, withService, dropPgTables, deleteRedisClusterKeys, withRedisCluster } from "./services.js"

const runId = randomBytes(4).toString("hex")
const SERVER = "spec/multiprocess/server.ts"
const POLLERS = 20
const LOGINS = 10
/** How long the pollers run before the log-in, and after its answer. */
const BEFORE_MS = 150
const AFTER_MS = 250

afterAll(killAll)

interface Reply {
  readonly status: number
  readonly body: any
  readonly cookie: { readonly value: string; readonly removal: boolean } | undefined
}

const request = async (url: string, options: { readonly method?: string; readonly token?: string; readonly body?: unknown } = {}): Promise<Reply> => {
  const headers: Record<string, string> = {}
  if (options.token !== undefined) headers["cookie"] = `id=${options.token}`
  if (options.body !== undefined) headers["content-type"] = "application/json"
  const response = await fetch(url, {
    method: options.method ?? "GET",
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    signal: AbortSignal.timeout(10_000)
  })
  const text = await response.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // not JSON: kept as text
  }
  return { status: response.status, body, cookie: setCookieValue(response.headers.getSetCookie(), "id") }
}

/** One poller request: when it was sent, when its answer started to arrive, what it said. */
interface Observation {
  readonly kind: "read" | "write"
  readonly key: string | undefined
  readonly sentAt: number
  readonly answeredAt: number
  readonly status: number
  readonly user: string | null | undefined
}

const figures: Array<string> = []
afterAll(() => {
  if (figures.length > 0) console.info(`planted-token figures:\n${figures.map((f) => `  ${f}`).join("\n")}`)
})

const scenario = (store: string, env: () => Record<string, string>) => {
  describe(`a planted token over 2 processes on ${store} (cache off)`, () => {
    let servers: Array<Running & { readonly url: string }> = []
    afterAll(async () => {
      await Promise.all(servers.map((s) => s.stop(3000)))
    })

    it(`security: ${POLLERS} pollers holding the planted token while the victim logs in through the other process, ${LOGINS} times: no response shows the victim's user, no write lands in the victim's session`, async () => {
      servers = await Promise.all(
        [1, 2].map((i) =>
          startScript(SERVER, { ...env(), ORIGIN_ID: `ph-${runId}-${i}`, MAX_CACHE_SIZE: "0", ROTATION: "1 hour", GRACE: "10 seconds" })
        )
      )
      const [first, second] = servers as [Running & { readonly url: string }, Running & { readonly url: string }]
      const output = () => servers.map((s, i) => `--- process ${i + 1}:\n${s.output().slice(-1500)}`).join("\n")

      const leaks: Array<string> = []
      let responses = 0
      let afterAnswer = 0
      let deadWrites = 0
      for (let round = 0; round < LOGINS; round++) {
        const victimUser = `victim-${runId}-${round}`
        // The attacker gets a session and plants its token in the victim's browser.
        const planted = await request(`${first.url}/api/counter`, { method: "POST" })
        assert.strictEqual(planted.status, 200, String(planted.body))
        const t = planted.cookie!.value

        const observations: Array<Observation> = []
        let stop = false
        const poll = async (p: number) => {
          const url = (p % 2 === 0 ? first : second).url
          for (let j = 0; !stop; j++) {
            const write = p % 4 >= 2
            const key = write ? `p${p}-${j}` : undefined
            const sentAt = performance.now()
            const reply = write
              ? await request(`${url}/api/mark`, { method: "POST", token: t, body: { key } })
              : await request(`${url}/api/me`, { token: t })
            const answeredAt = performance.now()
            observations.push({
              kind: write ? "write" : "read",
              key,
              sentAt,
              answeredAt,
              status: reply.status,
              user: reply.status === 200 ? (reply.body as { user: string | null }).user : undefined
            })
          }
        }
        const pollers = Array.from({ length: POLLERS }, (_, p) => poll(p))
        await sleep(BEFORE_MS)
        // The victim logs in, with the planted token, through the second process.
        const login = await request(`${second.url}/api/login`, { method: "POST", token: t, body: { user: victimUser } })
        const loginAnsweredAt = performance.now()
        assert.strictEqual(login.status, 200, `${String(login.body)}\n${output()}`)
        const victimToken = login.cookie!.value
        const keysAtLogIn = new Set<string>((login.body as { keys: Array<string> }).keys)
        await sleep(AFTER_MS)
        stop = true
        await Promise.all(pollers)

        // The victim's session at the end, as both processes see it.
        for (const server of servers) {
          const data = await request(`${server.url}/api/data`, { token: victimToken })
          assert.strictEqual(data.status, 200)
          const { keys, user } = data.body as { user: string | null; keys: Array<string> | null }
          assert.strictEqual(user, victimUser, "the victim is logged in")
          const landed = (keys ?? []).filter((k) => !keysAtLogIn.has(k))
          for (const k of landed) leaks.push(`round ${round}: the write ${k} landed in the victim's session after the log-in`)
        }
        for (const o of observations) {
          responses++
          if (o.sentAt > loginAnsweredAt) afterAnswer++
          if (o.kind === "write" && o.status === 401) deadWrites++
          if (o.user === victimUser) {
            leaks.push(
              `round ${round}: a ${o.kind} with the planted token ${o.sentAt > loginAnsweredAt ? "sent after" : "answered"} ` +
                `${(o.answeredAt - loginAnsweredAt).toFixed(1)} ms after the log-in's answer showed the victim's user`
            )
          }
          if (o.status !== 200 && !(o.kind === "write" && o.status === 401)) leaks.push(`round ${round}: a ${o.kind} answered ${o.status}`)
        }
      }
      figures.push(
        `${store}: ${LOGINS} log-ins under ${POLLERS} pollers; ${responses} poller responses (${afterAnswer} sent after a log-in's answer), ` +
          `${deadWrites} writes on a dead handle answered 401; ${leaks.length} leaks`
      )
      deepStrictEqual(leaks, [], `${leaks.slice(0, 30).join("\n")}\n${output()}`)
      assert.isAbove(afterAnswer, 0, "some poller requests were sent after a log-in's answer")
    }, 60_000)
  })
}

await withService("Redis", redisUrl, () => {
  const prefix = `es:ph:${runId}:`
  afterAll(() => deleteRedisKeys(prefix))
  scenario("Redis", () => ({ STORE: "redis", REDIS_URL: redisUrl, PREFIX: prefix }))
}, { describe, it })

await withRedisCluster((nodes) => {
  const prefix = `es:ph:${runId}:c:`
  afterAll(() => deleteRedisClusterKeys(prefix, nodes))
  scenario("Redis Cluster", () => ({ STORE: "redis-cluster", REDIS_CLUSTER_NODES: nodes, PREFIX: prefix }))
}, { describe, it })

await withService("PostgreSQL", postgresUrl, () => {
  const prefix = `es_ph_${runId}_`
  afterAll(() => dropPgTables(prefix))
  scenario("PostgreSQL", () => ({ STORE: "postgres", DATABASE_URL: postgresUrl, PREFIX: prefix }))
}, { describe, it })
