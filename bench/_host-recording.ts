// Records real 1 s HostCollector samples of this machine and replays them as long synthetic tick streams.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { HostCollector } from "../agent/collect/index.ts";

/** What one recording holds: the per-second host samples and the disk samples at the agent's cadence. */
export interface HostRecording {
  recorded_at: string;
  seconds: number;
  /** One entry per 1 s tick: HostCollector.sample(). */
  host: Record<string, number>[];
  /** HostCollector.sampleDisks() at every DISK_EVERY-th tick, as the agent merges them (disk_interval 30 s). */
  disk: Record<string, number>[];
}

/** The agent's default disk_interval in ticks of 1 s. */
export const DISK_EVERY = 30;

/** Samples this host once a second for `seconds` (really waiting), like the agent's tick loop. */
export async function recordHost(seconds: number, log: (msg: string) => void): Promise<HostRecording> {
  const collector = new HostCollector();
  const host: Record<string, number>[] = [];
  const disk: Record<string, number>[] = [];
  const t0 = Math.ceil(Date.now() / 1000) * 1000;
  collector.prime(t0 - 1000);
  for (let i = 0; i < seconds; i++) {
    const due = t0 + i * 1000;
    const wait = due - Date.now();
    if (wait > 0) await Bun.sleep(wait);
    host.push(collector.sample(Date.now()));
    if (i % DISK_EVERY === 0) disk.push(collector.sampleDisks());
    if (i % 30 === 29) log(`recorded ${i + 1}/${seconds} s`);
  }
  return { recorded_at: new Date(t0).toISOString(), seconds, host, disk };
}

/** Loads a recording written by saveRecording, or undefined when there is none at `path`. */
export function loadRecording(path: string): HostRecording | undefined {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, "utf8")) as HostRecording;
}

export function saveRecording(path: string, rec: HostRecording): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(rec)}\n`);
}

/**
 * `count` ticks from a recording: host samples replayed forward then backward (ping-pong), so the
 * replay has no seam where a slow value such as mem.avail_bytes would jump back; no noise is added.
 * Disk samples are merged every DISK_EVERY-th tick, cycling through the recorded ones.
 */
export function synthesizeTicks(rec: HostRecording, count: number): Record<string, number>[] {
  const n = rec.host.length;
  if (n === 0) throw new Error("the recording holds no samples");
  const period = Math.max(1, 2 * (n - 1));
  const out: Record<string, number>[] = [];
  for (let i = 0; i < count; i++) {
    const k = i % period;
    const values = { ...rec.host[k < n ? k : period - k]! };
    if (i % DISK_EVERY === 0 && rec.disk.length > 0)
      Object.assign(values, rec.disk[(i / DISK_EVERY) % rec.disk.length]);
    out.push(values);
  }
  return out;
}
