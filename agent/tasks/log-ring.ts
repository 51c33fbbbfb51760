// A task's bounded output log on disk: output.log (the child appends) and output.log.1 (the previous part).
//
// The child holds its own append-mode descriptor on output.log, so its output needs no agent: a
// re-adopted process keeps logging while the agent restarts. The agent bounds the ring by size with
// copytruncate: when output.log is over `maxBytes`, its last `maxBytes` go to output.log.1 and it is
// truncated to zero. O_APPEND makes the child's next write land at the new end, without a hole.
// Trade-offs: output written between the copy and the truncate is lost, and output.log can exceed
// the bound by what the task writes between two checks (the manager checks every second).
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../shared/log.ts";

export const DEFAULT_LOG_BYTES = 256 * 1024;

/** The two-file output ring of one alloc, under `dir`. */
export class LogRing {
  readonly dir: string;
  readonly current: string;
  readonly previous: string;
  readonly maxBytes: number;

  constructor(dir: string, maxBytes = DEFAULT_LOG_BYTES) {
    this.dir = dir;
    this.current = join(dir, "output.log");
    this.previous = join(dir, "output.log.1");
    this.maxBytes = maxBytes;
  }

  /** Opens output.log for appending, for a child's stdout and stderr; the caller closes it after spawn. */
  openForWriter(): number {
    mkdirSync(this.dir, { recursive: true, mode: 0o750 });
    return openSync(this.current, "a", 0o640);
  }

  /** Empties both parts (a job's tail must be its own run's output). */
  reset(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o750 });
    writeFileSync(this.current, "");
    rmSync(this.previous, { force: true });
  }

  /** Rotates if output.log is over the bound; true if it rotated. */
  rotateIfNeeded(): boolean {
    let size: number;
    try {
      size = statSync(this.current).size;
    } catch {
      return false;
    }
    if (size <= this.maxBytes) return false;
    writeFileSync(this.previous, readRange(this.current, size - this.maxBytes, this.maxBytes));
    truncateSync(this.current, 0);
    return true;
  }

  /** rotateIfNeeded() that logs instead of throwing. */
  rotateQuietly(log: Logger): void {
    try {
      this.rotateIfNeeded();
    } catch (err) {
      log.warn("task log rotation failed", { dir: this.dir, error: err as Error });
    }
  }

  /** The last `n` bytes of output (both parts), as text. */
  tailBytes(n: number): string {
    // A cut through a multi-byte character at the start decodes to U+FFFD; that is fine for a tail.
    return new TextDecoder().decode(this.#tailRaw(n));
  }

  #tailRaw(n: number): Uint8Array {
    const cur = readTail(this.current, n);
    const prev = cur.length < n ? readTail(this.previous, n - cur.length) : new Uint8Array(0);
    const all = new Uint8Array(prev.length + cur.length);
    all.set(prev, 0);
    all.set(cur, prev.length);
    return all;
  }

  /** The last `lines` lines of output; a trailing newline does not count as an empty line. */
  tail(lines: number): string {
    if (lines <= 0) return "";
    let bytes = Math.min(64 * 1024, 2 * this.maxBytes);
    for (;;) {
      const raw = this.#tailRaw(bytes);
      const text = new TextDecoder().decode(raw);
      const parts = text.split("\n");
      if (parts.at(-1) === "") parts.pop();
      if (parts.length > lines || bytes >= 2 * this.maxBytes || raw.length < bytes) {
        const out = parts.slice(-lines).join("\n");
        return text.endsWith("\n") && out ? `${out}\n` : out;
      }
      bytes = Math.min(bytes * 4, 2 * this.maxBytes);
    }
  }

  /** Deletes the alloc's directory (the alloc is gone). */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function readTail(path: string, n: number): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return new Uint8Array(0);
  }
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(n, size);
    const buf = new Uint8Array(len);
    const got = readSync(fd, buf, 0, len, size - len);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

function readRange(path: string, from: number, len: number): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(len);
    const got = readSync(fd, buf, 0, len, from);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
