// Reads the hub's /metrics (Prometheus text) into each node's newest values: one request for the fleet.

/** Newest value by node, then by metric name (`novacron_node_cpu_util`, `...disk_used_pct{mount="/"}` as `disk_used_pct/`). */
export type FleetValues = Map<string, Map<string, number>>;

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function labelsOf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(LABEL)) {
    out[m[1]!] = m[2]!.replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
  }
  return out;
}

/**
 * The `novacron_node_*` samples of a scrape, keyed by node and by the metric name without its prefix;
 * a `mount` label is kept as `name/mount` (`disk_used_pct/` for "/"). Lines it cannot read are skipped.
 */
export function fleetValues(text: string): FleetValues {
  const out: FleetValues = new Map();
  for (const line of text.split("\n")) {
    if (!line.startsWith("novacron_node_")) continue;
    const m = LINE.exec(line.trim());
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    const labels = labelsOf(m[2] ?? "");
    const node = labels.node;
    if (node === undefined) continue;
    let name = m[1]!.slice("novacron_node_".length);
    if (labels.mount !== undefined) name = `${name}${labels.mount}`;
    const series = out.get(node) ?? new Map<string, number>();
    out.set(node, series);
    series.set(name, value);
  }
  return out;
}
