// Fleet overview: the tier → region → site tree with counts and health (aggregated by the hub), and a page of nodes.
import { html } from "htm/preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import type { FleetNode, FleetTree, HealthCounts } from "../../../fleet/index.ts";
import { throttle, useLive } from "../live.ts";
import { Age, Badge, ErrorLine, href, Table, useApi } from "../parts.ts";

// The shapes the hub answers with (GET /api/v1/fleet and /api/v1/fleet/nodes), erased when bundled.
type Tree = FleetTree;
type Row = FleetNode;
type Health = HealthCounts;
interface Filter {
  tier?: number;
  region?: string;
  site?: string;
  health?: string;
}

const ORDER = ["ready", "suspect", "disconnected", "lost"];
const PAGE = 100;

function Counts({ health, label }: { health: Health; label: string }) {
  const keys = Object.keys(health).sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b));
  return html`<span class="counts" aria-label=${`${label}: ${keys.map((k) => `${health[k]} ${k}`).join(", ")}`}>
    ${keys.map((k) => html`<span class="badge" data-health=${k}>${health[k]} ${k}</span>`)}
  </span>`;
}

function same(a: Filter, b: Filter) {
  return a.tier === b.tier && a.region === b.region && a.site === b.site && a.health === b.health;
}

/** A small fleet opens whole; a large one shows tiers and regions, and a region's sites once it is opened. */
const OPEN_SITES = 60;

function TreeView({ tree, filter, pick }: { tree: Tree; filter: Filter; pick: (f: Filter) => void }) {
  const sites = tree.tiers.reduce((n, t) => n + t.regions.reduce((m, r) => m + r.sites.length, 0), 0);
  const [opened, setOpened] = useState<Set<string>>(new Set());
  const item = (label: string, count: number, health: Health, f: Filter) =>
    html`<button type="button" class="tree-item" aria-pressed=${same(filter, f)} onClick=${() => pick(same(filter, f) ? {} : f)}>
        <span class="name">${label}</span> <span class="count">${count}</span>
      </button>
      <${Counts} health=${health} label=${label} />`;
  if (tree.tiers.length === 0)
    return html`<p class="muted">No node has joined yet: start an agent with this hub's join token.</p>`;
  const toggle = (key: string) => (e: Event) => {
    const open = (e.currentTarget as HTMLDetailsElement).open;
    setOpened((o) => {
      if (open === o.has(key)) return o;
      const next = new Set(o);
      if (open) next.add(key);
      else next.delete(key);
      return next;
    });
  };
  return html`<ul class="tree" aria-label="Fleet by tier, region and site">
    ${tree.tiers.map(
      (t) => html`<li>
        <details open>
          <summary>${item(`Tier ${t.tier} · ${t.name}`, t.count, t.health, { tier: t.tier })}</summary>
          <ul>
            ${t.regions.map((r) => {
              const key = `${t.tier}/${r.region}`;
              const open = sites <= OPEN_SITES || opened.has(key);
              return html`<li>
                <details open=${open} onToggle=${toggle(key)}>
                  <summary>${item(`region ${r.region}`, r.count, r.health, { tier: t.tier, region: r.region })}
                    <span class="muted"> ${r.sites.length} sites</span></summary>
                  ${
                    open
                      ? html`<ul>
                        ${r.sites
                          .slice(0, 200)
                          .map(
                            (s) =>
                              html`<li>${item(`site ${s.site}`, s.count, s.health, { tier: t.tier, region: r.region, site: s.site })}</li>`,
                          )}
                        ${r.sites.length > 200 ? html`<li class="muted">${r.sites.length - 200} more sites: filter by region</li>` : ""}
                      </ul>`
                      : ""
                  }
                </details>
              </li>`;
            })}
          </ul>
        </details>
      </li>`,
    )}
  </ul>`;
}

export function OverviewPage() {
  const [filter, setFilter] = useState<Filter>({});
  const [offset, setOffset] = useState(0);
  const [version, setVersion] = useState(0);
  const tree = useApi<Tree>("/api/v1/fleet", version);
  const query = useMemo(() => {
    const p = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) p.set(k, String(v));
    return `/api/v1/fleet/nodes?${p}`;
  }, [filter, offset]);
  const page = useApi<{ total: number; nodes: Row[] }>(query, version);
  const [rows, setRows] = useState<Row[]>([]);
  useEffect(() => setRows(page.data?.nodes ?? []), [page.data]);
  // A node's change shows at once in its row; counts follow within two seconds.
  const refresh = useMemo(() => throttle(() => setVersion((v) => v + 1), 2000), []);
  useLive(["node"], (e) => {
    const d = e.data as unknown as { id: string; health: string; status: string; at: number; reason: string };
    setRows((rs) =>
      rs.map((r) =>
        r.id === d.id ? { ...r, health: d.health, status: d.status, since: d.at, reason: d.reason } : r,
      ),
    );
    refresh();
  });
  const pick = (f: Filter) => {
    setFilter(f);
    setOffset(0);
  };
  const total = page.data?.total ?? 0;
  return html`<h1 tabindex="-1">Fleet</h1>
    <${ErrorLine} error=${tree.error ?? page.error} />
    ${
      tree.data
        ? html`<p class="summary">
          <strong>${tree.data.total}</strong> nodes <${Counts} health=${tree.data.health} label="Fleet" />
        </p>`
        : html`<p class="muted">Loading…</p>`
    }
    <div class="overview">
      <section aria-labelledby="tree-h" data-ready=${!!tree.data}>
        <h2 id="tree-h">Topology</h2>
        ${tree.data ? html`<${TreeView} tree=${tree.data} filter=${filter} pick=${pick} />` : ""}
      </section>
      <section aria-labelledby="nodes-h" data-ready=${!!page.data}>
        <h2 id="nodes-h">Nodes</h2>
        <div class="toolbar">
          <label for="health-filter">Health</label>
          <select id="health-filter" value=${filter.health ?? ""}
            onChange=${(e: Event) => pick({ ...filter, health: (e.target as HTMLSelectElement).value || undefined })}>
            <option value="">any</option>
            ${ORDER.map((h) => html`<option value=${h}>${h}</option>`)}
          </select>
          ${
            Object.keys(filter).some((k) => filter[k as keyof Filter] !== undefined)
              ? html`<button type="button" onClick=${() => pick({})}>Clear filter</button>`
              : ""
          }
          <span class="muted" aria-live="polite">${total ? `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}` : "no nodes"}</span>
          <button type="button" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>Previous</button>
          <button type="button" disabled=${offset + PAGE >= total} onClick=${() => setOffset(offset + PAGE)}>Next</button>
        </div>
        <${Table}
          caption="Nodes, worst health first"
          head=${["Node", "Tier", "Region", "Site", "Health", "Status", "Last heard", "Reason"]}
          empty=${page.loading ? "Loading…" : "No node matches."}
          rows=${rows.map(
            (n) => html`<tr data-node=${n.id}>
              <th scope="row"><a href=${href.node(n.id)}>${n.id}</a></th>
              <td data-tier=${n.tier}>${n.tier}</td>
              <td>${n.region}</td>
              <td>${n.site}</td>
              <td><${Badge} value=${n.health} since=${n.since} /></td>
              <td>${n.status}</td>
              <td><${Age} at=${n.last_seen} /></td>
              <td class="reason">${n.reason}</td>
            </tr>`,
          )}
        />
      </section>
    </div>`;
}
