// Specifications of the agent's host collector: /proc parsers on fixture text, the sampler on fixture trees and on this machine.
import { describe, expect, test } from "bun:test";
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { diskUsedPct, selectDiskMounts } from "../../agent/collect/disk-usage.ts";
import { HostCollector, inventory, SERIES } from "../../agent/collect/index.ts";
import { osFromRelease } from "../../agent/collect/inventory.ts";
import {
  parseLoadavg,
  parseMeminfo,
  parseMounts,
  parseNetDev,
  parsePidStatCpuTicks,
  parseProcStat,
  parseVmRssBytes,
} from "../../agent/collect/proc-parsers.ts";
import { isCpuZoneType } from "../../agent/collect/thermal-zones.ts";

const FIXTURE_PROC = join(import.meta.dir, "fixtures", "proc");
const fixture = (name: string) => readFileSync(join(FIXTURE_PROC, name), "utf8");

// A disposable host tree: proc/ starts as a copy of the fixtures, sys/ starts empty.
function hostTree() {
  const root = mkdtempSync(join(os.tmpdir(), "novacron-collect-"));
  cpSync(FIXTURE_PROC, join(root, "proc"), { recursive: true });
  mkdirSync(join(root, "sys"));
  return {
    procRoot: join(root, "proc"),
    sysRoot: join(root, "sys"),
    write(path: string, text: string) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    },
    remove(path: string) {
      rmSync(join(root, path), { recursive: true, force: true });
    },
    [Symbol.dispose]() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

// /proc/stat with the given aggregate counters: user nice system idle iowait irq softirq steal guest guest_nice.
function procStat(fields: number[]): string {
  return `cpu  ${fields.join(" ")}\ncpu0 ${fields.join(" ")}\nctxt 1\nbtime 1\n`;
}

// /proc/net/dev in the kernel's layout, with rx and tx bytes per interface.
function netDev(counters: Record<string, [rx: number, tx: number]>): string {
  const header =
    "Inter-|   Receive                                                |  Transmit\n" +
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";
  const lines = Object.entries(counters).map(
    ([name, [rx, tx]]) => `${name.padStart(6)}: ${rx} 10 0 0 0 0 0 0 ${tx} 10 0 0 0 0 0 0`,
  );
  return `${header}${lines.join("\n")}\n`;
}

// /proc/self/stat with the given utime and stime.
function selfStat(utime: number, stime: number): string {
  return `42 (novacron (agent)) S 1 42 42 0 -1 4194560 100 0 0 0 ${utime} ${stime} 0 0 20 0 4 0 100 1000 200 0\n`;
}

function burnCpu(ms: number): number {
  let x = 0;
  const until = performance.now() + ms;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  return x;
}

describe("proc parsers", () => {
  test("proc parsers: reads busy and total ticks from the aggregate cpu line, not counting guest time twice", () => {
    expect(parseProcStat(fixture("stat"))).toEqual({
      total: 60377929,
      busy: 60377929 - 46828483 - 16683,
    });
  });

  test("proc parsers: reads MemTotal and MemAvailable from /proc/meminfo in bytes", () => {
    expect(parseMeminfo(fixture("meminfo"))).toEqual({
      totalBytes: 3884428 * 1024,
      availBytes: 2468932 * 1024,
    });
  });

  test("proc parsers: estimates available memory as free + buffers + cached on kernels without MemAvailable", () => {
    const old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n";
    expect(parseMeminfo(old)).toEqual({ totalBytes: 1000 * 1024, availBytes: 420 * 1024 });
  });

  test("proc parsers: reads the three load averages from /proc/loadavg", () => {
    expect(parseLoadavg(fixture("loadavg"))).toEqual([0.52, 0.58, 0.59]);
  });

  test("proc parsers: reads rx and tx bytes of every interface in /proc/net/dev, lo included", () => {
    const counters = parseNetDev(fixture("net/dev"));
    expect([...counters.keys()]).toEqual(["lo", "eth0", "wlan0", "docker0"]);
    expect(counters.get("eth0")).toEqual({ rxBytes: 9846211373, txBytes: 1203387650 });
    expect(counters.get("docker0")).toEqual({ rxBytes: 1048576, txBytes: 2097152 });
  });

  test("proc parsers: reads an interface whose counter runs into its name, as older kernels print it", () => {
    const text = `h1\nh2\n  eth0:123456789 1 0 0 0 0 0 0 987 1 0 0 0 0 0 0\n`;
    expect(parseNetDev(text).get("eth0")).toEqual({ rxBytes: 123456789, txBytes: 987 });
  });

  test("proc parsers: finds utime + stime in /proc/self/stat when comm contains spaces and parentheses", () => {
    expect(parsePidStatCpuTicks(fixture("self/stat"))).toBe(1234 + 567);
  });

  test("proc parsers: reads VmRSS from /proc/self/status in bytes", () => {
    expect(parseVmRssBytes(fixture("self/status"))).toBe(66172 * 1024);
  });

  test("proc parsers: decodes the octal escapes of /proc/mounts", () => {
    const usb = parseMounts(fixture("mounts")).find((m) => m.device === "/dev/sda1");
    expect(usb).toEqual({ device: "/dev/sda1", mountPoint: "/mnt/usb stick", fsType: "ext4" });
  });

  test("proc parsers: return nothing for text in another format instead of throwing or inventing zeros", () => {
    expect(parseProcStat("intr 1 2 3\n")).toBeUndefined();
    expect(parseProcStat("cpu  a b c d\n")).toBeUndefined();
    expect(parseProcStat("cpu0 1 2 3 4\n")).toBeUndefined();
    expect(parseMeminfo("MemFree: 10 kB\n")).toBeUndefined();
    expect(parseLoadavg("")).toBeUndefined();
    expect(parseNetDev("").size).toBe(0);
    expect(parsePidStatCpuTicks("42 no parens")).toBeUndefined();
    expect(parseVmRssBytes("Name:\tkthreadd\n")).toBeUndefined();
  });
});

describe("collector", () => {
  test("collector: computes cpu.util from the delta of two /proc/stat reads", () => {
    using host = hostTree();
    host.write("proc/stat", procStat([1000, 0, 500, 8000, 100, 0, 0, 0, 50, 0]));
    const collector = new HostCollector(host);
    collector.prime(0);
    // +300 user, +100 system, +550 idle, +50 iowait: 400 busy of 1000; the +200 guest is already inside user.
    host.write("proc/stat", procStat([1300, 0, 600, 8550, 150, 0, 0, 0, 250, 0]));
    expect(collector.sample(1000)[SERIES.cpuUtil]).toBe(40);
  });

  test("collector: reports gauges on the first sample and rates only from the second when not primed", () => {
    using host = hostTree();
    const collector = new HostCollector(host);
    const first = collector.sample(0);
    expect(first[SERIES.load1]).toBe(0.52);
    expect(first[SERIES.load15]).toBe(0.59);
    expect(first[SERIES.memUsedPct]).toBe(36.44);
    expect(first[SERIES.memAvailBytes]).toBe(2468932 * 1024);
    expect(first[SERIES.agentRssBytes]).toBe(66172 * 1024);
    expect(first[SERIES.cpuUtil]).toBeUndefined();
    expect(first[SERIES.netRxBps]).toBeUndefined();
    expect(collector.sample(1000)[SERIES.netRxBps]).toBe(0);
  });

  test("collector: sums net.rx_bps and net.tx_bps per second over every interface except lo", () => {
    using host = hostTree();
    host.write("proc/net/dev", netDev({ lo: [0, 0], eth0: [1_000_000, 500_000], wlan0: [10, 20] }));
    const collector = new HostCollector(host);
    collector.prime(10_000);
    host.write(
      "proc/net/dev",
      netDev({ lo: [9_000_000, 9_000_000], eth0: [3_000_000, 900_000], wlan0: [100_010, 20_020] }),
    );
    const out = collector.sample(12_000);
    expect(out[SERIES.netRxBps]).toBe((2_000_000 + 100_000) / 2);
    expect(out[SERIES.netTxBps]).toBe((400_000 + 20_000) / 2);
  });

  test("collector: skips an interface whose counters went backwards instead of reporting a negative rate", () => {
    using host = hostTree();
    host.write("proc/net/dev", netDev({ eth0: [1_000_000, 1_000_000], wlan0: [5_000_000, 5_000_000] }));
    const collector = new HostCollector(host);
    collector.prime(0);
    // wlan0 was re-created (driver reload), so its counters restarted from zero.
    host.write("proc/net/dev", netDev({ eth0: [1_001_000, 1_000_500], wlan0: [2_000, 1_000] }));
    const out = collector.sample(1000);
    expect(out[SERIES.netRxBps]).toBe(1000);
    expect(out[SERIES.netTxBps]).toBe(500);
    // From the next tick on, wlan0 counts again.
    host.write("proc/net/dev", netDev({ eth0: [1_001_000, 1_000_500], wlan0: [3_000, 1_500] }));
    expect(collector.sample(2000)[SERIES.netRxBps]).toBe(1000);
  });

  test("collector: skips interfaces that appeared or disappeared between two reads", () => {
    using host = hostTree();
    host.write("proc/net/dev", netDev({ eth0: [0, 0], usb0: [7_000_000, 7_000_000] }));
    const collector = new HostCollector(host);
    collector.prime(0);
    host.write("proc/net/dev", netDev({ eth0: [300, 100], wwan0: [8_000_000, 8_000_000] }));
    const out = collector.sample(1000);
    expect(out[SERIES.netRxBps]).toBe(300);
    expect(out[SERIES.netTxBps]).toBe(100);
  });

  test("collector: computes agent.cpu_pct of one core from utime + stime at 100 ticks a second", () => {
    using host = hostTree();
    host.write("proc/self/stat", selfStat(1000, 200));
    const collector = new HostCollector(host);
    collector.prime(0);
    // 3 ticks of user and 2 of system time in 2 s: 0.05 s of CPU, 2.5% of a core.
    host.write("proc/self/stat", selfStat(1003, 202));
    expect(collector.sample(2000)[SERIES.agentCpuPct]).toBe(2.5);
  });

  test("collector: produces no per-second rates when the clock stood still or went backwards", () => {
    using host = hostTree();
    host.write("proc/net/dev", netDev({ eth0: [0, 0] }));
    host.write("proc/self/stat", selfStat(0, 0));
    const collector = new HostCollector(host);
    collector.prime(5000);
    host.write("proc/net/dev", netDev({ eth0: [1000, 1000] }));
    host.write("proc/self/stat", selfStat(10, 10));
    const still = collector.sample(5000);
    expect(still[SERIES.netRxBps]).toBeUndefined();
    expect(still[SERIES.agentCpuPct]).toBeUndefined();
    host.write("proc/net/dev", netDev({ eth0: [2000, 2000] }));
    host.write("proc/self/stat", selfStat(20, 20));
    const backwards = collector.sample(4000);
    expect(backwards[SERIES.netRxBps]).toBeUndefined();
    expect(backwards[SERIES.agentCpuPct]).toBeUndefined();
  });

  test("collector: reports temp.cpu_c as the hottest CPU-like thermal zone, ignoring hotter zones of other kinds", () => {
    using host = hostTree();
    const zone = (n: number, type: string, milli: string) => {
      host.write(`sys/class/thermal/thermal_zone${n}/type`, `${type}\n`);
      host.write(`sys/class/thermal/thermal_zone${n}/temp`, `${milli}\n`);
    };
    zone(0, "acpitz", "81000");
    zone(1, "x86_pkg_temp", "52123");
    zone(2, "iwlwifi_1", "90000");
    zone(3, "cpu-thermal", "54367");
    // A zone with a type file but no readable sensor, as a disabled zone looks.
    host.write("sys/class/thermal/thermal_zone4/type", "soc_dts0\n");
    const collector = new HostCollector(host);
    expect(collector.sample(0)[SERIES.tempCpuC]).toBe(54.4);
    host.write("sys/class/thermal/thermal_zone1/temp", "61049\n");
    expect(collector.sample(1000)[SERIES.tempCpuC]).toBe(61);
  });

  test("collector: falls back to the hottest zone of any kind when no zone looks like a CPU", () => {
    using host = hostTree();
    host.write("sys/class/thermal/thermal_zone0/type", "acpitz\n");
    host.write("sys/class/thermal/thermal_zone0/temp", "27800\n");
    host.write("sys/class/thermal/thermal_zone1/type", "pch_skylake\n");
    host.write("sys/class/thermal/thermal_zone1/temp", "43500\n");
    expect(new HostCollector(host).sample(0)[SERIES.tempCpuC]).toBe(43.5);
  });

  test("collector: omits the series of every missing file instead of throwing", () => {
    using host = hostTree();
    host.remove("proc");
    const collector = new HostCollector(host);
    collector.prime(0);
    expect(collector.sample(1000)).toEqual({});
    expect(collector.sampleDisks()).toEqual({});
    host.write("proc/meminfo", fixture("meminfo"));
    expect(Object.keys(collector.sample(2000))).toEqual([SERIES.memUsedPct, SERIES.memAvailBytes]);
  });

  test("collector: rounds each series to its wire precision", () => {
    using host = hostTree();
    host.write("proc/stat", procStat([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    host.write("proc/net/dev", netDev({ eth0: [0, 0] }));
    host.write("sys/class/thermal/thermal_zone0/type", "cpu-thermal\n");
    host.write("sys/class/thermal/thermal_zone0/temp", "47149\n");
    const collector = new HostCollector(host);
    collector.prime(0);
    host.write("proc/stat", procStat([1, 0, 0, 2, 0, 0, 0, 0, 0, 0]));
    host.write("proc/net/dev", netDev({ eth0: [1000, 10] }));
    const out = collector.sample(3000);
    expect(out[SERIES.cpuUtil]).toBe(33.33);
    expect(out[SERIES.netRxBps]).toBe(333);
    expect(out[SERIES.netTxBps]).toBe(3);
    expect(out[SERIES.tempCpuC]).toBe(47.1);
  });

  test("collector: samples the real /proc of this machine within sane ranges", () => {
    const collector = new HostCollector();
    collector.prime(Date.now());
    burnCpu(100);
    const out = collector.sample(Date.now());
    const known = new Set<string>(Object.values(SERIES));
    for (const key of Object.keys(out)) expect(known.has(key)).toBe(true);
    expect(out[SERIES.cpuUtil]).toBeGreaterThan(0);
    expect(out[SERIES.cpuUtil]).toBeLessThanOrEqual(100);
    expect(out[SERIES.load1]).toBeGreaterThanOrEqual(0);
    expect(out[SERIES.memUsedPct]).toBeGreaterThan(0);
    expect(out[SERIES.memUsedPct]).toBeLessThan(100);
    expect(out[SERIES.memAvailBytes]).toBeLessThan(os.totalmem());
    expect(out[SERIES.netRxBps]).toBeGreaterThanOrEqual(0);
    expect(out[SERIES.netTxBps]).toBeGreaterThanOrEqual(0);
    // VmRSS and the runtime's own figure are read moments apart; they agree within a few megabytes.
    expect(Math.abs(out[SERIES.agentRssBytes]! - process.memoryUsage().rss)).toBeLessThan(16 * 1024 * 1024);
    // 100 ms of busy loop is roughly one core for the interval.
    expect(out[SERIES.agentCpuPct]).toBeGreaterThan(20);
    expect(out[SERIES.agentCpuPct]).toBeLessThanOrEqual(100 * os.cpus().length);
    if (out[SERIES.tempCpuC] !== undefined) {
      expect(out[SERIES.tempCpuC]).toBeGreaterThan(-40);
      expect(out[SERIES.tempCpuC]).toBeLessThan(130);
    }
  });
});

describe("disk usage", () => {
  test("disk usage: watches one mount per real filesystem, keeps / and skips pseudo, network and image filesystems", () => {
    expect(selectDiskMounts(parseMounts(fixture("mounts")))).toEqual([
      "/",
      "/boot/firmware",
      "/mnt/usb stick",
    ]);
  });

  test("disk usage: keeps / first even when it is a container's overlay", () => {
    const mounts = parseMounts(
      "overlay / overlay rw 0 0\n/dev/vda /etc/hosts ext4 rw 0 0\n/dev/vdb /data xfs rw 0 0\n",
    );
    expect(selectDiskMounts(mounts)).toEqual(["/", "/etc/hosts", "/data"]);
  });

  test("disk usage: sampleDisks reports disk.used_pct of / as df computes Use%", () => {
    using host = hostTree();
    const out = new HostCollector(host).sampleDisks();
    // The fixture's other mounts do not exist on this machine, so they are left out.
    expect(Object.keys(out)).toEqual(['disk.used_pct{mount="/"}']);
    const used = out['disk.used_pct{mount="/"}']!;
    const df = Bun.spawnSync(["df", "-P", "/"]).stdout.toString();
    const dfPct = Number(/(\d+)%/.exec(df)?.[1]);
    // df rounds up to a whole percent; writes elsewhere may move the disk a little between the two reads.
    expect(Math.abs(Math.ceil(used) - dfPct)).toBeLessThanOrEqual(1);
  });

  test("disk usage: escapes quotes and backslashes of mount points in the label", () => {
    using host = hostTree();
    const odd = join(host.procRoot, 'say "hi" \\ there');
    mkdirSync(odd);
    const out = new HostCollector({ ...host, mountsToWatch: [odd, "/no/such/mount"] }).sampleDisks();
    const label = odd.replaceAll("\\", "\\\\").replaceAll('"', '\\"');
    expect(Object.keys(out)).toEqual([`disk.used_pct{mount="${label}"}`]);
    expect(out[`disk.used_pct{mount="${label}"}`]).toBe(Math.round(diskUsedPct(odd)! * 100) / 100);
  });
});

describe("thermal zones and inventory", () => {
  test("thermal zones: recognise CPU, package and SoC sensors by type and nothing else", () => {
    for (const type of [
      "x86_pkg_temp",
      "cpu-thermal",
      "soc_thermal",
      "CPU-therm",
      "cpu-0-0-usr",
      "soc_dts0",
    ]) {
      expect(isCpuZoneType(type)).toBe(true);
    }
    for (const type of ["acpitz", "iwlwifi_1", "battery", "pch_skylake", "gpu-thermal"]) {
      expect(isCpuZoneType(type)).toBe(false);
    }
  });

  test("inventory: names the OS as NAME VERSION_ID from os-release, else PRETTY_NAME", () => {
    const debian =
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n';
    expect(osFromRelease(debian)).toBe("Debian GNU/Linux 12");
    expect(osFromRelease('NAME="Arch Linux"\nPRETTY_NAME="Arch Linux"\nID=arch\n')).toBe("Arch Linux");
    expect(osFromRelease("PRETTY_NAME='Buildroot 2024.02'\n")).toBe("Buildroot 2024.02");
    expect(osFromRelease("")).toBeUndefined();
    expect(osFromRelease(undefined)).toBeUndefined();
  });

  test("inventory: reports cores, memory, root disk size, arch and OS of this machine", async () => {
    const inv = await inventory();
    expect(inv.cpu_cores).toBe(os.cpus().length);
    expect(inv.mem_bytes).toBe(os.totalmem());
    const root = statfsSync("/");
    expect(inv.disk_bytes).toBe(root.blocks * root.bsize);
    expect(inv.arch).toBe(process.arch);
    expect(inv.os).toBe(osFromRelease(readFileSync("/etc/os-release", "utf8"))!);
  });
});

describe("collector in a container with the host's filesystems mounted", () => {
  test("collector: reads the host's network from pid 1, its mounts from pid 1, disk usage under the host root, and its own figures from /proc/self", () => {
    const base = mkdtempSync(join(os.tmpdir(), "novacron-hostview-"));
    const dir = { path: base };
    const proc = join(dir.path, "proc");
    const hostRoot = join(dir.path, "root");
    mkdirSync(join(proc, "1", "net"), { recursive: true });
    mkdirSync(hostRoot);
    for (const f of ["stat", "meminfo", "loadavg"]) copyFileSync(join(FIXTURE_PROC, f), join(proc, f));
    // The container's own net/dev (a symlink to self/net on a real host proc) must not be read.
    mkdirSync(join(proc, "net"));
    writeFileSync(join(proc, "net", "dev"), "garbage that would not parse\n");
    copyFileSync(join(FIXTURE_PROC, "net", "dev"), join(proc, "1", "net", "dev"));
    writeFileSync(join(proc, "1", "mounts"), "/dev/vda1 / ext4 rw,relatime 0 0\n");
    const c = new HostCollector({ procRoot: proc, sysRoot: join(dir.path, "sys"), hostRoot });
    c.prime(1_000);
    const s = c.sample(2_000);
    expect(s["net.rx_bps"]).toBe(0);
    expect(s["agent.rss_bytes"]).toBeGreaterThan(1_000_000);
    const disks = c.sampleDisks();
    expect(Object.keys(disks)).toEqual(['disk.used_pct{mount="/"}']);
    expect(disks['disk.used_pct{mount="/"}']).toBeGreaterThan(0);
    rmSync(base, { recursive: true, force: true });
  });
});
