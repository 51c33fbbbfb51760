// Pre-encoded metrics batches for benchmarks: the agent's host series from a recording, through the real codec.
import { encodeMetrics } from "../shared/protocol/metrics-codec.ts";
import { type HostRecording, synthesizeTicks } from "./_host-recording.ts";

/** The agent's host series per tick (11 with the CPU temperature). */
export const SERIES = 11;
/** The agent's tick. */
export const TICK_MS = 1000;
/** How many different batches a pool holds, so that compression does not see one blob repeated. */
export const POOL = 16;

export interface EncodedBatch {
  data: Uint8Array;
  z: 0 | 1;
  samples: number;
}

/** POOL different batches of `ticks` ticks × 11 series, from the host recording when there is one. */
export function batchPool(
  rec: HostRecording | undefined,
  ticks: number,
): { pool: EncodedBatch[]; names: string[] } {
  const rows = rec ? synthesizeTicks(rec, POOL * ticks) : syntheticRows(POOL * ticks);
  const lastDisk = rec?.disk.at(-1) ?? {};
  const names = [...new Set([...rows.flatMap((r) => Object.keys(r)), ...Object.keys(lastDisk)])].sort();
  // Pad to 11 with CPU temperature when the host has no thermal zone (this VM has none).
  if (names.length < SERIES && !names.includes("temp.cpu_c")) names.push("temp.cpu_c");
  if (names.length !== SERIES)
    throw new Error(`expected ${SERIES} series, the recording gives ${names.length}`);
  const pool: EncodedBatch[] = [];
  for (let p = 0; p < POOL; p++) {
    const slice = rows.slice(p * ticks, (p + 1) * ticks);
    const series = names.map((name) => ({
      name,
      values: slice.map(
        (r, i) => r[name] ?? lastDisk[name] ?? Math.round((48 + ((p * ticks + i) % 60) / 10) * 10) / 10,
      ),
    }));
    const enc = encodeMetrics({ start: 0, interval: TICK_MS, ticks, series });
    if (enc.samples !== ticks * SERIES) throw new Error("a pool batch lost samples");
    pool.push(enc);
  }
  return { pool, names };
}

// Used only when bench/wire.ts has not recorded this host yet: a deterministic random walk.
export function syntheticRows(count: number): Record<string, number>[] {
  let x = 1;
  const rand = () => {
    x = (x * 48271) % 2147483647;
    return x / 2147483647;
  };
  let mem = 24e9;
  return Array.from({ length: count }, () => {
    mem += Math.round(((rand() - 0.5) * 1e6) / 4096) * 4096;
    return {
      "cpu.util": Math.round(rand() * 500) / 100,
      "cpu.load1": Math.round(rand() * 40) / 100,
      "cpu.load5": 0.3,
      "cpu.load15": 0.2,
      "mem.used_pct": Math.round((1 - mem / 25e9) * 10000) / 100,
      "mem.avail_bytes": mem,
      "net.rx_bps": Math.round(rand() * 20000),
      "net.tx_bps": Math.round(rand() * 5000),
      "agent.rss_bytes": 35e6 + Math.round(rand() * 10) * 4096,
      "agent.cpu_pct": rand() < 0.8 ? 0 : 1,
      'disk.used_pct{mount="/"}': 22.48,
    };
  });
}
