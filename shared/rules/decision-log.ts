// The decision log: every rule decision with its inputs, kept bounded in the agent's SQLite file until the hub validates it.
import type { Database, Statement } from "bun:sqlite";
import { isDiskFull } from "../disk-full.ts";
import type { RuleEngineState } from "./engine.ts";
import type { Action, Decision } from "./types.ts";

/** A decision as stored: its row id, where its rule came from, and the hub's verdict once it came back. */
export interface LoggedDecision extends Decision {
  readonly id: number;
  /** True once the hub has checked the decision and sent its verdict (never while the hub is away). */
  readonly validated: boolean;
  /** The hub rule set (and revision) the deciding rule came from; null for the node's own rules. */
  readonly rule_set: string | null;
  readonly rule_set_rev: number | null;
  /** The hub's verdict (`agree`, `disagree`, `unknown`) and its reason; null until it arrives. */
  readonly verdict: string | null;
  readonly verdict_reason: string | null;
}

/** The hub's verdict on one decision, as it sends it back (`command` kind `decision_verdicts`). */
export interface DecisionVerdict {
  readonly id: number;
  readonly rule: string;
  readonly at: number;
  readonly verdict: string;
  readonly reason: string;
}

/** The body of a `decision_validation` message (shared/protocol). */
export interface DecisionValidationBody {
  readonly rule: string;
  readonly at: number;
  readonly action: string;
  readonly inputs: Record<string, unknown>;
}

interface Row {
  id: number;
  rule: string;
  at: number;
  kind: "fire" | "clear";
  cause: "condition" | "reload";
  actions: string;
  inputs: string;
  validated: number;
  rule_set: string | null;
  rule_set_rev: number | null;
  verdict: string | null;
  verdict_reason: string | null;
}

const DEFAULT_MAX = 10_000;

function fromRow(r: Row): LoggedDecision {
  return {
    id: r.id,
    rule: r.rule,
    at: r.at,
    kind: r.kind,
    cause: r.cause,
    actions: JSON.parse(r.actions) as Action[],
    inputs: JSON.parse(r.inputs) as Record<string, number | null>,
    validated: r.validated === 1,
    rule_set: r.rule_set ?? null,
    rule_set_rev: r.rule_set_rev ?? null,
    verdict: r.verdict ?? null,
    verdict_reason: r.verdict_reason ?? null,
  };
}

/** One action as text: `pause_tasks below=5`. */
function describeAction(a: Action): string {
  const { type, ...args } = a;
  const parts = Object.entries(args).map(
    ([k, val]) => `${k}=${typeof val === "string" ? JSON.stringify(val) : val}`,
  );
  return [type, ...parts].join(" ");
}

/** A decision as the `decision_validation` body carries it: `action` is `fire: alert ...; pause_tasks below=5`. */
export function validationBody(d: Decision): DecisionValidationBody {
  const cause = d.cause === "reload" ? " (reload)" : "";
  return {
    rule: d.rule,
    at: d.at,
    action: `${d.kind}${cause}: ${d.actions.map(describeAction).join("; ")}`,
    inputs: { ...d.inputs },
  };
}

/**
 * Decisions in table `rule_decisions`, the engine's state in `rule_engine`. Bounded to `max` decisions:
 * past it, the oldest validated ones go first, then the oldest not yet validated, and those are counted.
 */
export class DecisionLog {
  readonly #db: Database;
  readonly #max: number;
  readonly #insert: Statement;
  readonly #count: Statement;
  readonly #dropValidated: Statement;
  readonly #dropAny: Statement;
  readonly #pending: Statement;
  readonly #mark: Statement;
  readonly #verdict: Statement;
  readonly #getKv: Statement;
  readonly #setKv: Statement;
  #rows: number;
  #dropped: number;

  constructor(db: Database, opts: { maxDecisions?: number } = {}) {
    this.#db = db;
    this.#max = Math.max(1, opts.maxDecisions ?? DEFAULT_MAX);
    db.run(`CREATE TABLE IF NOT EXISTS rule_decisions (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      rule TEXT NOT NULL,
      at INTEGER NOT NULL,
      kind TEXT NOT NULL,
      cause TEXT NOT NULL,
      actions TEXT NOT NULL,
      inputs TEXT NOT NULL,
      validated INTEGER NOT NULL DEFAULT 0
    )`);
    // Added with hub rule sets and verdicts; a store from before gets the columns here.
    const columns = new Set(
      (db.query("PRAGMA table_info(rule_decisions)").all() as { name: string }[]).map((c) => c.name),
    );
    for (const [name, type] of [
      ["rule_set", "TEXT"],
      ["rule_set_rev", "INTEGER"],
      ["verdict", "TEXT"],
      ["verdict_reason", "TEXT"],
    ]) {
      if (!columns.has(name!)) db.run(`ALTER TABLE rule_decisions ADD COLUMN ${name} ${type}`);
    }
    db.run(
      "CREATE INDEX IF NOT EXISTS rule_decisions_unvalidated ON rule_decisions (id) WHERE validated = 0",
    );
    db.run("CREATE INDEX IF NOT EXISTS rule_decisions_at ON rule_decisions (at)");
    db.run("CREATE TABLE IF NOT EXISTS rule_engine (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    this.#insert = db.query(
      "INSERT INTO rule_decisions (rule, at, kind, cause, actions, inputs, rule_set, rule_set_rev) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    );
    this.#count = db.query("SELECT count(*) AS n FROM rule_decisions");
    this.#dropValidated = db.query(
      "DELETE FROM rule_decisions WHERE id IN (SELECT id FROM rule_decisions WHERE validated = 1 ORDER BY id LIMIT ?)",
    );
    this.#dropAny = db.query(
      "DELETE FROM rule_decisions WHERE id IN (SELECT id FROM rule_decisions ORDER BY id LIMIT ?)",
    );
    this.#pending = db.query("SELECT * FROM rule_decisions WHERE validated = 0 ORDER BY id LIMIT ?");
    this.#mark = db.query("UPDATE rule_decisions SET validated = 1 WHERE id = ?");
    this.#verdict = db.query(
      "UPDATE rule_decisions SET validated = 1, verdict = ?, verdict_reason = ? WHERE id = ? AND rule = ? AND at = ? AND validated = 0",
    );
    this.#getKv = db.query("SELECT value FROM rule_engine WHERE key = ?");
    this.#setKv = db.query(
      "INSERT INTO rule_engine (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
    this.#rows = (this.#count.get() as { n: number }).n;
    this.#dropped = Number(this.#kv("dropped") ?? 0);
  }

  /** Stores one decision; returns its id. */
  append(decision: Decision): number {
    return this.record([decision])[0]!;
  }

  /**
   * Stores decisions and, when given, the engine state that follows them, in one transaction: after a crash
   * the log and the rules agree (a firing is never logged without the state that remembers it). Returns ids.
   */
  record(
    decisions: readonly Decision[],
    state?: RuleEngineState,
    origin?: (d: Decision) => { set: string; rev: number } | undefined,
  ): number[] {
    return this.#orOnFullDisk(
      () => this.#record(decisions, state, origin),
      () => {
        // The decisions still act and still reach the hub (reports wait for the disk); only the local
        // history misses them, counted with the dropped ones.
        this.#dropped += decisions.length;
        return [];
      },
    );
  }

  #record(
    decisions: readonly Decision[],
    state?: RuleEngineState,
    origin?: (d: Decision) => { set: string; rev: number } | undefined,
  ): number[] {
    return this.#db.transaction(() => {
      const ids = decisions.map((d) => {
        const o = origin?.(d);
        const row = this.#insert.get(
          d.rule,
          d.at,
          d.kind,
          d.cause,
          JSON.stringify(d.actions),
          JSON.stringify(d.inputs),
          o?.set ?? null,
          o?.rev ?? null,
        ) as { id: number };
        return row.id;
      });
      this.#rows += ids.length;
      this.#trim();
      if (state) this.#setKv.run("state", JSON.stringify(state));
      return ids;
    })();
  }

  /** Decisions with `at >= since`, newest first (at most `limit`, default 100). */
  list(opts: { limit?: number; since?: number } = {}): LoggedDecision[] {
    const limit = Math.max(0, Math.floor(opts.limit ?? 100));
    const rows = this.#db
      .query("SELECT * FROM rule_decisions WHERE at >= ? ORDER BY id DESC LIMIT ?")
      .all(opts.since ?? 0, limit) as Row[];
    return rows.map(fromRow);
  }

  /** The oldest decisions the hub has not validated yet, oldest first: send them as `decision_validation`. */
  pendingValidation(limit = 100): LoggedDecision[] {
    return (this.#pending.all(Math.max(0, Math.floor(limit))) as Row[]).map(fromRow);
  }

  /** Marks decisions as delivered to the hub (they become the first to go when the log is full). */
  markValidated(ids: readonly number[]): void {
    if (ids.length === 0) return;
    this.#orOnFullDisk(
      () =>
        this.#db.transaction(() => {
          for (const id of ids) this.#mark.run(id);
        })(),
      () => undefined,
    );
  }

  /**
   * Records the hub's verdicts: each decision (matched by id, rule and time) becomes validated with its
   * verdict. Returns how many were new; a verdict sent again is ignored.
   */
  setVerdicts(verdicts: readonly DecisionVerdict[]): number {
    return this.#orOnFullDisk(
      () =>
        this.#db.transaction(() => {
          let n = 0;
          for (const v of verdicts) n += this.#verdict.run(v.verdict, v.reason, v.id, v.rule, v.at).changes;
          return n;
        })(),
      // Not recorded on a full disk: the hub sends its verdicts again at the next session.
      () => 0,
    );
  }

  /** Stores a value under `key` beside the engine state (the hub's rule sets, say). */
  saveValue(key: string, value: string): void {
    this.#setKv.run(key, value);
  }

  /** A value stored with saveValue. */
  loadValue(key: string): string | undefined {
    return this.#kv(key);
  }

  /** Stores the engine's state (see RuleEngine.snapshotState); on a full disk the last stored one stays. */
  saveState(state: RuleEngineState): void {
    this.#orOnFullDisk(
      () => this.#setKv.run("state", JSON.stringify(state)),
      () => undefined,
    );
  }

  // Writes here must not stop the rules on a full disk (SQLITE_FULL / ENOSPC): `fallback` instead.
  #orOnFullDisk<T>(write: () => T, fallback: () => T): T {
    try {
      return write();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      return fallback();
    }
  }

  /** The stored engine state, for RuleEngine.restoreState; undefined if none or unreadable. */
  loadState(): unknown {
    const text = this.#kv("state");
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  }

  /** Decisions stored, those waiting for the hub, and those dropped to keep the bound before the hub saw them. */
  stats(): { stored: number; pending: number; dropped: number } {
    const pending = (
      this.#db.query("SELECT count(*) AS n FROM rule_decisions WHERE validated = 0").get() as { n: number }
    ).n;
    return { stored: this.#rows, pending, dropped: this.#dropped };
  }

  #kv(key: string): string | undefined {
    return (this.#getKv.get(key) as { value: string } | null)?.value;
  }

  #trim(): void {
    const over = this.#rows - this.#max;
    if (over <= 0) return;
    const validated = this.#dropValidated.run(over).changes;
    const rest = over - validated;
    const unvalidated = rest > 0 ? this.#dropAny.run(rest).changes : 0;
    this.#rows -= validated + unvalidated;
    if (unvalidated > 0) {
      // Validated decisions were already at the hub; only those it never saw count as dropped.
      this.#dropped += unvalidated;
      this.#setKv.run("dropped", String(this.#dropped));
    }
  }
}
