/**
 * The chart of a bench run: requests per second of every HTTP server and store, one group per
 * scenario, with the updates each server lost marked on its bar. A pure function of the results
 * file, so that `bench/run.ts` writes `latest.svg` beside `latest.json` and a spec can check it.
 */
import type { Results, Row } from "./report.js"

const MIN_WIDTH = 860
const MIN_LABEL_WIDTH = 270
/** About the width of a character of the 12px sans-serif labels, for sizing the columns to the text. */
const CHAR_WIDTH = 6.6
const BAR_AREA = 440
const BAR_HEIGHT = 18
const ROW_GAP = 8
const GROUP_GAP = 26
const TOP = 64

const escape = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

const integer = (n: number): string => Math.round(n).toLocaleString("en-US")

/** The colour of a bar: ours, the bare servers we are measured against, the other libraries. */
const colour = (name: string): string =>
  name.includes("effect-sessions") ? "#2f6fba" : name.includes("no sessions") ? "#9aa3ad" : "#d08a2c"

/** The share of a hot-session bar that stands for lost updates (0 when none were lost or not counted). */
export const lostShare = (row: Row): number =>
  row.lost !== undefined && row.answered !== undefined && row.answered > 0 && row.lost > 0
    ? Math.min(1, row.lost / row.answered)
    : 0

/** What the label right of a bar says. */
const valueText = (row: Row): string => {
  if (row.failed !== undefined) return `failed: ${row.failed}`
  if (row.skipped !== undefined) return `skipped: ${row.skipped}`
  const base = `${integer(row.value ?? 0)} req/s`
  const share = lostShare(row)
  if (share === 0) return row.lost === 0 && !row.name.includes("no sessions") ? `${base}, no update lost` : base
  return `${base}, lost ${integer(row.lost ?? 0)} of ${integer(row.answered ?? 0)} updates (${Math.round(share * 100)} %)`
}

/**
 * The SVG chart of the HTTP rows of `results`: bar length is req/s on one scale for the whole
 * chart (the raw `node:http` rows, far above it, are drawn broken at its end); on a bar whose server lost updates, the lost share of the answered increments is drawn
 * hatched in red, and the label says how many.
 */
export const chart = (results: Results): string => {
  const rows = results.rows.filter((r) => r.part === "http")
  const scenarios = [...new Set(rows.map((r) => r.scenario))]
  const measuredRows = rows.filter((r) => r.failed === undefined && r.skipped === undefined)
  // The raw node:http baseline is an order of magnitude above every framework: scale to the
  // others and draw its bar broken, so that the bars being compared stay readable.
  const scaled = measuredRows.filter((r) => !r.name.startsWith("(d)"))
  const max = Math.max(1, ...(scaled.length > 0 ? scaled : measuredRows).map((r) => r.value ?? 0))
  // The label column fits the longest server name; the chart, the longest bar with its value text.
  const LABEL_WIDTH = Math.max(MIN_LABEL_WIDTH, Math.ceil(Math.max(0, ...rows.map((r) => r.name.length)) * CHAR_WIDTH) + 16)
  let right = LABEL_WIDTH + BAR_AREA + 20
  const parts: Array<string> = []
  let y = TOP
  for (const scenario of scenarios) {
    parts.push(`<text x="12" y="${y}" class="group">${escape(scenario)}</text>`)
    y += 10
    for (const row of rows.filter((r) => r.scenario === scenario)) {
      const measured = row.failed === undefined && row.skipped === undefined
      const clipped = measured && (row.value ?? 0) > max
      const length = !measured ? 0 : clipped ? BAR_AREA + 20 : Math.max(1, ((row.value ?? 0) / max) * BAR_AREA)
      const share = lostShare(row)
      parts.push(`<text x="${LABEL_WIDTH - 8}" y="${y + 13}" class="label" text-anchor="end">${escape(row.name)}</text>`)
      if (measured) {
        parts.push(
          `<rect class="bar" x="${LABEL_WIDTH}" y="${y}" width="${length.toFixed(1)}" height="${BAR_HEIGHT}" fill="${colour(row.name)}"/>`
        )
      }
      if (clipped) {
        const x = LABEL_WIDTH + BAR_AREA
        parts.push(`<path class="break" d="M${x} ${y - 2} l6 ${BAR_HEIGHT + 4} M${x + 6} ${y - 2} l6 ${BAR_HEIGHT + 4}" stroke="#fff" stroke-width="3"/>`)
      }
      if (share > 0) {
        const lost = length * share
        parts.push(
          `<rect class="lost" x="${(LABEL_WIDTH + length - lost).toFixed(1)}" y="${y}" width="${lost.toFixed(1)}" height="${BAR_HEIGHT}" fill="url(#lost)"/>`
        )
      }
      parts.push(`<text x="${LABEL_WIDTH + length + 6}" y="${y + 13}" class="value">${escape(valueText(row))}</text>`)
      right = Math.max(right, LABEL_WIDTH + length + 6 + Math.ceil(valueText(row).length * CHAR_WIDTH))
      y += BAR_HEIGHT + ROW_GAP
    }
    y += GROUP_GAP - ROW_GAP
  }
  const m = results.machine
  const title = `HTTP requests per second, ${results.mode} run of ${m.date.slice(0, 10)}`
  const subtitle = `${m.cpu}, ${m.cores} cores, Node ${m.node}; ${results.settings["connections"] ?? "?"} connections; \`${results.command}\``
  const height = y + 24
  const WIDTH = Math.max(MIN_WIDTH, Math.ceil(right + 12))
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    `<defs><pattern id="lost" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f3c3c3"/><line x1="0" y1="0" x2="0" y2="6" stroke="#c0392b" stroke-width="3"/></pattern></defs>`,
    `<style>.group{font-size:14px;font-weight:bold}.label{font-size:12px}.value{font-size:12px;fill:#333}.title{font-size:16px;font-weight:bold}.note{font-size:11px;fill:#555}</style>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="22" class="title">${escape(title)}</text>`,
    `<text x="12" y="40" class="note">${escape(subtitle)}</text>`,
    ...parts,
    `<text x="12" y="${height - 8}" class="note">red hatching: the share of the answered increments of the hot session that another request overwrote (lost updates)</text>`,
    `</svg>`,
    ""
  ].join("\n")
}
