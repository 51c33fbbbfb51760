// Hardware and OS inventory for the hello message: cheap synchronous facts first, systeminformation only where they fall short.
import os from "node:os";
import { readText } from "./_read-text.ts";
import { diskSizeBytes } from "./disk-usage.ts";

/** What the agent tells the hub about its host in `hello`. */
export interface Inventory {
  cpu_cores: number;
  mem_bytes: number;
  /** Size of the root filesystem; absent when it cannot be read. */
  disk_bytes?: number;
  /** Node's names: "x64", "arm64", ... */
  arch: string;
  /** Distribution name and version, e.g. "Debian GNU/Linux 12". */
  os: string;
}

/** Hardware/OS inventory for the hello message; on Linux it reads os-release and statfs("/") and spawns nothing (~0.5 ms). */
export async function inventory(): Promise<Inventory> {
  const result: Inventory = {
    // os.cpus() can come back empty where /proc/cpuinfo is hidden (some sandboxes); availableParallelism never does.
    cpu_cores: os.cpus().length || os.availableParallelism(),
    mem_bytes: os.totalmem(),
    arch: os.arch(),
    os:
      osFromRelease(readText("/etc/os-release") ?? readText("/usr/lib/os-release")) ??
      (await osFromSysinfo()),
  };
  const disk = diskSizeBytes("/");
  if (disk !== undefined) result.disk_bytes = disk;
  return result;
}

/** "NAME VERSION_ID" from os-release(5) text, falling back to PRETTY_NAME; undefined when neither is present. */
export function osFromRelease(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match?.[1] !== undefined && match[2] !== undefined) fields.set(match[1], unquote(match[2]));
  }
  const name = fields.get("NAME");
  const version = fields.get("VERSION_ID");
  if (name !== undefined) return version === undefined ? name : `${name} ${version}`;
  return fields.get("PRETTY_NAME");
}

function unquote(value: string): string {
  const quoted = /^(["'])(.*)\1$/.exec(value);
  return quoted?.[2] !== undefined ? quoted[2].replace(/\\(.)/g, "$1") : value;
}

// Only for hosts without os-release (macOS, Windows, minimal images). Loaded on demand because, measured on Linux,
// importing systeminformation takes ~46 ms, osInfo() another ~26 ms with child processes, and together they add
// ~16 MiB of RSS that would stay for good against the agent's 35 MB budget (docs/targets.md).
async function osFromSysinfo(): Promise<string> {
  try {
    const si = await import("systeminformation");
    const info = await si.osInfo();
    return `${info.distro} ${info.release}`.trim() || `${os.type()} ${os.release()}`;
  } catch {
    return `${os.type()} ${os.release()}`;
  }
}
