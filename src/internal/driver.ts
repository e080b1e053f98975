/**
 * Loading a store's driver on demand. The drivers (`ioredis`, `@effect/sql`, `@effect/sql-pg`,
 * `@effect/sql-sqlite-node`, `better-sqlite3`) are optional peer dependencies: an app installs
 * only the one its store needs, so a store module may not import its driver statically. Each
 * store layer imports its driver with a dynamic `import()` when it is built and turns a missing
 * package into a {@link SessionStoreError} that says what to install.
 *
 * @internal
 */
import { Effect } from "effect"
import { SessionStoreError } from "./persistence.js"

/**
 * A package a store entry needs, with the range to install (npm's `latest` tags point at
 * Effect 4, so a bare `npm install @effect/sql` would install the wrong major).
 *
 * @internal
 */
export interface Driver {
  readonly name: string
  readonly range: string
}

/**
 * The drivers, with the ranges of `peerDependencies` in package.json (a test keeps them equal).
 *
 * @internal
 */
export const drivers = {
  ioredis: { name: "ioredis", range: "^5.11.1" },
  sql: { name: "@effect/sql", range: "^0.52.1" },
  sqlPg: { name: "@effect/sql-pg", range: "^0.53.0" },
  sqlSqliteNode: { name: "@effect/sql-sqlite-node", range: "^0.53.0" },
  betterSqlite3: { name: "better-sqlite3", range: "^12.11.1" }
} as const satisfies Record<string, Driver>

const quoteList = (names: ReadonlyArray<string>): string => {
  const quoted = names.map((n) => `"${n}"`)
  return quoted.length <= 1 ? quoted.join("") : `${quoted.slice(0, -1).join(", ")} and ${quoted[quoted.length - 1]}`
}

/**
 * The message for a store entry whose driver is not installed, e.g.
 * `effect-sessions/Persistence/Redis needs the package "ioredis": npm install ioredis@^5.11.1`.
 *
 * @internal
 */
export const missingDriverMessage = (entry: string, packages: ReadonlyArray<Driver>, missing?: string): string => {
  const names = packages.map((p) => p.name)
  const noun = names.length === 1 ? "package" : "packages"
  const install = packages.map((p) => `${p.name}@${p.range}`).join(" ")
  // A package the driver itself loads (a peer such as @effect/experimental) is named too.
  const also = missing !== undefined && !names.includes(missing) ? ` (cannot find "${missing}")` : ""
  return `${entry} needs the ${noun} ${quoteList(names)}: npm install ${install}${also}`
}

/**
 * The package a module-not-found error names (`Cannot find package 'x'` from the ESM loader,
 * `Cannot find module 'x'` from `require`), when it is a package rather than a file.
 *
 * @internal
 */
export const missingPackage = (cause: unknown): string | undefined => {
  if (typeof cause !== "object" || cause === null) return undefined
  const code = (cause as { readonly code?: unknown }).code
  if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") return undefined
  const message = String((cause as { readonly message?: unknown }).message)
  const specifier = /Cannot find (?:package|module) '([^']+)'/.exec(message)?.[1]
  if (specifier === undefined || specifier.startsWith(".") || specifier.startsWith("/") || specifier.includes("\\")) {
    return undefined
  }
  // A package name is `name` or `@scope/name`; drop any subpath and any resolved file path.
  const parts = specifier.split("/")
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]
}

/**
 * Runs `load` (a dynamic `import()` of the driver, or of the module that imports it); a missing
 * package becomes a `SessionStoreError` (reason `"Unknown"`, method `method`) whose message names
 * the packages `entry` needs and the command that installs them. Other failures keep their cause.
 *
 * @internal
 */
export const loadDriver = <A>(
  entry: string,
  method: string,
  packages: ReadonlyArray<Driver>,
  load: () => Promise<A>
): Effect.Effect<A, SessionStoreError> =>
  Effect.tryPromise({
    try: load,
    catch: (cause) => {
      const missing = missingPackage(cause)
      return new SessionStoreError({
        method,
        reason: "Unknown",
        cause: missing === undefined ? cause : new Error(missingDriverMessage(entry, packages, missing), { cause })
      })
    }
  })
