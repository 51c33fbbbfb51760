// The agent's one SQLite file: outbox, staged samples, counters and small state (credential).
//
// Disk-full is a state, not a crash: every write here survives SQLITE_FULL and ENOSPC. While the
// disk is full (DiskGuard) the store takes no new data, counts what it could not keep as dropped
// (reason "disk"), holds small writes (state, reports, counters) in memory and writes them when
// space returns, and keeps draining: acks delete rows, and maintain() gives the pages back.
import { Database, type Statement } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Outbox } from "../../shared/link/index.ts";
import type { Logger } from "../../shared/log.ts";
import { decodeCbor, encodeCbor, type MessageType } from "../../shared/protocol/index.ts";
import { type DiskFullReason, DiskGuard } from "./disk-guard.ts";
import { Downsampler, LOW_WATER } from "./downsample.ts";
import { clamp, StoreSize } from "./store-size.ts";

/** Why a sample was not delivered: the byte budget, a full disk, refused as invalid, folded by a rule. */
export type DropReason = "budget" | "disk" | "invalid" | "folded";
/** Samples dropped, by reason (durable across restarts). */
export type DropCounts = Record<DropReason, number>;

export interface AgentStoreOptions {
  /** Budget of the queued messages (the outbox's bodies). */
  bufferBytes: number;
  /**
   * Bound on the store's files on disk: agent.db, its -wal and -shm, and the ballast file. The
   * outbox's budget shrinks to what the rest leaves. Default: no bound beyond `bufferBytes`.
   */
  storeBytes?: number;
  /** Free space the file system keeps (below it the disk counts as full). Default 32 MiB. */
  reserveBytes?: number;
  maxBodyBytes?: number;
  now?: () => number;
  /** The disk-full state changed (after it was logged and its alert stored or held). */
  onDiskFull?: (full: boolean, reason: DiskFullReason | undefined) => void;
  log?: Logger;
}

/** What /v1/status shows about the disk. */
export interface DiskStatus {
  full: boolean;
  reason: DiskFullReason | null;
  since_ms: number | null;
  free_bytes: number | null;
  reserve_bytes: number;
  /** The store's files on disk now, and their bound. */
  store_bytes: number;
  store_budget_bytes: number | null;
  /** The outbox budget in force (buffer_bytes, or less when the store's other files need the room). */
  buffer_budget_bytes: number;
}

export const DEFAULT_RESERVE_BYTES = 32 * 1024 * 1024;
/** Messages held in memory while they cannot be written; beyond this the oldest are dropped, counted. */
const MAX_HELD = 1000;
/** While the disk is below its reserve (not out of space), how often the held counts are written. */
const FULL_COUNTS_EVERY_MS = 5000;
const REASONS: readonly Exclude<DropReason, "budget">[] = ["disk", "invalid", "folded"];

/** Opens DIR/agent.db (WAL, synchronous=NORMAL: survives kill -9 at any moment). */
export class AgentStore {
  readonly db: Database;
  readonly outbox: Outbox;
  readonly path: string;
  /** Largest metrics batch body written (the hub refuses larger frames); larger runs are split. */
  readonly maxBodyBytes: number;
  /** The overflow policy's first step: fine metrics become 1-minute rollups before anything is dropped. */
  readonly downsampler: Downsampler;
  readonly disk: DiskGuard;
  readonly #getState: Statement;
  readonly #setState: Statement;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly size: StoreSize;
  /** State writes the disk refused, written when it has room again (reads see them at once). */
  readonly #unsavedState = new Map<string, string>();
  /** Counts not yet written (the disk was full): produced samples and drops by reason. */
  readonly #unsaved = { produced: 0, disk: 0, invalid: 0, folded: 0 };
  readonly #held: { type: MessageType; body: Uint8Array; samples: number; created: number }[] = [];
  #heldDropped = 0;
  #lastCheck = 0;
  /** When the held counts were last written (see FULL_COUNTS_EVERY_MS). */
  #countsSavedAt = 0;
  #rounds = 0;

  constructor(dataDir: string, opts: AgentStoreOptions) {
    mkdirSync(dataDir, { recursive: true, mode: 0o750 });
    this.path = join(dataDir, "agent.db");
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log;
    const storeBytes = opts.storeBytes && opts.storeBytes > 0 ? opts.storeBytes : Number.POSITIVE_INFINITY;
    this.disk = new DiskGuard({
      dir: dataDir,
      reserveBytes: opts.reserveBytes ?? DEFAULT_RESERVE_BYTES,
      ballastBytes: clamp(StoreSize.share(storeBytes), 64 * 1024, 1024 * 1024),
      now: this.#now,
      ownRoom: () => this.size?.walPeak ?? 0,
      onChange: (full, reason) => {
        this.size?.walMode(full);
        this.#announce(full, reason, dataDir);
        opts.onDiskFull?.(full, reason);
      },
    });
    this.size = new StoreSize({
      path: this.path,
      disk: this.disk,
      bufferBytes: opts.bufferBytes,
      storeBytes,
    });
    this.db = new Database(this.path, { create: true, strict: true });
    try {
      this.#open();
    } catch (err) {
      // A full disk at start: the ballast is gone now (hit), so one more try has room to open.
      try {
        if (!this.disk.hit(err)) throw err;
        this.#open();
      } catch (again) {
        this.db.close();
        throw again;
      }
    }
    this.maxBodyBytes = opts.maxBodyBytes ?? 900 * 1024;
    this.downsampler = new Downsampler({ maxBodyBytes: this.maxBodyBytes });
    this.outbox = new Outbox(this.db, {
      budgetBytes: opts.bufferBytes,
      relieve: (outbox, budget) => this.downsampler.run(outbox, Math.floor(budget * LOW_WATER)),
      staged: () => this.#stagedSamples(),
    });
    this.size.manage(this.outbox);
    this.#getState = this.db.query("SELECT value FROM state WHERE key = ?");
    this.#setState = this.db.query(
      "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
    // An alert raised while opening (found full) goes into the outbox now if there is room.
    this.guard(() => this.#writeHeld(), undefined);
  }

  // Pragmas (the WAL's from the byte budget) and the state table.
  #open(): void {
    // auto_vacuum must come before WAL: switching to WAL writes the header, after which it is fixed.
    this.db.run("PRAGMA auto_vacuum = INCREMENTAL");
    this.db.run("PRAGMA journal_mode = WAL");
    this.db.run("PRAGMA synchronous = NORMAL");
    this.db.run("PRAGMA busy_timeout = 5000");
    const pageSize = (this.db.query("PRAGMA page_size").get() as { page_size: number }).page_size;
    this.size.attach(this.db, pageSize, this.disk.full);
    this.db.run("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  }

  // The state changed: a log line, and an alert (and its clear) for the hub, through the outbox.
  #announce(full: boolean, reason: DiskFullReason | undefined, dir: string): void {
    const at = this.#now();
    if (full)
      this.#log?.error("disk full: the local store takes no new data until space returns", { reason });
    else this.#log?.info("disk has space again: the local store takes new data");
    const body = encodeCbor({
      kind: full ? "alert" : "alert_clear",
      at,
      message: full ? `disk full (${reason}): new samples are dropped and counted` : "cleared: disk full",
      fields: { severity: "critical", source: "agent:store", data: dir },
    });
    // Found full while opening: the outbox is not there yet, so the alert waits with the held ones.
    if (this.outbox) this.report("event", body, at);
    else this.#held.push({ type: "event", body, samples: 0, created: at });
  }

  getState(key: string): string | undefined {
    return this.#unsavedState.get(key) ?? (this.#getState.get(key) as { value: string } | null)?.value;
  }

  /** Writes a state value; on a full disk it is held in memory (and read back) until there is room. */
  setState(key: string, value: string): void {
    try {
      this.#setState.run(key, value);
      this.#unsavedState.delete(key);
    } catch (err) {
      if (!this.disk.hit(err)) throw err;
      this.#unsavedState.set(key, value);
    }
  }

  /** True while the store takes no new data (the disk is full or below its reserve). */
  get full(): boolean {
    return this.disk.full;
  }

  /**
   * Whether new data may be written now: looks at free space (at most every 50 ms), so that a fast
   * producer meets the reserve before SQLite meets ENOSPC. A write expected to put `walBytes` in the
   * WAL is admitted only while twice that stays above the reserve: once for the WAL, once for the
   * checkpoint that copies its pages into the database, which may grow. A write that took the last
   * room would leave a checkpoint the disk cannot take, and no write (numbering the backlog, deleting
   * what the hub acked) could follow it. A write that does not fit makes the full state (reason
   * `reserve`): the store is dropping data for lack of room, and says so.
   */
  admit(walBytes = 0): boolean {
    const now = this.#now();
    if (now - this.#lastCheck >= 50 || now < this.#lastCheck) {
      this.#lastCheck = now;
      this.disk.check();
    }
    if (this.disk.full) return false;
    return walBytes <= 0 || !this.disk.wouldFill(2 * walBytes);
  }

  /**
   * Whether one write the caller may refuse on its own (a cache put) fits: twice its expected WAL
   * above the reserve, as `admit` asks. A write that does not fit is refused alone: one large value
   * does not make the store full for the ticks and pushes that still fit.
   */
  roomFor(walBytes: number): boolean {
    // Two pages besides the payload: the row's and an index's.
    walBytes += 2 * 4096;
    return !this.disk.full && this.disk.roomFor(2 * walBytes);
  }

  /**
   * Runs a write; a full disk turns into the full state and `fallback` instead of an exception.
   * Any other error is thrown as before.
   */
  guard<T>(write: () => T, fallback: T): T {
    try {
      return write();
    } catch (err) {
      if (!this.disk.hit(err)) throw err;
      return fallback;
    }
  }

  /**
   * Stores a must-deliver message (an alert, a task result). On a full disk it waits in memory and
   * is written when space returns; past MAX_HELD the oldest held one is dropped and counted.
   */
  report(type: MessageType, body: Uint8Array, now: number): void {
    const entry = { type, body, samples: 0, created: now };
    // Below the reserve there is still room for a small message; after ENOSPC the room is for draining.
    const room = this.disk.reason !== "enospc";
    if (
      room &&
      this.#held.length === 0 &&
      this.guard(() => this.outbox.append(type, body, 0, now) > 0, false)
    )
      return;
    this.#held.push(entry);
    if (this.#held.length > MAX_HELD) {
      this.#held.shift();
      this.#heldDropped += 1;
    }
  }

  /** Messages waiting in memory for the disk, and those dropped because too many waited. */
  held(): { pending: number; dropped: number } {
    return { pending: this.#held.length, dropped: this.#heldDropped };
  }

  /**
   * Counts samples that were not stored: `reason` disk (the disk was full), invalid (refused at
   * ingest) or folded (by a rule). With `produced`, they also count as produced (they were made or
   * offered, then lost), so that produced - dropped = stored still holds at the hub.
   */
  countDropped(reason: Exclude<DropReason, "budget">, n: number, produced: boolean): void {
    if (n <= 0) return;
    this.#unsaved[reason] += n;
    if (produced) this.#unsaved.produced += n;
    if (!this.full) this.#saveCounts();
  }

  /** Samples produced (or offered) since the store was created: durable, plus counts not yet written. */
  produced(): number {
    return this.outbox.counter("samples_produced") + this.#unsaved.produced;
  }

  /** Samples dropped, by reason; `budget` is the outbox's overflow policy. */
  droppedBy(): DropCounts {
    const out: DropCounts = {
      budget: this.outbox.counter("dropped_samples"),
      disk: 0,
      invalid: 0,
      folded: 0,
    };
    for (const r of REASONS) out[r] = Number(this.getState(`dropped.${r}`) ?? 0) + this.#unsaved[r];
    // Pushed points folded at the same millisecond are counted by the metric buffer, in the outbox's counters.
    out.folded += this.outbox.counter("samples_folded");
    return out;
  }

  // Writes the counts held in memory, in one transaction; on a full disk they stay held.
  #saveCounts(): void {
    this.#countsSavedAt = this.#now();
    const u = this.#unsaved;
    if (u.produced + u.disk + u.invalid + u.folded === 0) return;
    this.guard(() => {
      this.db.transaction(() => {
        if (u.produced > 0) this.outbox.bump("samples_produced", u.produced);
        for (const r of REASONS) {
          if (u[r] === 0) continue;
          const before = Number((this.#getState.get(`dropped.${r}`) as { value: string } | null)?.value ?? 0);
          this.#setState.run(`dropped.${r}`, String(before + u[r]));
        }
      })();
      Object.assign(u, { produced: 0, disk: 0, invalid: 0, folded: 0 });
    }, undefined);
  }

  /** Changes the budgets (hot config); 0 for `storeBytes` means no bound beyond `bufferBytes`. */
  setBudgets(bufferBytes: number, storeBytes?: number, reserveBytes?: number): void {
    const bound =
      storeBytes === undefined ? undefined : storeBytes > 0 ? storeBytes : Number.POSITIVE_INFINITY;
    this.size.setBudgets(bufferBytes, bound);
    if (reserveBytes !== undefined) this.disk.setReserve(reserveBytes);
    this.guard(() => this.size.fitOutbox(), undefined);
  }

  /**
   * What one large write (a batch packed from staged points) may put in the WAL: half the ballast.
   * Committed pages the WAL holds are written into the database by the next checkpoint, which may
   * need the file to grow; on a full disk the released ballast is the room it grows into, so neither
   * one write nor the checkpoint threshold may owe more than that.
   */
  transactionBytes(): number {
    return Math.max(32 * 1024, Math.floor(this.disk.ballastBytes / 2));
  }

  /**
   * How many bytes of points may wait in staging before they are packed at once: an eighth of the
   * outbox's budget in force or of the store's byte budget, the smaller (at least 16 KiB), so that staging never holds the room the budget gives.
   */
  stagingRoomBytes(): number {
    return Math.max(16 * 1024, Math.floor(Math.min(this.size.outboxBudget, this.size.storeBytes) / 8));
  }

  /** Bytes of the store's files on disk: database, WAL, shared memory and ballast. */
  onDiskBytes(): number {
    return this.size.onDiskBytes();
  }

  /**
   * The store's housekeeping, once a second: applies the link's last ack again if its delete
   * failed, follows free space (full / recovered), writes what waited for the disk, checkpoints the
   * WAL, gives free pages back, and fits the outbox's budget to what the byte budget leaves. Never
   * throws on a full disk.
   */
  maintain(ackedUpTo?: number): void {
    try {
      // An ack whose delete failed on a full disk (the link has moved on) is applied again: acks are
      // cumulative, so this is a no-op when it went through.
      const lowest = ackedUpTo ? this.outbox.lowest() : undefined;
      if (ackedUpTo && lowest !== undefined && lowest <= ackedUpTo) this.outbox.ackUpTo(ackedUpTo);
      this.disk.check();
      this.#writeHeld();
      // Vacuum and refit every 5th round, or at once near the budget or on a full disk.
      if (++this.#rounds % 5 === 0 || this.full || this.size.near()) {
        this.size.reclaim(this.full);
        this.size.fitOutbox();
      }
    } catch (err) {
      if (!this.disk.hit(err)) throw err;
    }
  }

  /**
   * Before a large write (a flush of `bytes` staged): its WAL will hold about twice that, so room is
   * made for it first when the files are near the budget. False (and the store full) when the disk
   * has not that much above its reserve: the write must wait.
   */
  beforeWrite(bytes: number): boolean {
    const near = this.size.expect(bytes);
    if (this.disk.wouldFill(2 * bytes)) return false;
    if (near) {
      this.size.reclaim(this.full);
      this.size.fitOutbox();
    }
    return true;
  }

  /**
   * After a large write (a flush): notes the WAL, and when the files come near the budget, gives
   * free pages back and fits the outbox's budget at once instead of at the next maintain().
   */
  afterWrite(): void {
    this.size.noteWal();
    if (!this.size.near()) return;
    this.guard(() => {
      this.size.reclaim(this.full);
      this.size.fitOutbox();
    }, undefined);
  }

  // Writes state, counts and messages that waited for the disk. Messages (alerts) go as soon as
  // there is any room (below the reserve there is); state and counts once the disk is not full.
  #writeHeld(): void {
    if (!this.full) {
      for (const [key, value] of [...this.#unsavedState]) this.setState(key, value);
      this.#saveCounts();
    } else if (this.disk.reason === "reserve" && this.#now() - this.#countsSavedAt >= FULL_COUNTS_EVERY_MS) {
      // Below the reserve there is room for a small write: the counts go into it every few seconds, so
      // that a kill while the disk is full loses at most those seconds' counts (not the whole spell).
      this.#saveCounts();
    }
    while (this.#held.length > 0 && this.disk.reason !== "enospc") {
      const m = this.#held[0]!;
      if (!this.guard(() => this.outbox.append(m.type, m.body, m.samples, m.created) > 0, false)) return;
      this.#held.shift();
    }
  }

  // Samples in ticks staged by the metric buffer and not packed yet (a few batch intervals' worth at most).
  #stagedSamples(): number {
    try {
      const rows = this.db.query("SELECT data FROM ticks").all() as { data: Uint8Array }[];
      let n = 0;
      for (const r of rows) n += Object.keys(decodeCbor(r.data) as Record<string, number>).length;
      return n + this.#stagedPoints();
    } catch {
      return 0; // no ticks table yet, or a tick that does not decode: the buffer counts it on its own
    }
  }

  // Points pushed at their own times (the metric buffer's `points` table), not packed yet.
  #stagedPoints(): number {
    try {
      return (this.db.query("SELECT count(*) AS n FROM points").get() as { n: number }).n;
    } catch {
      return 0; // no points table yet
    }
  }

  /** Gives freed pages back to the file system (after large drops or acks). */
  reclaim(): void {
    this.guard(() => this.size.reclaim(this.full), undefined);
  }

  /** What /v1/status shows about the disk and the store's size. */
  diskStatus(): DiskStatus {
    return {
      full: this.disk.full,
      reason: this.disk.reason ?? null,
      since_ms: this.disk.since ?? null,
      free_bytes: this.disk.freeBytes() ?? null,
      reserve_bytes: this.disk.reserveBytes(),
      store_bytes: this.onDiskBytes(),
      store_budget_bytes: Number.isFinite(this.size.storeBytes) ? this.size.storeBytes : null,
      buffer_budget_bytes: this.size.outboxBudget,
    };
  }

  close(): void {
    try {
      this.#writeHeld();
      this.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch (err) {
      if (!this.disk.hit(err)) throw err;
    } finally {
      this.db.close();
    }
  }
}
