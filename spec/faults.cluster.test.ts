/**
 * A Redis Cluster primary dies under load, and its replica takes over (issue 17, docs/stores.md
 * "Redis Cluster: failover and replication").
 *
 * A private cluster of its own (scripts/redis-cluster.sh via spec/helpers/redisCluster.ts: three
 * primaries with a replica each, `cluster-node-timeout` 5 s, on six free loopback ports from
 * `REDIS_CLUSTER_FAULT_BASE_PORT`, default 7010 — never the CI-wide cluster of
 * `REDIS_CLUSTER_NODES`) serves three server processes (spec/multiprocess/server.ts,
 * `STORE=redis-cluster`). Many sessions, spread over the slots, each get increments from a client
 * of their own, round-robin over the three processes. Mid-load:
 *
 * 1. `SET` + `WAIT 1` on the victim primary: once the replica acknowledges that write, it has
 *    every increment acknowledged before it (one replication stream, in order);
 * 2. SIGKILL of the victim primary; the cluster promotes its replica.
 *
 * What must hold:
 * - a request for a session in the dead primary's slots, sent after the kill and answered before
 *   the promotion, is a 503 without Set-Cookie — never a 200 with a new, empty session;
 * - sessions in the other slots keep answering 200 meanwhile;
 * - after the promotion every session answers 200 again, without a restart of the servers, and
 *   its counter holds every increment acknowledged before the `WAIT` (what the replica had);
 *   increments acknowledged between the `WAIT` and the kill may be lost (Redis replication is
 *   asynchronous) — counted and printed, not asserted;
 * - no 200 ever answers a count at or below what that session had acknowledged before the WAIT
 *   (a new or emptied session), and no response removes the cookie.
 *
 * Everything started here (servers, redis-servers) is stopped in `afterAll`, also on failure,
 * the cluster by the PIDs of its pidfiles; its directory is removed.
 */
import { randomBytes } from "node:crypto"
import { performance } from "node:perf_hooks"
import { afterAll, assert, describe, it } from "vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { increment, type Increment, killAll, type Running, sleep, startScript } from "./helpers/processes.js"
import { type Cluster, haveClusterTools, keysOn, primariesOf, startCluster, stopAllClusters, withNode } from "./helpers/redisCluster.js"
import { requireServices } from "./services.js"

const runId = randomBytes(4).toString("hex")
const SERVER = "spec/multiprocess/server.ts"
const PREFIX = `es:fc:${runId}:`
const SESSIONS = 36
const REQUEST_TIMEOUT_MS = 10_000
const BASE_PORT = Number(process.env["REDIS_CLUSTER_FAULT_BASE_PORT"] ?? 7010)
/**
 * The cluster's `cluster-node-timeout`: long enough that the failover outlasts the client's own
 * retries (ioredis retries a command on a closed connection or `CLUSTERDOWN` every 100 ms, up to
 * 16 times, so a failover shorter than that is never seen by a request: it just waits), short
 * enough for a quick test. Production clusters default to 15 s.
 */
const NODE_TIMEOUT_MS = 5000

afterAll(async () => {
  await killAll()
  await stopAllClusters()
})

interface Outcome extends Increment {
  readonly session: number
  readonly process: number
  readonly sentAt: number
  readonly doneAt: number
}


const tools = await haveClusterTools()
const suite = tools || requireServices ? describe : describe.skip
if (!tools && !requireServices) {
  console.warn("[effect-sessions] redis-server / redis-cli not found: the Redis Cluster failover test is skipped (set SESSIONS_REQUIRE_SERVICES=1 to fail instead)")
}

const figures: Array<string> = []
afterAll(() => {
  if (figures.length > 0) console.info(`cluster fault figures:\n${figures.map((f) => `  ${f}`).join("\n")}`)
})

suite("faults: a Redis Cluster primary killed under load, its replica promoted", () => {
  let cluster: Cluster | undefined
  let servers: Array<Running & { readonly url: string }> = []
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.kill()))
    await cluster?.stop()
  })

  it("the dead primary's sessions answer 503 (never a new session) until the promotion, the others 200; then all answer 200 with what the replica had, without a restart", async () => {
    assert.isTrue(tools, "redis-server and redis-cli are required (SESSIONS_REQUIRE_SERVICES=1)")
    cluster = await startCluster({ fromPort: BASE_PORT, nodeTimeoutMs: NODE_TIMEOUT_MS })
    servers = await Promise.all(
      [1, 2, 3].map((i) =>
        startScript(SERVER, { STORE: "redis-cluster", REDIS_CLUSTER_NODES: cluster!.nodes, PREFIX, ORIGIN_ID: `fault-c-${runId}-${i}` }, { timeoutMs: 120_000 })
      )
    )
    const pids = servers.map((s) => s.pid)

    // The sessions: one increment each creates them.
    const tokens: Array<string> = []
    for (let s = 0; s < SESSIONS; s++) {
      const r = await increment(servers[s % servers.length]!.url, undefined, REQUEST_TIMEOUT_MS)
      assert.strictEqual(r.status, 200, `creating session ${s}`)
      deepStrictEqual(r.count, 1)
      tokens.push(r.cookie!.value)
    }

    // Which primary holds each session: the routing tag `{…}` of its keys, the token's first characters.
    const primaries = await primariesOf(cluster.nodes)
    assert.strictEqual(primaries.length, 3)
    const tagsOf = new Map<string, number>() // tag → primary index
    for (let p = 0; p < primaries.length; p++) {
      for (const key of await keysOn(primaries[p]!, PREFIX)) {
        const tag = /^[^{]*\{([^}]+)\}/.exec(key.slice(PREFIX.length))?.[1]
        if (tag !== undefined && !tag.startsWith("u:")) tagsOf.set(tag, p)
      }
    }
    const primaryOf = tokens.map((token, s) => {
      const matches = [...tagsOf].filter(([tag]) => token.startsWith(tag)).sort((a, b) => b[0].length - a[0].length)
      assert.isAbove(matches.length, 0, `session ${s}: no key of its routing tag found on any primary`)
      return matches[0]![1]
    })
    // The victim: the primary with the most sessions (every primary should hold some).
    const perPrimary = primaries.map((_, p) => primaryOf.filter((q) => q === p).length)
    const victim = perPrimary.indexOf(Math.max(...perPrimary))
    const victimNode = primaries[victim]!
    assert.strictEqual(victimNode.replicas.length, 1, "the victim has a replica")
    const onVictim = (s: number) => primaryOf[s] === victim
    assert.isAbove(perPrimary.filter((n) => n > 0).length, 1, `sessions on more than one primary: ${perPrimary.join("/")}`)

    // Load: one client per session, round-robin over the servers, newest token kept.
    const outcomes: Array<Outcome> = []
    const acked = tokens.map(() => 1)
    let stopped = false
    const t0 = performance.now()
    const runClient = async (s: number) => {
      let i = 0
      while (!stopped && performance.now() - t0 < 60_000) {
        const p = (s + i++) % servers.length
        const sentAt = performance.now()
        const r = await increment(servers[p]!.url, tokens[s], REQUEST_TIMEOUT_MS)
        outcomes.push({ ...r, session: s, process: p, sentAt, doneAt: performance.now() })
        if (r.status === 200) {
          acked[s] = Math.max(acked[s]!, r.count!)
          if (r.cookie !== undefined && !r.cookie.removal) tokens[s] = r.cookie.value
        } else await sleep(25) // no busy loop during the failover
      }
    }
    const clients = Promise.all(tokens.map((_, s) => runClient(s)))
    while (outcomes.filter((o) => o.status === 200).length < 300 && performance.now() - t0 < 20_000) await sleep(50)

    // 1. The replica has everything acknowledged so far: a write of our own on the victim, then WAIT 1.
    const ackedBeforeWait = [...acked]
    const replicated = await withNode(victimNode, async (client) => {
      const key = await keyOnNode(client, victimNode.slots, `${PREFIX}wait:`)
      await client.set(key, "1")
      return Number(await client.call("WAIT", "1", "5000"))
    })
    assert.strictEqual(replicated, 1, "the replica acknowledged the writes before the kill")

    // 2. SIGKILL of the victim primary.
    const killedAt = performance.now()
    cluster.kill(victimNode.port)

    // Wait for the promotion, asking the replica itself (the first to know) every 20 ms: until
    // `notYet` (when the last question that got "slave" was sent) the promotion had certainly not
    // happened; from `promotedAt` (when "master" came back) it certainly had.
    const replica = victimNode.replicas[0]!
    let notYet = killedAt
    let promotedAt: number | undefined
    await withNode(replica, async (client) => {
      while (promotedAt === undefined && performance.now() - killedAt < 60_000) {
        const asked = performance.now()
        const role = ((await client.call("ROLE")) as Array<unknown>)[0]
        if (role === "master") promotedAt = performance.now()
        else {
          notYet = asked
          await sleep(20)
        }
      }
    })
    assert.isDefined(promotedAt, "the replica was promoted within 60 s")

    // Recovery: every session answers 200 again (sent after the promotion), bounded.
    const recovered = new Set<number>()
    while (recovered.size < SESSIONS && performance.now() - promotedAt! < 30_000) {
      for (const o of outcomes) if (o.status === 200 && o.sentAt > promotedAt!) recovered.add(o.session)
      await sleep(50)
    }
    await sleep(300)
    stopped = true
    await clients

    const timeline = () =>
      `kill at 0 ms, not yet promoted at ${(notYet - killedAt).toFixed(0)} ms, promoted at ${(promotedAt! - killedAt).toFixed(0)} ms; the dead primary's sessions (sent → answered, status):\n` +
      outcomes.filter((o) => onVictim(o.session) && o.doneAt > killedAt - 500).sort((a, b) => a.sentAt - b.sentAt).slice(0, 60)
        .map((o) => `  ${(o.sentAt - killedAt).toFixed(0)} → ${(o.doneAt - killedAt).toFixed(0)}: ${o.status}`).join("\n")
    const output = () => `${timeline()}\n${servers.map((s, i) => `--- process ${i + 1}:\n${s.output().slice(-1500)}`).join("\n")}`
    // No response ever removed the cookie; no non-200 carried a Set-Cookie; no status other than 200/503.
    const problems: Array<string> = []
    for (const o of outcomes) {
      if (o.status !== 200 && o.status !== 503) problems.push(`session ${o.session} → process ${o.process + 1}: status ${o.status}${o.error ? ` (${o.error})` : ""}`)
      if (o.status !== 200 && o.cookie !== undefined) problems.push(`session ${o.session}: a ${o.status} carried Set-Cookie`)
      if (o.cookie?.removal === true) problems.push(`session ${o.session}: the cookie was removed (status ${o.status})`)
      // A 200 sent after the WAIT never answers a count at or below what the replica had: a new or emptied session.
      if (o.status === 200 && o.sentAt > killedAt && o.count! <= ackedBeforeWait[o.session]!) {
        problems.push(`session ${o.session}${onVictim(o.session) ? " (victim)" : ""}: count ${o.count} after ${ackedBeforeWait[o.session]} acknowledged before the WAIT (a new or emptied session)`)
      }
    }
    deepStrictEqual(problems.slice(0, 20), [], output())

    // During the failover (sent after the kill, answered while the replica was still a replica):
    const during = outcomes.filter((o) => o.sentAt > killedAt && o.doneAt < notYet)
    const victimDuring = during.filter((o) => onVictim(o.session))
    const othersDuring = during.filter((o) => !onVictim(o.session))
    assert.isAbove(victimDuring.length, 0, `requests for the dead primary's sessions during the failover\n${timeline()}`)
    deepStrictEqual(victimDuring.filter((o) => o.status !== 503).map((o) => `session ${o.session}: ${o.status}`), [], "the dead primary's sessions answer 503")
    if (perPrimary.some((n, p) => p !== victim && n > 0)) {
      assert.isAbove(othersDuring.filter((o) => o.status === 200).length, 0, "the other slots answer during the failover")
      deepStrictEqual(othersDuring.filter((o) => o.status !== 200).map((o) => `session ${o.session}: ${o.status}`), [], "the other slots keep answering 200")
    }

    // After the promotion: every session answered 200, no server restarted.
    deepStrictEqual([...recovered].sort((a, b) => a - b), tokens.map((_, s) => s), "every session answers 200 again after the promotion")
    deepStrictEqual(servers.map((s) => s.pid), pids, "no server was restarted")
    for (const s of servers) assert.isNull(s.child.exitCode, "the servers still run")
    for (let s = 0; s < SESSIONS; s++) {
      const firstAfter = outcomes.filter((o) => o.session === s && o.status === 200 && o.sentAt > promotedAt!).sort((a, b) => a.doneAt - b.doneAt)[0]!
      assert.isAbove(firstAfter.count!, ackedBeforeWait[s]!, `session ${s}: every increment the replica had is kept`)
    }

    // Figures: how long the dead primary's sessions answered 503, what was lost past the WAIT.
    const victim503 = outcomes.filter((o) => onVictim(o.session) && o.status === 503)
    const first503 = Math.min(...victim503.map((o) => o.doneAt))
    const last503 = Math.max(...victim503.map((o) => o.doneAt))
    const firstOkAfter = Math.min(...outcomes.filter((o) => onVictim(o.session) && o.status === 200 && o.sentAt > killedAt).map((o) => o.doneAt))
    const lostPastWait = tokens.map((_, s) => s).filter(onVictim).map((s) => {
      const before = outcomes.filter((o) => o.session === s && o.status === 200 && o.doneAt < killedAt).reduce((m, o) => Math.max(m, o.count!), 0)
      const after = outcomes.filter((o) => o.session === s && o.status === 200 && o.sentAt > killedAt).sort((a, b) => a.doneAt - b.doneAt)[0]?.count ?? 0
      return Math.max(0, before - (after - 1))
    }).reduce((a, b) => a + b, 0)
    figures.push(
      `cluster failover: sessions per primary ${perPrimary.join("/")}, victim ${victimNode.host}:${victimNode.port} (replica ${replica.host}:${replica.port}); ` +
        `${outcomes.length} requests, ${outcomes.filter((o) => o.status === 200).length} answered 200, ${victim503.length} answered 503 (all on the dead primary's sessions); ` +
        `cluster-node-timeout ${NODE_TIMEOUT_MS} ms, replica promoted ${(notYet - killedAt).toFixed(0)}–${(promotedAt! - killedAt).toFixed(0)} ms after the kill; 503s from ${(first503 - killedAt).toFixed(0)} to ${(last503 - killedAt).toFixed(0)} ms after the kill; ` +
        `the dead primary's sessions answered 200 again ${(firstOkAfter - killedAt).toFixed(0)} ms after the kill; ` +
        `${othersDuring.length} requests on the other primaries during the failover, all 200; ` +
        `increments acknowledged between the WAIT and the kill, lost: ${lostPastWait}`
    )
  }, 180_000)
})

/** A key under `prefix` in one of `ranges` (the slots of the node `client` talks to), by CLUSTER KEYSLOT on candidates. */
const keyOnNode = async (client: import("ioredis").Redis, ranges: ReadonlyArray<readonly [number, number]>, prefix: string): Promise<string> => {
  for (let n = 0; n < 1000; n++) {
    const key = `${prefix}{${n}}`
    const slot = Number(await client.call("CLUSTER", "KEYSLOT", key))
    if (ranges.some(([a, b]) => a <= slot && slot <= b)) return key
  }
  throw new Error("no key found for the node's slots")
}
