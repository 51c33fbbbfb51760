// Durable outbox in SQLite: every must-deliver message waits here until a cumulative ack covers it.
import type { Database, Statement } from "bun:sqlite";
import type { MessageType } from "../protocol/index.ts";

export interface OutboxEntry {
  seq: number;
  type: MessageType;
  created: number;
  samples: number;
  body: Uint8Array;
}

export interface OutboxStats {
  pending: number;
  bytes: number;
  oldestMs: number | undefined;
  droppedMessages: number;
  droppedSamples: number;
  /** Fine samples folded into 1-minute rollups (still delivered, at minute resolution). */
  downsampledSamples: number;
}

/** A message to store in place of others (see `replace`). */
export interface Replacement {
  type: MessageType;
  body: Uint8Array;
  /** Samples it accounts for. */
  samples: number;
  created: number;
}

export interface OutboxOptions {
  /** Byte budget for stored bodies; the oldest bulk entries go first when it is exceeded. */
  budgetBytes: number;
  /**
   * Runs inside the writing transaction when the budget is exceeded, before anything is dropped.
   * It may make room by replacing unsent entries with smaller ones (`replace`); whatever is still
   * over the budget afterwards is dropped, oldest bulk first.
   */
  relieve?: (outbox: Outbox, budget: number) => void;
}

// Bulk telemetry is sacrificed before anything else when the budget is exceeded, and sent after it.
const BULK: ReadonlySet<MessageType> = new Set(["metrics_batch"]);
const BULK_TYPES = `(${[...BULK].map((t) => `'${t}'`).join(", ")})`;

/** The outbox table and its counters; all writes are transactional. */
export class Outbox {
  readonly #db: Database;
  #budget: number;
  #bytes = 0;
  #count = 0;
  readonly #insert: Statement;
  readonly #readFrom: Statement;
  readonly #deleteUpTo: Statement;
  readonly #sumUpTo: Statement;
  readonly #oldest: Statement;
  readonly #oldestBulk: Statement;
  readonly #oldestAny: Statement;
  readonly #deleteOne: Statement;
  readonly #bump: Statement;
  readonly #getCounter: Statement;
  readonly #raise: Statement;
  readonly #insertAt: Statement;
  readonly #unsent: Statement;
  readonly #relieve: OutboxOptions["relieve"];
  /** The durable sent mark, held in memory: the link raises it before every send. */
  #sentHigh: number;

  constructor(db: Database, opts: OutboxOptions) {
    this.#db = db;
    this.#budget = opts.budgetBytes;
    this.#relieve = opts.relieve;
    db.run(`CREATE TABLE IF NOT EXISTS outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      type TEXT NOT NULL,
      created INTEGER NOT NULL,
      samples INTEGER NOT NULL DEFAULT 0,
      bytes INTEGER NOT NULL,
      body BLOB NOT NULL)`);
    db.run("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    this.#insert = db.query(
      "INSERT INTO outbox (type, created, samples, bytes, body) VALUES (?, ?, ?, ?, ?) RETURNING seq",
    );
    this.#readFrom = db.query(
      "SELECT seq, type, created, samples, body FROM outbox WHERE seq >= ? ORDER BY seq LIMIT ?",
    );
    this.#sumUpTo = db.query("SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM outbox WHERE seq <= ?");
    this.#deleteUpTo = db.query("DELETE FROM outbox WHERE seq <= ?");
    this.#oldest = db.query("SELECT min(seq) AS seq, min(created) AS created FROM outbox");
    this.#oldestBulk = db.query(
      `SELECT seq, samples, bytes FROM outbox WHERE type IN ${BULK_TYPES} ORDER BY seq LIMIT 1`,
    );
    this.#oldestAny = db.query("SELECT seq, samples, bytes FROM outbox ORDER BY seq LIMIT 1");
    this.#deleteOne = db.query("DELETE FROM outbox WHERE seq = ?");
    this.#bump = db.query(
      "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
    );
    this.#getCounter = db.query("SELECT value FROM counters WHERE name = ?");
    this.#raise = db.query(
      "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
    );
    this.#insertAt = db.query(
      "INSERT INTO outbox (seq, type, created, samples, bytes, body) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.#unsent = db.query(
      "SELECT seq, type, created, samples, body FROM outbox WHERE type = ? AND seq > ? ORDER BY seq LIMIT ?",
    );
    const totals = db.query("SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM outbox").get() as {
      n: number;
      b: number;
    };
    this.#count = totals.n;
    this.#bytes = totals.b;
    this.#sentHigh = this.counter("sent_high");
    // A budget lowered while the agent was down holds from the first moment.
    this.setBudget(opts.budgetBytes);
  }

  /** Bytes held now (kept in memory: cheap enough for every tick). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Messages held now (kept in memory). */
  get pending(): number {
    return this.#count;
  }

  /** Changes the byte budget (hot config or start-up) and enforces it at once. */
  setBudget(bytes: number): void {
    this.#budget = bytes;
    if (this.#bytes <= bytes) return;
    const newest = this.#db.query("SELECT max(seq) AS seq FROM outbox").get() as { seq: number | null };
    if (newest.seq !== null) this.#db.transaction(() => this.#enforceBudget(newest.seq!))();
  }

  /**
   * Stores a message and returns its sequence number. `within` runs in the same transaction
   * (e.g. to delete the staged samples the message was built from). Enforces the budget.
   */
  append(type: MessageType, body: Uint8Array, samples: number, now: number, within?: () => void): number {
    const before = { count: this.#count, bytes: this.#bytes };
    const tx = this.#db.transaction(() => {
      const row = this.#insert.get(type, now, samples, body.byteLength, body) as { seq: number };
      this.#count += 1;
      this.#bytes += body.byteLength;
      within?.();
      // Making room may renumber unsent entries; the new one is the newest either way.
      const newest = this.#enforceBudget(row.seq);
      return BULK.has(type) ? newest : this.#overtakeBulk(newest);
    });
    try {
      return tx() as number;
    } catch (err) {
      // The transaction rolled back; so must the running totals.
      this.#count = before.count;
      this.#bytes = before.bytes;
      throw err;
    }
  }

  // Alerts, decisions and task results go before bulk metrics that have not left yet (DESIGN §7): the
  // newest entry moves in front of the first unsent bulk entry, which with everything after it moves
  // up by one. Only numbers above the sent mark change. Returns the entry's sequence number.
  #overtakeBulk(newest: number): number {
    const first = (
      this.#db
        .query(`SELECT min(seq) AS seq FROM outbox WHERE type IN ${BULK_TYPES} AND seq > ?`)
        .get(this.#sentHigh) as { seq: number | null }
    ).seq;
    if (first === null || first > newest) return newest;
    // Through negative numbers, so that no step collides with a number still in use.
    this.#db.query("UPDATE outbox SET seq = -1 WHERE seq = ?").run(newest);
    this.#db.query("UPDATE outbox SET seq = -(seq + 1) WHERE seq >= ? AND seq < ?").run(first, newest);
    this.#db.run("UPDATE outbox SET seq = -seq WHERE seq < -1");
    this.#db.query("UPDATE outbox SET seq = ? WHERE seq = -1").run(first);
    return first;
  }

  // Relieves, then drops oldest bulk entries (then oldest of any kind) until the budget holds; never
  // the newest entry. Returns the newest entry's sequence number.
  #enforceBudget(newest: number): number {
    if (this.#bytes <= this.#budget) return newest;
    let keep = newest;
    if (this.#relieve) {
      this.#relieve(this, this.#budget);
      keep = (this.#db.query("SELECT max(seq) AS seq FROM outbox").get() as { seq: number | null }).seq ?? 0;
    }
    while (this.#bytes > this.#budget && this.#count > 1) {
      const victim = (this.#oldestBulk.get() ?? this.#oldestAny.get()) as {
        seq: number;
        samples: number;
        bytes: number;
      } | null;
      if (!victim || victim.seq === keep) break;
      this.#drop(victim);
    }
    return keep;
  }

  #drop(victim: { seq: number; samples: number; bytes: number }): void {
    this.#deleteOne.run(victim.seq);
    this.#count -= 1;
    this.#bytes -= victim.bytes;
    this.#bump.run("dropped_messages", 1);
    this.#bump.run("dropped_samples", victim.samples);
  }

  /**
   * Drops (and counts as dropped) bulk entries created before `before`, except the newest entry.
   * Returns how many went.
   */
  dropBulkBefore(before: number): number {
    const tx = this.#db.transaction(() => {
      const victims = this.#db
        .query(
          `SELECT seq, samples, bytes FROM outbox WHERE type IN ${BULK_TYPES} AND created < ?
           AND seq < (SELECT max(seq) FROM outbox) ORDER BY seq`,
        )
        .all(before) as { seq: number; samples: number; bytes: number }[];
      for (const v of victims) this.#drop(v);
      return victims.length;
    });
    return tx() as number;
  }

  /** The durable sent mark: every sequence number at or below it may have reached a hub. */
  get sentMark(): number {
    return this.#sentHigh;
  }

  /**
   * Records that entries up to `seq` may have left for a hub. Call it before sending: entries above
   * the mark are known never to have been sent, and only those may be replaced or renumbered.
   */
  markSent(seq: number): void {
    if (seq <= this.#sentHigh) return;
    this.#raise.run("sent_high", seq);
    this.#sentHigh = seq;
  }

  /** Entries of `type` above `after` that were never sent, oldest first. */
  readUnsent(type: MessageType, after: number, limit: number): OutboxEntry[] {
    return this.#unsent.all(type, Math.max(after, this.#sentHigh), limit) as OutboxEntry[];
  }

  /**
   * Replaces unsent entries `seqs` (ascending) with `entries` (at most as many), in one transaction.
   * The replacements take the first of those numbers; every later entry moves down to close the
   * gap, so the hub still sees one unbroken sequence. Never touches a number that may have been
   * sent: a `seqs` at or below the sent mark throws.
   */
  replace(seqs: readonly number[], entries: readonly Replacement[]): void {
    if (entries.length > seqs.length) throw new Error("more replacements than entries replaced");
    if (seqs.length === 0) return;
    if (seqs[0]! <= this.#sentHigh) throw new Error(`entry ${seqs[0]} may have been sent`);
    const tx = this.#db.transaction(() => {
      for (const seq of seqs) {
        const row = this.#db.query("SELECT bytes FROM outbox WHERE seq = ?").get(seq) as {
          bytes: number;
        } | null;
        if (!row) throw new Error(`no outbox entry ${seq}`);
        this.#deleteOne.run(seq);
        this.#count -= 1;
        this.#bytes -= row.bytes;
      }
      entries.forEach((e, i) => {
        this.#insertAt.run(seqs[i]!, e.type, e.created, e.samples, e.body.byteLength, e.body);
        this.#count += 1;
        this.#bytes += e.body.byteLength;
      });
      if (entries.length === seqs.length) return;
      // Close the gaps: ascending, each entry takes the next free number, which is never taken.
      let next = seqs[entries.length]!;
      const later = this.#db.query("SELECT seq FROM outbox WHERE seq > ? ORDER BY seq").all(next) as {
        seq: number;
      }[];
      const move = this.#db.query("UPDATE outbox SET seq = ? WHERE seq = ?");
      for (const { seq } of later) {
        if (seq !== next) move.run(next, seq);
        next += 1;
      }
      this.#setSequence(next - 1);
    });
    tx();
  }

  /** Deletes every entry up to and including `seq` (a cumulative ack). Returns how many went. */
  ackUpTo(seq: number): number {
    const tx = this.#db.transaction(() => {
      const gone = this.#sumUpTo.get(seq) as { n: number; b: number };
      if (gone.n > 0) this.#deleteUpTo.run(seq);
      this.#count -= gone.n;
      this.#bytes -= gone.b;
      return gone.n;
    });
    return tx() as number;
  }

  /** Entries with seq >= `from`, oldest first. */
  readFrom(from: number, limit: number): OutboxEntry[] {
    return this.#readFrom.all(from, limit) as OutboxEntry[];
  }

  /** Lowest sequence number still held, or undefined when empty. */
  lowest(): number | undefined {
    const row = this.#oldest.get() as { seq: number | null };
    return row.seq ?? undefined;
  }

  /** The last sequence number handed out (0 when none ever was). */
  lastSeq(): number {
    const row = this.#db.query("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as {
      seq: number;
    } | null;
    return row?.seq ?? 0;
  }

  /** Makes the next sequence number greater than `seq` (a hub that remembers more than we do). */
  ensureSeqAbove(seq: number): void {
    if (this.lastSeq() >= seq) return;
    this.#db.transaction(() => this.#setSequence(seq))();
  }

  /**
   * Moves every held entry above `seq`, keeping their order, and makes later numbers follow them.
   * Used when the hub has acknowledged numbers this outbox never gave out (a reset local store).
   */
  renumberAbove(seq: number): number {
    const tx = this.#db.transaction(() => {
      const range = this.#db.query("SELECT min(seq) AS lo, count(*) AS n FROM outbox").get() as {
        lo: number | null;
        n: number;
      };
      if (range.lo !== null && range.lo <= seq) {
        // One shift larger than the whole range, so no new number collides with an old one mid-update.
        this.#db.query("UPDATE outbox SET seq = seq + ?").run(seq - range.lo + 1);
      }
      const top = this.#db.query("SELECT max(seq) AS hi FROM outbox").get() as { hi: number | null };
      this.#setSequence(Math.max(seq, top.hi ?? 0));
      return range.n;
    });
    return tx() as number;
  }

  #setSequence(seq: number): void {
    const updated = this.#db.query("UPDATE sqlite_sequence SET seq = ? WHERE name = 'outbox'").run(seq);
    if (updated.changes === 0)
      this.#db.query("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)").run(seq);
  }

  /** Adds to a named durable counter (used by the owner for its own accounting, in its transactions). */
  bump(name: string, by: number): void {
    this.#bump.run(name, by);
  }

  /** Raises a named durable counter to `value` if it is lower (a high-water mark). */
  raise(name: string, value: number): void {
    this.#raise.run(name, value);
  }

  /** Reads a named durable counter. */
  counter(name: string): number {
    const row = this.#getCounter.get(name) as { value: number } | null;
    return row?.value ?? 0;
  }

  stats(): OutboxStats {
    const row = this.#oldest.get() as { created: number | null };
    return {
      pending: this.#count,
      bytes: this.#bytes,
      oldestMs: row.created ?? undefined,
      droppedMessages: this.counter("dropped_messages"),
      droppedSamples: this.counter("dropped_samples"),
      downsampledSamples: this.counter("samples_downsampled"),
    };
  }
}
