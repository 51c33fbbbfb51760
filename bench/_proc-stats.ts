// Reading a process tree's memory and CPU from /proc, for the footprint benchmarks (Linux only).
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux we ship to). */
export const CLK_TCK = clockTicks();

function clockTicks(): number {
  const r = Bun.spawnSync(["getconf", "CLK_TCK"], { stdout: "pipe", stderr: "ignore" });
  const n = Number(r.stdout.toString().trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Memory of one process in bytes (VmRSS and its anonymous/file split), or undefined once it is gone. */
export function memoryOf(pid: number): { rss: number; anon: number; file: number } | undefined {
  const status = readText(`/proc/${pid}/status`);
  if (!status) return undefined;
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile") + kb("RssShmem") };
}

/**
 * CPU ticks of one process: utime+stime of all its threads plus cutime+cstime, the time of children
 * it has already waited for (short-lived children such as execSync shells end up there).
 */
export function cpuTicksOf(pid: number): number | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // The command name is in parentheses and may contain spaces; fields restart after the last ')'.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the name, index 0 is field 3 (state); utime..cstime are fields 14-17.
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat); tells a recycled pid apart. */
export function startTimeOf(pid: number): number | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
}

/** Live descendants of `pid`, found through /proc/<pid>/task/<tid>/children, depth-first and bounded. */
export function descendantsOf(pid: number, limit = 256): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0 && out.length < limit) {
    const p = stack.pop()!;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      const kids = readText(`/proc/${p}/task/${tid}/children`)?.trim();
      if (!kids) continue;
      for (const k of kids.split(/\s+/)) {
        const child = Number(k);
        if (child > 0 && !out.includes(child)) {
          out.push(child);
          stack.push(child);
        }
      }
    }
  }
  return out;
}

/** One observation of a process tree. */
export interface TreeSample {
  /** ms since the sampler started (monotonic). */
  t: number;
  rss: number;
  anon: number;
  file: number;
  /** RSS of live descendants, summed. */
  childRss: number;
  /** CPU ticks of the root (incl. waited-for children) and of live descendants. */
  ticks: number;
  children: number;
}

/** Samples a process tree; undefined once the root is gone. */
export function sampleTree(pid: number, t: number): TreeSample | undefined {
  const mem = memoryOf(pid);
  const rootTicks = cpuTicksOf(pid);
  if (!mem || rootTicks === undefined) return undefined;
  let ticks = rootTicks;
  let childRss = 0;
  const kids = descendantsOf(pid);
  for (const k of kids) {
    ticks += cpuTicksOf(k) ?? 0;
    childRss += memoryOf(k)?.rss ?? 0;
  }
  return { t, rss: mem.rss, anon: mem.anon, file: mem.file, childRss, ticks, children: kids.length };
}

/** Median of a non-empty list (mean of the middle two for an even count). */
export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Bytes to MiB, for tables (RSS is counted in KiB pages, so binary units). */
export const mib = (bytes: number): number => bytes / 1048576;
