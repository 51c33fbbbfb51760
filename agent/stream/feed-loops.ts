// Finds pipelines whose emitted points would flow back into themselves, directly or through others.
//
// A pipeline's emitted names are known from its config (derive series, window emit_as + fn), as
// exact names or, under a glob source with {series}, as prefix globs; an edge P → Q exists when one
// of P's names could match Q's source. Conservative: a possible match counts as one.
import { ConfigError } from "../../shared/errors.ts";
import type { PipelineSpec } from "./config.ts";
import { patternsOverlap, type SourcePattern, templateOutputs } from "./series-name.ts";

/** The names (as patterns) a pipeline can emit as points, with the field that makes each. */
function outputPatterns(p: PipelineSpec, index: number): { pattern: SourcePattern; field: string }[] {
  if (!p.route.hub) return [];
  const out: { pattern: SourcePattern; field: string }[] = [];
  let flowing = p.source;
  let lastDerive: { pattern: SourcePattern; field: string } | undefined;
  p.steps.forEach((s, i) => {
    const field = `pipelines.${index}.steps.${i}`;
    if (s.kind === "derive") {
      flowing = templateOutputs(s.series, flowing);
      lastDerive = { pattern: flowing, field: `${field}.derive.series` };
    } else if (s.kind === "window") {
      for (const fn of s.fns) {
        out.push({ pattern: templateOutputs(s.emitAs, flowing, `.${fn}`), field: `${field}.window.emit_as` });
      }
    }
  });
  if (lastDerive) out.push(lastDerive);
  return out;
}

/** Refuses configs where a pipeline's outputs would flow back into itself, directly or through others. */
export function checkNoFeedLoops(specs: PipelineSpec[]): void {
  const outs = specs.map((p, i) => outputPatterns(p, i));
  const edges = specs.map((_, i) =>
    specs.flatMap((q, j) => {
      const hit = outs[i]!.find((o) => patternsOverlap(o.pattern, q.source));
      return hit ? [{ to: j, field: hit.field, output: hit.pattern.text }] : [];
    }),
  );
  const state = new Array<number>(specs.length).fill(0);
  const visit = (i: number, path: number[]): void => {
    state[i] = 1;
    for (const e of edges[i]!) {
      if (state[e.to] === 1) {
        const source = specs[e.to]!.source.text;
        const why =
          e.to === i
            ? `output "${e.output}" matches this pipeline's own source "${source}"; a pipeline may not feed itself`
            : `output "${e.output}" matches the source "${source}" of pipeline "${specs[e.to]!.name}" (${[
                ...path.slice(path.indexOf(e.to)),
                i,
                e.to,
              ]
                .map((k) => `"${specs[k]!.name}"`)
                .join(" → ")}); pipelines may not feed each other in a loop`;
        throw new ConfigError(e.field, `pipeline "${specs[i]!.name}": ${why}`);
      }
      if (state[e.to] === 0) visit(e.to, [...path, i]);
    }
    state[i] = 2;
  };
  for (let i = 0; i < specs.length; i++) if (state[i] === 0) visit(i, []);
}
