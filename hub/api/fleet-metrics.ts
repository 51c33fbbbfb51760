// The fleet in the hub's /metrics: every node's newest series value, as families a Prometheus server accepts.
import { type Labels, renderFamily } from "../../shared/metrics.ts";

/** Unit parts of a series name and the base unit with its factor (Prometheus names use base units). */
const UNITS: Readonly<Record<string, [base: string, factor: number]>> = {
  ns: ["seconds", 1e-9],
  nanoseconds: ["seconds", 1e-9],
  us: ["seconds", 1e-6],
  microseconds: ["seconds", 1e-6],
  ms: ["seconds", 1e-3],
  milliseconds: ["seconds", 1e-3],
  s: ["seconds", 1],
  sec: ["seconds", 1],
  secs: ["seconds", 1],
  m: ["seconds", 60],
  min: ["seconds", 60],
  minutes: ["seconds", 60],
  h: ["seconds", 3600],
  hours: ["seconds", 3600],
  d: ["seconds", 86_400],
  days: ["seconds", 86_400],
  b: ["bytes", 1],
  kb: ["bytes", 1024],
  kib: ["bytes", 1024],
  kilobytes: ["bytes", 1024],
  mb: ["bytes", 1024 ** 2],
  mib: ["bytes", 1024 ** 2],
  megabytes: ["bytes", 1024 ** 2],
  gb: ["bytes", 1024 ** 3],
  gib: ["bytes", 1024 ** 3],
  gigabytes: ["bytes", 1024 ** 3],
  tb: ["bytes", 1024 ** 4],
  pb: ["bytes", 1024 ** 5],
};

// Labels the hub sets or Prometheus gives a meaning; a node's own are kept as exported_<name>.
const RESERVED_LABELS = new Set(["node", "le", "quantile", "job", "instance"]);
// Suffixes and words Prometheus reserves for other metric types.
const RESERVED_SUFFIX = /_(count|sum|bucket|total)$/;
const TYPE_WORDS = /(counter|gauge|histogram|summary|untyped)/g;

const snake = (s: string) =>
  s
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_")
    .replace(/_+/g, "_")
    .replace(/^_|_$/g, "");

/** A node series' base name as a Prometheus family: prefixed, snake_case, base units; the factor its values take. */
export function familyOf(series: string): { name: string; factor: number; counter: boolean } {
  let factor = 1;
  let per = false;
  const parts = snake(series)
    .split("_")
    .filter(Boolean)
    .map((part) => {
      if (part === "per") per = true;
      const unit = UNITS[part];
      if (!unit) return part;
      factor = per ? factor / unit[1] : factor * unit[1];
      return unit[0];
    });
  let name = `novacron_node_${parts.join("_") || "unnamed"}`.replace(TYPE_WORDS, (w) => w.slice(0, 4));
  const counter = name.endsWith("_total");
  if (!counter && RESERVED_SUFFIX.test(name)) name = `${name}_value`;
  return { name, factor, counter };
}

/**
 * Parses `name{a="x",b=y}` as the agent names labelled series; label values may be quoted (with
 * backslash escapes) or bare. Returns undefined for a label part that does not parse.
 */
export function parseSeries(series: string): { base: string; labels: [string, string][] } | undefined {
  const open = series.indexOf("{");
  if (open < 0) return { base: series, labels: [] };
  if (!series.endsWith("}")) return undefined;
  const base = series.slice(0, open);
  const body = series.slice(open + 1, -1);
  const labels: [string, string][] = [];
  let i = 0;
  while (i < body.length) {
    const eq = body.indexOf("=", i);
    if (eq < 0) return undefined;
    const key = body.slice(i, eq).trim();
    let value = "";
    i = eq + 1;
    if (body[i] === '"') {
      i++;
      while (i < body.length && body[i] !== '"') {
        if (body[i] === "\\" && i + 1 < body.length) {
          const next = body[i + 1]!;
          value += next === "n" ? "\n" : next;
          i += 2;
        } else value += body[i++];
      }
      if (body[i] !== '"') return undefined;
      i++;
    } else {
      const end = body.indexOf(",", i);
      value = body.slice(i, end < 0 ? body.length : end).trim();
      i = end < 0 ? body.length : end;
    }
    while (body[i] === " ") i++;
    if (i < body.length && body[i] !== ",") return undefined;
    i++;
    if (key !== "") labels.push([key, value]);
  }
  return { base, labels };
}

/** The labels of a node's sample: `node` first, then the series' own (sanitized; reserved names kept as exported_*). */
function labelsOf(node: string, own: [string, string][]): Labels {
  const labels: Labels = { node };
  for (const [k, value] of own) {
    let key = snake(k) || "label";
    if (/^[0-9]/.test(key)) key = `_${key}`;
    if (key.startsWith("__")) key = key.replace(/^_+/, "");
    if (RESERVED_LABELS.has(key)) key = `exported_${key}`;
    // A repeated name keeps its first value: Prometheus refuses a sample with a label twice.
    if (!(key in labels)) labels[key] = value;
  }
  return labels;
}

/** What fleetMetrics wrote and left out. */
export interface FleetExport {
  text: string;
  /** Samples left out: a series name that does not parse, or two series of a node that became one. */
  skipped: number;
}

/**
 * One scrape of the hub covers the fleet: the newest value of every node's series, one family per
 * series name (HELP and TYPE once, samples together), labelled by node.
 */
export function fleetMetrics(
  latest: ReadonlyMap<string, ReadonlyMap<string, [number, number]>>,
): FleetExport {
  const families = new Map<
    string,
    { counter: boolean; source: string; samples: Map<string, [Labels, number]> }
  >();
  let skipped = 0;
  for (const [node, series] of latest) {
    for (const [name, [, value]] of series) {
      const parsed = parseSeries(name);
      if (!parsed) {
        skipped++;
        continue;
      }
      const fam = familyOf(parsed.base);
      let f = families.get(fam.name);
      if (!f) {
        f = { counter: fam.counter, source: parsed.base, samples: new Map() };
        families.set(fam.name, f);
      }
      const labels = labelsOf(node, parsed.labels);
      const key = JSON.stringify(Object.entries(labels).sort());
      if (f.samples.has(key)) {
        skipped++;
        continue;
      }
      f.samples.set(key, [labels, value * fam.factor]);
    }
  }
  const out: string[] = [];
  for (const name of [...families.keys()].sort()) {
    const f = families.get(name)!;
    out.push(
      ...renderFamily(
        name,
        f.counter ? "counter" : "gauge",
        `Newest value of the series ${f.source} reported by each node`,
        f.samples.values(),
      ),
    );
  }
  return { text: out.length ? `${out.join("\n")}\n` : "", skipped };
}
