/**
 * Sequences a password must not merely follow: the alphabet, the digits, and the keyboard
 * rows of the QWERTY (US), QWERTZ (German) and AZERTY (French) layouts, unshifted and
 * shifted, forwards and backwards.
 *
 * @internal
 */
import { fold } from "./normalize.js"

/**
 * Every row, as typed left to right. Shifted letter rows fold to the unshifted ones, which
 * is harmless (duplicates are removed).
 *
 * @internal
 */
export const ROWS: ReadonlyArray<string> = [
  // ordered runs
  "abcdefghijklmnopqrstuvwxyz",
  "0123456789",
  // QWERTY (US)
  "`1234567890-=",
  "~!@#$%^&*()_+",
  "qwertyuiop[]\\",
  "QWERTYUIOP{}|",
  "asdfghjkl;'",
  "ASDFGHJKL:\"",
  "zxcvbnm,./",
  "ZXCVBNM<>?",
  // QWERTZ (German)
  "^1234567890\u00df\u00b4",
  "\u00b0!\"\u00a7$%&/()=?`",
  "qwertzuiop\u00fc+",
  "QWERTZUIOP\u00dc*",
  "asdfghjkl\u00f6\u00e4#",
  "ASDFGHJKL\u00d6\u00c4'",
  "<yxcvbnm,.-",
  ">YXCVBNM;:_",
  // AZERTY (French)
  "\u00b2&\u00e9\"'(-\u00e8_\u00e7\u00e0)=",
  "1234567890\u00b0+",
  "azertyuiop^$",
  "AZERTYUIOP\u00a8\u00a3",
  "qsdfghjklm\u00f9*",
  "QSDFGHJKLM%\u00b5",
  "<wxcvbn,;:!",
  ">WXCVBN?./\u00a7"
]

const reverse = (s: string): string => Array.from(s).reverse().join("")

/**
 * The folded rows and their reverses, without duplicates.
 *
 * @internal
 */
const FOLDED: ReadonlyArray<string> = Array.from(
  new Set(ROWS.flatMap((row) => {
    const f = fold(row)
    return [f, reverse(f)]
  }))
)

const LONGEST = Math.max(...FOLDED.map((r) => r.length))

/**
 * Whether `core` (already folded) is a contiguous stretch of one row, forwards or backwards.
 * The caller enforces the minimum length.
 *
 * @internal
 */
export const isRun = (core: string): boolean => {
  if (core.length > LONGEST) return false
  for (const row of FOLDED) {
    if (row.includes(core)) return true
  }
  return false
}

/**
 * Whether `core` (already folded) is a block of 1..maxBlock code points repeated to fill it
 * (the last repetition may be partial), with at least two full repetitions.
 *
 * @internal
 */
export const isRepetition = (core: string, maxBlock: number, minLength: number): boolean => {
  const cps = Array.from(core)
  const n = cps.length
  if (n < minLength) return false
  for (let k = 1; k <= maxBlock && 2 * k <= n; k++) {
    let repeats = true
    for (let i = k; i < n; i++) {
      if (cps[i] !== cps[i - k]) {
        repeats = false
        break
      }
    }
    if (repeats) return true
  }
  return false
}
