/**
 * The package's promises that can be checked on the sources (the installed tarball is checked by
 * `npm run check:package`): no public entry loads an optional peer (a store driver) or a dev
 * dependency when it is imported — except `effect-sessions/testing`, which loads the test
 * framework (its own optional peers) and nothing else; the missing-driver message names the peers
 * with the ranges of package.json; the README's Install section asks for what package.json asks
 * for.
 */
import { assert, describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { Cause, Effect, Exit, Option } from "effect"
import { createRequire } from "node:module"
import { existsSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { drivers, loadDriver, missingDriverMessage, missingPackage } from "../src/internal/driver.js"
import { isSessionStoreError } from "../src/Persistence.js"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  readonly exports: Record<string, string | { readonly types: string; readonly import: string }>
  readonly dependencies: Record<string, string>
  readonly peerDependencies: Record<string, string>
  readonly peerDependenciesMeta: Record<string, { readonly optional?: boolean }>
  readonly devDependencies: Record<string, string>
}
const optionalPeers = Object.keys(pkg.peerDependencies).filter((name) => pkg.peerDependenciesMeta[name]?.optional === true)
const requiredPeers = Object.keys(pkg.peerDependencies).filter((name) => !optionalPeers.includes(name))
/** The optional peers of the testing entry alone: the test framework, not a store driver. */
const TESTING_ENTRY = "./testing"
const testingPeers = ["@effect/vitest", "fast-check", "vitest"]
const driverPeers = optionalPeers.filter((name) => !testingPeers.includes(name))

/** The package a specifier names (`@scope/name/sub` → `@scope/name`). */
const packageOf = (specifier: string): string =>
  specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/")

/**
 * The module specifiers a source file loads when it is imported, and those it loads with
 * `import()`, read from its JavaScript as tsc emits it (with `verbatimModuleSyntax`, so an
 * `import { type X } from "x"` still loads "x", and only `import type` is erased).
 */
const importsCache = new Map<string, { readonly static: ReadonlyArray<string>; readonly dynamic: ReadonlyArray<string> }>()
const importsOf = (file: string): { readonly static: ReadonlyArray<string>; readonly dynamic: ReadonlyArray<string> } => {
  const cached = importsCache.get(file)
  if (cached !== undefined) return cached
  const js = ts.transpileModule(readFileSync(file, "utf8"), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    fileName: file
  }).outputText
  const source = ts.createSourceFile(file.replace(/\.ts$/, ".js"), js, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS)
  const staticImports: Array<string> = []
  const dynamicImports: Array<string> = []
  for (const statement of source.statements) {
    if ((ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier !== undefined) {
      if (ts.isStringLiteral(statement.moduleSpecifier)) staticImports.push(statement.moduleSpecifier.text)
    }
  }
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments
      if (argument !== undefined && ts.isStringLiteralLike(argument)) dynamicImports.push(argument.text)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  const result = { static: staticImports, dynamic: dynamicImports }
  importsCache.set(file, result)
  return result
}

const sourceOf = (from: string, specifier: string): string => resolve(dirname(from), specifier.replace(/\.js$/, ".ts"))

/** Every bare specifier reached from `entry` through static imports, with the file that imports it. */
const staticPackages = (entry: string): Map<string, string> => {
  const seen = new Set<string>()
  const found = new Map<string, string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const specifier of importsOf(file).static) {
      if (specifier.startsWith(".")) visit(sourceOf(file, specifier))
      else if (!specifier.startsWith("node:")) found.set(packageOf(specifier), relative(root, file))
    }
  }
  visit(entry)
  return found
}

const entries = Object.entries(pkg.exports).flatMap(([name, target]) =>
  typeof target === "string" ? [] : [[name, join(root, target.import.replace(/^\.\/dist\//, "src/").replace(/\.js$/, ".ts"))] as const]
)

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
  assert.isTrue(Option.isSome(failure), "expected a typed failure")
  return Option.getOrThrow(failure)
}

describe("the package", () => {
  it("maps every public entry to a source file", () => {
    assert.isAtLeast(entries.length, 16)
    for (const [name, file] of entries) assert.isTrue(existsSync(file), `${name} → ${relative(root, file)}`)
  })

  for (const [name, file] of entries) {
    const allowed = name === TESTING_ENTRY ? [...requiredPeers, ...testingPeers] : requiredPeers
    it(`importing ${name} loads only dependencies and required peers (never a driver or a dev dependency${
      name === TESTING_ENTRY ? "; the test framework is its own optional peer" : ""
    })`, () => {
      for (const [dependency, importer] of staticPackages(file)) {
        assert.isTrue(
          dependency in pkg.dependencies || allowed.includes(dependency),
          `${name} loads "${dependency}" when imported (from ${importer}); ` +
            (testingPeers.includes(dependency)
              ? "only effect-sessions/testing may load the test framework"
              : optionalPeers.includes(dependency)
              ? "it is an optional peer: import() it inside the layer"
              : "it is not a dependency")
        )
      }
    })
  }

  it("the testing entry is the one that loads the test framework, and its peers are optional, with the installed ranges", () => {
    const testing = entries.find(([name]) => name === TESTING_ENTRY)
    assert.isDefined(testing, "package.json exports ./testing")
    assert.isTrue(staticPackages(testing![1]).has("@effect/vitest"), "effect-sessions/testing loads @effect/vitest")
    const minor = (range: string | undefined) => range?.replace(/^[~^]/, "").split(".").slice(0, 2).join(".")
    for (const peer of testingPeers) {
      assert.isTrue(optionalPeers.includes(peer), `${peer} is an optional peer`)
      assert.strictEqual(minor(pkg.peerDependencies[peer]), minor(pkg.devDependencies[peer]), `${peer}: the peer range and the dev dependency agree on the minor`)
    }
  })

  it("the import graph walk sees drivers (self-test: the Redis store module imports ioredis)", () => {
    assert.strictEqual(staticPackages(join(root, "src/internal/redis/store.ts")).get("ioredis"), "src/internal/redis/connection.ts")
    deepStrictEqual(importsOf(join(root, "src/Persistence/Sqlite.ts")).dynamic, ["@effect/sql-sqlite-node/SqliteClient"])
  })

  it("src/ loads no package that package.json does not declare (dependencies or peers)", () => {
    const files = ts.sys.readDirectory(join(root, "src"), [".ts"])
    for (const file of files) {
      const { static: s, dynamic: d } = importsOf(file)
      for (const specifier of [...s, ...d]) {
        if (specifier.startsWith(".") || specifier.startsWith("node:")) continue
        const dependency = packageOf(specifier)
        assert.isTrue(dependency in pkg.dependencies || dependency in pkg.peerDependencies, `${relative(root, file)} loads undeclared "${dependency}"`)
      }
    }
  })

  it("the drivers are the optional peers (besides the testing entry's), with the ranges of package.json", () => {
    const table = Object.values(drivers)
    deepStrictEqual(table.map((d) => d.name).sort(), [...driverPeers].sort())
    for (const driver of table) assert.strictEqual(driver.range, pkg.peerDependencies[driver.name], driver.name)
    deepStrictEqual([...requiredPeers].sort(), ["@effect/platform", "effect"])
  })

  it("the README's Install section asks for every peer, with its range, and says what the password data weighs", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8")
    const install = readme.slice(readme.indexOf("\n## Install\n"), readme.indexOf("\n## ", readme.indexOf("\n## Install\n") + 1))
    // The testing entry's peers are for a project's tests (the testing guide names them), not for installing the package.
    for (const [name, range] of Object.entries(pkg.peerDependencies)) {
      if (!testingPeers.includes(name)) assert.include(install, `${name}@${range}`, name)
    }
    for (const name of Object.keys(pkg.dependencies)) assert.include(install, name)
    assert.match(install, /\d+(\.\d+)? MB/)
  })
})

describe("loading a driver", () => {
  const entry = "effect-sessions/Persistence/Redis"

  it.effect("a missing package becomes a SessionStoreError that says what to install", () =>
    Effect.gen(function*() {
      const specifier = "effect-sessions-no-such-driver"
      const exit = yield* Effect.exit(loadDriver(entry, "make", [drivers.ioredis], () => import(/* @vite-ignore */ specifier)))
      const error = failureOf(exit)
      assert.isTrue(isSessionStoreError(error))
      assert.strictEqual(error.method, "make")
      assert.strictEqual(error.reason, "Unknown")
      assert.include(
        error.message,
        `${entry} needs the package "ioredis": npm install ioredis@${pkg.peerDependencies["ioredis"]} (cannot find "${specifier}")`
      )
    }))

  it("names the driver's packages, and the missing one when it is another (a driver's own peer)", () => {
    assert.strictEqual(
      missingDriverMessage("effect-sessions/Persistence/Pg", [drivers.sql, drivers.sqlPg], "@effect/sql-pg"),
      `effect-sessions/Persistence/Pg needs the packages "@effect/sql" and "@effect/sql-pg": npm install @effect/sql@${
        pkg.peerDependencies["@effect/sql"]
      } @effect/sql-pg@${pkg.peerDependencies["@effect/sql-pg"]}`
    )
    assert.strictEqual(
      missingDriverMessage("effect-sessions/Persistence/Sqlite", [drivers.sql, drivers.sqlSqliteNode, drivers.betterSqlite3], "@effect/experimental"),
      `effect-sessions/Persistence/Sqlite needs the packages "@effect/sql", "@effect/sql-sqlite-node" and "better-sqlite3": ` +
        `npm install @effect/sql@${pkg.peerDependencies["@effect/sql"]} @effect/sql-sqlite-node@${pkg.peerDependencies["@effect/sql-sqlite-node"]} ` +
        `better-sqlite3@${pkg.peerDependencies["better-sqlite3"]} (cannot find "@effect/experimental")`
    )
  })

  it("reads the package from the ESM and the CommonJS errors, and not from a missing file", () => {
    const requireCjs = createRequire(import.meta.url)
    let cjs: unknown
    try {
      requireCjs("@no-such-scope/driver/sub/path")
    } catch (e) {
      cjs = e
    }
    assert.strictEqual(missingPackage(cjs), "@no-such-scope/driver")
    const esm = Object.assign(new Error("Cannot find package 'ioredis' imported from /app/node_modules/effect-sessions/dist/internal/redisStore.js"), {
      code: "ERR_MODULE_NOT_FOUND"
    })
    assert.strictEqual(missingPackage(esm), "ioredis")
    const file = Object.assign(new Error("Cannot find module '/app/node_modules/ioredis/built/index.js' imported from /app/x.js"), {
      code: "ERR_MODULE_NOT_FOUND"
    })
    assert.strictEqual(missingPackage(file), undefined)
    assert.strictEqual(missingPackage(new Error("Cannot find package 'ioredis'")), undefined, "no module-not-found code")
  })

  it.effect("any other failure keeps its cause", () =>
    Effect.gen(function*() {
      const boom = new TypeError("the driver threw while loading")
      const error = failureOf(yield* Effect.exit(loadDriver(entry, "make", [drivers.ioredis], () => Promise.reject(boom))))
      assert.strictEqual(error.cause, boom)
    }))
})
