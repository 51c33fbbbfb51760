// Whether the data directory's disk can take new data: free space against a reserve, and a ballast file for draining.
//
// Two lines of defence. The reserve: when the file system's free space falls below it (statfs), the
// store stops taking new data before SQLite ever meets ENOSPC, so the writes that drain the store
// (marking sent, deleting acked rows, checkpoints, vacuum) still find room. The ballast: a small file
// of the store's own (DIR/store.reserve), deleted the moment the store becomes full, which gives
// those draining writes their room even if the last write overshot the reserve or another program
// took the last bytes (errors on the link's own writes do not pass through here); it is written
// again once the disk has space. Its bytes count in the store's byte budget.
import { rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isDiskFull, isIoError } from "../../shared/disk-full.ts";

/** Why the store takes no new data: a write failed on a full disk, or free space is below the reserve. */
export type DiskFullReason = "enospc" | "reserve";

export interface DiskGuardOptions {
  dir: string;
  /** Free bytes the file system keeps; below them the store is full. Capped at 5% of the file system. */
  reserveBytes: number;
  /** Size of the ballast file. */
  ballastBytes: number;
  now: () => number;
  /** Room the store will take back by itself after recovering (its WAL regrowing): added to the margin. */
  ownRoom?: () => number;
  /** Called when the state changes (full or not). */
  onChange?: (full: boolean, reason: DiskFullReason | undefined) => void;
}

/** The reserve is at most this share of the file system: a 100 MB disk keeps 5 MB, not the default 32 MiB. */
const RESERVE_SHARE = 0.05;
/**
 * The file system's share in the recovery margin is capped: 5% of a 1 TB disk is 50 GB, and a store
 * full for a large push on such a disk would wait for that much to come free.
 */
const MAX_SHARE_MARGIN = 64 * 1024 * 1024;
/** The full state lasts at least this long after the disk was last seen short of room. */
const MIN_FULL_MS = 3000;

/** The disk-full state of one data directory. */
export class DiskGuard {
  readonly ballastPath: string;
  readonly #o: DiskGuardOptions;
  #reserve: number;
  #full: { since: number; reason: DiskFullReason } | undefined;
  #ballastBytes: number;
  /** Last time the disk was seen short of room (a failed write, or free space below the mark). */
  #lastLow = 0;

  constructor(opts: DiskGuardOptions) {
    this.#o = opts;
    this.#reserve = opts.reserveBytes;
    // On a small file system the ballast is at most 2% of it (a 1 MiB ballast on an 8 MiB card is too much).
    this.#ballastBytes = Math.max(64 * 1024, Math.min(opts.ballastBytes, Math.floor(this.#fsBytes() * 0.02)));
    this.ballastPath = join(opts.dir, "store.reserve");
    const free = this.freeBytes();
    if (free !== undefined && free < this.reserveBytes()) {
      // Started on a full disk: the ballast, if an earlier run left one, is the room to drain with.
      this.#setFull("reserve");
    } else if (!this.#ensureBallast()) this.#setFull("enospc");
  }

  /** True while the store must not take new data. */
  get full(): boolean {
    return this.#full !== undefined;
  }

  get reason(): DiskFullReason | undefined {
    return this.#full?.reason;
  }

  /** When the disk became full (ms), or undefined. */
  get since(): number | undefined {
    return this.#full?.since;
  }

  /** Bytes of the ballast file now on disk (0 while released). */
  ballastOnDisk(): number {
    try {
      return statSync(this.ballastPath).size;
    } catch {
      return 0;
    }
  }

  setReserve(bytes: number): void {
    this.#reserve = bytes;
  }

  /** Bytes the ballast file takes when in place. */
  get ballastBytes(): number {
    return this.#ballastBytes;
  }

  /** Size of the data directory's file system (infinite if unknown). */
  fsBytes(): number {
    return this.#fsBytes();
  }

  #fsBytes(): number {
    try {
      const s = statfsSync(this.#o.dir);
      return s.blocks * s.bsize;
    } catch {
      return Number.POSITIVE_INFINITY;
    }
  }

  /** The reserve in force: the setting, capped at 5% of the file system. */
  reserveBytes(): number {
    return Math.min(this.#reserve, Math.floor(this.#fsBytes() * RESERVE_SHARE));
  }

  /** Free bytes for an unprivileged writer on the data directory's file system; undefined if unknown. */
  freeBytes(): number | undefined {
    try {
      const s = statfsSync(this.#o.dir);
      return s.bavail * s.bsize;
    } catch {
      return undefined;
    }
  }

  /**
   * Looks at an error from a write: if it says the disk is full, the store becomes full (and the
   * ballast is released so that draining can go on). Returns whether it was a full disk.
   */
  hit(err: unknown): boolean {
    let full = isDiskFull(err);
    // SQLite reports a failed -shm extension as an I/O error; with no free space it is the same thing.
    if (!full && isIoError(err)) full = (this.freeBytes() ?? Number.POSITIVE_INFINITY) < this.reserveBytes();
    if (!full) return false;
    this.#releaseBallast();
    this.#lastLow = this.#o.now();
    if (this.#full?.reason !== "enospc") this.#setFull("enospc");
    return true;
  }

  /**
   * Compares free space with the reserve. Full when below it; no longer full when there is room for
   * the reserve and the ballast again (hysteresis: the ballast is written back first). Returns true
   * when the store has just recovered.
   */
  check(): boolean {
    let free: number;
    let reserve: number;
    let fs: number;
    try {
      const s = statfsSync(this.#o.dir);
      free = s.bavail * s.bsize;
      fs = s.blocks * s.bsize;
      reserve = Math.min(this.#reserve, Math.floor(fs * RESERVE_SHARE));
    } catch {
      return false;
    }
    if (!this.#full) {
      if (free < reserve) this.#setFull("reserve");
      return false;
    }
    // Hysteresis, so that the state does not flap while something keeps filling the disk: room for
    // the ballast again plus a margin (the reserve, the ballast, or 5% of the file system, whichever
    // is largest: cutting our own WAL back is not space that returned), held for MIN_FULL_MS.
    const now = this.#o.now();
    if (free < reserve) this.#lastLow = now;
    const ballastMissing = this.#ballastBytes - this.ballastOnDisk();
    const margin =
      Math.max(
        64 * 1024,
        reserve,
        this.#ballastBytes,
        Math.min(MAX_SHARE_MARGIN, Math.floor(fs * RESERVE_SHARE)),
      ) + (this.#o.ownRoom?.() ?? 0);
    if (free < reserve + ballastMissing + margin) {
      this.#lastLow = now;
      return false;
    }
    if (now - this.#lastLow < MIN_FULL_MS) return false;
    if (!this.#ensureBallast()) return false;
    this.#full = undefined;
    this.#o.onChange?.(false, undefined);
    return true;
  }

  /** Whether a write of about `bytes` leaves free space above the reserve (the state is left as it is). */
  roomFor(bytes: number): boolean {
    if (this.#full) return false;
    const free = this.freeBytes();
    return free === undefined || free - bytes >= this.reserveBytes();
  }

  /**
   * Whether a write of about `bytes` would take free space below the reserve; if so the store
   * becomes full now, before the write, instead of after it.
   */
  wouldFill(bytes: number): boolean {
    if (this.#full) return true;
    const free = this.freeBytes();
    if (free === undefined || free - bytes >= this.reserveBytes()) return false;
    this.#setFull("reserve");
    return true;
  }

  // Full for either reason: the ballast goes at once, so that the writes that drain the store
  // (marking sent, deleting acked rows, checkpoints) have room even if the last write overshot.
  #setFull(reason: DiskFullReason): void {
    this.#releaseBallast();
    this.#lastLow = this.#o.now();
    const first = this.#full === undefined;
    this.#full = { since: this.#full?.since ?? this.#o.now(), reason };
    if (first) this.#o.onChange?.(true, reason);
  }

  #releaseBallast(): void {
    rmSync(this.ballastPath, { force: true });
  }

  // Writes the ballast (real blocks, not a sparse file); false if the disk has no room for it.
  #ensureBallast(): boolean {
    if (this.ballastOnDisk() >= this.#ballastBytes) return true;
    try {
      writeFileSync(this.ballastPath, new Uint8Array(this.#ballastBytes), { mode: 0o600 });
      return true;
    } catch (err) {
      this.#releaseBallast();
      if (isDiskFull(err)) return false;
      throw err;
    }
  }
}
