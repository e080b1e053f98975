/**
 * Lazy, load-once access to the word lists shipped by `@zxcvbn-ts/language-common`
 * (49k common passwords from breach corpora) and `@zxcvbn-ts/language-en` (English words,
 * Wikipedia words, first names and last names).
 *
 * The packages are CommonJS; they are `require`d synchronously on first use so that
 * importing `Password` costs nothing and a check stays a plain synchronous function.
 *
 * @internal
 */
import { createRequire } from "node:module"
import type * as Common from "@zxcvbn-ts/language-common"
import type * as English from "@zxcvbn-ts/language-en"
import { fold } from "./normalize.js"

const requireCjs = createRequire(import.meta.url)

const toSet = (lists: ReadonlyArray<ReadonlyArray<string>>): Set<string> => {
  const set = new Set<string>()
  for (const list of lists) {
    for (const entry of list) {
      const folded = fold(entry)
      if (folded.length > 0) set.add(folded)
    }
  }
  return set
}

/**
 * Builds the common-password set (uncached; used by the lazy getter and the bench).
 *
 * @internal
 */
export const buildCompromised = (): Set<string> => {
  const common = requireCjs("@zxcvbn-ts/language-common") as typeof Common
  return toSet([common.dictionary.passwords])
}

/**
 * Builds the English word/name set (uncached).
 *
 * @internal
 */
export const buildDictionary = (): Set<string> => {
  const en = requireCjs("@zxcvbn-ts/language-en") as typeof English
  const d = en.dictionary
  return toSet([d.commonWords, d.wikipedia, d.firstnames, d.lastnames])
}

let compromised: Set<string> | undefined
let dictionary: Set<string> | undefined

/**
 * The common-password set, loaded on first call and kept for the life of the process.
 *
 * @internal
 */
export const compromisedSet = (): ReadonlySet<string> => (compromised ??= buildCompromised())

/**
 * The dictionary set, loaded on first call and kept for the life of the process.
 *
 * @internal
 */
export const dictionarySet = (): ReadonlySet<string> => (dictionary ??= buildDictionary())

/**
 * Whether both lists are already in memory.
 *
 * @internal
 */
export const isLoaded = (): boolean => compromised !== undefined && dictionary !== undefined

/**
 * Loads both lists now (idempotent).
 *
 * @internal
 */
export const loadAll = (): void => {
  compromisedSet()
  dictionarySet()
}
