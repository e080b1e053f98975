import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Config, ConfigError, ConfigProvider, Duration, Effect, Either, Exit, FastCheck as fc, Layer, Option, Schema } from "effect"
import * as Persistence from "../src/Persistence.js"
import * as SessionConfig from "../src/SessionConfig.js"
import * as Sessions from "../src/Sessions.js"
import { arbConfig, arbConfigTimes, assertEquivalent } from "../src/internal/testing/arbitraries.js"
import { numRuns } from "./helpers/runs.js"

const RUNS = { fastCheck: { numRuns: numRuns(1000) } }

/** Reads the config service through the layer, and returns the exit. */
const viaLayer = (layer: Layer.Layer<SessionConfig.SessionConfig, unknown>) =>
  Effect.runSyncExit(Effect.provide(SessionConfig.SessionConfig, layer))

/** The option named by the failure of `make`, or undefined when it succeeds. */
const failingOption = (input: SessionConfig.SessionConfigInput): string | undefined =>
  Either.match(SessionConfig.make(input), { onLeft: (e) => e.option, onRight: () => undefined })

describe("SessionConfig defaults", () => {
  it("are secure: HttpOnly, Secure, SameSite=lax, Path=/, name __Host-id, no domain", () => {
    const c = Either.getOrThrow(SessionConfig.make())
    assert.strictEqual(c.cookie.name, "__Host-id")
    assert.isTrue(c.cookie.httpOnly)
    assert.isTrue(c.cookie.secure)
    assert.strictEqual(c.cookie.sameSite, "lax")
    assert.strictEqual(c.cookie.path, "/")
    assert.isTrue(Option.isNone(c.cookie.domain))
    assert.isTrue(c.hashIdsAtRest)
    assert.isFalse(c.acceptChangingUserAgent)
    assert.isAtLeast(c.tokenBytes, 32)
    // The timing defaults are consistent with each other.
    assert.isTrue(Duration.lessThan(c.touchInterval, c.idleTimeout))
    assert.isTrue(Duration.lessThanOrEqualTo(c.idleTimeout, c.absoluteTimeout))
    assert.isTrue(Duration.lessThan(c.gracePeriod, c.idRotationInterval))
    assertEquivalent(c, SessionConfig.defaults)
  })

  it("feature: maxSessionsPerUser — no limit by default, endLeastRecentlyUsed as the policy; a limit from 1 up is accepted", () => {
    const c = Either.getOrThrow(SessionConfig.make())
    assert.isFalse(c.maxSessionsPerUser)
    assert.strictEqual(c.onSessionLimit, "endLeastRecentlyUsed")
    const limited = Either.getOrThrow(SessionConfig.make({ maxSessionsPerUser: 1, onSessionLimit: "refuse" }))
    assert.strictEqual(limited.maxSessionsPerUser, 1)
    assert.strictEqual(limited.onSessionLimit, "refuse")
  })

  it.effect("layer() provides the defaults", () =>
    Effect.gen(function*() {
      const c = yield* SessionConfig.SessionConfig
      assert.strictEqual(c.cookie.name, "__Host-id")
      assert.isTrue(c.cookie.secure && c.cookie.httpOnly)
      assert.strictEqual(c.cookie.sameSite, "lax")
    }).pipe(Effect.provide(SessionConfig.layer())))

  it("a short idle timeout alone gets a valid default touch interval", () => {
    const c = Either.getOrThrow(SessionConfig.make({ idleTimeout: "5 seconds" }))
    assert.isTrue(Duration.lessThan(c.touchInterval, c.idleTimeout))
  })

  it.prop("valid timing options are accepted and kept exactly (milliseconds in, milliseconds out)", { t: arbConfigTimes }, ({ t }) => {
    const c = Either.getOrThrow(SessionConfig.make(t))
    assert.strictEqual(SessionConfig.millis(c.idleTimeout), t.idleTimeout)
    assert.strictEqual(SessionConfig.millis(c.absoluteTimeout), t.absoluteTimeout)
    assert.strictEqual(SessionConfig.millis(c.idRotationInterval), t.idRotationInterval)
    assert.strictEqual(SessionConfig.millis(c.gracePeriod), t.gracePeriod)
    assert.strictEqual(SessionConfig.millis(c.touchInterval), t.touchInterval)
  }, RUNS)
})

describe("SessionConfig: the cookie name", () => {
  // A `__Host-` cookie cannot be set by a sibling domain nor with a Domain or Path, so it cannot
  // be shadowed: it is the default whenever the other attributes allow it.
  for (const secure of [true, false]) {
    for (const path of ["/", "/app"]) {
      for (const domain of [undefined, "example.com"]) {
        const expected = secure && path === "/" && domain === undefined ? "__Host-id" : "id"
        it(`security: the default name with secure ${secure}, path ${path} and ${domain === undefined ? "no domain" : "a domain"} is ${expected}`, () => {
          const c = Either.getOrThrow(SessionConfig.make({ cookie: { secure, path, domain } }))
          assert.strictEqual(c.cookie.name, expected)
          assert.strictEqual(SessionConfig.defaultCookieName(c.cookie), expected)
          // A configured name is kept as it is.
          assert.strictEqual(Either.getOrThrow(SessionConfig.make({ cookie: { secure, path, domain, name: "sid" } })).cookie.name, "sid")
        })
      }
    }
  }

  it.effect("security: the default name follows SESSIONS_COOKIE_* variables too", () =>
    Effect.gen(function*() {
      const nameWith = (entries: ReadonlyArray<readonly [string, string]>) =>
        Effect.map(
          Effect.provide(SessionConfig.SessionConfig, SessionConfig.layerConfig()).pipe(
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries), { pathDelim: "_" }))
          ),
          (c) => c.cookie.name
        )
      assert.strictEqual(yield* nameWith([]), "__Host-id")
      assert.strictEqual(yield* nameWith([["SESSIONS_COOKIE_SECURE", "false"]]), "id")
      assert.strictEqual(yield* nameWith([["SESSIONS_COOKIE_PATH", "/app"]]), "id")
      assert.strictEqual(yield* nameWith([["SESSIONS_COOKIE_DOMAIN", "example.com"]]), "id")
      assert.strictEqual(yield* nameWith([["SESSIONS_COOKIE_SECURE", "true"], ["SESSIONS_COOKIE_PATH", "/"]]), "__Host-id")
    }))

  // Browsers match the prefixes case-insensitively: a `__HOST-id` cookie is held to the
  // `__Host-` rules, so a configuration the browser would refuse must fail here.
  const hostNames = ["__Host-id", "__host-id", "__HOST-id", "__hOsT-sid"]
  for (const name of hostNames) {
    for (const [what, cookie] of [["secure: false", { secure: false }], ["path /app", { path: "/app" }], ["a domain", { domain: "example.com" }]] as const) {
      it(`security: a ${name} cookie with ${what} fails, naming cookie.name`, () => {
        assert.strictEqual(failingOption({ cookie: { name, ...cookie } }), "cookie.name")
      })
    }
    it(`security: a ${name} cookie that is Secure, Path=/ and host-only is accepted`, () => {
      assert.strictEqual(Either.getOrThrow(SessionConfig.make({ cookie: { name } })).cookie.name, name)
    })
  }
  for (const name of ["__Secure-id", "__secure-id", "__SECURE-id", "__sEcUrE-sid"]) {
    it(`security: a ${name} cookie needs secure, and may have a path and a domain`, () => {
      assert.strictEqual(failingOption({ cookie: { name, secure: false } }), "cookie.name")
      assert.isUndefined(failingOption({ cookie: { name, path: "/app", domain: "example.com" } }))
    })
  }
  it("security: names that merely resemble a prefix are not held to its rules", () => {
    for (const name of ["_Host-id", "__Hostid", "Host-id", "x__Host-id", "__Secureid", "_secure-id"]) {
      assert.isUndefined(failingOption({ cookie: { name, secure: false, path: "/app", domain: "example.com" } }), name)
    }
  })
})

describe("SessionConfig validation: each invalid option is named", () => {
  const durationOptions = [
    "idleTimeout",
    "absoluteTimeout",
    "idRotationInterval",
    "gracePeriod",
    "cache.idleTimeout",
    "touchInterval",
    "sweepInterval"
  ] as const

  for (const option of durationOptions) {
    for (const bad of [0, -1, "0 millis", "-5 minutes", Duration.zero, Duration.infinity, "soon"] as const) {
      it(`${option} = ${String(Duration.isDuration(bad) ? Duration.format(bad) : bad)} fails make and layer with option "${option}"`, () => {
        const input: SessionConfig.SessionConfigInput = option === "cache.idleTimeout"
          ? { cache: { idleTimeout: bad as Duration.DurationInput } }
          : { [option]: bad as Duration.DurationInput }
        assert.strictEqual(failingOption(input), option)
        const exit = viaLayer(SessionConfig.layer(input))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const err = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          assert.instanceOf(err, SessionConfig.SessionConfigError)
          assert.strictEqual((err as SessionConfig.SessionConfigError).option, option)
          assert.strictEqual((err as SessionConfig.SessionConfigError)._tag, "SessionConfigError")
        }
      })
    }
  }

  const cases: ReadonlyArray<readonly [string, SessionConfig.SessionConfigInput, ReadonlyArray<string>]> = [
    ["unknown sameSite", { cookie: { sameSite: "relaxed" as never } }, ["cookie.sameSite"]],
    ["ipBinding.ipv4Prefix -1", { ipBinding: { ipv4Prefix: -1 } }, ["ipBinding.ipv4Prefix"]],
    ["ipBinding.ipv4Prefix 33", { ipBinding: { ipv4Prefix: 33 } }, ["ipBinding.ipv4Prefix"]],
    ["ipBinding.ipv4Prefix 16.5", { ipBinding: { ipv4Prefix: 16.5 } }, ["ipBinding.ipv4Prefix"]],
    ["ipBinding.ipv6Prefix -1", { ipBinding: { ipv6Prefix: -1 } }, ["ipBinding.ipv6Prefix"]],
    ["ipBinding.ipv6Prefix 129", { ipBinding: { ipv6Prefix: 129 } }, ["ipBinding.ipv6Prefix"]],
    ["ipBinding.ipv6Prefix 64.5", { ipBinding: { ipv6Prefix: 64.5 } }, ["ipBinding.ipv6Prefix"]],
    ["ipBinding of the wrong type", { ipBinding: "24" as never }, ["ipBinding"]],
    ["feature: maxSessionsPerUser 0", { maxSessionsPerUser: 0 }, ["maxSessionsPerUser"]],
    ["feature: maxSessionsPerUser 2.5", { maxSessionsPerUser: 2.5 }, ["maxSessionsPerUser"]],
    ["feature: maxSessionsPerUser true", { maxSessionsPerUser: true as never }, ["maxSessionsPerUser"]],
    ["feature: onSessionLimit unknown", { onSessionLimit: "evict" as never }, ["onSessionLimit"]],
    ["a misspelt ipBinding field", { ipBinding: { ipv4prefix: 24 } as never }, ["ipBinding.ipv4prefix"]],
    ["touchInterval = idleTimeout", { idleTimeout: "10 minutes", touchInterval: "10 minutes" }, ["touchInterval"]],
    ["touchInterval > idleTimeout", { idleTimeout: "10 minutes", touchInterval: "11 minutes" }, ["touchInterval"]],
    ["touchInterval > default idleTimeout", { touchInterval: "31 minutes" }, ["touchInterval"]],
    ["__Host- cookie with a domain", { cookie: { name: "__Host-id", domain: "example.com" } }, ["cookie.name", "cookie.domain"]],
    ["__Host- cookie with path /app", { cookie: { name: "__Host-id", path: "/app" } }, ["cookie.name", "cookie.path"]],
    ["__Host- cookie without secure", { cookie: { name: "__Host-id", secure: false } }, ["cookie.name", "cookie.secure"]],
    ["__Secure- cookie without secure", { cookie: { name: "__Secure-id", secure: false } }, ["cookie.name", "cookie.secure"]],
    ["SameSite none without secure", { cookie: { sameSite: "none", secure: false } }, ["cookie.sameSite", "cookie.secure"]],
    ["partitioned without secure", { cookie: { partitioned: true, secure: false } }, ["cookie.partitioned", "cookie.secure"]],
    ["cookie name with a space", { cookie: { name: "my id" } }, ["cookie.name"]],
    ["empty cookie name", { cookie: { name: "" } }, ["cookie.name"]],
    ["cookie path without /", { cookie: { path: "app" } }, ["cookie.path"]],
    ["cookie path with ;", { cookie: { path: "/a;b" } }, ["cookie.path"]],
    ["cookie domain with ;", { cookie: { domain: "example.com; Secure" } }, ["cookie.domain"]],
    ["tokenBytes 8", { tokenBytes: 8 }, ["tokenBytes"]],
    ["tokenBytes 16", { tokenBytes: 16 }, ["tokenBytes"]],
    ["tokenBytes 31", { tokenBytes: 31 }, ["tokenBytes"]],
    ["tokenBytes 32.5", { tokenBytes: 32.5 }, ["tokenBytes"]],
    ["cache.capacity 1.5", { cache: { capacity: 1.5 } }, ["cache.capacity"]],
    ["cache.capacity 0 (cache: false turns it off)", { cache: { capacity: 0 } }, ["cache.capacity"]],
    ["cache.capacity -1", { cache: { capacity: -1 } }, ["cache.capacity"]],
    ["cache.capacity NaN", { cache: { capacity: Number.NaN } }, ["cache.capacity"]],
    ["cache of the wrong type", { cache: 10 as never }, ["cache"]],
    ["an unknown option", { idleTimout: "10 minutes" } as never, ["idleTimout"]],
    ["an unknown cookie attribute", { cookie: { sameSight: "lax" } } as never, ["cookie.sameSight"]],
    ["a trusted proxy that is not an address", { trustedProxies: ["10.0.0.0/8", "proxy.local"] }, ["trustedProxies"]],
    ["a trusted proxy with prefix 33", { trustedProxies: ["10.0.0.1/33"] }, ["trustedProxies"]],
    ["a trusted proxy with prefix 129", { trustedProxies: ["::1/129"] }, ["trustedProxies"]],
    ["a trusted proxy with an octet 256", { trustedProxies: ["10.0.0.256"] }, ["trustedProxies"]]
  ]

  for (const [title, input, options] of cases) {
    it(`${title} fails make and layer, naming ${options.join(" or ")}`, () => {
      const named = failingOption(input)
      assert.include(options, named)
      const exit = viaLayer(SessionConfig.layer(input))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
        const err = exit.cause.error as SessionConfig.SessionConfigError
        assert.instanceOf(err, SessionConfig.SessionConfigError)
        assert.strictEqual(err.option, named)
        assert.isAbove(err.message.length, 0)
      } else {
        assert.fail("expected a typed failure")
      }
    })
  }

  it("valid edge values are accepted", () => {
    for (const input of [
      { ipBinding: false },
      { ipBinding: true },
      { ipBinding: {} },
      { ipBinding: { ipv4Prefix: 0, ipv6Prefix: 0 } },
      { ipBinding: { ipv4Prefix: 32, ipv6Prefix: 128 } },
      { cache: false },
      { cache: true },
      { cache: { capacity: 1 } },
      { cache: { capacity: Infinity, idleTimeout: "5 minutes" } },
      { cookie: { domain: undefined } },
      { tokenBytes: 32 },
      { cookie: { name: "__Host-id" } },
      { cookie: { name: "__Secure-sid", domain: "example.com" } },
      { cookie: { sameSite: "none" as const } },
      { cookie: { sameSite: "strict" as const, secure: false } },
      { trustedProxies: ["10.0.0.0/8", "192.168.1.1", "::1", "fd00::/8", "::ffff:10.0.0.0/104"] },
      { idleTimeout: 2, touchInterval: 1 }
    ] satisfies ReadonlyArray<SessionConfig.SessionConfigInput>) {
      assert.isTrue(Either.isRight(SessionConfig.make(input)), JSON.stringify(input))
    }
  })

  it.prop(
    "touchInterval is accepted iff it is shorter than idleTimeout",
    { idle: fc.integer({ min: 1, max: 10_000_000 }), touch: fc.integer({ min: 1, max: 10_000_000 }) },
    ({ idle, touch }) => {
      const named = failingOption({ idleTimeout: idle, touchInterval: touch })
      assert.strictEqual(named, touch < idle ? undefined : "touchInterval")
    },
    RUNS
  )

  it.prop(
    "ipBinding.ipv4Prefix and ipBinding.ipv6Prefix are accepted exactly in their ranges, and kept",
    { v4: fc.integer({ min: -5, max: 40 }), v6: fc.integer({ min: -5, max: 140 }) },
    ({ v4, v6 }) => {
      assert.strictEqual(failingOption({ ipBinding: { ipv4Prefix: v4 } }), v4 >= 0 && v4 <= 32 ? undefined : "ipBinding.ipv4Prefix")
      assert.strictEqual(failingOption({ ipBinding: { ipv6Prefix: v6 } }), v6 >= 0 && v6 <= 128 ? undefined : "ipBinding.ipv6Prefix")
      if (v4 >= 0 && v4 <= 32 && v6 >= 0 && v6 <= 128) {
        deepStrictEqual(Either.getOrThrow(SessionConfig.make({ ipBinding: { ipv4Prefix: v4, ipv6Prefix: v6 } })).ipBinding, { ipv4Prefix: v4, ipv6Prefix: v6 })
      }
    },
    RUNS
  )

  it.prop(
    "cache.capacity is accepted iff it is a positive integer or Infinity, and kept",
    { capacity: fc.oneof(fc.integer({ min: -10, max: 100_000 }), fc.double(), fc.constant(Infinity)) },
    ({ capacity }) => {
      const ok = (Number.isInteger(capacity) && capacity >= 1) || capacity === Infinity
      assert.strictEqual(failingOption({ cache: { capacity } }), ok ? undefined : "cache.capacity")
      if (ok) deepStrictEqual(Either.getOrThrow(SessionConfig.make({ cache: { capacity } })).cache, { capacity, idleTimeout: Duration.hours(1) })
    },
    RUNS
  )

})

describe("SessionConfig.layerConfig (SESSIONS_* variables)", () => {
  // The environment provider splits paths on "_"; fromMap with the same delimiter reads the
  // variables exactly as the environment would.
  const env = (entries: ReadonlyArray<readonly [string, string]>) =>
    ConfigProvider.fromMap(new Map(entries), { pathDelim: "_" })

  const load = (entries: ReadonlyArray<readonly [string, string]>, overrides: SessionConfig.SessionConfigInput = {}) =>
    Effect.provide(SessionConfig.SessionConfig, SessionConfig.layerConfig(overrides)).pipe(
      Effect.withConfigProvider(env(entries))
    )

  it.effect("reads every SESSIONS_* variable", () =>
    Effect.gen(function*() {
      const c = yield* load([
        ["SESSIONS_IDLE_TIMEOUT", "10 minutes"],
        ["SESSIONS_ABSOLUTE_TIMEOUT", "8 hours"],
        ["SESSIONS_ID_ROTATION_INTERVAL", "5 minutes"],
        ["SESSIONS_GRACE_PERIOD", "30 seconds"],
        ["SESSIONS_IP_BINDING_IPV4_PREFIX", "16"],
        ["SESSIONS_IP_BINDING_IPV6_PREFIX", "48"],
        ["SESSIONS_ACCEPT_CHANGING_USER_AGENT", "true"],
        ["SESSIONS_CACHE_CAPACITY", "500"],
        ["SESSIONS_CACHE_IDLE_TIMEOUT", "20 minutes"],
        ["SESSIONS_TOUCH_INTERVAL", "15 seconds"],
        ["SESSIONS_TRUSTED_PROXIES", "10.0.0.0/8,::1"],
        ["SESSIONS_HASH_IDS_AT_REST", "false"],
        ["SESSIONS_TOKEN_BYTES", "40"],
        ["SESSIONS_SWEEP_INTERVAL", "2 minutes"],
        ["SESSIONS_COOKIE_NAME", "__Host-sid"],
        ["SESSIONS_COOKIE_PATH", "/"],
        ["SESSIONS_COOKIE_SECURE", "true"],
        ["SESSIONS_COOKIE_HTTP_ONLY", "true"],
        ["SESSIONS_COOKIE_SAME_SITE", "strict"],
        ["SESSIONS_COOKIE_PERSISTENT", "true"],
        ["SESSIONS_MAX_SESSIONS_PER_USER", "3"],
        ["SESSIONS_ON_SESSION_LIMIT", "refuse"]
      ])
      assert.strictEqual(c.maxSessionsPerUser, 3)
      assert.strictEqual(c.onSessionLimit, "refuse")
      assert.strictEqual(SessionConfig.millis(c.idleTimeout), 10 * 60_000)
      assert.strictEqual(SessionConfig.millis(c.absoluteTimeout), 8 * 3_600_000)
      assert.strictEqual(SessionConfig.millis(c.idRotationInterval), 5 * 60_000)
      assert.strictEqual(SessionConfig.millis(c.gracePeriod), 30_000)
      deepStrictEqual(c.ipBinding, { ipv4Prefix: 16, ipv6Prefix: 48 })
      assert.isTrue(c.acceptChangingUserAgent)
      deepStrictEqual(c.cache, { capacity: 500, idleTimeout: Duration.minutes(20) })
      assert.strictEqual(SessionConfig.millis(c.touchInterval), 15_000)
      assertEquivalent(c.trustedProxies.map((p) => p.entry), ["10.0.0.0/8", "::1"])
      assert.isFalse(c.hashIdsAtRest)
      assert.strictEqual(c.tokenBytes, 40)
      assert.strictEqual(SessionConfig.millis(c.sweepInterval), 120_000)
      assert.strictEqual(c.cookie.name, "__Host-sid")
      assert.strictEqual(c.cookie.sameSite, "strict")
      assert.isTrue(c.cookie.secure && c.cookie.httpOnly)
      assert.isTrue(c.cookie.persistent)
    }))

  it.effect("reads the cookie domain and falls back to the defaults for what is not set", () =>
    Effect.gen(function*() {
      const c = yield* load([["SESSIONS_COOKIE_DOMAIN", "example.com"], ["SESSIONS_COOKIE_NAME", "sid"]])
      assertEquivalent(c.cookie.domain, Option.some("example.com"))
      assert.strictEqual(c.cookie.name, "sid")
      assertEquivalent({ ...c, cookie: { ...c.cookie, domain: Option.none(), name: "__Host-id" } }, SessionConfig.defaults)
    }))

  it.effect("with no variables at all gives the defaults", () =>
    Effect.gen(function*() {
      const c = yield* load([])
      assertEquivalent(c, SessionConfig.defaults)
    }))

  it.effect("variables win over overrides given in code, and overrides fill the rest", () =>
    Effect.gen(function*() {
      const c = yield* load([["SESSIONS_IDLE_TIMEOUT", "10 minutes"], ["SESSIONS_COOKIE_NAME", "env"]], {
        idleTimeout: "20 minutes",
        gracePeriod: "10 seconds",
        cookie: { name: "code", path: "/app" }
      })
      assert.strictEqual(SessionConfig.millis(c.idleTimeout), 10 * 60_000)
      assert.strictEqual(SessionConfig.millis(c.gracePeriod), 10_000)
      assert.strictEqual(c.cookie.name, "env")
      assert.strictEqual(c.cookie.path, "/app")
    }))

  it.effect("also works through Layer.setConfigProvider", () =>
    Effect.gen(function*() {
      const c = yield* SessionConfig.SessionConfig
      deepStrictEqual(c.ipBinding, SessionConfig.defaultIpBinding)
    }).pipe(
      Effect.provide(SessionConfig.layerConfig().pipe(Layer.provide(Layer.setConfigProvider(env([["SESSIONS_IP_BINDING", "true"]])))))
    ))

  it.effect("SESSIONS_IP_BINDING and SESSIONS_CACHE switch the two off and on; their settings turn them on and combine with the overrides", () =>
    Effect.gen(function*() {
      assert.isFalse((yield* load([["SESSIONS_CACHE", "false"]])).cache)
      assert.isFalse((yield* load([["SESSIONS_IP_BINDING", "false"]], { ipBinding: { ipv4Prefix: 16 } })).ipBinding)
      deepStrictEqual((yield* load([["SESSIONS_CACHE", "true"]], { cache: false })).cache, SessionConfig.defaultCache)
      deepStrictEqual((yield* load([["SESSIONS_CACHE_CAPACITY", "Infinity"]])).cache, { capacity: Infinity, idleTimeout: Duration.hours(1) })
      deepStrictEqual(
        (yield* load([["SESSIONS_IP_BINDING_IPV6_PREFIX", "56"]], { ipBinding: { ipv4Prefix: 16 } })).ipBinding,
        { ipv4Prefix: 16, ipv6Prefix: 56 }
      )
      deepStrictEqual((yield* load([["SESSIONS_CACHE_IDLE_TIMEOUT", "5 minutes"]], { cache: { capacity: 7 } })).cache, { capacity: 7, idleTimeout: Duration.minutes(5) })
    }))

  const malformed: ReadonlyArray<readonly [string, string]> = [
    ["SESSIONS_IDLE_TIMEOUT", "ten minutes"],
    ["SESSIONS_IP_BINDING_IPV4_PREFIX", "two"],
    ["SESSIONS_IP_BINDING", "maybe"],
    ["SESSIONS_CACHE_CAPACITY", "many"],
    ["SESSIONS_HASH_IDS_AT_REST", "maybe"],
    ["SESSIONS_COOKIE_SAME_SITE", "relaxed"],
    ["SESSIONS_TOKEN_BYTES", "32.5"]
  ]
  it.effect("Sessions.layerConfig (Config.Wrap) takes ipBinding from Config.boolean and cache from Config.all", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions.Sessions
      deepStrictEqual(sessions.config.ipBinding, SessionConfig.defaultIpBinding)
      deepStrictEqual(sessions.config.cache, { capacity: 42, idleTimeout: Duration.hours(1) })
    }).pipe(
      Effect.provide(
        Sessions.layerConfig({
          ipBinding: Config.boolean("BIND_IP"),
          cache: Config.all({ capacity: Config.integer("CACHE_CAPACITY") })
        }).pipe(Layer.provide(Persistence.layerMemory))
      ),
      Effect.withConfigProvider(env([["BIND_IP", "true"], ["CACHE_CAPACITY", "42"]])),
      Effect.scoped
    ))

  // Turning a feature off beside settings for it is a contradiction, not a silent choice.
  const contradictions: ReadonlyArray<ReadonlyArray<readonly [string, string]>> = [
    [["SESSIONS_IP_BINDING", "false"], ["SESSIONS_IP_BINDING_IPV4_PREFIX", "24"]],
    [["SESSIONS_CACHE", "false"], ["SESSIONS_CACHE_CAPACITY", "100"]]
  ]
  for (const entries of contradictions) {
    it.effect(`${entries.map(([k, v]) => `${k}=${v}`).join(" with ")} fails with a ConfigError`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(load(entries))
        assert.isTrue(ConfigError.isConfigError(error), "a ConfigError")
      }))
  }

  it.effect("the contradiction names the variable and every setting given beside it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(load([
        ["SESSIONS_IP_BINDING", "false"],
        ["SESSIONS_IP_BINDING_IPV4_PREFIX", "24"],
        ["SESSIONS_IP_BINDING_IPV6_PREFIX", "64"]
      ]))
      assert.isTrue(ConfigError.isConfigError(error), "a ConfigError")
      if (!ConfigError.isConfigError(error)) return
      assert.strictEqual(error._op, "InvalidData")
      if (error._op === "InvalidData") {
        deepStrictEqual(error.path, ["SESSIONS", "IP_BINDING"])
        assert.strictEqual(error.message, "IP_BINDING=false contradicts ipv4Prefix, ipv6Prefix under IP_BINDING_")
      }
    }))

  it.effect("ipBinding and cache settings given in code stand when no variable sets them", () =>
    Effect.gen(function*() {
      const c = yield* load([], { ipBinding: { ipv4Prefix: 16 }, cache: { capacity: 5 } })
      deepStrictEqual(c.ipBinding, { ipv4Prefix: 16, ipv6Prefix: 64 })
      deepStrictEqual(c.cache, { capacity: 5, idleTimeout: Duration.hours(1) })
    }))

  for (const [name, value] of malformed) {
    it.effect(`a malformed ${name}=${JSON.stringify(value)} fails with a ConfigError`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(load([[name, value]]))
        assert.notInstanceOf(error, SessionConfig.SessionConfigError)
        assert.isTrue(ConfigError.isConfigError(error), "a ConfigError")
      }))
  }

  const invalid: ReadonlyArray<readonly [string, string, string]> = [
    ["SESSIONS_IP_BINDING_IPV4_PREFIX", "33", "ipBinding.ipv4Prefix"],
    ["SESSIONS_IP_BINDING_IPV6_PREFIX", "200", "ipBinding.ipv6Prefix"],
    ["SESSIONS_CACHE_CAPACITY", "0", "cache.capacity"],
    ["SESSIONS_CACHE_IDLE_TIMEOUT", "0 seconds", "cache.idleTimeout"],
    ["SESSIONS_TOKEN_BYTES", "8", "tokenBytes"],
    ["SESSIONS_TOUCH_INTERVAL", "2 hours", "touchInterval"],
    ["SESSIONS_TRUSTED_PROXIES", "10.0.0.0/8,nope", "trustedProxies"],
    ["SESSIONS_IDLE_TIMEOUT", "0 seconds", "idleTimeout"]
  ]
  for (const [name, value, option] of invalid) {
    it.effect(`a well-formed but invalid ${name}=${JSON.stringify(value)} fails with a SessionConfigError naming ${option}`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(load([[name, value]]))
        assert.instanceOf(error, SessionConfig.SessionConfigError)
        assert.strictEqual((error as SessionConfig.SessionConfigError).option, option)
      }))
  }
})

describe("SessionConfig: the IP binding and the cache", () => {
  it("defaults: no IP binding and a cache of 10,000 entries idling out after 1 hour — as acceptRemoteIp 1 and maxCacheSize 10,000 with cacheExpiry 1 hour were", () => {
    const c = Either.getOrThrow(SessionConfig.make())
    assert.isFalse(c.ipBinding)
    deepStrictEqual(c.cache, { capacity: 10_000, idleTimeout: Duration.hours(1) })
    deepStrictEqual(SessionConfig.defaultIpBinding, { ipv4Prefix: 24, ipv6Prefix: 64 })
    deepStrictEqual(SessionConfig.defaultCache, { capacity: 10_000, idleTimeout: Duration.hours(1) })
  })

  it("true and partial settings fill in the defaults of the rest", () => {
    const of = (input: SessionConfig.SessionConfigInput) => Either.getOrThrow(SessionConfig.make(input))
    deepStrictEqual(of({ ipBinding: true }).ipBinding, { ipv4Prefix: 24, ipv6Prefix: 64 })
    deepStrictEqual(of({ ipBinding: {} }).ipBinding, { ipv4Prefix: 24, ipv6Prefix: 64 })
    deepStrictEqual(of({ ipBinding: { ipv4Prefix: 16 } }).ipBinding, { ipv4Prefix: 16, ipv6Prefix: 64 })
    deepStrictEqual(of({ ipBinding: { ipv6Prefix: 48 } }).ipBinding, { ipv4Prefix: 24, ipv6Prefix: 48 })
    assert.isFalse(of({ ipBinding: false }).ipBinding)
    deepStrictEqual(of({ cache: true }).cache, { capacity: 10_000, idleTimeout: Duration.hours(1) })
    deepStrictEqual(of({ cache: { capacity: 5 } }).cache, { capacity: 5, idleTimeout: Duration.hours(1) })
    deepStrictEqual(of({ cache: { idleTimeout: "5 minutes" } }).cache, { capacity: 10_000, idleTimeout: Duration.minutes(5) })
    assert.isFalse(of({ cache: false }).cache)
  })

  // A configuration that still says `acceptRemoteIp: 3` must not silently run without IP binding.
  for (const [old, replacement] of [
    ["acceptRemoteIp", "ipBinding"],
    ["ipv6PrefixLength", "ipBinding.ipv6Prefix"],
    ["maxCacheSize", "cache"],
    ["cacheExpiry", "cache.idleTimeout"]
  ] as const) {
    it(`the former option ${old} fails, naming ${replacement} and the migration guide`, () => {
      const r = SessionConfig.make({ [old]: 3 } as never)
      assert.isTrue(Either.isLeft(r))
      if (Either.isLeft(r)) {
        assert.strictEqual(r.left.option, old)
        assert.include(r.left.reason, replacement)
        assert.include(r.left.message, "docs/migrating.md")
      }
    })
  }

  it("errors say which option and why", () => {
    const message = (input: unknown) => Either.match(SessionConfig.make(input as SessionConfig.SessionConfigInput), { onLeft: (e) => e.message, onRight: () => "ok" })
    assert.strictEqual(message({ ipBinding: { ipv4Prefix: 33 } }), "invalid session option ipBinding.ipv4Prefix: must be an integer from 0 to 32, got 33")
    assert.strictEqual(message({ ipBinding: "yes" }), "invalid session option ipBinding: must be true, false or { ipv4Prefix, ipv6Prefix }, got \"yes\"")
    assert.strictEqual(
      message({ cache: { capacity: 0 } }),
      "invalid session option cache.capacity: must be an integer from 1 up, or Infinity for no bound (cache: false turns the cache off), got 0"
    )
    assert.strictEqual(message({ idleTimeout: "soon" }), "invalid session option idleTimeout: not a duration: \"soon\"")
    assert.strictEqual(message({ cache: { idleTimeout: "0 seconds" } }), "invalid session option cache.idleTimeout: must be a positive, finite duration, got 0")
    assert.strictEqual(message({ trustedProxies: ["10.0.0.0/8", "proxy.local"] }), "invalid session option trustedProxies: not an IP address or CIDR range: \"proxy.local\"")
    assert.strictEqual(message({ cookie: { sameSite: "relaxed" } }), "invalid session option cookie.sameSite: must be \"lax\", \"strict\" or \"none\", got \"relaxed\"")
    assert.strictEqual(message({ touchInterval: "31 minutes" }), "invalid session option touchInterval: must be shorter than idleTimeout (30m)")
    assert.strictEqual(message({ tokenBytes: 8 }), "invalid session option tokenBytes: must be an integer from 32 to 64, got 8")
    assert.strictEqual(message({ idleTimout: "10 minutes" }), "invalid session option idleTimout: is not an option")
    assert.strictEqual(message({ idleTimeout: true }), "invalid session option idleTimeout: not a duration: true")
    assert.strictEqual(message({ onSessionLimit: "evict" }), "invalid session option onSessionLimit: must be \"endLeastRecentlyUsed\" or \"refuse\", got \"evict\"")
  })

  it("the cookie's errors say why", () => {
    const reason = (cookie: unknown) => Either.match(SessionConfig.make({ cookie } as SessionConfig.SessionConfigInput), { onLeft: (e) => `${e.option}: ${e.reason}`, onRight: () => "ok" })
    assert.strictEqual(reason({ name: "my id" }), "cookie.name: not a valid cookie name: \"my id\"")
    assert.strictEqual(reason({ path: "app" }), "cookie.path: must start with / and hold no ; or spaces")
    assert.strictEqual(reason({ domain: "a b" }), "cookie.domain: not a valid domain")
    assert.strictEqual(reason({ sameSite: "none", secure: false }), "cookie.sameSite: SameSite=None requires secure: true")
    assert.strictEqual(reason({ partitioned: true, secure: false }), "cookie.partitioned: Partitioned requires secure: true")
    assert.strictEqual(reason({ name: "__Secure-id", secure: false }), "cookie.name: a __Secure- cookie requires secure: true")
    assert.strictEqual(reason({ name: "__Host-id", secure: false }), "cookie.name: a __Host- cookie requires secure: true")
    assert.strictEqual(reason({ name: "__Host-id", path: "/app" }), "cookie.name: a __Host- cookie requires path: \"/\"")
    assert.strictEqual(reason({ name: "__Host-id", domain: "example.com" }), "cookie.name: a __Host- cookie must not set a domain")
  })
})

describe("SessionConfig.schema", () => {
  it.prop("encoding a resolved configuration spells out options that decode to it again", { c: arbConfig }, ({ c }) => {
    const options = Schema.encodeSync(SessionConfig.schema)(c)
    assertEquivalent(Either.getOrThrow(SessionConfig.make(options)), c)
  }, { fastCheck: { numRuns: 200 } })

  it("encoding spells out the cookie", () => {
    const c = Either.getOrThrow(SessionConfig.make({ cookie: { name: "sid", path: "/app", sameSite: "strict", partitioned: true } }))
    deepStrictEqual(Schema.encodeSync(SessionConfig.schema)(c).cookie, {
      name: "sid",
      path: "/app",
      domain: undefined,
      httpOnly: true,
      secure: true,
      sameSite: "strict",
      partitioned: true,
      persistent: false
    })
  })

  it("feature: remember me — cookie.persistent defaults to false (a browser-session cookie), takes a boolean, and refuses anything else", () => {
    assert.isFalse(SessionConfig.defaults.cookie.persistent)
    assert.isFalse(Either.getOrThrow(SessionConfig.make({})).cookie.persistent)
    assert.isTrue(Either.getOrThrow(SessionConfig.make({ cookie: { persistent: true } })).cookie.persistent)
    assert.isTrue(Either.isLeft(SessionConfig.make({ cookie: { persistent: "yes" as never } })))
    assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(SessionConfig.schema)({ cookie: { persistent: 1 } })))
  })

  it("decodes through Schema as make does (defaults filled, failures as ParseError)", () => {
    assertEquivalent(Schema.decodeUnknownSync(SessionConfig.schema)({}), SessionConfig.defaults)
    assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(SessionConfig.schema)({ tokenBytes: 8 })))
  })
})

describe("SessionConfig: trusted proxies are parsed once, when the configuration is made", () => {
  it("the resolved configuration holds the parsed ranges (the middleware only compares bytes)", () => {
    const c = Either.getOrThrow(SessionConfig.make({ trustedProxies: ["10.0.0.0/8", "::1", "::ffff:10.0.0.0/104"] }))
    deepStrictEqual(
      c.trustedProxies.map((p) => [p.entry, p.address.family, Array.from(p.address.bytes), p.prefix]),
      [
        ["10.0.0.0/8", 4, [10, 0, 0, 0], 8],
        ["::1", 6, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128],
        ["::ffff:10.0.0.0/104", 4, [10, 0, 0, 0], 8]
      ]
    )
  })

  it.effect("a malformed entry fails when the layer is built, before any request", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(SessionConfig.layer({ trustedProxies: ["10.0.0.0/8", "10.0.0.0/33"] })).pipe(Effect.scoped))
      assert.instanceOf(error, SessionConfig.SessionConfigError)
      assert.strictEqual(error.option, "trustedProxies")
      assert.include(error.reason, "10.0.0.0/33")
    }))
})
