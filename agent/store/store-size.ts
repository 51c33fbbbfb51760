// The store's byte budget on disk: the WAL's size and checkpoints, free pages given back, and the outbox's share of the room.
//
// The files counted are agent.db, its -wal and -shm, and the ballast (DiskGuard). The WAL gets a
// sixteenth of the budget (64 KiB to 4 MiB, at most 5% of the file system): checkpointed at half of
// it, cut back to it after each checkpoint. Free pages go back a chunk at a time. The outbox gets
// buffer_bytes, or its share of what the rest of the store leaves, whichever is less.
import type { Database } from "bun:sqlite";
import { statSync } from "node:fs";
import type { Outbox } from "../../shared/link/index.ts";
import type { DiskGuard } from "./disk-guard.ts";

const MiB = 1024 * 1024;
/**
 * The outbox gets this share of the room: the budget's relief runs a downsampling pass inside the
 * append that went over, in one transaction, and its WAL holds every page of the rows it folds. A pass
 * is a delete and an insert of the folded rows only (rows keep their ids; nothing later moves), but a
 * day of 1 s batches are small rows that share their pages: folding the whole day (one transaction)
 * wrote 2,149 KiB of WAL for 1,849 KiB of outbox (bench/outbox.ts, "whole-day pass WAL"). Only bodies
 * large enough to overflow leave their pages unwritten when deleted, so this stays 2.
 */
const RELIEVE_WAL_FACTOR = 2;

/** The byte budget of one store's files, and the housekeeping that keeps them inside it. */
export class StoreSize {
  readonly #path: string;
  readonly #disk: DiskGuard;
  /** The WAL's share: checkpointed at half of it, cut back to it. */
  readonly walBytes: number;
  /** Largest WAL seen or expected: one transaction can take it past the checkpoint threshold, and it counts. */
  #walPeak = 0;
  #bufferBytes: number;
  #storeBytes: number;
  #outboxBudget: number;
  #db: Database | undefined;
  #outbox: Outbox | undefined;
  #pageSize = 4096;

  constructor(opts: { path: string; disk: DiskGuard; bufferBytes: number; storeBytes: number }) {
    this.#path = opts.path;
    this.#disk = opts.disk;
    this.#bufferBytes = opts.bufferBytes;
    this.#storeBytes = opts.storeBytes;
    this.#outboxBudget = opts.bufferBytes;
    this.walBytes = clamp(
      Math.min(StoreSize.share(opts.storeBytes), Math.floor(opts.disk.fsBytes() / 20)),
      64 * 1024,
      4 * MiB,
    );
  }

  /** A sixteenth of a (finite) budget: the WAL's and the ballast's sizes start from it. */
  static share(storeBytes: number): number {
    return Number.isFinite(storeBytes) ? Math.floor(storeBytes / 16) : 4 * MiB;
  }

  /** The budget (infinite when only buffer_bytes bounds the store). */
  get storeBytes(): number {
    return this.#storeBytes;
  }

  /** The outbox budget in force. */
  get outboxBudget(): number {
    return this.#outboxBudget;
  }

  /** The WAL the store takes back by itself after recovering (for the disk-full hysteresis). */
  get walPeak(): number {
    return this.#walPeak;
  }

  /** Sets the WAL pragmas on the open database and starts managing it with its outbox. */
  attach(db: Database, pageSize: number, full: boolean): void {
    this.#db = db;
    this.#pageSize = pageSize;
    db.run(`PRAGMA journal_size_limit = ${this.walBytes}`);
    this.walMode(full);
  }

  /** The outbox whose budget this sets. */
  manage(outbox: Outbox): void {
    this.#outbox = outbox;
  }

  /**
   * On a full disk the WAL must fit in the room left (the reserve, or the released ballast): it is
   * checkpointed after every commit, so that each drain write reuses the same few pages of it.
   */
  walMode(full: boolean): void {
    if (!this.#db) return;
    // Checkpointed at half the WAL's share, or at half the ballast if less (what a checkpoint may owe).
    const threshold = Math.min(this.walBytes, this.#disk.ballastBytes) / 2;
    const pages = full ? 1 : Math.max(8, Math.floor(threshold / this.#pageSize));
    this.#db.run(`PRAGMA wal_autocheckpoint = ${pages}`);
  }

  /** Changes the budgets (hot config); an infinite `storeBytes` means no bound beyond `bufferBytes`. */
  setBudgets(bufferBytes: number, storeBytes: number | undefined): void {
    this.#bufferBytes = bufferBytes;
    if (storeBytes !== undefined) this.#storeBytes = storeBytes;
  }

  /** Bytes of the store's files on disk: database, WAL, shared memory and ballast. */
  onDiskBytes(): number {
    let total = this.#disk.ballastOnDisk();
    for (const suffix of ["", "-wal", "-shm"]) total += fileSize(this.#path + suffix);
    return total;
  }

  /** Notes the WAL's size after a large write (a flush), so that the budget leaves room for it. */
  noteWal(): void {
    this.#walPeak = Math.max(this.#walPeak, fileSize(`${this.#path}-wal`));
  }

  /** Expects a write of `bytes` (its WAL holds about twice that); true if the files are near the budget then. */
  expect(bytes: number): boolean {
    this.#walPeak = Math.max(this.#walPeak, 2 * bytes + 16 * 1024);
    return this.near(2 * bytes);
  }

  /** True when the files, plus `more`, come within 10% of the budget. */
  near(more = 0): boolean {
    return Number.isFinite(this.#storeBytes) && this.onDiskBytes() + more > 0.9 * this.#storeBytes;
  }

  /**
   * Free pages go back to the file system a chunk at a time, each chunk checkpointed, so that the
   * WAL the vacuum writes stays within its share (and within the ballast on a full disk). On a full
   * disk the WAL is checkpointed and restarted but its file is kept (journal_size_limit caps it at its
   * share): the writes that drain the store (numbering what is sent, deleting what the hub acked)
   * reuse its blocks. Cut to nothing, the next of those writes needed new blocks on a disk that had
   * none, and the agent could never send its backlog to free them.
   */
  reclaim(full: boolean): void {
    const db = this.#db;
    if (!db) return;
    const chunk = Math.max(8, Math.floor(this.#disk.ballastBytes / this.#pageSize / 2));
    for (let round = 0; round < 64; round++) {
      const free = pragma(db, "freelist_count");
      const pressed = this.onDiskBytes() > 0.8 * this.#storeBytes;
      if (free === 0 || (free < chunk && !pressed)) break;
      db.run(`PRAGMA incremental_vacuum(${chunk})`);
      db.run("PRAGMA wal_checkpoint(PASSIVE)");
    }
    const wal = fileSize(`${this.#path}-wal`);
    if (full) {
      if (wal > 0) db.run("PRAGMA wal_checkpoint(RESTART)");
    } else if (wal > this.walBytes) db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  /**
   * Fits the outbox's budget: buffer_bytes, or what the store's budget leaves after everything else
   * on disk (the WAL, its share or the largest seen; the ballast; the shared memory; 5% slack; and
   * the live pages that are not outbox bodies: staged ticks, cache, tasks, decisions, SQLite's own
   * pages and row overhead), divided by RELIEVE_WAL_FACTOR. May drop (counted) or downsample.
   */
  fitOutbox(): void {
    const db = this.#db;
    const outbox = this.#outbox;
    if (!db || !outbox) return;
    let budget = this.#bufferBytes;
    if (Number.isFinite(this.#storeBytes)) {
      const live = (pragma(db, "page_count") - pragma(db, "freelist_count")) * this.#pageSize;
      const other = Math.max(0, live - outbox.bytes);
      const wal = Math.max(this.walBytes, this.#walPeak);
      const shm = Math.max(32 * 1024, fileSize(`${this.#path}-shm`));
      const fixed = wal + shm + this.#disk.ballastBytes + 16 * 1024 + Math.floor(this.#storeBytes * 0.05);
      const room = Math.floor((this.#storeBytes - fixed - other) / RELIEVE_WAL_FACTOR);
      budget = Math.max(0, Math.min(budget, room));
    }
    // Small moves are not worth a transaction; the outbox holds its budget on every append anyway.
    const small = Math.abs(budget - this.#outboxBudget) < 4096 && budget > outbox.bytes;
    if (budget === this.#outboxBudget || small) return;
    this.#outboxBudget = budget;
    outbox.setBudget(budget);
  }
}

function pragma(db: Database, name: "page_count" | "freelist_count"): number {
  return (db.query(`PRAGMA ${name}`).get() as Record<string, number>)[name] ?? 0;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** `n` within [lo, hi]. */
export function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}
