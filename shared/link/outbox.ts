// Durable outbox in SQLite: every must-deliver message waits here, under its row id, until a cumulative ack covers it.
//
// A row's small metadata (`outbox`: id, wire number, kind, sizes) and its body (`outbox_body`, by id)
// live in two tables, so that what the drain path writes (a wire number handed out, an ack, a counter)
// touches only small rows: SQLite rewrites a whole record on UPDATE, overflow pages included, and a
// body in the numbered row would go into the WAL again with every number.
import type { Database, Statement } from "bun:sqlite";
import type { MessageType } from "../protocol/index.ts";
import { BODY_TABLE, migrateOutbox, OUTBOX_TABLE } from "./outbox-migrate.ts";

export interface OutboxEntry {
  /** Storage key: the row keeps it from append to ack, whatever is sent before or after it. */
  id: number;
  /** Wire sequence number, handed out (durably) when the row is first sent; null until then. */
  seq: number | null;
  type: MessageType;
  created: number;
  samples: number;
  body: Uint8Array;
}

/** An entry that has its wire number: what the link sends. */
export type NumberedEntry = OutboxEntry & { seq: number };

export interface OutboxStats {
  pending: number;
  bytes: number;
  /** Samples the held entries stand for. */
  samples: number;
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

/** What the store has counted since it was made (or since the life of the node it continues). */
export interface OutboxCounters {
  produced: number;
  dropped: number;
  /** Dropped samples by reason (`budget`: the byte budget; more reasons come from the store's owner). */
  droppedBy: Record<string, number>;
}

export interface OutboxOptions {
  /** Byte budget for stored bodies; the oldest unsent bulk entries go first when it is exceeded. */
  budgetBytes: number;
  /**
   * Runs inside the writing transaction when the budget is exceeded, before anything is dropped.
   * It may make room by replacing unsent entries with smaller ones (`replace`); whatever is still
   * over the budget afterwards is dropped, oldest unsent bulk first.
   */
  relieve?: (outbox: Outbox, budget: number) => void;
  /** Samples counted as produced that are not in the outbox yet (staged by the owner), for `held`. */
  staged?: () => number;
}

// Bulk telemetry is sacrificed before anything else when the budget is exceeded, and sent after it.
const BULK: ReadonlySet<MessageType> = new Set(["metrics_batch"]);
// An entry as read: its metadata row joined with its body.
const ENTRY =
  "SELECT o.id, o.seq, o.type, o.created, o.samples, b.body FROM outbox o JOIN outbox_body b ON b.id = o.id";

type Victim = { id: number; samples: number; bytes: number };

/** The outbox table and its counters; all writes are transactional. */
export class Outbox {
  readonly #db: Database;
  #budget: number;
  #bytes = 0;
  #count = 0;
  #samples = 0;
  /** The last wire number handed out, held in memory (durable in `counters`). */
  #lastSeq: number;
  #epoch: string;
  /** The counters as this process found them when it opened the store (see `carryOn`). */
  #openCounters: { produced: number; dropped: number };
  readonly #insert: Statement;
  readonly #insertAt: Statement;
  readonly #insertBody: Statement;
  readonly #numbered: Statement;
  readonly #nextUnsent: Statement;
  readonly #assign: Statement;
  readonly #deleteUpTo: Statement;
  readonly #deleteBodiesUpTo: Statement;
  readonly #sumUpTo: Statement;
  readonly #oldest: Statement;
  readonly #lowestSeq: Statement;
  readonly #oldestUnsentBulk: Statement;
  readonly #oldestUnsent: Statement;
  readonly #deleteOne: Statement;
  readonly #deleteBody: Statement;
  readonly #getRow: Statement;
  readonly #bump: Statement;
  readonly #getCounter: Statement;
  readonly #raise: Statement;
  readonly #unsent: Statement;
  readonly #relieve: OutboxOptions["relieve"];
  readonly #ackListeners = new Set<() => void>();
  readonly #staged: OutboxOptions["staged"];

  constructor(db: Database, opts: OutboxOptions) {
    this.#db = db;
    this.#budget = opts.budgetBytes;
    this.#relieve = opts.relieve;
    this.#staged = opts.staged;
    db.run("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    db.run("CREATE TABLE IF NOT EXISTS outbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    // A store made before rows had ids of their own keeps its backlog (see outbox-migrate.ts).
    migrateOutbox(db, [...BULK]);
    db.run(OUTBOX_TABLE);
    db.run(BODY_TABLE);
    // Numbered rows by wire number (acks, resends); unsent rows in send order (other kinds, then bulk).
    db.run("CREATE UNIQUE INDEX IF NOT EXISTS outbox_by_seq ON outbox (seq) WHERE seq IS NOT NULL");
    db.run("CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (bulk, id) WHERE seq IS NULL");
    this.#insert = db.query(
      "INSERT INTO outbox (bulk, type, created, samples, bytes) VALUES (?, ?, ?, ?, ?) RETURNING id",
    );
    this.#insertAt = db.query(
      "INSERT INTO outbox (id, bulk, type, created, samples, bytes) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.#insertBody = db.query("INSERT INTO outbox_body (id, body) VALUES (?, ?)");
    this.#numbered = db.query(`${ENTRY} WHERE o.seq >= ? ORDER BY o.seq LIMIT ?`);
    this.#nextUnsent = db.query(`${ENTRY} WHERE o.seq IS NULL ORDER BY o.bulk, o.id LIMIT ?`);
    this.#assign = db.query("UPDATE outbox SET seq = ? WHERE id = ?");
    this.#sumUpTo = db.query(
      "SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b, coalesce(sum(samples), 0) AS s FROM outbox WHERE seq <= ?",
    );
    this.#deleteUpTo = db.query("DELETE FROM outbox WHERE seq <= ?");
    this.#deleteBodiesUpTo = db.query(
      "DELETE FROM outbox_body WHERE id IN (SELECT id FROM outbox WHERE seq IS NOT NULL AND seq <= ?)",
    );
    this.#oldest = db.query("SELECT min(created) AS created FROM outbox");
    this.#lowestSeq = db.query("SELECT min(seq) AS seq FROM outbox WHERE seq IS NOT NULL");
    this.#oldestUnsentBulk = db.query(
      "SELECT id, samples, bytes FROM outbox WHERE seq IS NULL AND bulk = 1 ORDER BY id LIMIT 1",
    );
    this.#oldestUnsent = db.query(
      "SELECT id, samples, bytes FROM outbox WHERE seq IS NULL AND bulk = 0 ORDER BY id LIMIT 1",
    );
    this.#deleteOne = db.query("DELETE FROM outbox WHERE id = ?");
    this.#deleteBody = db.query("DELETE FROM outbox_body WHERE id = ?");
    this.#getRow = db.query("SELECT seq, samples, bytes FROM outbox WHERE id = ?");
    this.#bump = db.query(
      "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
    );
    this.#getCounter = db.query("SELECT value FROM counters WHERE name = ?");
    this.#raise = db.query(
      "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
    );
    this.#unsent = db.query(
      `${ENTRY} WHERE o.seq IS NULL AND o.bulk = ? AND o.type = ? AND o.id > ? ORDER BY o.id LIMIT ?`,
    );
    const totals = db
      .query("SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b, coalesce(sum(samples), 0) AS s FROM outbox")
      .get() as { n: number; b: number; s: number };
    this.#count = totals.n;
    this.#bytes = totals.b;
    this.#samples = totals.s;
    this.#lastSeq = this.counter("last_seq");
    this.#openCounters = {
      produced: this.counter("samples_produced"),
      dropped: this.counter("dropped_samples"),
    };
    this.#epoch = this.#meta("epoch") ?? this.#newEpoch();
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

  /** Samples the held messages stand for (kept in memory). */
  get samples(): number {
    return this.#samples;
  }

  /** Samples counted as produced and neither dropped nor acked: those held here and those still staged. */
  held(): number {
    return this.#samples + (this.#staged?.() ?? 0);
  }

  /**
   * The store's epoch: a random id made with the store. A copy of the store (a restored snapshot)
   * carries the same one until it learns it is a copy and starts a new one (`newEpoch`).
   */
  get epoch(): string {
    return this.#epoch;
  }

  /** Starts a new epoch (this store is a copy of one the hub already heard from). Returns it. */
  newEpoch(): string {
    this.#epoch = this.#newEpoch();
    return this.#epoch;
  }

  #newEpoch(): string {
    const id = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
    this.#db
      .query(
        "INSERT INTO outbox_meta (key, value) VALUES ('epoch', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      )
      .run(id);
    return id;
  }

  #meta(key: string): string | undefined {
    const row = this.#db.query("SELECT value FROM outbox_meta WHERE key = ?").get(key) as {
      value: string;
    } | null;
    return row?.value;
  }

  /** Changes the byte budget (hot config or start-up) and enforces it at once. */
  setBudget(bytes: number): void {
    this.#budget = bytes;
    if (this.#bytes <= bytes) return;
    this.#transaction(() => this.#enforceBudget(undefined));
  }

  /**
   * Stores a message and returns its row id. `within` runs in the same transaction (e.g. to delete
   * the staged samples the message was built from). Enforces the budget. Alerts, decisions and task
   * results are sent before bulk metrics that have not left yet: that is the order rows are read in,
   * so nothing is rewritten.
   */
  append(type: MessageType, body: Uint8Array, samples: number, now: number, within?: () => void): number {
    return this.#transaction(() => {
      const row = this.#insert.get(BULK.has(type) ? 1 : 0, type, now, samples, body.byteLength) as {
        id: number;
      };
      this.#insertBody.run(row.id, body);
      this.#count += 1;
      this.#bytes += body.byteLength;
      this.#samples += samples;
      within?.();
      this.#enforceBudget(row.id);
      return row.id;
    });
  }

  // Runs `fn` in a transaction; the in-memory totals follow a rollback.
  #transaction<T>(fn: () => T): T {
    const before = { count: this.#count, bytes: this.#bytes, samples: this.#samples, lastSeq: this.#lastSeq };
    try {
      return this.#db.transaction(fn)() as T;
    } catch (err) {
      this.#count = before.count;
      this.#bytes = before.bytes;
      this.#samples = before.samples;
      this.#lastSeq = before.lastSeq;
      throw err;
    }
  }

  // Relieves, then drops the oldest unsent bulk entries (then the oldest unsent of any kind) until the
  // budget holds; never `keep` (the entry just appended) and never a numbered entry: one that may
  // have reached a hub is delivered or resent, never counted as dropped as well.
  #enforceBudget(keep: number | undefined): void {
    if (this.#bytes <= this.#budget) return;
    this.#relieve?.(this, this.#budget);
    while (this.#bytes > this.#budget && this.#count > 1) {
      const victim = (this.#oldestUnsentBulk.get() ?? this.#oldestUnsent.get()) as Victim | null;
      if (!victim || victim.id === keep) break;
      this.#drop(victim);
    }
  }

  #drop(victim: Victim): void {
    this.#deleteOne.run(victim.id);
    this.#deleteBody.run(victim.id);
    this.#count -= 1;
    this.#bytes -= victim.bytes;
    this.#samples -= victim.samples;
    this.#bump.run("dropped_messages", 1);
    this.#bump.run("dropped_samples", victim.samples);
  }

  /**
   * Drops (and counts as dropped) unsent bulk entries created before `before`, except the newest
   * entry. Returns how many went.
   */
  dropBulkBefore(before: number): number {
    return this.#transaction(() => {
      const victims = this.#db
        .query(
          `SELECT id, samples, bytes FROM outbox WHERE seq IS NULL AND bulk = 1 AND created < ?
           AND id < (SELECT max(id) FROM outbox) ORDER BY id`,
        )
        .all(before) as Victim[];
      for (const v of victims) this.#drop(v);
      return victims.length;
    });
  }

  /**
   * What to send from wire number `from` on, at most `limit` entries: first entries already
   * numbered (a resend), then the next unsent ones in send order, numbered now. The numbers are
   * durable before this returns, so a restart resends the same row under the same number until it
   * is acked. Numbering writes only the small metadata rows, never a body.
   */
  take(from: number, limit: number): NumberedEntry[] {
    const out = this.#numbered.all(from, limit) as NumberedEntry[];
    if (out.length === limit) return out;
    const numbered = out.length;
    try {
      return this.#transaction(() => {
        const fresh = this.#nextUnsent.all(limit - out.length) as OutboxEntry[];
        for (const e of fresh) {
          this.#lastSeq += 1;
          this.#assign.run(this.#lastSeq, e.id);
          e.seq = this.#lastSeq;
          out.push(e as NumberedEntry);
        }
        if (fresh.length > 0) this.#raise.run("last_seq", this.#lastSeq);
        return out;
      });
    } catch (err) {
      // Numbering needs a write; sending what is numbered already does not, and its acks free room.
      if (numbered === 0) throw err;
      return out.slice(0, numbered);
    }
  }

  /** Unsent entries of `type` with ids above `after`, oldest first. */
  readUnsent(type: MessageType, after: number, limit: number): OutboxEntry[] {
    return this.#unsent.all(BULK.has(type) ? 1 : 0, type, after, limit) as OutboxEntry[];
  }

  /**
   * Replaces unsent entries `ids` (ascending) with `entries` (at most as many), in one transaction:
   * a delete and an insert. The replacements take the first of those ids, so they keep the place
   * of what they replace in the send order. Throws if any of them was numbered (it may have been sent).
   */
  replace(ids: readonly number[], entries: readonly Replacement[]): void {
    if (entries.length > ids.length) throw new Error("more replacements than entries replaced");
    if (ids.length === 0) return;
    this.#transaction(() => {
      for (const id of ids) {
        const row = this.#getRow.get(id) as { seq: number | null; samples: number; bytes: number } | null;
        if (!row) throw new Error(`no outbox entry ${id}`);
        if (row.seq !== null) throw new Error(`entry ${id} may have been sent (wire number ${row.seq})`);
        this.#deleteOne.run(id);
        this.#deleteBody.run(id);
        this.#count -= 1;
        this.#bytes -= row.bytes;
        this.#samples -= row.samples;
      }
      entries.forEach((e, i) => {
        const bulk = BULK.has(e.type) ? 1 : 0;
        this.#insertAt.run(ids[i]!, bulk, e.type, e.created, e.samples, e.body.byteLength);
        this.#insertBody.run(ids[i]!, e.body);
        this.#count += 1;
        this.#bytes += e.body.byteLength;
        this.#samples += e.samples;
      });
    });
  }

  /** Calls `fn` after each ack that deleted entries; returns the unsubscribe. */
  onAck(fn: () => void): () => void {
    this.#ackListeners.add(fn);
    return () => this.#ackListeners.delete(fn);
  }

  /** Deletes every entry numbered up to and including `seq` (a cumulative ack). Returns how many went. */
  ackUpTo(seq: number): number {
    const gone = this.#ackUpTo(seq);
    if (gone > 0) for (const fn of [...this.#ackListeners]) fn();
    return gone;
  }

  #ackUpTo(seq: number): number {
    return this.#transaction(() => {
      const gone = this.#sumUpTo.get(seq) as { n: number; b: number; s: number };
      if (gone.n > 0) {
        this.#deleteBodiesUpTo.run(seq);
        this.#deleteUpTo.run(seq);
      }
      this.#count -= gone.n;
      this.#bytes -= gone.b;
      this.#samples -= gone.s;
      return gone.n;
    });
  }

  /**
   * Takes back every wire number handed out to entries still held: they go again as unsent, in
   * their place, under new numbers. For a hub that never stored those numbers from this store (it
   * holds higher ones from another: the store was replaced). Returns how many.
   */
  unnumber(): number {
    return this.#db.query("UPDATE outbox SET seq = NULL WHERE seq IS NOT NULL").run().changes;
  }

  /**
   * Entries in send order without numbering anything: those numbered `from` or above, then every
   * unsent one (`readFrom(0, n)` lists what is held). For inspection and tests; the link uses `take`.
   */
  readFrom(from: number, limit: number): OutboxEntry[] {
    const numbered = this.#numbered.all(from, limit) as OutboxEntry[];
    if (numbered.length >= limit) return numbered;
    return [...numbered, ...(this.#nextUnsent.all(limit - numbered.length) as OutboxEntry[])];
  }

  /** Lowest wire number still held, or undefined when nothing numbered is held. */
  lowest(): number | undefined {
    const row = this.#lowestSeq.get() as { seq: number | null };
    return row.seq ?? undefined;
  }

  /** Whether the row `id` is still held (not yet covered by an ack, nor dropped). */
  holds(id: number): boolean {
    return this.#getRow.get(id) !== null;
  }

  /** How many rows of one kind are held, and when the oldest of them was stored. */
  heldOf(type: MessageType): { count: number; oldest: number | undefined } {
    const r = this.#db
      .query("SELECT count(*) AS n, min(created) AS c FROM outbox WHERE type = ?")
      .get(type) as {
      n: number;
      c: number | null;
    };
    return { count: r.n, oldest: r.c ?? undefined };
  }

  /** The last wire number handed out (0 when none ever was): every number up to it may have been sent. */
  lastSeq(): number {
    return this.#lastSeq;
  }

  /** Makes the next wire number greater than `seq` (a hub that remembers more than we do), durably. */
  ensureSeqAbove(seq: number): void {
    if (this.#lastSeq >= seq) return;
    this.#raise.run("last_seq", seq);
    this.#lastSeq = seq;
  }

  /** What the store counted: produced and dropped samples (durable). */
  counters(): OutboxCounters {
    const budget = this.counter("dropped_samples");
    return { produced: this.counter("samples_produced"), dropped: budget, droppedBy: { budget } };
  }

  /**
   * Carries on from the counters the hub saw for this node, when this store turned out to be behind
   * the hub (a restored snapshot, a copy, or a new store): what the hub counted beyond what this store
   * held when this process opened it was produced (or dropped) elsewhere, after the copy was taken,
   * so it is added; what this process counted since it opened the store is new and stays. Counters
   * never go back, and nothing is counted twice. Repeating it with the same values adds nothing.
   */
  carryOn(seen: { produced: number; dropped: number }): void {
    const open = this.#openCounters;
    const produced = Math.max(0, seen.produced - open.produced);
    const dropped = Math.max(0, seen.dropped - open.dropped);
    this.#db.transaction(() => {
      if (produced > 0) this.#bump.run("samples_produced", produced);
      if (dropped > 0) this.#bump.run("dropped_samples", dropped);
    })();
    this.#openCounters = {
      produced: Math.max(open.produced, seen.produced),
      dropped: Math.max(open.dropped, seen.dropped),
    };
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
      samples: this.#samples,
      oldestMs: row.created ?? undefined,
      droppedMessages: this.counter("dropped_messages"),
      droppedSamples: this.counter("dropped_samples"),
      downsampledSamples: this.counter("samples_downsampled"),
    };
  }
}
