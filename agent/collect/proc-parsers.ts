// Pure parsers of the Linux /proc text formats the collector reads; no I/O, so tests feed them fixture strings.

/** Cumulative time of all CPUs together, in clock ticks since boot. */
export interface CpuTimes {
  busy: number;
  total: number;
}

/** Parses the aggregate `cpu` line of /proc/stat. */
export function parseProcStat(text: string): CpuTimes | undefined {
  if (!text.startsWith("cpu ")) return undefined;
  const end = text.indexOf("\n");
  const fields = text
    .slice(4, end === -1 ? undefined : end)
    .trim()
    .split(/\s+/)
    .map(Number);
  if (fields.length < 4 || fields.some(Number.isNaN)) return undefined;
  // guest and guest_nice (the 9th and 10th) are already included in user and nice; summing them would count them twice.
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  // iowait is idle time with I/O pending: the CPU could have run something else, so it is not busy.
  return { busy: total - idle - iowait, total };
}

/** Memory totals from /proc/meminfo, in bytes. */
export interface MemInfo {
  totalBytes: number;
  availBytes: number;
}

/** Parses MemTotal and MemAvailable from /proc/meminfo. */
export function parseMeminfo(text: string): MemInfo | undefined {
  const kb = new Map<string, number>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon === -1) continue;
    const value = Number.parseInt(line.slice(colon + 1), 10);
    if (!Number.isNaN(value)) kb.set(line.slice(0, colon), value);
  }
  const total = kb.get("MemTotal");
  if (total === undefined || total <= 0) return undefined;
  // Kernels before 3.14 have no MemAvailable; free + buffers + page cache is the estimate tools used before it.
  const avail =
    kb.get("MemAvailable") ?? (kb.get("MemFree") ?? 0) + (kb.get("Buffers") ?? 0) + (kb.get("Cached") ?? 0);
  return { totalBytes: total * 1024, availBytes: avail * 1024 };
}

/** Parses the 1, 5 and 15 minute load averages from /proc/loadavg. */
export function parseLoadavg(text: string): [number, number, number] | undefined {
  const [one, five, fifteen] = text.trim().split(" ", 3).map(Number);
  if (one === undefined || five === undefined || fifteen === undefined) return undefined;
  if (Number.isNaN(one) || Number.isNaN(five) || Number.isNaN(fifteen)) return undefined;
  return [one, five, fifteen];
}

/** Byte counters of one network interface since it appeared. */
export interface NetCounters {
  rxBytes: number;
  txBytes: number;
}

/** Parses /proc/net/dev into byte counters per interface name (loopback included; callers decide). */
export function parseNetDev(text: string): Map<string, NetCounters> {
  const counters = new Map<string, NetCounters>();
  const lines = text.split("\n");
  // The first two lines are column headers.
  for (let i = 2; i < lines.length; i++) {
    const line = lines[i]!;
    // Counters can grow into the name column ("eth0:123"), so split on the colon, not on whitespace.
    const colon = line.indexOf(":");
    if (colon === -1) continue;
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    // Receive has 8 columns (bytes first), then transmit starts with bytes.
    const rxBytes = Number(fields[0]);
    const txBytes = Number(fields[8]);
    if (Number.isNaN(rxBytes) || Number.isNaN(txBytes) || fields.length < 9) continue;
    counters.set(line.slice(0, colon).trim(), { rxBytes, txBytes });
  }
  return counters;
}

/** Parses utime + stime, in clock ticks, from a /proc/[pid]/stat line. */
export function parsePidStatCpuTicks(text: string): number | undefined {
  // comm (field 2) is in parentheses and may itself contain spaces and parentheses, so fields resume after the last ')'.
  const close = text.lastIndexOf(")");
  if (close === -1) return undefined;
  const fields = text.slice(close + 2).split(" ");
  // fields[0] is field 3 (state), so utime (field 14) and stime (field 15) sit at 11 and 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (Number.isNaN(utime) || Number.isNaN(stime)) return undefined;
  return utime + stime;
}

/** Parses VmRSS from /proc/[pid]/status, in bytes. */
export function parseVmRssBytes(text: string): number | undefined {
  const start = text.indexOf("VmRSS:");
  if (start === -1) return undefined;
  const kb = Number.parseInt(text.slice(start + 6).trimStart(), 10);
  return Number.isNaN(kb) ? undefined : kb * 1024;
}

/** One line of /proc/mounts. */
export interface MountEntry {
  device: string;
  mountPoint: string;
  fsType: string;
}

/** Parses /proc/mounts, decoding the octal escapes the kernel uses for spaces, tabs and backslashes in paths. */
export function parseMounts(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const [device, mountPoint, fsType] = line.split(" ", 3);
    if (device === undefined || mountPoint === undefined || fsType === undefined) continue;
    entries.push({ device: unescapeOctal(device), mountPoint: unescapeOctal(mountPoint), fsType });
  }
  return entries;
}

function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** Parses a thermal zone's `temp` file (millidegrees Celsius) into degrees Celsius. */
export function parseMillidegrees(text: string): number | undefined {
  const milli = Number.parseInt(text, 10);
  return Number.isNaN(milli) ? undefined : milli / 1000;
}
