// Small tmpfs mounts for agents' data directories, and a filler file that keeps such a disk full for a while.
import { closeSync, mkdirSync, openSync, statfsSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

const mounted = new Set<string>();

/** Mounts a tmpfs of `sizeMb` at `dir` (root only); unmounted by unmountAllSync. */
export function mountTmpfs(dir: string, sizeMb: number): void {
  mkdirSync(dir, { recursive: true });
  const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${sizeMb}m,mode=0700`, "tmpfs", dir], {
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`mount tmpfs at ${dir} failed: ${r.stderr.toString().trim()}`);
  mounted.add(dir);
}

/** Unmounts every tmpfs this process mounted (lazily, so a process still holding a file cannot stop it). */
export function unmountAllSync(): string[] {
  const done: string[] = [];
  for (const dir of mounted) {
    const r = Bun.spawnSync(["umount", "-l", dir], { stderr: "pipe" });
    if (r.exitCode === 0) done.push(dir);
  }
  mounted.clear();
  return done;
}

/** Free and total bytes of the filesystem holding `dir`. */
export function diskSpace(dir: string): { free: number; total: number } {
  const s = statfsSync(dir);
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

const CHUNK = new Uint8Array(1 << 20).fill(0x5a);

// Appends to fd until the filesystem refuses: 1 MiB chunks, then 4 KiB ones. Returns bytes written.
function fillUp(fd: number): number {
  let written = 0;
  for (const size of [1 << 20, 4096, 512]) {
    const chunk = CHUNK.subarray(0, size);
    for (;;) {
      try {
        const n = writeSync(fd, chunk);
        written += n;
        if (n < size) break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOSPC") break;
        throw err;
      }
    }
  }
  return written;
}

/**
 * A file that fills the disk at `dir` and tops it up every `topUpMs` (as another process that keeps
 * writing would), so space the agent frees is taken again until stop() removes the file.
 */
export class DiskFiller {
  readonly path: string;
  #fd: number | undefined;
  #timer: Timer | undefined;
  bytes = 0;

  constructor(dir: string) {
    this.path = join(dir, "chaos-filler.bin");
  }

  get active(): boolean {
    return this.#fd !== undefined;
  }

  start(topUpMs = 2000): number {
    this.#fd = openSync(this.path, "a");
    this.bytes += fillUp(this.#fd);
    this.#timer = setInterval(() => {
      if (this.#fd !== undefined) this.bytes += fillUp(this.#fd);
    }, topUpMs);
    return this.bytes;
  }

  stop(): void {
    clearInterval(this.#timer);
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    try {
      unlinkSync(this.path);
    } catch {}
    this.bytes = 0;
  }
}
