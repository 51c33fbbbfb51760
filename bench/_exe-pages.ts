// Which ELF sections of an executable a process holds resident, from /proc/<pid>/pagemap (Linux only).
import { closeSync, openSync, readSync } from "node:fs";
import type { Vma } from "./_smaps.ts";

const PAGE = 4096;

interface Section {
  name: string;
  addr: number;
  size: number;
}

/** The allocated sections of an ELF file (`readelf -S`), with their load addresses. */
export function sectionsOf(file: string): Section[] {
  const r = Bun.spawnSync(["readelf", "-S", "-W", file], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`readelf -S ${file}: ${r.stderr}`);
  const out: Section[] = [];
  // "  [15] .text  PROGBITS  0000000001a40600 1838600 4df3419 00  AX  0   0 256"
  const row = /^\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)/;
  for (const line of r.stdout.toString().split("\n")) {
    const m = row.exec(line);
    if (!m) continue;
    const addr = Number.parseInt(m[2]!, 16);
    if (addr > 0) out.push({ name: m[1]!, addr, size: Number.parseInt(m[3]!, 16) });
  }
  return out;
}

/**
 * Resident file-backed bytes of `exe` in process `pid`, per section; pages outside every section are
 * "(other)". Reads the present and file-page bits of pagemap, which any process may read for its own
 * user's processes. Assumes a non-PIE executable (load address = section address), as bun is.
 */
export function residentSections(
  pid: number,
  vmas: Vma[],
  exe: string,
  sections: Section[],
): Record<string, number> {
  const out: Record<string, number> = {};
  const fd = openSync(`/proc/${pid}/pagemap`, "r");
  try {
    for (const v of vmas) {
      if (v.path !== exe) continue;
      const pages = (v.end - v.start) / PAGE;
      const buf = Buffer.alloc(pages * 8);
      readSync(fd, buf, 0, buf.length, (v.start / PAGE) * 8);
      for (let i = 0; i < pages; i++) {
        const entry = buf.readBigUInt64LE(i * 8);
        const present = (entry >> 63n) & 1n;
        const filePage = (entry >> 61n) & 1n;
        if (!present || !filePage) continue;
        const addr = v.start + i * PAGE;
        const s = sections.find((x) => addr + PAGE > x.addr && addr < x.addr + x.size);
        const name = s?.name ?? "(other)";
        out[name] = (out[name] ?? 0) + PAGE;
      }
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
