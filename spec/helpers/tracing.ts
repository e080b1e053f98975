/**
 * Spans for tests: the tracer in context wrapped so that every span made while an effect runs is
 * kept, for assertions on names and attributes.
 */
import { Effect, Tracer } from "effect"

/** Runs `effect` with the tracer in context wrapped so that every span it makes is pushed to `into`. */
export const recordingSpans = <A, E, R>(into: Array<Tracer.Span>, effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.tracer, (base) =>
    Effect.withTracer(
      effect,
      Tracer.make({
        span: (name, parent, context, links, startTime, kind, options) => {
          const span = base.span(name, parent, context, links, startTime, kind, options)
          into.push(span)
          return span
        },
        context: (f, fiber) => base.context(f, fiber)
      })
    ))
