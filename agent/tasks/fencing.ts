// Edge-side fencing: a copy whose disconnect policy says `stop_on_agent_after` stops after that long without the hub.
//
// A fenced alloc is stopped for good on this node: a desired set that still names it (the hub sends
// one as soon as the node is back, before it has decided anything) does not start it again. The hub
// decides by the workload's policy: it stops the copy (a replacement runs) or starts a fresh one.
import type { Database } from "bun:sqlite";
import type { Clock, TimerHandle } from "../../shared/clock.ts";
import { isDiskFull } from "../../shared/disk-full.ts";
import type { Logger } from "../../shared/log.ts";
import { type AllocSpec, durationMs } from "../../shared/workload/index.ts";

/** What fencing needs of the task runner. */
export interface Fenceable {
  /** Allocs assigned to this node, with their specs. */
  assigned(): AllocSpec[];
  /** Stops the alloc as if the hub had taken it away; false when it is not assigned. */
  fence(alloc: string): boolean;
}

export interface FencingOptions {
  db: Database;
  tasks: Fenceable;
  clock: Clock;
  log: Logger;
  /** Whether the link to the hub is up now, and when the hub was last heard (0: never). */
  link: () => { connected: boolean; lastRxMs: number };
  /** The heartbeat period: a connected hub silent for two of them counts as gone from its last frame. */
  heartbeatMs: number;
  /** Tells the hub, when it is back (through the outbox): which alloc was stopped and why. */
  report: (e: { alloc: string; workload: string; message: string; offline_ms: number }) => void;
  /** How often the time without a hub is checked; default 250 ms. */
  checkMs?: number;
}

/** Stops copies that have been without their hub too long, and keeps them stopped until the hub decides. */
export class Fencing {
  readonly #o: FencingOptions;
  readonly #fenced = new Set<string>();
  #timer: TimerHandle | undefined;
  /** Last moment the hub was known to be connected (persisted, so a restart offline keeps counting). */
  #lastContact: number;
  /** The last contact time as written to the database. */
  #savedContact: number | undefined;

  constructor(o: FencingOptions) {
    this.#o = o;
    o.db.run("CREATE TABLE IF NOT EXISTS fenced_allocs (alloc TEXT PRIMARY KEY, at INTEGER NOT NULL)");
    o.db.run("CREATE TABLE IF NOT EXISTS fencing_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    for (const r of o.db.query("SELECT alloc FROM fenced_allocs").all() as { alloc: string }[])
      this.#fenced.add(r.alloc);
    const stored = o.db.query("SELECT value FROM fencing_state WHERE key = 'last_contact'").get() as {
      value: number;
    } | null;
    this.#lastContact = stored?.value ?? o.clock.now();
    this.#savedContact = stored?.value;
  }

  start(): void {
    this.#timer ??= this.#o.clock.setInterval(() => this.check(), this.#o.checkMs ?? 250);
  }

  stop(): void {
    this.#o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
    this.#saveContact();
  }

  /** The hub's desired set without the allocs fenced here; fenced allocs it no longer names are forgotten. */
  filter(allocs: AllocSpec[]): AllocSpec[] {
    if (this.#fenced.size === 0) return allocs;
    const named = new Set(allocs.map((a) => a.id));
    for (const id of this.#fenced) {
      if (named.has(id)) continue;
      this.#fenced.delete(id);
      this.#o.db.query("DELETE FROM fenced_allocs WHERE alloc = ?").run(id);
    }
    return allocs.filter((a) => !this.#fenced.has(a.id));
  }

  /** Allocs stopped by fencing and not yet settled by the hub. */
  fenced(): string[] {
    return [...this.#fenced].sort();
  }

  /** Stops every copy whose `stop_on_agent_after` has passed without a hub. */
  check(): void {
    const now = this.#o.clock.now();
    const link = this.#o.link();
    if (link.connected && now - link.lastRxMs <= 2 * this.#o.heartbeatMs) {
      this.#lastContact = now;
      return;
    }
    // A half-open link (the hub silent, no FIN yet) counts from the hub's last frame.
    if (link.connected && link.lastRxMs > 0) this.#lastContact = Math.min(this.#lastContact, link.lastRxMs);
    this.#saveContact();
    const offline = now - this.#lastContact;
    for (const spec of this.#o.tasks.assigned()) {
      const after = durationMs(spec.spec.disconnect?.stop_on_agent_after);
      if (after === undefined || offline < after || this.#fenced.has(spec.id)) continue;
      this.#fenced.add(spec.id);
      this.#o.db.query("INSERT OR REPLACE INTO fenced_allocs (alloc, at) VALUES (?, ?)").run(spec.id, now);
      this.#o.tasks.fence(spec.id);
      const message = `fenced: no hub for ${Math.round(offline / 100) / 10} s (stop_on_agent_after ${after} ms)`;
      this.#o.log.warn("copy stopped: no hub for too long", {
        alloc: spec.id,
        workload: spec.workload,
        offline_ms: offline,
      });
      this.#o.report({ alloc: spec.id, workload: spec.workload, message, offline_ms: offline });
    }
  }

  // Written only when it changed: while the hub is away it stays put, and four writes a second of the
  // same value would take the little room a full disk keeps for draining (the WAL grows with each).
  // A write the disk refuses is tried again at the next check.
  #saveContact(): void {
    if (this.#savedContact === this.#lastContact) return;
    try {
      this.#o.db
        .query("INSERT OR REPLACE INTO fencing_state (key, value) VALUES ('last_contact', ?)")
        .run(this.#lastContact);
      this.#savedContact = this.#lastContact;
    } catch (err) {
      if (!isDiskFull(err)) throw err;
    }
  }
}
