// A task's bounded output log on disk: output.log (the child appends) and output.log.1 (the previous part).
//
// The child holds its own append-mode descriptor on output.log, so its output needs no agent: a
// re-adopted process keeps logging while the agent restarts. That descriptor cannot be moved, so a
// rename-based rotation would leave the child writing into the renamed file; the ring rotates by
// copy-then-truncate instead, with the writers held still: the task's process group is stopped
// (SIGSTOP, and the agent waits until every member is stopped), the last `maxBytes` of output.log
// go to output.log.1 (written to a temporary file and renamed, so a reader never sees half of it),
// output.log is truncated, and the group continues (SIGCONT). No line is lost between the copy and
// the truncate (issue 11). O_APPEND makes the child's next write land at the new end, without a hole.
// A task the agent paused stays paused; a process that left the group is not held.
//
// On a full disk (ENOSPC) the previous part is deleted first to make room for the copy; if even
// that fails the current part is still truncated, so that a task cannot fill the disk through its
// log, and the bytes given up are counted (`lostBytes`). output.log can exceed the bound by what the
// task writes between two checks (the manager checks every second).
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { isDiskFull } from "../../shared/disk-full.ts";
import type { Logger } from "../../shared/log.ts";
import { readProcStat, signalGroup } from "./proc.ts";

/** How long a rotation waits for the task's group to stop before copying anyway. */
const STOP_WAIT_MS = 500;

export const DEFAULT_LOG_BYTES = 256 * 1024;

/** The two-file output ring of one alloc, under `dir`. */
export class LogRing {
  readonly dir: string;
  readonly current: string;
  readonly previous: string;
  readonly maxBytes: number;
  /** Output given up because the disk was full during a rotation. */
  lostBytes = 0;
  readonly #writerGroup: () => number | undefined;

  /**
   * `writerGroup` names the process group writing output.log now (undefined: none, or one the agent
   * paused, which must not be continued); rotation holds it still.
   */
  constructor(
    dir: string,
    maxBytes = DEFAULT_LOG_BYTES,
    writerGroup: () => number | undefined = () => undefined,
  ) {
    this.dir = dir;
    this.current = join(dir, "output.log");
    this.previous = join(dir, "output.log.1");
    this.maxBytes = maxBytes;
    this.#writerGroup = writerGroup;
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
    const group = this.#writerGroup();
    const held = group !== undefined && holdGroup(group);
    try {
      size = statSync(this.current).size;
      const tail = readRange(this.current, Math.max(0, size - this.maxBytes), Math.min(size, this.maxBytes));
      if (!this.#writePrevious(tail)) this.lostBytes += tail.byteLength;
      truncateSync(this.current, 0);
    } finally {
      if (held) signalGroup(group, "SIGCONT");
    }
    return true;
  }

  // output.log.1 replaced whole (temporary file, then rename); on ENOSPC the old one goes first to
  // make room, then one more try. False if the disk had no room even so.
  #writePrevious(tail: Uint8Array): boolean {
    const tmp = `${this.previous}.tmp`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(tmp, tail);
        renameSync(tmp, this.previous);
        return true;
      } catch (err) {
        rmSync(tmp, { force: true });
        if (!isDiskFull(err)) throw err;
        rmSync(this.previous, { force: true });
      }
    }
    return false;
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

// SIGSTOPs the group and waits (briefly) until each member is stopped, so nothing writes during the
// copy; a signal is only delivered when the process next runs. False if the group is gone.
function holdGroup(pgid: number): boolean {
  if (!signalGroup(pgid, "SIGSTOP")) return false;
  const deadline = Date.now() + STOP_WAIT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (Date.now() < deadline) {
    if (groupMembers(pgid).every((state) => state === "T" || state === "t" || state === "Z" || state === "X"))
      return true;
    Atomics.wait(pause, 0, 0, 1);
  }
  return true;
}

// The states of the live processes in group `pgid` (from /proc).
function groupMembers(pgid: number): string[] {
  const states: string[] = [];
  let pids: string[];
  try {
    pids = readdirSync("/proc");
  } catch {
    return states;
  }
  for (const name of pids) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const st = readProcStat(Number(name));
    if (st?.pgid === pgid) states.push(st.state);
  }
  return states;
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
