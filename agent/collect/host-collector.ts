// Per-second host sampler: reads /proc and /sys directly, because systeminformation spawns ~18 processes a tick (docs/targets.md, "Why these numbers").
import { join } from "node:path";
import { readText } from "./_read-text.ts";
import { diskUsedPct, readDiskMounts } from "./disk-usage.ts";
import {
  type CpuTimes,
  type NetCounters,
  parseLoadavg,
  parseMeminfo,
  parseNetDev,
  parsePidStatCpuTicks,
  parseProcStat,
  parseVmRssBytes,
} from "./proc-parsers.ts";
import { putSeries, SERIES, withLabel } from "./series.ts";
import { discoverCpuTempPaths, readMaxTempC } from "./thermal-zones.ts";

// /proc/[pid]/stat counts in USER_HZ, which the kernel fixes at 100 on every architecture we ship (x64, arm64).
// Asking for it properly takes sysconf(_SC_CLK_TCK), i.e. a `getconf CLK_TCK` child process, which this path must never spawn.
const USER_HZ = 100;

/** Where the collector reads from and which mounts it watches. */
export interface CollectorOptions {
  /** Root of the proc filesystem; tests point it at a fixture tree. */
  procRoot?: string;
  /** Root of sysfs, for the thermal zones. */
  sysRoot?: string;
  /** Mount points for sampleDisks(); by default the real filesystems listed in `procRoot`/mounts. */
  mountsToWatch?: string[];
  /**
   * Set when the host's filesystems are mounted into a container (a Kubernetes pod): `procRoot` is the
   * host's /proc and this is the host's `/`. Network counters and mounts then come from the host's
   * pid 1 (`procRoot`/1/...), disk usage from statfs under this root, and the agent's own figures
   * from /proc/self (like node_exporter's --path.procfs and --path.rootfs).
   */
  hostRoot?: string;
}

// The monotonic counters a rate needs two readings of.
interface Counters {
  atMs: number;
  cpu: CpuTimes | undefined;
  net: Map<string, NetCounters> | undefined;
  selfCpuTicks: number | undefined;
}

/** Per-second host sampler. */
export class HostCollector {
  readonly #procRoot: string;
  readonly #sysRoot: string;
  readonly #files: ReturnType<typeof procFiles>;
  readonly #mountsToWatch: string[] | undefined;
  readonly #hostRoot: string | undefined;
  #previous: Counters | undefined;
  // Thermal zones are created by drivers at boot; finding them once keeps a directory scan off every tick.
  #tempPaths: string[] | undefined;

  constructor(opts: CollectorOptions = {}) {
    this.#procRoot = opts.procRoot ?? "/proc";
    this.#sysRoot = opts.sysRoot ?? "/sys";
    this.#hostRoot = opts.hostRoot;
    this.#files = procFiles(this.#procRoot, opts.hostRoot !== undefined);
    this.#mountsToWatch = opts.mountsToWatch;
  }

  /** Reads the counters once so that the first sample() can already compute rates; synchronous and cheap. */
  prime(nowMs: number): void {
    this.#previous = this.#readCounters(nowMs);
    this.#cpuTempPaths();
  }

  /** One tick: returns series name -> value. Rates are per second over the time since the previous call. */
  sample(nowMs: number): Record<string, number> {
    const out: Record<string, number> = {};
    const current = this.#readCounters(nowMs);
    if (this.#previous !== undefined) putRates(out, this.#previous, current);
    this.#previous = current;

    const load = parseText(this.#files.loadavg, parseLoadavg);
    if (load !== undefined) {
      putSeries(out, SERIES.load1, load[0]);
      putSeries(out, SERIES.load5, load[1]);
      putSeries(out, SERIES.load15, load[2]);
    }
    const mem = parseText(this.#files.meminfo, parseMeminfo);
    if (mem !== undefined) {
      putSeries(out, SERIES.memUsedPct, ((mem.totalBytes - mem.availBytes) / mem.totalBytes) * 100);
      putSeries(out, SERIES.memAvailBytes, mem.availBytes);
    }
    const temp = readMaxTempC(this.#cpuTempPaths());
    if (temp !== undefined) putSeries(out, SERIES.tempCpuC, temp);
    // status rather than the shorter statm: statm counts pages, and arm64 kernels run 4, 16 or 64 KiB pages.
    const rss = parseText(this.#files.selfStatus, parseVmRssBytes);
    if (rss !== undefined) putSeries(out, SERIES.agentRssBytes, rss);
    return out;
  }

  /** Slow path (every 30 s): used percent per mount via statfs, e.g. `{ 'disk.used_pct{mount="/"}': 41.2 }`. */
  sampleDisks(): Record<string, number> {
    const out: Record<string, number> = {};
    // Mounts are re-read each time so that a USB stick plugged in later is picked up.
    const mounts = this.#hostRoot === undefined ? this.#procRoot : join(this.#procRoot, "1");
    for (const mount of this.#mountsToWatch ?? readDiskMounts(mounts)) {
      const pct = diskUsedPct(this.#hostRoot === undefined ? mount : join(this.#hostRoot, mount));
      if (pct !== undefined) putSeries(out, withLabel(SERIES.diskUsedPct, "mount", mount), pct);
    }
    return out;
  }

  #cpuTempPaths(): string[] {
    this.#tempPaths ??= discoverCpuTempPaths(this.#sysRoot);
    return this.#tempPaths;
  }

  #readCounters(atMs: number): Counters {
    return {
      atMs,
      cpu: parseText(this.#files.stat, parseProcStat),
      net: parseText(this.#files.netDev, parseNetDev),
      selfCpuTicks: parseText(this.#files.selfStat, parsePidStatCpuTicks),
    };
  }
}

// In a container with the host's /proc mounted, net/dev must be pid 1's (the host's network), and
// "self" must be our own /proc (the host's /proc/self would resolve in the host's pid namespace).
function procFiles(procRoot: string, hostView: boolean) {
  const self = hostView ? "/proc" : procRoot;
  return {
    stat: join(procRoot, "stat"),
    meminfo: join(procRoot, "meminfo"),
    loadavg: join(procRoot, "loadavg"),
    netDev: hostView ? join(procRoot, "1", "net", "dev") : join(procRoot, "net", "dev"),
    selfStat: join(self, "self", "stat"),
    selfStatus: join(self, "self", "status"),
  };
}

function parseText<T>(path: string, parse: (text: string) => T | undefined): T | undefined {
  const text = readText(path);
  return text === undefined ? undefined : parse(text);
}

// Adds the series computed from two readings; a counter that went backwards (reset, wrap, interface re-created)
// yields no value for this tick rather than a negative rate.
function putRates(out: Record<string, number>, before: Counters, after: Counters): void {
  if (before.cpu !== undefined && after.cpu !== undefined) {
    const total = after.cpu.total - before.cpu.total;
    // iowait may decrease between reads (Documentation/filesystems/proc.rst), which can push busy past total; clamp.
    const busy = Math.min(Math.max(after.cpu.busy - before.cpu.busy, 0), total);
    if (total > 0) putSeries(out, SERIES.cpuUtil, (busy / total) * 100);
  }

  const seconds = (after.atMs - before.atMs) / 1000;
  if (seconds <= 0) return;

  if (before.net !== undefined && after.net !== undefined) {
    let rx = 0;
    let tx = 0;
    for (const [name, now] of after.net) {
      const then = before.net.get(name);
      // Loopback traffic never leaves the host; a new interface has no previous reading yet.
      if (name === "lo" || then === undefined) continue;
      if (now.rxBytes < then.rxBytes || now.txBytes < then.txBytes) continue;
      rx += now.rxBytes - then.rxBytes;
      tx += now.txBytes - then.txBytes;
    }
    putSeries(out, SERIES.netRxBps, rx / seconds);
    putSeries(out, SERIES.netTxBps, tx / seconds);
  }

  if (before.selfCpuTicks !== undefined && after.selfCpuTicks !== undefined) {
    const ticks = after.selfCpuTicks - before.selfCpuTicks;
    if (ticks >= 0) putSeries(out, SERIES.agentCpuPct, ((ticks / USER_HZ) * 100) / seconds);
  }
}
