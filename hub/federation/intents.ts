// What a parent hub holds of a workload it placed into a child's domain: the hub, the route, how many, why.
import type { WorkloadSpec } from "../../shared/workload/index.ts";
import { forUpdate, type HubSql } from "../store/sql/index.ts";
import type { SubtreePlan } from "./subtree-placement.ts";

/** The parent's intent: which subtree and how many; the hub there binds nodes and owns failover. */
export interface Intent {
  name: string;
  hub: string;
  route: string[];
  replicas: number;
  explanation: SubtreePlan;
  created: number;
  /** The workload as submitted: what is sent again when its subtree is lost. */
  spec: WorkloadSpec;
  /** Moves to a sibling subtree after a child hub was lost, oldest first. */
  moves?: {
    from: string;
    to: string;
    at: number;
    evidence: string;
    /** When the copy left at `from` was stopped there, once that hub came back. */
    stopped?: number;
  }[];
}

/** Intents in the hub's database (`fed_workloads`, made by the migrations). */
export class Intents {
  readonly #sql: HubSql;

  constructor(sql: HubSql) {
    this.#sql = sql;
  }

  async get(name: string): Promise<Intent | undefined> {
    const row = await this.#sql.get<{ body: string }>("SELECT body FROM fed_workloads WHERE name = ?", [
      name,
    ]);
    return row ? (JSON.parse(row.body) as Intent) : undefined;
  }

  async put(i: Intent): Promise<void> {
    await this.#sql.run(
      "INSERT INTO fed_workloads (name, hub, body, created) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET hub = excluded.hub, body = excluded.body",
      [i.name, i.hub, JSON.stringify(i), i.created],
    );
  }

  /**
   * Changes a stored intent in one transaction holding its row: what another writer stored meanwhile
   * (a move, on this hub or another replica) is what `change` is given. Undefined when there is none.
   */
  update(name: string, change: (current: Intent) => Intent): Promise<Intent | undefined> {
    return this.#sql.tx(async (tx) => {
      const row = await tx.get<{ body: string }>(
        `SELECT body FROM fed_workloads WHERE name = ?${forUpdate(tx.dialect)}`,
        [name],
      );
      if (!row) return undefined;
      const next = change(JSON.parse(row.body) as Intent);
      await tx.run("UPDATE fed_workloads SET hub = ?, body = ? WHERE name = ?", [
        next.hub,
        JSON.stringify(next),
        name,
      ]);
      return next;
    });
  }

  async list(): Promise<Intent[]> {
    const rows = await this.#sql.all<{ body: string }>("SELECT body FROM fed_workloads ORDER BY name");
    return rows.map((r) => JSON.parse(r.body) as Intent);
  }
}
