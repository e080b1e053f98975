/**
 * The strict reading of the session cookie out of a raw `Cookie` header (src/internal/cookieHeader.ts),
 * on its own: written for the mutation run, which judges the core by its unit specs.
 */
import { describe, it } from "@effect/vitest"
import { deepStrictEqual } from "@effect/vitest/utils"
import { MAX_COOKIE_HEADER, readCookie } from "../src/internal/cookieHeader.js"

describe("cookieHeader.readCookie", () => {
  it("no header, an empty one, or one without the name is Absent", () => {
    deepStrictEqual(readCookie(undefined, "id"), { _tag: "Absent" })
    deepStrictEqual(readCookie("", "id"), { _tag: "Absent" })
    deepStrictEqual(readCookie("other=1; idx=2; xid=3", "id"), { _tag: "Absent" })
    // a part without "=" is skipped, not read as the name
    deepStrictEqual(readCookie("id", "id"), { _tag: "Absent" })
    deepStrictEqual(readCookie("id; a=b", "id"), { _tag: "Absent" })
    // nor is its text cut short to look like the name ("idx" is not "id" + "=")
    deepStrictEqual(readCookie("idx", "id"), { _tag: "Absent" })
    deepStrictEqual(readCookie("a=1; idx", "id"), { _tag: "Absent" })
  })

  it("the one cookie of that name is Present, trimmed, its value kept whole after the first '='", () => {
    deepStrictEqual(readCookie("id=abc", "id"), { _tag: "Present", value: "abc" })
    deepStrictEqual(readCookie("a=1;  id = abc ; b=2", "id"), { _tag: "Present", value: "abc" })
    deepStrictEqual(readCookie("id=a=b", "id"), { _tag: "Present", value: "a=b" })
    deepStrictEqual(readCookie("id=", "id"), { _tag: "Present", value: "" })
  })

  it("a name sent twice is Rejected as duplicated, even with equal values", () => {
    deepStrictEqual(readCookie("id=a; id=b", "id"), { _tag: "Rejected", reason: "duplicated" })
    deepStrictEqual(readCookie("id=a; x=1; id=a", "id"), { _tag: "Rejected", reason: "duplicated" })
  })

  it("a header of MAX_COOKIE_HEADER characters is read; one character more is Rejected as oversized", () => {
    const at = (length: number) => `id=v; p=${"x".repeat(length - "id=v; p=".length)}`
    deepStrictEqual(at(MAX_COOKIE_HEADER).length, MAX_COOKIE_HEADER)
    deepStrictEqual(readCookie(at(MAX_COOKIE_HEADER), "id"), { _tag: "Present", value: "v" })
    deepStrictEqual(readCookie(at(MAX_COOKIE_HEADER + 1), "id"), { _tag: "Rejected", reason: "oversized" })
  })
})
