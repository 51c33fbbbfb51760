// The agent's own Prometheus metrics (DESIGN section 11 names the first five).
import type { LinkStatus, Outbox } from "../../shared/link/index.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";

/** Declares the agent's gauges; each reads its source when scraped. */
export function registerAgentMetrics(
  m: MetricsRegistry,
  // The outbox itself, not its stats(): each gauge reads one figure, not four queries each.
  src: {
    produced: () => number;
    /** Samples dropped, by reason (budget, disk, invalid, folded). */
    droppedBy: () => Record<string, number>;
    /** True while the local store's disk is full (or below its reserve). */
    diskFull: () => boolean;
    outbox: () => Outbox | undefined;
    link: () => LinkStatus | undefined;
    /** Frames refused on the hub link, by reason (forged, replayed, untrusted hub, ...). */
    refused: () => Record<string, number>;
    /** Each cache's hits, misses and entries: "default" (the /v1/cache store) and every named one. */
    caches?: () => Record<string, { hits: number; misses: number; entries: number }>;
    /** Cache writes queued for the hub (write-behind), and the age of the oldest. */
    cacheQueue?: () => { depth: number; oldest_ms: number | null };
  },
): void {
  const perCache = (pick: (c: { hits: number; misses: number; entries: number }) => number) => () =>
    Object.entries(src.caches?.() ?? {}).map(
      ([cache, c]) => [{ cache }, pick(c)] as [Record<string, string>, number],
    );
  m.gauge(
    "novacron_agent_cache_hit_ratio",
    "Hits / (hits + misses) of each cache since its store was made",
    perCache((c) => (c.hits + c.misses === 0 ? 0 : c.hits / (c.hits + c.misses))),
  );
  m.counterOf(
    "novacron_agent_cache_hits_total",
    "Reads answered from each cache",
    perCache((c) => c.hits),
  );
  m.counterOf(
    "novacron_agent_cache_misses_total",
    "Reads each cache could not answer",
    perCache((c) => c.misses),
  );
  m.gauge(
    "novacron_agent_cache_entries",
    "Entries held by each cache",
    perCache((c) => c.entries),
  );
  m.gauge(
    "novacron_agent_cache_queue_depth",
    "Cache writes queued for the hub, not yet acknowledged",
    () => src.cacheQueue?.().depth ?? 0,
  );
  m.gauge(
    "novacron_agent_cache_queue_age_seconds",
    "Age of the oldest cache write queued for the hub",
    () => (src.cacheQueue?.().oldest_ms ?? 0) / 1000,
  );
  m.counterOf("novacron_agent_samples_total", "Samples produced by this agent (durable)", () =>
    src.produced(),
  );
  m.counterOf(
    "novacron_agent_samples_dropped_total",
    "Samples dropped, by reason (budget, disk, invalid, folded)",
    () =>
      Object.entries(src.droppedBy()).map(
        ([reason, n]) => [{ reason }, n] as [Record<string, string>, number],
      ),
  );
  m.gauge("novacron_agent_disk_full", "1 while the local store's disk is full or below its reserve", () =>
    src.diskFull() ? 1 : 0,
  );
  m.counterOf(
    "novacron_agent_samples_folded_total",
    "Pushed points folded into a later one of the same series and millisecond (counted as dropped)",
    () => src.outbox()?.counter("samples_folded") ?? 0,
  );
  m.counterOf(
    "novacron_agent_samples_downsampled_total",
    "Samples folded into 1-minute rollups by the buffer's overflow policy (still delivered)",
    () => src.outbox()?.counter("samples_downsampled") ?? 0,
  );
  m.gauge(
    "novacron_agent_outbox_pending",
    "Messages waiting for a hub ack",
    () => src.outbox()?.pending ?? 0,
  );
  m.gauge("novacron_agent_outbox_bytes", "Bytes held in the outbox", () => src.outbox()?.bytes ?? 0);
  m.gauge("novacron_agent_connected", "1 when a hub session is up", () => (src.link()?.connected ? 1 : 0));
  // In seconds, Prometheus' base unit (these were novacron_agent_hub_rtt_ms and _max_ms, in ms).
  m.gauge("novacron_agent_hub_rtt_seconds", "Last measured round trip to the hub", () => {
    const ms = src.link()?.rttMs;
    return ms === undefined ? Number.NaN : ms / 1000;
  });
  m.gauge(
    "novacron_agent_hub_rtt_max_seconds",
    "Largest round trip to the hub in the current session",
    () => {
      const ms = src.link()?.rttMaxMs;
      return ms === undefined ? Number.NaN : ms / 1000;
    },
  );
  m.counterOf(
    "novacron_agent_bad_frames_total",
    "Frames from the hub that failed to decode",
    () => src.link()?.badFrames ?? 0,
  );
  m.counterOf(
    "novacron_agent_frames_refused_total",
    "Frames on the hub link that did not come from this node's authenticated session, by reason",
    () =>
      Object.entries(src.refused()).map(([reason, n]) => [{ reason }, n] as [Record<string, string>, number]),
  );
  m.gauge("process_resident_memory_bytes", "Resident memory of the agent process", () =>
    process.memoryUsage.rss(),
  );
  m.counterOf("process_cpu_seconds_total", "CPU time of the agent process", () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
}
