// Node detail: liveness with its history and reasons, charts of any series over a range, allocations, decisions, alerts.
import { html } from "htm/preact";
import { useMemo, useState } from "preact/hooks";
import { api, describeError } from "../api.ts";
import { Chart, type SeriesData } from "../chart.ts";
import { throttle, useLive } from "../live.ts";
import { Age, Badge, ErrorLine, href, Table, useApi } from "../parts.ts";

interface NodeDetail {
  id: string;
  level: number;
  status: string;
  connected: boolean;
  labels: Record<string, string>;
  capabilities: string[];
  last_seen: number;
  first_seen: number;
  version: string;
  transport: string;
  ingest: Record<string, number>;
  counters: Record<string, number> | null;
}
interface Liveness {
  id: string;
  health: string;
  since: number;
  reason: string;
  last_seen: number;
}

const RANGES: [string, number][] = [
  ["15 minutes", 15 * 60_000],
  ["1 hour", 3_600_000],
  ["6 hours", 6 * 3_600_000],
  ["24 hours", 86_400_000],
  ["7 days", 7 * 86_400_000],
];

function Series({ id }: { id: string }) {
  const list = useApi<{ series: string[] }>(`/api/v1/nodes/${encodeURIComponent(id)}/series`);
  const [name, setName] = useState("");
  const [range, setRange] = useState(3_600_000);
  const [data, setData] = useState<{ error?: unknown; data?: SeriesData; at?: number }>({});
  const draw = async (e?: Event) => {
    e?.preventDefault();
    const series = name || list.data?.series[0];
    if (!series) return;
    setName(series);
    const to = Date.now();
    try {
      const q = new URLSearchParams({ series, from: String(to - range), to: String(to) });
      setData({
        data: await api<SeriesData>(`/api/v1/nodes/${encodeURIComponent(id)}/metrics?${q}`),
        at: to,
      });
    } catch (error) {
      setData({ error });
    }
  };
  return html`<section aria-labelledby="series-h">
    <h2 id="series-h">Charts</h2>
    <${ErrorLine} error=${list.error} />
    <form class="toolbar" onSubmit=${draw}>
      <label for="series-name">Series</label>
      <select id="series-name" value=${name} onChange=${(e: Event) => setName((e.target as HTMLSelectElement).value)}>
        ${(list.data?.series ?? []).map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      <label for="series-range">Range</label>
      <select id="series-range" value=${range} onChange=${(e: Event) => setRange(Number((e.target as HTMLSelectElement).value))}>
        ${RANGES.map(([l, ms]) => html`<option value=${ms}>last ${l}</option>`)}
      </select>
      <button type="submit" disabled=${!list.data?.series.length}>Draw</button>
    </form>
    ${list.data && list.data.series.length === 0 ? html`<p class="muted">This node has sent no series yet.</p>` : ""}
    <${ErrorLine} error=${data.error} />
    ${data.data ? html`<${Chart} name=${name} data=${data.data} />` : ""}
  </section>`;
}

export function NodePage({ id }: { id: string }) {
  const enc = encodeURIComponent(id);
  const [version, setVersion] = useState(0);
  const node = useApi<NodeDetail>(`/api/v1/nodes/${enc}`, version);
  const live = useApi<{ nodes: Liveness[] }>(`/api/v1/fleet/nodes?q=${enc}&limit=1000`, version);
  const history = useApi<{
    events: {
      id: number;
      at: number;
      kind: string;
      change: string | null;
      reason: string;
      evidence: string[];
      workload: string | null;
    }[];
  }>(`/api/v1/failover/events?node=${enc}&limit=50`, version);
  const allocs = useApi<{
    allocs: {
      id: string;
      workload: string;
      status: string;
      healthy: boolean | null;
      restarts: number;
      updated: number;
      message: string | null;
    }[];
  }>(`/api/v1/nodes/${enc}/allocs`, version);
  const decisions = useApi<{
    decisions: { id: number; at: number; rule: string; kind: string; action?: string; verdict?: string }[];
  }>(`/api/v1/nodes/${enc}/decisions`, version);
  const alerts = useApi<{ alerts: Record<string, unknown>[] }>(
    `/api/v1/alerts?node=${enc}&limit=50`,
    version,
  );
  const [action, setAction] = useState("");
  const [liveHealth, setLiveHealth] = useState<Liveness | null>(null);
  const refresh = useMemo(() => throttle(() => setVersion((v) => v + 1), 1000), []);
  useLive(
    ["node", "alloc", "failover", "alert"],
    (e) => {
      const d = e.data as Record<string, unknown>;
      if (e.event === "node" && d.id === id) {
        setLiveHealth({
          id,
          health: String(d.health),
          since: Number(d.at),
          reason: String(d.reason),
          last_seen: 0,
        });
        refresh();
      } else if (d.node === id) refresh();
    },
    [id],
  );
  const n = node.data;
  const l = liveHealth ?? live.data?.nodes.find((x) => x.id === id);
  const act = async (what: "drain" | "undrain") => {
    try {
      await api(`/api/v1/nodes/${enc}/${what}`, { method: "POST" });
      setAction(`${what} asked`);
      refresh();
    } catch (err) {
      setAction(describeError(err));
    }
  };
  return html`<h1 tabindex="-1">Node ${id}</h1>
    <p><a href=${href.overview}>← Fleet</a></p>
    <${ErrorLine} error=${node.error} />
    ${
      n
        ? html`<dl class="facts">
          <dt>Health</dt><dd data-field="health">${l ? html`<${Badge} value=${l.health} since=${l.since} />` : "unknown"}</dd>
          <dt>Why</dt><dd>${l?.reason || "—"}</dd>
          <dt>Status</dt><dd>${n.status} ${n.connected ? "(connected)" : "(not connected)"}</dd>
          <dt>Last heard</dt><dd><${Age} at=${Math.max(n.last_seen, l?.last_seen ?? 0)} /></dd>
          <dt>Tier</dt><dd>${n.level}</dd>
          <dt>Labels</dt><dd>${
            Object.entries(n.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(", ") || "—"
          }</dd>
          <dt>Capabilities</dt><dd>${n.capabilities.join(", ") || "—"}</dd>
          <dt>Agent</dt><dd>${n.version} over ${n.transport}</dd>
          <dt>First seen</dt><dd><${Age} at=${n.first_seen} /></dd>
          <dt>Samples stored</dt><dd>${n.ingest.samples} (${n.ingest.rolled_up} as rollups, ${n.ingest.gaps} gaps)</dd>
          <dt>Offline buffer</dt><dd>${
            n.counters
              ? `${n.counters.produced} produced, ${n.counters.dropped} dropped, ${n.counters.held} held, ${n.counters.lost} lost`
              : "not reported yet"
          }</dd>
        </dl>
        <div class="toolbar">
          <button type="button" onClick=${() => act(n.status === "draining" ? "undrain" : "drain")}>
            ${n.status === "draining" ? "Undrain" : "Drain"}
          </button>
          <span role="status">${action}</span>
        </div>`
        : html`<p class="muted">Loading…</p>`
    }
    <section aria-labelledby="hist-h">
      <h2 id="hist-h">Status history</h2>
      <${ErrorLine} error=${history.error} />
      <${Table}
        caption="Liveness changes and failover actions, newest first"
        head=${["When", "What", "Reason", "Evidence"]}
        empty="No change recorded."
        rows=${(history.data?.events ?? []).map(
          (e) => html`<tr>
            <td><${Age} at=${e.at} /></td>
            <td>${e.change ?? e.kind}${e.workload ? ` (${e.workload})` : ""}</td>
            <td>${e.reason}</td>
            <td>${e.evidence.join("; ")}</td>
          </tr>`,
        )}
      />
    </section>
    <${Series} id=${id} />
    <section aria-labelledby="allocs-h">
      <h2 id="allocs-h">Allocations</h2>
      <${Table}
        caption="Workload copies on this node"
        head=${["Allocation", "Workload", "Status", "Healthy", "Restarts", "Updated", "Message"]}
        empty="Nothing runs here."
        rows=${(allocs.data?.allocs ?? []).map(
          (a) => html`<tr>
            <td>${a.id}</td>
            <td><a href=${href.workload(a.workload)}>${a.workload}</a></td>
            <td><${Badge} value=${a.status} /></td>
            <td>${a.healthy === null ? "—" : a.healthy ? "yes" : "no"}</td>
            <td>${a.restarts}</td>
            <td><${Age} at=${a.updated} /></td>
            <td>${a.message ?? ""}</td>
          </tr>`,
        )}
      />
    </section>
    <section aria-labelledby="alerts-h">
      <h2 id="alerts-h">Alerts</h2>
      <${ErrorLine} error=${alerts.error} />
      <${Table}
        caption="Alerts about this node, newest first"
        head=${["When", "Severity", "State", "Message"]}
        empty="No alerts."
        rows=${(alerts.data?.alerts ?? []).map(
          (a) => html`<tr>
            <td><${Age} at=${Number(a.started_at ?? a.at)} /></td>
            <td>${String(a.severity ?? "")}</td>
            <td>${String(a.state ?? "")}</td>
            <td>${String(a.message ?? "")}</td>
          </tr>`,
        )}
      />
    </section>
    <section aria-labelledby="dec-h">
      <h2 id="dec-h">Offline decisions</h2>
      <${ErrorLine} error=${decisions.error} />
      <${Table}
        caption="What the node's own rules decided, newest first"
        head=${["When", "Rule", "Decision", "Hub's verdict"]}
        empty="No decisions."
        rows=${(decisions.data?.decisions ?? []).slice(0, 50).map(
          (d) => html`<tr>
            <td><${Age} at=${d.at} /></td>
            <td>${d.rule}</td>
            <td>${d.action ?? d.kind}</td>
            <td>${d.verdict ?? "—"}</td>
          </tr>`,
        )}
      />
    </section>`;
}
