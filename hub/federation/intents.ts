// What a parent hub holds of a workload it placed into a child's domain: the hub, the route, how many, why.
import type { Database, Statement } from "bun:sqlite";
import type { WorkloadSpec } from "../../shared/workload/index.ts";
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

/** Intents in the hub's database (`fed_workloads`). */
export class Intents {
  readonly #get: Statement;
  readonly #put: Statement;
  readonly #all: Statement;

  constructor(db: Database) {
    db.run(
      "CREATE TABLE IF NOT EXISTS fed_workloads (name TEXT PRIMARY KEY, hub TEXT NOT NULL, body TEXT NOT NULL, created INTEGER NOT NULL)",
    );
    this.#get = db.query("SELECT body FROM fed_workloads WHERE name = ?");
    this.#put = db.query(
      "INSERT INTO fed_workloads (name, hub, body, created) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET hub = excluded.hub, body = excluded.body",
    );
    this.#all = db.query("SELECT body FROM fed_workloads ORDER BY name");
  }

  get(name: string): Intent | undefined {
    const row = this.#get.get(name) as { body: string } | null;
    return row ? (JSON.parse(row.body) as Intent) : undefined;
  }

  put(i: Intent): void {
    this.#put.run(i.name, i.hub, JSON.stringify(i), i.created);
  }

  list(): Intent[] {
    return (this.#all.all() as { body: string }[]).map((r) => JSON.parse(r.body) as Intent);
  }
}
