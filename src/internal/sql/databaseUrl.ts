/**
 * Reading `DATABASE_URL` for the SQL store's specialisations: `postgres:` / `postgresql:` URLs for
 * `Persistence/Pg`, `sqlite:` / `file:` URLs for `Persistence/Sqlite`. A URL of the wrong kind is
 * a `ConfigError` whose message never quotes it (it may hold a password).
 *
 * @internal
 */
import { ConfigError, Either } from "effect"

const schemeOf = (url: string): { readonly scheme: string; readonly rest: string } | undefined => {
  const match = /^([a-z][a-z0-9+.-]*):(.*)$/i.exec(url.trim())
  return match ? { scheme: match[1]!.toLowerCase(), rest: match[2]! } : undefined
}

/**
 * The file a SQLite URL names: `sqlite::memory:` (an in-memory database), `sqlite:relative.db`,
 * `sqlite:/abs.db`, `sqlite:///abs.db`, `file:///abs.db` (percent-decoded); `undefined` for any
 * other text.
 *
 * @internal
 */
export const sqliteFilename = (url: string): string | undefined => {
  const parsed = schemeOf(url)
  if (parsed === undefined || (parsed.scheme !== "sqlite" && parsed.scheme !== "file")) return undefined
  const { rest } = parsed
  const path = rest.startsWith("//") ? decodeURIComponent(rest.slice(2).replace(/^[^/]*(?=\/)/, "")) : rest
  return path === "" ? undefined : path
}

/**
 * A SQLite URL's file, or a `ConfigError` (at `path`).
 *
 * @internal
 */
export const checkSqliteUrl = (url: string, path: ReadonlyArray<string>): Either.Either<string, ConfigError.ConfigError> => {
  const filename = sqliteFilename(url)
  return filename === undefined
    ? Either.left(ConfigError.InvalidData([...path], "Expected a SQLite URL (sqlite:<file>, sqlite::memory: or file:///<path>)"))
    : Either.right(filename)
}

/**
 * A PostgreSQL URL (`postgres:` or `postgresql:`), or a `ConfigError` (at `path`). The rest
 * is for the driver to read (it accepts more than `new URL` does: spaces, a socket directory).
 *
 * @internal
 */
export const checkPostgresUrl = (url: string, path: ReadonlyArray<string>): Either.Either<string, ConfigError.ConfigError> => {
  const parsed = schemeOf(url)
  if (parsed === undefined || (parsed.scheme !== "postgres" && parsed.scheme !== "postgresql")) {
    return Either.left(ConfigError.InvalidData([...path], "Expected a PostgreSQL URL (postgres://user:password@host:port/database)"))
  }
  return Either.right(url)
}
