/**
 * Setup file of the mutation run only (vitest.mutation.config.ts): fast-check's default number of
 * cases cut to the mutation cap, with a fixed seed so that two runs judge a mutant alike. Properties
 * that set their own count use `numRuns` from spec/helpers/runs.ts.
 */
import { FastCheck as fc } from "effect"
import { MUTATION_RUNS } from "./runs.js"

fc.configureGlobal({ ...fc.readConfigureGlobal(), numRuns: MUTATION_RUNS, seed: 20261201 })
