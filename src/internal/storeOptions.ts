/**
 * Checks of the built-in stores' options, run when a store layer is built: a bad option is a
 * `ConfigError` naming it (as a bad environment variable is), never a store error at first use.
 *
 * @internal
 */
import { Config, ConfigError, Duration, Effect, Either } from "effect"

/**
 * A duration option in milliseconds: finite and not negative (`positive`: above zero), or a
 * `ConfigError` naming the option.
 *
 * @internal
 */
export const durationMillis = (
  input: Duration.DurationInput,
  path: ReadonlyArray<string>,
  options: { readonly positive: boolean }
): Either.Either<number, ConfigError.ConfigError> => {
  const decoded = Duration.decodeUnknown(input)
  if (decoded._tag === "None") return Either.left(ConfigError.InvalidData([...path], "Expected a duration (e.g. \"5 seconds\" or milliseconds)"))
  const millis = Duration.toMillis(decoded.value)
  if (!Number.isFinite(millis) || millis < 0 || (options.positive && millis === 0)) {
    return Either.left(ConfigError.InvalidData([...path], `Expected a finite duration${options.positive ? " above zero" : ""}, got ${Duration.format(decoded.value)}`))
  }
  return Either.right(millis)
}


/** What a SQL table prefix may be: it is spliced into table, index and channel names. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * A SQL table prefix (letters, digits and `_`, not starting with a digit), or a `ConfigError`.
 *
 * @internal
 */
export const checkTablePrefix = (prefix: string, path: ReadonlyArray<string>): Either.Either<string, ConfigError.ConfigError> =>
  IDENTIFIER.test(prefix)
    ? Either.right(prefix)
    : Either.left(ConfigError.InvalidData([...path], `Expected a table prefix matching ${IDENTIFIER.source}, got ${JSON.stringify(prefix)}`))

/**
 * The options every SQL store checks before it opens a connection: a `ConfigError` for the first
 * invalid one (an absent option takes its valid default).
 *
 * @internal
 */
export const checkSqlOptions = (options: {
  readonly tablePrefix?: string | undefined
  readonly retention?: Duration.DurationInput | undefined
}): Effect.Effect<void, ConfigError.ConfigError> =>
  Effect.gen(function*() {
    if (options.tablePrefix !== undefined) yield* checkTablePrefix(options.tablePrefix, ["tablePrefix"])
    if (options.retention !== undefined) yield* durationMillis(options.retention, ["retention"], { positive: false })
  })

/**
 * The argument of a store's `layerConfig`: a `Config` of the whole options, or an object whose
 * fields are each a `Config` (as in `Config.Config.Wrap`) or a plain value.
 *
 * @internal
 */
export type ConfigOrValues<A> = Config.Config<A> | { readonly [K in keyof A]?: A[K] | Config.Config<A[K]> }

/**
 * Unwraps the argument of a store's `layerConfig`: where it names no `url`, the URL comes from
 * `url` (the store's environment variable, checked there so that its error names the variable).
 *
 * @internal
 */
export const unwrapWithUrl = <A extends { readonly url?: unknown }>(
  config: ConfigOrValues<A>,
  url: Config.Config<NonNullable<A["url"]>>
): Config.Config<A> => {
  if (Config.isConfig(config)) return config
  const fields: Record<string, Config.Config<unknown>> = { url }
  for (const [name, value] of Object.entries(config)) {
    if (value !== undefined) fields[name] = Config.isConfig(value) ? value : Config.succeed(value)
  }
  return Config.all(fields) as unknown as Config.Config<A>
}
