// The footprint benchmark's figures: one row per process tree, the printed table and the ratios ours/collectd.
import type { Proc } from "../test/support/processes.ts";
import { table } from "./_machine.ts";
import { CLK_TCK, median, mib, type TreeSample } from "./_proc-stats.ts";

/** A measured process: how it was started and what the sampler saw. */
export interface Subject {
  name: string;
  kind: "agent" | "collectd" | "infra";
  proc: Proc;
  spawnedMs: number;
  samples: TreeSample[];
  childPids: Set<number>;
  startup?: { internalMs?: number; spawnToFirstSampleMs?: number; how: string };
  extra?: Record<string, unknown>;
}

/** One process tree's figures, as written to the JSON file. */
export interface Row {
  name: string;
  kind: string;
  pid: number | undefined;
  samples: number;
  rss_median_mib: number;
  rss_max_mib: number;
  rss_first_min_median_mib: number;
  rss_last_min_median_mib: number;
  anon_median_mib: number;
  file_median_mib: number;
  children_rss_max_mib: number;
  cpu_pct_one_core: number;
  child_pids_seen: number;
  startup_internal_ms: number | null;
  spawn_to_first_sample_ms: number | null;
  startup_how: string | null;
  /** RSS every 10 s over the window, to see whether it stays flat. */
  rss_every_10s_mib: number[];
  extra: Record<string, unknown>;
}

/** A built binary: its size, or why the build failed. */
export interface Binary {
  path: string;
  bytes?: number;
  gzip_bytes?: number;
  error?: string;
}

/** Reduces one subject's samples to its row: RSS medians, CPU over the window, start-up. */
export function summarise(s: Subject): Row {
  const xs = s.samples;
  const first = xs[0];
  const last = xs[xs.length - 1];
  const spanS = first && last ? (last.t - first.t) / 1000 : 0;
  const cpu = first && last && spanS > 0 ? ((last.ticks - first.ticks) / CLK_TCK / spanS) * 100 : Number.NaN;
  const inFirstMin = xs.filter((x) => x.t - first!.t < 60_000).map((x) => x.rss);
  const inLastMin = xs.filter((x) => last!.t - x.t < 60_000).map((x) => x.rss);
  return {
    name: s.name,
    kind: s.kind,
    pid: s.proc.pid,
    samples: xs.length,
    rss_median_mib: mib(median(xs.map((x) => x.rss))),
    rss_max_mib: mib(Math.max(...xs.map((x) => x.rss))),
    rss_first_min_median_mib: mib(median(inFirstMin)),
    rss_last_min_median_mib: mib(median(inLastMin)),
    anon_median_mib: mib(median(xs.map((x) => x.anon))),
    file_median_mib: mib(median(xs.map((x) => x.file))),
    children_rss_max_mib: mib(Math.max(0, ...xs.map((x) => x.childRss))),
    cpu_pct_one_core: cpu,
    child_pids_seen: s.childPids.size,
    startup_internal_ms: s.startup?.internalMs ?? null,
    spawn_to_first_sample_ms: s.startup?.spawnToFirstSampleMs ?? null,
    startup_how: s.startup?.how ?? null,
    rss_every_10s_mib: xs.filter((_, i) => i % 10 === 0).map((x) => Math.round(mib(x.rss) * 10) / 10),
    extra: s.extra ?? {},
  };
}

const ratio = (a: number, b: number) =>
  b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(1)}x` : "- (collectd below resolution)";
const f = (n: number | null, d = 1) => (n === null || Number.isNaN(n) ? "-" : n.toFixed(d));
const ms = (n: number | null) => (n === null ? "-" : `${n} ms`);

/** The printed report, line by line. */
export function renderFootprint(
  info: {
    nproc: number;
    cpu_model: string;
    kernel: string;
    date: string;
    bun: string;
    command: string;
  } & Record<string, unknown>,
  binaries: Record<string, Binary>,
  rows: Row[],
  window: string,
): string[] {
  const cd = rows.find((r) => r.kind === "collectd")!;
  const agents = rows.filter((x) => x.kind === "agent");
  const out: string[] = [];
  out.push(`machine: ${info.nproc} CPUs, ${info.cpu_model}, Linux ${info.kernel}`);
  out.push(`date: ${info.date}   bun ${info.bun}   ${info.collectd}   ${info.mosquitto}   git ${info.git}`);
  out.push(`command: ${info.command}`);
  out.push(`window: ${window}`);
  out.push("");
  for (const [k, b] of Object.entries(binaries)) {
    const bytes = b.bytes ?? 0;
    out.push(
      b.error
        ? `binary ${k}: build failed: ${b.error.split("\n")[0]}`
        : `binary ${k}: ${bytes} bytes = ${(bytes / 1e6).toFixed(1)} MB (${mib(bytes).toFixed(1)} MiB); gzip -9 ${((b.gzip_bytes ?? 0) / 1e6).toFixed(1)} MB`,
    );
  }
  out.push("");
  const head = ["process", "RSS med", "RSS max", "1st min", "last min", "anon", "file", "CPU %", "kids"];
  head.push("start→1st", "spawn→1st");
  const body = rows.map((r) => [
    r.name,
    f(r.rss_median_mib),
    f(r.rss_max_mib),
    f(r.rss_first_min_median_mib),
    f(r.rss_last_min_median_mib),
    f(r.anon_median_mib),
    f(r.file_median_mib),
    f(r.cpu_pct_one_core, 3),
    String(r.child_pids_seen),
    ms(r.startup_internal_ms),
    ms(r.spawn_to_first_sample_ms),
  ]);
  out.push(table([head, ...body]));
  out.push(
    "RSS in MiB (VmRSS; anon = RssAnon, file = RssFile+RssShmem; 1st/last min = medians of the first and",
    "last 60 s). CPU % of one core over the window, live descendants and waited-for children included.",
    "kids = distinct child pids seen by the 1 s sampler. start→1st = first_sample_ms - started_ms from",
    "/v1/status; spawn→1st = first sample (collectd: first MQTT message) minus spawn time.",
    "",
    "ratios ours / collectd:",
  );
  const width = Math.max(...agents.map((r) => r.name.length));
  for (const r of agents) {
    const rss = ratio(r.rss_median_mib, cd.rss_median_mib);
    out.push(`  ${r.name.padEnd(width)} RSS ${rss}   CPU ${ratio(r.cpu_pct_one_core, cd.cpu_pct_one_core)}`);
  }
  out.push("");
  const e = cd.extra;
  out.push(
    `collectd published ${e.mqtt_messages} MQTT messages (${e.mqtt_messages_per_s}/s, ${e.mqtt_topics} topics)`,
  );
  for (const r of agents) {
    const x = r.extra;
    out.push(
      `${r.name}: connected=${x.connected} produced=${x.samples_produced} stored by the hub so far=${x.hub_stored_samples} outbox pending=${x.outbox_pending}`,
    );
  }
  return out;
}
