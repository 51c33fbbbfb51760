// Alerts and offline decisions reported by nodes, stored once (inside the ingest transaction) and listed.
import type { Body } from "../../shared/protocol/index.ts";
import type { HubSql } from "../store/sql/index.ts";

export interface AlertRecord {
  id: number;
  node: string;
  at: number;
  state: "raised" | "cleared";
  severity: string;
  source: string;
  message: string;
  fields: Record<string, unknown>;
}

export interface DecisionRecord {
  id: number;
  node: string;
  rule: string;
  at: number;
  kind: string;
  action: string;
  inputs: Record<string, unknown>;
  verdict: "agree" | "disagree" | "unknown";
  reason: string;
  received: number;
  /** The hub rule set and revision the node's rule came from (null: the node's own rules). */
  rule_set: string | null;
  rule_set_rev: number | null;
  /** The condition the node ran, as it reported it. */
  condition: string | null;
}

/** The hub's verdict on one decision, as it goes back to the node (when the node gave the decision's id). */
export interface DecisionVerdictOut {
  id: number | undefined;
  rule: string;
  at: number;
  verdict: string;
  reason: string;
}

/** The hub's verdict on one decision, and why. */
export interface Verdict {
  verdict: "agree" | "disagree" | "unknown";
  reason: string;
}

/**
 * The hub's verdict on a node's decision: does its own policy for that node say the same? `via`: the
 * handle of the transaction storing the decision, for what the check reads.
 */
export type DecisionCheck = (
  node: string,
  d: Body<"decision_validation">,
  via: HubSql,
) => Verdict | Promise<Verdict>;

type VerdictRow = { id: number; rule: string; at: number; verdict: string; reason: string };

/**
 * Persistence of alerts and decisions: written through the handle of the ingest transaction that
 * stores the message (so each is stored exactly once), read through the hub's HubSql.
 */
export class EventStore {
  readonly #sql: HubSql;
  readonly #now: () => number;

  constructor(sql: HubSql, now: () => number = Date.now) {
    this.#sql = sql;
    this.#now = now;
  }

  /** An `event` of kind `alert` or `alert_clear` becomes an alert row; other kinds are kept as messages only. */
  async onEvent(tx: HubSql, node: string, e: Body<"event">): Promise<void> {
    if (e.kind !== "alert" && e.kind !== "alert_clear") return;
    const f = e.fields ?? {};
    await tx.run(
      "INSERT INTO alerts (node, at, state, severity, source, message, fields) VALUES (?, ?, ?, ?, ?, ?, ?)",
      [
        node,
        e.at,
        e.kind === "alert" ? "raised" : "cleared",
        typeof f.severity === "string" ? f.severity : "warning",
        typeof f.source === "string" ? f.source : "",
        e.message,
        JSON.stringify(f),
      ],
    );
  }

  /**
   * Stores a node's decision with the hub's verdict on it; with the decision's id in the node's log, also
   * where its rule came from, so the verdict can go back to the node (now, and again on its next session).
   */
  async onDecision(
    tx: HubSql,
    node: string,
    d: Body<"decision_validation">,
    check: DecisionCheck,
  ): Promise<DecisionVerdictOut> {
    const { verdict, reason } = await check(node, d, tx);
    const row = await tx.get<{ id: number }>(
      "INSERT INTO decisions (node, rule, at, kind, action, inputs, verdict, reason, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
      [
        node,
        d.rule,
        d.at,
        d.kind ?? "fire",
        d.action,
        JSON.stringify(d.inputs),
        verdict,
        reason,
        this.#now(),
      ],
    );
    if (d.id !== undefined) {
      await tx.run(
        "INSERT INTO decision_origins (decision, node, agent_id, rule_set, rule_set_rev, condition) VALUES (?, ?, ?, ?, ?, ?)",
        [row!.id, node, d.id, d.rule_set ?? null, d.rule_set_rev ?? null, d.condition ?? null],
      );
    }
    return { id: d.id, rule: d.rule, at: d.at, verdict, reason };
  }

  /**
   * The verdicts on a node's latest decisions that carried an id, received within `withinMs` (at most
   * `limit`), to send again at its next session: the first send may have been lost with the connection.
   */
  recentVerdicts(node: string, limit = 100, withinMs = 86_400_000): Promise<VerdictRow[]> {
    return this.#sql.all<VerdictRow>(
      `SELECT o.agent_id AS id, d.rule, d.at, d.verdict, d.reason FROM decision_origins o
       JOIN decisions d ON d.id = o.decision WHERE o.node = ? AND d.received >= ?
       ORDER BY o.decision DESC LIMIT ?`,
      [node, this.#now() - withinMs, limit],
    );
  }

  async alerts(opts: { node?: string; limit?: number } = {}): Promise<AlertRecord[]> {
    const rows = await (opts.node
      ? this.#sql.all<Omit<AlertRecord, "fields"> & { fields: string }>(
          "SELECT * FROM alerts WHERE node = ? ORDER BY id DESC LIMIT ?",
          [opts.node, opts.limit ?? 500],
        )
      : this.#sql.all<Omit<AlertRecord, "fields"> & { fields: string }>(
          "SELECT * FROM alerts ORDER BY id DESC LIMIT ?",
          [opts.limit ?? 500],
        ));
    return rows.map((r) => ({ ...r, fields: JSON.parse(r.fields) }));
  }

  async decisions(node: string, limit = 500): Promise<DecisionRecord[]> {
    const rows = await this.#sql.all<Omit<DecisionRecord, "inputs"> & { inputs: string }>(
      `SELECT d.*, o.rule_set, o.rule_set_rev, o.condition FROM decisions d
       LEFT JOIN decision_origins o ON o.decision = d.id WHERE d.node = ? ORDER BY d.id DESC LIMIT ?`,
      [node, limit],
    );
    return rows.map((r) => ({ ...r, inputs: JSON.parse(r.inputs) }));
  }
}
