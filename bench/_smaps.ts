// Splits a process's resident memory by mapping, from /proc/<pid>/smaps (Linux only), for the memory benchmarks.
import { readFileSync } from "node:fs";

/** One mapping of /proc/<pid>/smaps, with its resident and anonymous bytes. */
export interface Vma {
  start: number;
  end: number;
  perms: string;
  path: string;
  rss: number;
  anon: number;
}

/** Resident bytes by where they come from. The parts add up to `rss`. */
export interface RssBreakdown {
  rss: number;
  /** File-backed pages of the executable (bun, or the compiled agent): code and read-only data. */
  exeFile: number;
  /** File-backed pages of shared libraries (libc, libm, ld.so ...). */
  libFile: number;
  /** Pages of files under the process's data directory: SQLite's -shm, the database if mmapped. */
  dataFile: number;
  otherFile: number;
  /** Anonymous pages, split below. */
  anon: number;
  /** Written data of the executable: its .data/.bss and relocated pages, anonymous once touched. */
  anonExe: number;
  /** Large anonymous reservations of 256 MiB-4 GiB: Bun's allocator (mimalloc) arena, which also holds the JS heap. */
  anonArena: number;
  /** Reservations of 4 GiB and more: JSC's Structure heap (object shapes). */
  anonStructures: number;
  /** Executable anonymous memory: JIT code. */
  anonJit: number;
  /** The main stack and thread stacks (mappings right behind a one-page guard). */
  anonStacks: number;
  /** glibc malloc: the brk heap and its 64 MiB per-thread arenas (used by C libraries, not by Bun's allocator). */
  anonGlibc: number;
  /** Anonymous pages nothing above claims, including private pages of libraries. */
  anonOther: number;
}

export const BREAKDOWN_KEYS = [
  "rss",
  "exeFile",
  "libFile",
  "dataFile",
  "otherFile",
  "anon",
  "anonExe",
  "anonArena",
  "anonStructures",
  "anonJit",
  "anonStacks",
  "anonGlibc",
  "anonOther",
] as const satisfies readonly (keyof RssBreakdown)[];

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/;

/** The mappings of a process, or undefined once it is gone. */
export function readVmas(pid: number): Vma[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, "utf8");
  } catch {
    return undefined;
  }
  const out: Vma[] = [];
  let cur: Vma | undefined;
  for (const line of text.split("\n")) {
    const h = HEADER.exec(line);
    if (h) {
      // Addresses above 2^53 (only [vsyscall]) lose precision; their sizes do not matter here.
      cur = {
        start: Number.parseInt(h[1]!, 16),
        end: Number.parseInt(h[2]!, 16),
        perms: h[3]!,
        path: h[4]!.trim(),
        rss: 0,
        anon: 0,
      };
      out.push(cur);
    } else if (cur && line.startsWith("Rss:")) {
      cur.rss = Number(line.slice(4).trim().split(" ")[0]) * KiB;
    } else if (cur && line.startsWith("Anonymous:")) {
      cur.anon = Number(line.slice(10).trim().split(" ")[0]) * KiB;
    }
  }
  return out;
}

const isAnonymous = (v: Vma) => v.path === "" || v.path.startsWith("[anon");

/**
 * Classifies each mapping. The anonymous classes are inferred from shape (size, permissions,
 * neighbours), because Bun names none of its mappings; `exe` is the executable's path and `dataDir`
 * the process's data directory, if it has one.
 */
export function breakDown(vmas: Vma[], exe: string, dataDir?: string): RssBreakdown {
  const b: RssBreakdown = Object.fromEntries(BREAKDOWN_KEYS.map((k) => [k, 0])) as unknown as RssBreakdown;
  for (let i = 0; i < vmas.length; i++) {
    const v = vmas[i]!;
    const prev = vmas[i - 1];
    const next = vmas[i + 1];
    const size = v.end - v.start;
    b.rss += v.rss;
    b.anon += v.anon;
    if (!isAnonymous(v) && !v.path.startsWith("[")) {
      const file = v.rss - v.anon;
      if (v.path === exe) {
        b.exeFile += file;
        b.anonExe += v.anon;
        continue;
      }
      if (/\.so(\.|$)/.test(v.path)) b.libFile += file;
      else if (dataDir && v.path.startsWith(dataDir)) b.dataFile += file;
      else b.otherFile += file;
      b.anonOther += v.anon;
      continue;
    }
    if (v.path === "[heap]") b.anonGlibc += v.anon;
    else if (v.path === "[stack]") b.anonStacks += v.anon;
    else if (v.path.startsWith("[") && !v.path.startsWith("[anon")) b.anonOther += v.anon;
    else if (v.perms.includes("x")) b.anonJit += v.anon;
    else if (prev?.path === exe && prev.end === v.start) b.anonExe += v.anon;
    else if (prev && prev.perms === "---p" && prev.end - prev.start === 4 * KiB && prev.end === v.start) {
      b.anonStacks += v.anon;
    } else if (next && next.perms === "---p" && next.start === v.end && next.end - v.start === 64 * MiB) {
      b.anonGlibc += v.anon;
    } else if (size >= 4 * GiB) b.anonStructures += v.anon;
    else if (size >= 256 * MiB) b.anonArena += v.anon;
    else b.anonOther += v.anon;
  }
  return b;
}
