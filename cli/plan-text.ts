// A placement plan as text: where each replica goes, the ranked candidates with every score part, and
// how many nodes each filter removed and why.
import type { Plan } from "./api-types.ts";
import { table } from "./render.ts";

const PARTS = ["resources", "latency", "capabilities", "level", "availability", "cost"] as const;

/** The explanation of one plan, for people. */
export function planText(plan: Plan): string {
  const out: string[] = [];
  const placed = plan.placements.length;
  out.push(
    `Placement: ${placed} of ${plan.requested} replica${plan.requested === 1 ? "" : "s"} placed ` +
      `(${plan.considered} node${plan.considered === 1 ? "" : "s"} considered, ${plan.feasible} feasible, ` +
      `strategy ${plan.strategy})`,
  );
  for (const p of plan.placements) {
    out.push(`  replica ${p.replica} -> ${p.node}  ${p.pinned ? "pinned" : `score ${p.score.toFixed(1)}`}`);
  }
  if (!plan.complete && plan.reason) out.push(`  not placed: ${plan.reason}`);
  if (plan.candidates.length > 0) {
    const weights = PARTS.map((k) => `${k} ${Math.round(plan.weights[k] ?? 0)}`).join(", ");
    out.push("", `Candidates (best first; points of each part, weights: ${weights}):`);
    out.push(
      indent(
        table(
          ["NODE", "SCORE", ...PARTS.map((p) => p.toUpperCase())],
          plan.candidates.map((c) => [
            c.node,
            c.score.toFixed(1),
            ...PARTS.map((k) => (c.parts[k] ? c.parts[k].points.toFixed(1) : "-")),
          ]),
        ),
      ),
    );
  }
  if (plan.filtered.length > 0) {
    out.push("", "Filtered out:");
    for (const f of plan.filtered) {
      const eg = f.examples.length > 0 ? ` (e.g. ${f.examples.join(", ")})` : "";
      out.push(`  ${f.text}${eg}`);
    }
  }
  return out.join("\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}
