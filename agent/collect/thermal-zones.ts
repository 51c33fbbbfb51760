// Finds the CPU temperature sensors under /sys/class/thermal, so that each tick only reads their `temp` files.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { readText } from "./_read-text.ts";
import { parseMillidegrees } from "./proc-parsers.ts";

// Names seen in the wild: x86_pkg_temp (Intel), cpu-thermal (Raspberry Pi), soc_thermal / soc_dts0 (Atom, Rockchip),
// CPU-therm (Jetson), cpu0-thermal, cpu-0-0-usr (Qualcomm). acpitz, wifi and battery zones are not the CPU.
const CPU_ZONE_TYPE = /cpu|soc|pkg|package/i;

/** Whether a thermal zone `type` names a CPU, package or SoC sensor. */
export function isCpuZoneType(type: string): boolean {
  return CPU_ZONE_TYPE.test(type);
}

/** Paths of the `temp` files to watch: the CPU-like zones, or every zone when none looks like a CPU; empty without /sys/class/thermal. */
export function discoverCpuTempPaths(sysRoot: string): string[] {
  const dir = join(sysRoot, "class", "thermal");
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => /^thermal_zone\d+$/.test(name));
  } catch {
    return [];
  }
  const cpu: string[] = [];
  const all: string[] = [];
  for (const name of names.sort()) {
    const tempPath = join(dir, name, "temp");
    // A zone whose sensor is switched off answers EINVAL or ENODATA; leaving it out spares a throw every tick.
    if (readText(tempPath) === undefined) continue;
    all.push(tempPath);
    if (isCpuZoneType(readText(join(dir, name, "type")) ?? "")) cpu.push(tempPath);
  }
  return cpu.length > 0 ? cpu : all;
}

/** The highest temperature among `paths`, in degrees Celsius, or undefined when none can be read. */
export function readMaxTempC(paths: readonly string[]): number | undefined {
  let max: number | undefined;
  for (const path of paths) {
    const text = readText(path);
    const celsius = text === undefined ? undefined : parseMillidegrees(text);
    if (celsius !== undefined && (max === undefined || celsius > max)) max = celsius;
  }
  return max;
}
