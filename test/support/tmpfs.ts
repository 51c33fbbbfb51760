// A small real file system for disk-full tests: a tmpfs of a given size (needs root, as in CI), unmounted on dispose.
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Tmpfs {
  path: string;
  /** Bytes free for a writer now. */
  free(): number;
  /** Writes a file of `bytes` (real blocks) at `name`; with no size, fills the file system to the last byte. */
  fill(name: string, bytes?: number): number;
  [Symbol.dispose](): void;
}

/** Mounts a tmpfs of `bytes` on a fresh directory. Throws, naming the command, if it cannot. */
export function mountTmpfs(bytes: number): Tmpfs {
  const path = mkdtempSync(join(tmpdir(), "novacron-tmpfs-"));
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", path], { encoding: "utf8" });
  if (r.status !== 0) {
    rmSync(path, { recursive: true, force: true });
    throw new Error(`mount -t tmpfs -o size=${bytes} failed (the disk-full tests need root): ${r.stderr}`);
  }
  const free = () => {
    const s = statfsSync(path);
    return s.bavail * s.bsize;
  };
  return {
    path,
    free,
    fill(name, size) {
      const fd = openSync(join(path, name), "a");
      const chunk = new Uint8Array(64 * 1024).fill(1);
      let written = 0;
      try {
        while (size === undefined || written < size) {
          const n = size === undefined ? chunk.length : Math.min(chunk.length, size - written);
          try {
            written += writeSync(fd, chunk, 0, n);
          } catch (err) {
            if ((err as { code?: string }).code === "ENOSPC" && size === undefined && n > 1) {
              // The last bytes: smaller writes until not even one fits.
              const one = new Uint8Array(4096).fill(1);
              for (;;) {
                try {
                  written += writeSync(fd, one);
                } catch {
                  return written;
                }
              }
            }
            throw err;
          }
        }
        return written;
      } finally {
        closeSync(fd);
      }
    },
    [Symbol.dispose]() {
      spawnSync("umount", ["-l", path]);
      rmSync(path, { recursive: true, force: true });
    },
  };
}
