#!/usr/bin/env node
/**
 * Per-file mutation score and the surviving mutants of a Stryker JSON report
 * (default reports/mutation/mutation.json): `node scripts/mutation-survivors.mjs [report.json …]`.
 * Score = (killed + timeouts) / (killed + timeouts + survived + no coverage), as Stryker counts it;
 * ignored (static) mutants and errors are left out. See spec/MUTATION.md.
 */
import { readFileSync } from "node:fs"

const reports = process.argv.slice(2)
if (reports.length === 0) reports.push("reports/mutation/mutation.json")

for (const report of reports) {
  const { files } = JSON.parse(readFileSync(report, "utf8"))
  for (const [file, { mutants, source }] of Object.entries(files)) {
    const count = (status) => mutants.filter((m) => m.status === status).length
    const killed = count("Killed")
    const timeouts = count("Timeout")
    const survived = count("Survived")
    const noCoverage = count("NoCoverage")
    const valid = killed + timeouts + survived + noCoverage
    const score = valid === 0 ? 100 : (100 * (killed + timeouts)) / valid
    console.log(
      `${file}: ${score.toFixed(2)} % — ${mutants.length} mutants (${valid} valid): ${killed} killed, ` +
        `${timeouts} timeouts, ${survived} survived, ${noCoverage} no coverage, ${count("Ignored")} ignored`
    )
    const lines = source.split("\n")
    const left = mutants
      .filter((m) => m.status === "Survived" || m.status === "NoCoverage")
      .sort((a, b) => a.location.start.line - b.location.start.line || a.location.start.column - b.location.start.column)
    for (const m of left) {
      const { start, end } = m.location
      const original =
        start.line === end.line
          ? lines[start.line - 1].slice(start.column - 1, end.column - 1)
          : `${lines[start.line - 1].slice(start.column - 1)} …`
      const cut = (s) => (s.length > 90 ? `${s.slice(0, 87)}…` : s).replace(/\s+/g, " ")
      console.log(
        `  ${m.status === "NoCoverage" ? "NOCOV" : "SURV "} :${start.line}:${start.column} ${m.mutatorName}: ` +
          `${cut(original)}  →  ${cut(m.replacement ?? "")}`
      )
    }
  }
}
