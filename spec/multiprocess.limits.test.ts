/**
 * The limit on a user's sessions across processes (`maxSessionsPerUser`, OWASP ASVS 7.1.2), on the
 * real Redis, a Redis Cluster (`REDIS_CLUSTER_NODES`) and the real PostgreSQL: two child processes run spec/multiprocess/server.ts with a
 * limit of 3, and rounds of 8 simultaneous log-ins of one user (4 on each process, each from a
 * new client) race each other. The check and the claim happen inside the store in one atomic
 * step, so no round ever leaves more than 3 live sessions: with `endLeastRecentlyUsed` every
 * log-in succeeds and exactly 3 sessions are left; with `refuse` exactly 3 log-ins of a new user
 * succeed and the others answer 409.
 */
import { randomBytes } from "node:crypto"
import { afterAll, assert, describe, expect, it } from "vitest"
import { killAll, type Running, startScript } from "./helpers/processes.js"
import { deleteRedisKeys, dropPgTables, postgresUrl, redisUrl, withService, deleteRedisClusterKeys, withRedisCluster } from "./services.js"

const runId = randomBytes(4).toString("hex")
const SERVER = "spec/multiprocess/server.ts"
const LIMIT = 3
const ROUNDS = 10
const PER_PROCESS = 4

afterAll(killAll)

const logIn = async (url: string, user: string): Promise<number> => {
  const response = await fetch(`${url}/api/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user }),
    signal: AbortSignal.timeout(10_000)
  })
  await response.text()
  return response.status
}

const count = async (url: string, user: string): Promise<number> => {
  const response = await fetch(`${url}/api/sessions?user=${encodeURIComponent(user)}`, { signal: AbortSignal.timeout(10_000) })
  const body = (await response.json()) as { count: number }
  return body.count
}

const scenario = (store: string, env: () => Record<string, string>) => {
  describe(`two processes on ${store}, maxSessionsPerUser ${LIMIT}`, () => {
    let servers: Array<Running & { readonly url: string }> = []
    afterAll(async () => {
      await Promise.all(servers.map((s) => s.stop(3000)))
    })
    const start = async (policy: string) => {
      await Promise.all(servers.map((s) => s.stop(3000)))
      servers = await Promise.all([1, 2].map((i) =>
        startScript(SERVER, { ...env(), MAX_SESSIONS_PER_USER: String(LIMIT), ON_SESSION_LIMIT: policy, ORIGIN_ID: `lim-${runId}-${policy}-${i}` }, {
          // tsx compiles the server at start-up: slow on a loaded machine.
          timeoutMs: 120_000
        })))
    }
    /** One round: 4 log-ins of `user` on each process at once; their statuses. */
    const round = (user: string) =>
      Promise.all(servers.flatMap((s) => Array.from({ length: PER_PROCESS }, () => logIn(s.url, user))))

    it(`feature: maxSessionsPerUser — ${ROUNDS} rounds of ${2 * PER_PROCESS} simultaneous log-ins of one user over two processes (endLeastRecentlyUsed) never leave more than ${LIMIT} live sessions`, async () => {
      await start("endLeastRecentlyUsed")
      const user = `many-${runId}`
      for (let r = 0; r < ROUNDS; r++) {
        const statuses = await round(user)
        expect(statuses, `round ${r}: every log-in succeeds (the oldest sessions make room)`).toStrictEqual(statuses.map(() => 200))
        for (const s of servers) assert.strictEqual(await count(s.url, user), LIMIT, `round ${r}: live sessions as ${s.url} lists them`)
      }
    }, 240_000)

    it(`feature: maxSessionsPerUser — ${ROUNDS} rounds of ${2 * PER_PROCESS} simultaneous log-ins of a new user over two processes (refuse): exactly ${LIMIT} succeed, the others answer 409`, async () => {
      await start("refuse")
      for (let r = 0; r < ROUNDS; r++) {
        const user = `refused-${runId}-${r}`
        const statuses = await round(user)
        assert.strictEqual(statuses.filter((s) => s === 200).length, LIMIT, `round ${r}: ${statuses.join(",")}`)
        assert.strictEqual(statuses.filter((s) => s === 409).length, 2 * PER_PROCESS - LIMIT, `round ${r}: ${statuses.join(",")}`)
        for (const s of servers) assert.strictEqual(await count(s.url, user), LIMIT, `round ${r}: live sessions as ${s.url} lists them`)
      }
    }, 240_000)
  })
}

await withService("Redis", redisUrl, () => {
  const prefix = `es:mplim:${runId}:`
  afterAll(() => deleteRedisKeys(prefix))
  scenario("Redis", () => ({ STORE: "redis", REDIS_URL: redisUrl, PREFIX: prefix }))
}, { describe, it })

await withRedisCluster((nodes) => {
  const prefix = `es:mplim:${runId}:c:`
  afterAll(() => deleteRedisClusterKeys(prefix, nodes))
  scenario("Redis Cluster", () => ({ STORE: "redis-cluster", REDIS_CLUSTER_NODES: nodes, PREFIX: prefix }))
}, { describe, it })

await withService("PostgreSQL", postgresUrl, () => {
  const prefix = `es_mplim_${runId}_`
  afterAll(() => dropPgTables(prefix))
  scenario("PostgreSQL", () => ({ STORE: "postgres", DATABASE_URL: postgresUrl, PREFIX: prefix }))
}, { describe, it })
