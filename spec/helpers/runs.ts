/**
 * How many cases a property runs. Under the mutation run (`MUTATION=1`, set by
 * vitest.mutation.config.ts) every property is cut to {@link MUTATION_RUNS} cases, because each
 * mutant re-runs every test that covers it; `npm test` runs the numbers the specs give.
 */

/** The cap on a property's cases under mutation. */
export const MUTATION_RUNS = 25

/** True inside a mutation run (vitest.mutation.config.ts sets `MUTATION=1`). */
export const underMutation = process.env.MUTATION === "1"

/** `n` cases, or at most {@link MUTATION_RUNS} under mutation. */
export const numRuns = (n: number): number => (underMutation ? Math.min(n, MUTATION_RUNS) : n)
