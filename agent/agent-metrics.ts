// The agent's own Prometheus metrics (DESIGN section 11 names the first five).
import type { LinkStatus, Outbox } from "../shared/link/index.ts";
import type { MetricsRegistry } from "../shared/metrics.ts";

/** Declares the agent's gauges; each reads its source when scraped. */
export function registerAgentMetrics(
  m: MetricsRegistry,
  // The outbox itself, not its stats(): each gauge reads one figure, not four queries each.
  src: {
    produced: () => number;
    outbox: () => Outbox | undefined;
    link: () => LinkStatus | undefined;
    /** Frames refused on the hub link, by reason (forged, replayed, untrusted hub, ...). */
    refused: () => Record<string, number>;
  },
): void {
  m.gauge("novacron_agent_samples_total", "Samples produced by this agent (durable)", () => src.produced());
  m.gauge(
    "novacron_agent_samples_dropped_total",
    "Samples dropped by the buffer's overflow policy",
    () => src.outbox()?.counter("dropped_samples") ?? 0,
  );
  m.gauge(
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
  m.gauge(
    "novacron_agent_hub_rtt_ms",
    "Last measured round trip to the hub",
    () => src.link()?.rttMs ?? Number.NaN,
  );
  m.gauge(
    "novacron_agent_hub_rtt_max_ms",
    "Largest round trip to the hub in the current session",
    () => src.link()?.rttMaxMs ?? Number.NaN,
  );
  m.gauge(
    "novacron_agent_bad_frames_total",
    "Frames from the hub that failed to decode",
    () => src.link()?.badFrames ?? 0,
  );
  m.gauge(
    "novacron_agent_frames_refused_total",
    "Frames on the hub link that did not come from this node's authenticated session, by reason",
    () =>
      Object.entries(src.refused()).map(([reason, n]) => [{ reason }, n] as [Record<string, string>, number]),
  );
  m.gauge("process_resident_memory_bytes", "Resident memory of the agent process", () =>
    process.memoryUsage.rss(),
  );
  m.gauge("process_cpu_seconds_total", "CPU time of the agent process", () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
}
