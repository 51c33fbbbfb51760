// Whole-machine CPU accounting for benchmarks: /proc/stat totals and every process's CPU time (Linux only).
import { readdirSync, readFileSync } from "node:fs";
import { CLK_TCK } from "./_proc-stats.ts";

/** Whole-machine CPU counters from /proc/stat, in clock ticks. */
export function machineCpu(): {
  busy: number;
  total: number;
  softirq: number;
  iowait: number;
  steal: number;
} {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = f[3]! + f[4]!;
  return { busy: total - idle, total, softirq: f[5]! + f[6]!, iowait: f[4]!, steal: f[7]! };
}

/** CPU ticks of every process on the machine (kernel threads too), to name who else was busy. */
export function allProcessTicks(): Map<number, { name: string; ticks: number }> {
  const out = new Map<number, { name: string; ticks: number }>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(pid, { name, ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The busiest processes between two allProcessTicks() snapshots, except `exclude`. */
export function topOthers(
  before: Map<number, { name: string; ticks: number }>,
  after: Map<number, { name: string; ticks: number }>,
  exclude: number[],
  seconds: number,
): { pid: number; name: string; cpu_pct: number }[] {
  const rows: { pid: number; name: string; cpu_pct: number }[] = [];
  for (const [pid, a] of after) {
    if (exclude.includes(pid)) continue;
    const d = a.ticks - (before.get(pid)?.ticks ?? 0);
    if (d > 0) rows.push({ pid, name: a.name, cpu_pct: (d / CLK_TCK / seconds) * 100 });
  }
  return rows.sort((x, y) => y.cpu_pct - x.cpu_pct).slice(0, 6);
}
