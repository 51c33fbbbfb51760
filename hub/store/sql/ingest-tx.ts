// Exactly-once ingest across replicas: the per-node sequence check and the store of a batch in one transaction.
import { NotFoundError, StoreError } from "../../../shared/errors.ts";
import { forUpdate, greatest } from "./dialect.ts";
import type { HubSql } from "./types.ts";

/** One metrics batch as stored: the agent's columnar blob and what the hub reads without decoding it. */
export interface BatchRow {
  start: number;
  end: number;
  interval: number;
  ticks: number;
  samples: number;
  z: number;
  data: Uint8Array;
  /** 1 for a batch of 1-minute rollups. */
  rollup?: number;
  fold?: number | null;
}

/** As Ingest.receive answers: stored, already held (counted), or after a gap (counted; the sender resends). */
export type BatchVerdict = "accepted" | "duplicate" | "gap";

/**
 * Stores batch `seq` of `node` when it follows the node's last stored sequence (or is the sender's
 * `base`), in one transaction with the check. The node's row is locked first (FOR UPDATE on
 * PostgreSQL; SQLite's write transaction is exclusive), so two replicas offered the same batch store
 * it once and the other one answers "duplicate".
 */
export async function acceptBatch(
  sql: HubSql,
  node: string,
  seq: number,
  batch: BatchRow,
  base?: number,
): Promise<BatchVerdict> {
  return sql.tx(async (tx) => {
    const row = await tx.get<{ last_seq: number }>(
      `SELECT last_seq FROM nodes WHERE id = ?${forUpdate(tx.dialect)}`,
      [node],
    );
    if (!row) throw new NotFoundError(`node ${node} is not registered in ${tx.store}`);
    if (seq <= row.last_seq) {
      await tx.run("UPDATE nodes SET duplicates = duplicates + 1 WHERE id = ?", [node]);
      return "duplicate";
    }
    if (seq !== row.last_seq + 1 && seq !== base) {
      await tx.run("UPDATE nodes SET gaps = gaps + 1 WHERE id = ?", [node]);
      return "gap";
    }
    const stored = await tx.run(
      `INSERT INTO batches (node, seq, start, "end", "interval", ticks, samples, z, data, rollup, fold)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [
        node,
        seq,
        batch.start,
        batch.end,
        batch.interval,
        batch.ticks,
        batch.samples,
        batch.z,
        batch.data,
        batch.rollup ?? 0,
        batch.fold ?? null,
      ],
    );
    // A row above last_seq means the two disagree; storing nothing and failing keeps them honest.
    if (stored.changes !== 1)
      throw new StoreError(
        tx.store,
        undefined,
        `batch ${seq} of node ${node} is stored above its last sequence`,
      );
    const rolledUp = batch.rollup ? batch.samples : 0;
    await tx.run(
      `UPDATE nodes SET last_seq = ?, samples = samples + ?, rolled_up = rolled_up + ?, batches = batches + 1,
       sample_end = ${greatest(tx.dialect, "sample_end", "?")} WHERE id = ?`,
      [seq, batch.samples, rolledUp, batch.end, node],
    );
    return "accepted";
  });
}
