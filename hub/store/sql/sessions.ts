// The node-session directory: which replica holds each node's session, so that work for a node reaches it.
import { RequestError } from "../../../shared/errors.ts";
import { checkName } from "./leases.ts";
import type { HubSql } from "./types.ts";

// Node ids come from agents and may be any text; only empty, control characters or huge ones are refused.
function checkNode(node: unknown): asserts node is string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (typeof node !== "string" || node.length === 0 || node.length > 256 || /[\x00-\x1f\x7f]/.test(node))
    throw new RequestError(
      `node must be 1 to 256 characters without control characters, not ${JSON.stringify(node)}`,
      "node",
    );
}

/** Who holds a node's session, since when, and the claim's epoch (one more per claim of that node). */
export interface SessionHolder {
  replica: string;
  since: number;
  epoch: number;
}

/** What `claim` answers: the new epoch, and the replica that held the session before (to drop its stale one). */
export interface Claimed {
  epoch: number;
  previous: string | undefined;
}

/**
 * The directory on one store. A node's agent may reconnect to another replica before the first has
 * noticed it left: the newer claim wins, and the claimer learns whose session is now stale. A released
 * or dropped session keeps its row (replica NULL), so a node's epochs only grow.
 */
export class SessionDirectory {
  constructor(readonly sql: HubSql) {}

  /** Records that `replica` holds `node`'s session from `now`. */
  async claim(node: string, replica: string, now: number): Promise<Claimed> {
    checkNode(node);
    checkName("replica", replica);
    return this.sql.tx(async (tx) => {
      // The placeholder row makes the lock below exist for a node never seen, so two first claims
      // queue on it instead of both reading "no previous holder".
      await tx.run(
        "INSERT INTO node_sessions (node, replica, since, epoch) VALUES (?, NULL, 0, 0) ON CONFLICT (node) DO NOTHING",
        [node],
      );
      const before = await tx.get<{ replica: string | null; epoch: number }>(
        `SELECT replica, epoch FROM node_sessions WHERE node = ?${tx.dialect === "postgres" ? " FOR UPDATE" : ""}`,
        [node],
      );
      const epoch = (before?.epoch ?? 0) + 1;
      await tx.run("UPDATE node_sessions SET replica = ?, since = ?, epoch = ? WHERE node = ?", [
        replica,
        now,
        epoch,
        node,
      ]);
      const previous = before?.replica ?? undefined;
      return { epoch, previous: previous === replica ? undefined : previous };
    });
  }

  /**
   * Ends `replica`'s hold on `node`'s session (the claim of `epoch` when given); false when another
   * replica holds it (a newer claim), or a newer claim of the same replica.
   */
  async release(node: string, replica: string, epoch?: number): Promise<boolean> {
    checkNode(node);
    checkName("replica", replica);
    const { changes } = await this.sql.run(
      `UPDATE node_sessions SET replica = NULL WHERE node = ? AND replica = ?${epoch === undefined ? "" : " AND epoch = ?"}`,
      epoch === undefined ? [node, replica] : [node, replica, epoch],
    );
    return changes === 1;
  }

  /** The replica holding `node`'s session, if any. */
  async holderOf(node: string): Promise<SessionHolder | undefined> {
    checkNode(node);
    const row = await this.sql.get<{ replica: string; since: number; epoch: number }>(
      "SELECT replica, since, epoch FROM node_sessions WHERE node = ? AND replica IS NOT NULL",
      [node],
    );
    return row && { replica: row.replica, since: row.since, epoch: row.epoch };
  }

  /** The nodes whose sessions `replica` holds, by id. */
  async heldBy(replica: string): Promise<string[]> {
    checkName("replica", replica);
    const rows = await this.sql.all<{ node: string }>(
      "SELECT node FROM node_sessions WHERE replica = ? ORDER BY node",
      [replica],
    );
    return rows.map((r) => r.node);
  }

  /** Clears every session of a dead replica; the nodes it held, by id. */
  async drop(replica: string): Promise<string[]> {
    checkName("replica", replica);
    const rows = await this.sql.all<{ node: string }>(
      "UPDATE node_sessions SET replica = NULL WHERE replica = ? RETURNING node",
      [replica],
    );
    return rows.map((r) => r.node).sort();
  }
}
