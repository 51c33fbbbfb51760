// The machine, date, Bun version and exact command a benchmark ran with, printed with every result.
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, release } from "node:os";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");

export interface MachineInfo {
  nproc: number;
  cpu_model: string;
  kernel: string;
  date: string;
  bun: string;
  /** Source revision measured: HEAD, plus "+dirty" when the tree has uncommitted changes. */
  commit: string;
  command: string;
}

function gitRevision(): string {
  const git = (args: string[]) =>
    Bun.spawnSync(["git", ...args], { cwd: ROOT, stdout: "pipe", stderr: "ignore" })
      .stdout.toString()
      .trim();
  const head = git(["rev-parse", "--short", "HEAD"]) || "unknown";
  return git(["status", "--porcelain", "--untracked-files=no"]) ? `${head}+dirty` : head;
}

/** Describes this machine and the command line of the running benchmark. */
export function machineInfo(): MachineInfo {
  let cpuinfo = "";
  try {
    cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  } catch {}
  return {
    nproc: availableParallelism(),
    cpu_model: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? "unknown",
    kernel: release(),
    date: new Date().toISOString(),
    bun: Bun.version,
    commit: gitRevision(),
    command: `bun ${process.argv
      .slice(1)
      .map((a) => a.replace(`${ROOT}/`, ""))
      .join(" ")}`,
  };
}

/** Prints the machine block every benchmark starts its output with. */
export function printMachine(m: MachineInfo): void {
  console.log(`machine: ${m.nproc} CPUs, ${m.cpu_model}, Linux ${m.kernel}`);
  console.log(`date:    ${m.date}   bun ${m.bun}   source ${m.commit}`);
  console.log(`command: ${m.command}`);
}

/** Formats rows as a fixed-width text table; the first row is the header. */
export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)));
  const out = [line(cells[0]!).join("  "), widths.map((w) => "-".repeat(w)).join("  ")];
  for (const r of cells.slice(1)) out.push(line(r).join("  "));
  return out.join("\n");
}

/** A sorted sample's value at quantile q. */
export const pct = (sorted: ArrayLike<number>, q: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** n, p50, p99, p99.9 and max of sorted nanosecond timings, in µs, for a table row. */
export function latencyCells(sorted: ArrayLike<number>): (string | number)[] {
  const us = (ns: number) => (ns / 1000).toFixed(1);
  return [
    sorted.length,
    us(pct(sorted, 0.5)),
    us(pct(sorted, 0.99)),
    us(pct(sorted, 0.999)),
    us(sorted[sorted.length - 1] ?? Number.NaN),
  ];
}
