import { assert, describe, it } from "@effect/vitest"
import { ConfigError, ConfigProvider, Duration, Effect, Either, Exit, FastCheck as fc, Layer, Option } from "effect"
import * as SessionConfig from "../src/SessionConfig.js"
import { arbConfigTimes, assertEquivalent } from "./arbitraries.js"
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
    assert.isAtLeast(c.tokenBytes, 16)
    // The timing defaults are consistent with each other.
    assert.isTrue(Duration.lessThan(c.touchInterval, c.idleTimeout))
    assert.isTrue(Duration.lessThanOrEqualTo(c.idleTimeout, c.absoluteTimeout))
    assert.isTrue(Duration.lessThan(c.gracePeriod, c.idRotationInterval))
    assertEquivalent(c, SessionConfig.defaults)
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
    "cacheExpiry",
    "touchInterval",
    "sweepInterval"
  ] as const

  for (const option of durationOptions) {
    for (const bad of [0, -1, "0 millis", "-5 minutes", Duration.zero, Duration.infinity, "soon"] as const) {
      it(`${option} = ${String(Duration.isDuration(bad) ? Duration.format(bad) : bad)} fails make and layer with option "${option}"`, () => {
        const input: SessionConfig.SessionConfigInput = { [option]: bad as Duration.DurationInput }
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
    ["acceptRemoteIp 0", { acceptRemoteIp: 0 }, ["acceptRemoteIp"]],
    ["acceptRemoteIp 5", { acceptRemoteIp: 5 }, ["acceptRemoteIp"]],
    ["acceptRemoteIp 2.5", { acceptRemoteIp: 2.5 }, ["acceptRemoteIp"]],
    ["ipv6PrefixLength -1", { ipv6PrefixLength: -1 }, ["ipv6PrefixLength"]],
    ["ipv6PrefixLength 129", { ipv6PrefixLength: 129 }, ["ipv6PrefixLength"]],
    ["ipv6PrefixLength 64.5", { ipv6PrefixLength: 64.5 }, ["ipv6PrefixLength"]],
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
    ["tokenBytes 15", { tokenBytes: 15 }, ["tokenBytes"]],
    ["tokenBytes 16.5", { tokenBytes: 16.5 }, ["tokenBytes"]],
    ["maxCacheSize 1.5", { maxCacheSize: 1.5 }, ["maxCacheSize"]],
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
      { acceptRemoteIp: 1 },
      { acceptRemoteIp: 4 },
      { ipv6PrefixLength: 0 },
      { ipv6PrefixLength: 128 },
      { tokenBytes: 16 },
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
    "acceptRemoteIp and ipv6PrefixLength are accepted exactly in their ranges",
    { level: fc.integer({ min: -3, max: 8 }), prefix: fc.integer({ min: -5, max: 140 }) },
    ({ level, prefix }) => {
      assert.strictEqual(failingOption({ acceptRemoteIp: level }), level >= 1 && level <= 4 ? undefined : "acceptRemoteIp")
      assert.strictEqual(failingOption({ ipv6PrefixLength: prefix }), prefix >= 0 && prefix <= 128 ? undefined : "ipv6PrefixLength")
    },
    RUNS
  )

  it("trustedProxyRanges parses the configured ranges", () => {
    const c = Either.getOrThrow(SessionConfig.make({ trustedProxies: ["10.0.0.0/8", "::1"] }))
    const ranges = SessionConfig.trustedProxyRanges(c)
    assert.strictEqual(ranges.length, 2)
    assert.strictEqual(ranges[0]!.prefix, 8)
    assert.strictEqual(ranges[1]!.prefix, 128)
  })
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
        ["SESSIONS_ACCEPT_REMOTE_IP", "3"],
        ["SESSIONS_IPV6_PREFIX_LENGTH", "48"],
        ["SESSIONS_ACCEPT_CHANGING_USER_AGENT", "true"],
        ["SESSIONS_MAX_CACHE_SIZE", "500"],
        ["SESSIONS_CACHE_EXPIRY", "20 minutes"],
        ["SESSIONS_TOUCH_INTERVAL", "15 seconds"],
        ["SESSIONS_TRUSTED_PROXIES", "10.0.0.0/8,::1"],
        ["SESSIONS_HASH_IDS_AT_REST", "false"],
        ["SESSIONS_TOKEN_BYTES", "24"],
        ["SESSIONS_SWEEP_INTERVAL", "2 minutes"],
        ["SESSIONS_COOKIE_NAME", "__Host-sid"],
        ["SESSIONS_COOKIE_PATH", "/"],
        ["SESSIONS_COOKIE_SECURE", "true"],
        ["SESSIONS_COOKIE_HTTP_ONLY", "true"],
        ["SESSIONS_COOKIE_SAME_SITE", "strict"]
      ])
      assert.strictEqual(SessionConfig.millis(c.idleTimeout), 10 * 60_000)
      assert.strictEqual(SessionConfig.millis(c.absoluteTimeout), 8 * 3_600_000)
      assert.strictEqual(SessionConfig.millis(c.idRotationInterval), 5 * 60_000)
      assert.strictEqual(SessionConfig.millis(c.gracePeriod), 30_000)
      assert.strictEqual(c.acceptRemoteIp, 3)
      assert.strictEqual(c.ipv6PrefixLength, 48)
      assert.isTrue(c.acceptChangingUserAgent)
      assert.strictEqual(c.maxCacheSize, 500)
      assert.strictEqual(SessionConfig.millis(c.cacheExpiry), 20 * 60_000)
      assert.strictEqual(SessionConfig.millis(c.touchInterval), 15_000)
      assertEquivalent(c.trustedProxies, ["10.0.0.0/8", "::1"])
      assert.isFalse(c.hashIdsAtRest)
      assert.strictEqual(c.tokenBytes, 24)
      assert.strictEqual(SessionConfig.millis(c.sweepInterval), 120_000)
      assert.strictEqual(c.cookie.name, "__Host-sid")
      assert.strictEqual(c.cookie.sameSite, "strict")
      assert.isTrue(c.cookie.secure && c.cookie.httpOnly)
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
      assert.strictEqual(c.acceptRemoteIp, 2)
    }).pipe(
      Effect.provide(SessionConfig.layerConfig().pipe(Layer.provide(Layer.setConfigProvider(env([["SESSIONS_ACCEPT_REMOTE_IP", "2"]])))))
    ))

  const malformed: ReadonlyArray<readonly [string, string]> = [
    ["SESSIONS_IDLE_TIMEOUT", "ten minutes"],
    ["SESSIONS_ACCEPT_REMOTE_IP", "two"],
    ["SESSIONS_HASH_IDS_AT_REST", "maybe"],
    ["SESSIONS_COOKIE_SAME_SITE", "relaxed"],
    ["SESSIONS_TOKEN_BYTES", "32.5"]
  ]
  for (const [name, value] of malformed) {
    it.effect(`a malformed ${name}=${JSON.stringify(value)} fails with a ConfigError`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(load([[name, value]]))
        assert.notInstanceOf(error, SessionConfig.SessionConfigError)
        assert.isTrue(ConfigError.isConfigError(error), "a ConfigError")
      }))
  }

  const invalid: ReadonlyArray<readonly [string, string, string]> = [
    ["SESSIONS_ACCEPT_REMOTE_IP", "9", "acceptRemoteIp"],
    ["SESSIONS_IPV6_PREFIX_LENGTH", "200", "ipv6PrefixLength"],
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
