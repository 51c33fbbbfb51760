// Series names the collector emits (docs/stable-interfaces.md: extend, never rename) and the one place where values are rounded for the wire.

/** Every series name the host collector produces, without labels. */
export const SERIES = {
  cpuUtil: "cpu.util",
  load1: "cpu.load1",
  load5: "cpu.load5",
  load15: "cpu.load15",
  memUsedPct: "mem.used_pct",
  memAvailBytes: "mem.avail_bytes",
  netRxBps: "net.rx_bps",
  netTxBps: "net.tx_bps",
  tempCpuC: "temp.cpu_c",
  agentRssBytes: "agent.rss_bytes",
  agentCpuPct: "agent.cpu_pct",
  diskUsedPct: "disk.used_pct",
} as const;

/** A series name without labels. */
export type SeriesName = (typeof SERIES)[keyof typeof SERIES];

/** A series name, optionally with a Prometheus-style label set such as `{mount="/"}`. */
export type SeriesKey = SeriesName | `${SeriesName}{${string}}`;

// Fewer decimals mean fewer distinct values and smaller deltas, which keeps the compressed wire encoding
// within its budget (docs/targets.md: ≤ 2 bytes a sample); sensors are not more precise than this anyway.
const DECIMALS: Record<SeriesName, number> = {
  "cpu.util": 2,
  "cpu.load1": 2,
  "cpu.load5": 2,
  "cpu.load15": 2,
  "mem.used_pct": 2,
  "mem.avail_bytes": 0,
  "net.rx_bps": 0,
  "net.tx_bps": 0,
  "temp.cpu_c": 1,
  "agent.rss_bytes": 0,
  "agent.cpu_pct": 2,
  "disk.used_pct": 2,
};

/** Rounds `value` to the precision of its series and stores it; a non-finite value is dropped so a bad read omits the series. */
export function putSeries(out: Record<string, number>, key: SeriesKey, value: number): void {
  if (!Number.isFinite(value)) return;
  const brace = key.indexOf("{");
  const name = (brace === -1 ? key : key.slice(0, brace)) as SeriesName;
  const scale = 10 ** DECIMALS[name];
  out[key] = Math.round(value * scale) / scale;
}

/** Builds `name{label="value"}`, escaping the value as the Prometheus text format does. */
export function withLabel(name: SeriesName, label: string, value: string): SeriesKey {
  const escaped = value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
  return `${name}{${label}="${escaped}"}`;
}
