/**
 * A counter under load over real sockets: 50 concurrent clients share one session cookie and
 * send 5,000 POSTs in all; no increment is lost.
 */
import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Effect } from "effect"
import { CookieJar, countedMemory, listen, send, sendPromise, sessionServer } from "./helpers/http.js"

const CLIENTS = 50

describe("Http: a counter under load", () => {
  // The default cache, and no cache at all (every read and compare-and-set goes to the store).
  for (const [cache, TOTAL] of [[true, 5_000], [false, 2_000]] as const) {
    it.scopedLive(`${CLIENTS} clients, one cookie, ${TOTAL} POSTs → exactly ${TOTAL} (cache ${cache})`, () =>
      Effect.gen(function*() {
        const store = yield* countedMemory
        const url = yield* listen(sessionServer(store.layer, { cache }))
        const jar = new CookieJar()
        const first = yield* send(`${url}/count`, { method: "POST", jar })
        deepStrictEqual(first.json(), { count: 1 })
        const cookie = jar.header()!

        const started = Date.now()
        const seen: Array<number> = []
        const client = async (n: number) => {
          for (let i = 0; i < n; i++) {
            const r = await sendPromise(`${url}/count`, { method: "POST", cookie })
            if (r.status !== 200) throw new Error(`status ${r.status}: ${r.text}`)
            if (r.setCookies.length > 0) throw new Error(`unexpected Set-Cookie: ${r.setCookies.map((c) => c.raw).join(" | ")}`)
            seen.push(r.json().count as number)
          }
        }
        // TOTAL - 1 more POSTs, spread over the clients.
        const rest = TOTAL - 1
        yield* Effect.promise(() =>
          Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(Math.floor(rest / CLIENTS) + (i < rest % CLIENTS ? 1 : 0))))
        )
        const elapsed = Date.now() - started

        const final = yield* send(`${url}/read`, { cookie })
        deepStrictEqual(final.json(), { count: TOTAL, user: null })
        // Every increment saw a distinct value: 2..TOTAL.
        assert.strictEqual(seen.length, TOTAL - 1)
        deepStrictEqual([...seen].sort((a, b) => a - b), Array.from({ length: TOTAL - 1 }, (_, i) => i + 2))
        assert.strictEqual(store.calls().create, 1)
        assert.isBelow(elapsed, 20_000)
      }), 30_000)
  }
})
