/**
 * The detectors behind `Password.checkPassword`. Each takes the folded (NFKC, lower-cased)
 * password, or its candidate cores, and answers one question.
 *
 * @internal
 */
import { compromisedSet, dictionarySet } from "./lists.js"
import { codePointLength, cores, fold } from "./normalize.js"
import { isRepetition, isRun } from "./sequences.js"

/** @internal */
export const TRAILING_RUN_MAX = 4
/** @internal */
export const SEQUENCE_MIN_LENGTH = 4
/** @internal */
export const REPETITION_MAX_BLOCK = 4
/** @internal */
export const REPETITION_MIN_LENGTH = 3
/** @internal */
export const CONTEXT_SUBSTRING_MIN_LENGTH = 4

/**
 * A folded password prepared once for all detectors.
 *
 * @internal
 */
export interface Prepared {
  /** NFKC form (what is counted and what the caller should hash) */
  readonly normalized: string
  /** NFKC, lower-cased */
  readonly folded: string
  /** code points of the NFKC form */
  readonly length: number
  /** folded, then folded without a trailing digit/symbol run of 1..4, longest first */
  readonly cores: ReadonlyArray<string>
}

/** @internal */
export const prepare = (password: string): Prepared => {
  const normalized = password.normalize("NFKC")
  const folded = normalized.toLowerCase()
  return {
    normalized,
    folded,
    length: codePointLength(normalized),
    cores: cores(folded, TRAILING_RUN_MAX)
  }
}

/**
 * The context an application knows about the account, as raw strings.
 *
 * @internal
 */
export interface RawContext {
  readonly userName?: string | undefined
  readonly email?: string | undefined
  readonly names?: ReadonlyArray<string> | undefined
  readonly serviceName?: string | undefined
  readonly words?: ReadonlyArray<string> | undefined
}

const SEPARATORS = /[\s._+\-@,;:/\\|]+/u

/**
 * Folded context words: each value whole, and its pieces split on spaces and punctuation
 * (`"Jane Doe"` gives `jane doe`, `jane`, `doe`); for the email, the whole address, its
 * local part, and the local part's pieces.
 *
 * @internal
 */
export const contextWords = (context: RawContext): ReadonlyArray<string> => {
  const out = new Set<string>()
  const add = (raw: string | undefined): void => {
    if (raw === undefined) return
    const f = fold(raw).trim()
    if (f.length === 0) return
    out.add(f)
    for (const piece of f.split(SEPARATORS)) {
      if (piece.length > 0) out.add(piece)
    }
  }
  add(context.userName)
  for (const n of context.names ?? []) add(n)
  if (context.email !== undefined) {
    const f = fold(context.email).trim()
    if (f.length > 0) out.add(f)
    const at = f.lastIndexOf("@")
    if (at > 0) add(f.slice(0, at))
  }
  add(context.serviceName)
  for (const w of context.words ?? []) add(w)
  return Array.from(out)
}

/**
 * The context words found in the password: a word of at least 4 code points anywhere in it,
 * a shorter word only as the whole password. A match contained in a longer match is dropped.
 *
 * @internal
 */
export const findContextWords = (p: Prepared, words: ReadonlyArray<string>): ReadonlyArray<string> => {
  const hits = words.filter((w) =>
    codePointLength(w) >= CONTEXT_SUBSTRING_MIN_LENGTH ? p.folded.includes(w) : p.folded === w
  )
  return hits.filter((w) => !hits.some((o) => o !== w && o.includes(w)))
}

/**
 * Exact, case-insensitive membership in the common-password list.
 *
 * @internal
 */
export const isCommon = (folded: string): boolean => compromisedSet().has(folded)

/**
 * The dictionary word the password is made of (whole, or before a trailing run), if any.
 *
 * @internal
 */
export const findDictionaryWord = (p: Prepared): string | undefined => {
  const dict = dictionarySet()
  for (const core of p.cores) {
    if (core.length > 0 && dict.has(core)) return core
  }
  return undefined
}

/** @internal */
export const isRepetitive = (p: Prepared): boolean =>
  p.cores.some((core) => isRepetition(core, REPETITION_MAX_BLOCK, REPETITION_MIN_LENGTH))

/** @internal */
export const isSequential = (p: Prepared): boolean =>
  p.cores.some((core) => codePointLength(core) >= SEQUENCE_MIN_LENGTH && isRun(core))
