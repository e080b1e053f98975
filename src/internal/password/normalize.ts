/**
 * Unicode normalisation shared by every password rule.
 *
 * @internal
 */

/**
 * The comparison form: NFKC (NIST SP 800-63B-4 §3.1.1.2), then lower-cased. Every list
 * entry, keyboard row and context word goes through this same function, so both sides of a
 * comparison agree.
 *
 * @internal
 */
export const fold = (s: string): string => s.normalize("NFKC").toLowerCase()

/**
 * Number of Unicode code points (each code point is one character, §3.1.1.2).
 *
 * @internal
 */
export const codePointLength = (s: string): number => {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    // a high surrogate followed by a low surrogate is one code point
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) i++
    }
    n++
  }
  return n
}

/**
 * A character that may sit in the trailing "decoration" run (`Password1!`): a digit, a
 * punctuation mark or a symbol.
 *
 * @internal
 */
const TRAILING = /^[\p{N}\p{P}\p{S}]$/u

/**
 * The candidate "cores" of a folded password: the whole string, then the string without its
 * last 1..maxTrailing code points while those are all digits/punctuation/symbols. Longest
 * first. (A leading capital needs no stripping: the input is already lower-cased.)
 *
 * @internal
 */
export const cores = (folded: string, maxTrailing: number): Array<string> => {
  const cps = Array.from(folded)
  const out: Array<string> = [folded]
  let end = cps.length
  for (let k = 1; k <= maxTrailing && end > 0; k++) {
    const c = cps[end - 1]
    if (c === undefined || !TRAILING.test(c)) break
    end--
    out.push(cps.slice(0, end).join(""))
  }
  return out
}
