// Placement dry run: where a request would go, drawn: score bars per node by part, and what filtered the rest.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { api, describeError } from "../api.ts";
import { href } from "../parts.ts";

interface Plan {
  workload?: string;
  requested: number;
  placements: { node: string; replica: number; score: number; pinned: boolean }[];
  complete: boolean;
  reason?: string;
  candidates: { node: string; score: number; parts: Record<string, { value: number; points: number }> }[];
  considered: number;
  feasible: number;
  filtered: { filter: string; detail: string; count: number; text: string; examples: string[] }[];
  summary: string;
  weights: Record<string, number>;
  strategy: string;
}

const PARTS = ["resources", "latency", "capabilities", "level", "availability", "cost"];

const EXAMPLE = JSON.stringify(
  { name: "dry-run", replicas: 2, resources: { cpu_millis: 100, mem_mb: 64 }, placement: { levels: [1, 5] } },
  null,
  2,
);

function Funnel({ plan }: { plan: Plan }) {
  const placed = plan.placements.length;
  const steps: [string, number][] = [
    ["considered", plan.considered],
    ["passed every filter", plan.feasible],
    ["placed", placed],
  ];
  const max = Math.max(1, plan.considered);
  return html`<ol class="funnel" aria-label="Nodes at each step">
    ${steps.map(
      ([label, n]) => html`<li>
        <span class="bar-label">${n} ${label}</span>
        <span class="bar" style=${`width:${(100 * n) / max}%`}></span>
      </li>`,
    )}
  </ol>`;
}

function ScoreBars({ plan }: { plan: Plan }) {
  const placedOn = new Set(plan.placements.map((p) => p.node));
  return html`<figure class="scores">
    <figcaption>Score of each candidate (0–100), by part; weights: ${PARTS.map((p) => `${p} ${Math.round(plan.weights[p] ?? 0)}`).join(", ")}</figcaption>
    <ul class="legend" aria-hidden="true">
      ${PARTS.map((p) => html`<li><span class="swatch" data-part=${p}></span>${p}</li>`)}
    </ul>
    <ol class="score-bars">
      ${plan.candidates.map(
        (c) => html`<li data-candidate=${c.node}>
          <span class="bar-label"><a href=${href.node(c.node)}>${c.node}</a> ${placedOn.has(c.node) ? html`<strong>placed</strong>` : ""}</span>
          <span class="stack" role="img"
            aria-label=${`${c.node}: ${c.score.toFixed(1)} of 100 (${PARTS.map((p) => `${p} ${(c.parts[p]?.points ?? 0).toFixed(1)}`).join(", ")})`}>
            ${PARTS.map((p) => html`<span class="seg" data-part=${p} style=${`width:${c.parts[p]?.points ?? 0}%`} title=${`${p}: ${(c.parts[p]?.points ?? 0).toFixed(1)} points (value ${(c.parts[p]?.value ?? 0).toFixed(2)})`}></span>`)}
          </span>
          <span class="score">${c.score.toFixed(1)}</span>
        </li>`,
      )}
    </ol>
  </figure>`;
}

function Filtered({ plan }: { plan: Plan }) {
  if (plan.filtered.length === 0) return html`<p>No node was filtered out.</p>`;
  const max = Math.max(1, plan.considered);
  return html`<figure class="filters">
    <figcaption>Why the other nodes were left out (each node counted once, under the first filter that removed it)</figcaption>
    <ol class="filter-bars">
      ${plan.filtered.map(
        (f) => html`<li data-filter=${f.filter}>
          <span class="bar-label">${f.filter}${f.detail ? `: ${f.detail}` : ""}</span>
          <span class="bar filtered" role="img" aria-label=${f.text} style=${`width:${(100 * f.count) / max}%`}></span>
          <span class="score">${f.count}</span>
          <span class="muted">${f.text}${f.examples.length ? ` — e.g. ${f.examples.join(", ")}` : ""}</span>
        </li>`,
      )}
    </ol>
  </figure>`;
}

export function PlacementPage() {
  const [text, setText] = useState(EXAMPLE);
  const [plan, setPlan] = useState<Plan | null>(null);
  const [error, setError] = useState("");
  const run = async (e: Event) => {
    e.preventDefault();
    setError("");
    try {
      setPlan(await api<Plan>("/api/v1/placement/plan", { method: "POST", body: text }));
    } catch (err) {
      setPlan(null);
      setError(describeError(err));
    }
  };
  return html`<h1 tabindex="-1">Placement dry run</h1>
    <form onSubmit=${run}>
      <label for="plan-json">Placement request (JSON: name, replicas, resources, nodes, placement)</label>
      <textarea id="plan-json" rows="10" spellcheck="false" value=${text}
        onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea>
      <button type="submit">Dry run</button>
      <p class="hint">Nothing is placed: the hub answers where the replicas would go, and why not elsewhere.</p>
    </form>
    ${error ? html`<p class="error" role="alert">${error}</p>` : ""}
    ${
      plan
        ? html`<section class="plan" aria-labelledby="plan-h" data-complete=${plan.complete}>
          <h2 id="plan-h">${plan.complete ? "Every replica placed" : "Not every replica placed"}: ${plan.placements.length} of ${plan.requested}</h2>
          ${plan.reason ? html`<p class="error">${plan.reason}</p>` : ""}
          <p>${plan.summary} (strategy ${plan.strategy})</p>
          <${Funnel} plan=${plan} />
          <${ScoreBars} plan=${plan} />
          <${Filtered} plan=${plan} />
        </section>`
        : ""
    }`;
}
