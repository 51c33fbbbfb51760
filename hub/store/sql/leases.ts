// Named, expiring leases in the shared store, so that a controller runs on one replica at a time.
import { RequestError } from "../../../shared/errors.ts";
import type { HubSql } from "./types.ts";

/*
 * Time is the caller's (`now`, ms since the epoch): the store never reads its own clock, so tests run
 * on a fake one. Replicas' clocks must agree within the skew their LeaseKeeper allows (`skewMs`,
 * default 500 ms): a replica whose clock runs ahead sees another's lease expire that much early. The
 * epoch is the fencing token. It grows by one whenever a lease starts a new tenure (another holder,
 * or the same holder after it expired or was released), and a holder writes with it (`holds()` in
 * the same transaction) so that a write from a holder that lost the lease is refused.
 */

/** What `acquire` answers: the lease and its epoch, or who holds it until when. */
export type Acquired =
  | { held: true; epoch: number; expiresAt: number }
  | { held: false; holder: string; expiresAt: number };

/** One row of the leases table. */
export interface LeaseRow {
  name: string;
  holder: string;
  epoch: number;
  expiresAt: number;
}

// Names and holders go into SQL text comparisons and logs: visible ASCII keeps both unambiguous.
const NAME = /^[\x21-\x7e]{1,200}$/;

/** Throws a RequestError naming `field` unless `value` is a lease name or holder id. */
export function checkName(field: string, value: unknown): asserts value is string {
  if (typeof value !== "string" || !NAME.test(value))
    throw new RequestError(
      `${field} must be 1 to 200 visible ASCII characters (no spaces), not ${JSON.stringify(value)}`,
      field,
    );
}

function checkInt(field: string, value: unknown, min: number): asserts value is number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min)
    throw new RequestError(`${field} must be an integer >= ${min}, not ${String(value)}`, field);
}

type Row = { name: string; holder: string; epoch: number; expires_at: number };
const toLease = (r: Row): LeaseRow => ({
  name: r.name,
  holder: r.holder,
  epoch: r.epoch,
  expiresAt: r.expires_at,
});

/** Leases on one store: acquire, renew, release, and who holds what. */
export class Leases {
  constructor(readonly sql: HubSql) {}

  /**
   * Takes `name` for `holder` until now + ttlMs when it is free, expired (expires_at < now) or already
   * this holder's (then it is extended). One statement, so two replicas racing for an expired lease
   * cannot both win.
   */
  async acquire(name: string, holder: string, ttlMs: number, now: number): Promise<Acquired> {
    checkName("lease name", name);
    checkName("holder", holder);
    checkInt("ttlMs", ttlMs, 1);
    checkInt("now", now, 0);
    const expiresAt = now + ttlMs;
    const won = await this.sql.get<{ epoch: number }>(
      `INSERT INTO leases (name, holder, epoch, expires_at, renewed_at) VALUES (?, ?, 1, ?, ?)
       ON CONFLICT (name) DO UPDATE SET
         epoch = CASE WHEN leases.holder = excluded.holder AND leases.expires_at >= ? THEN leases.epoch
                      ELSE leases.epoch + 1 END,
         holder = excluded.holder, expires_at = excluded.expires_at, renewed_at = excluded.renewed_at
       WHERE leases.expires_at < ? OR leases.holder = ?
       RETURNING epoch`,
      [name, holder, expiresAt, now, now, now, holder],
    );
    if (won) return { held: true, epoch: won.epoch, expiresAt };
    const row = await this.get(name);
    return { held: false, holder: row?.holder ?? "", expiresAt: row?.expiresAt ?? 0 };
  }

  /**
   * Extends the lease to now + ttlMs while `holder` still holds it at `epoch` and it has not expired.
   * False means it is lost: the caller must stop acting as holder at once.
   */
  async renew(name: string, holder: string, epoch: number, ttlMs: number, now: number): Promise<boolean> {
    checkName("lease name", name);
    checkName("holder", holder);
    checkInt("epoch", epoch, 1);
    checkInt("ttlMs", ttlMs, 1);
    checkInt("now", now, 0);
    const { changes } = await this.sql.run(
      `UPDATE leases SET expires_at = ?, renewed_at = ?
       WHERE name = ? AND holder = ? AND epoch = ? AND expires_at >= ?`,
      [now + ttlMs, now, name, holder, epoch, now],
    );
    return changes === 1;
  }

  /** Gives the lease up at once (it keeps its row, so the next epoch is still higher); false if it was not held so. */
  async release(name: string, holder: string, epoch: number): Promise<boolean> {
    checkName("lease name", name);
    checkName("holder", holder);
    checkInt("epoch", epoch, 1);
    const { changes } = await this.sql.run(
      "UPDATE leases SET expires_at = -1 WHERE name = ? AND holder = ? AND epoch = ? AND expires_at >= 0",
      [name, holder, epoch],
    );
    return changes === 1;
  }

  /** The lease's row, expired or not. */
  async get(name: string): Promise<LeaseRow | undefined> {
    checkName("lease name", name);
    const row = await this.sql.get<Row>("SELECT name, holder, epoch, expires_at FROM leases WHERE name = ?", [
      name,
    ]);
    return row && toLease(row);
  }

  /** The leases whose name starts with `prefix` and that are live at `now`, by name. */
  async live(prefix: string, now: number): Promise<LeaseRow[]> {
    checkName("lease prefix", prefix);
    checkInt("now", now, 0);
    const rows = await this.sql.all<Row>(
      `SELECT name, holder, epoch, expires_at FROM leases
       WHERE substr(name, 1, ?) = ? AND expires_at >= ? ORDER BY name`,
      [prefix.length, prefix, now],
    );
    return rows.map(toLease);
  }
}

/**
 * The fencing check for a holder's write: true while `holder` holds `name` at `epoch` at `now`. Run it
 * on the transaction handle that writes; on PostgreSQL the row is share-locked until that commits, so
 * a takeover waits for the write (SQLite's write transaction already excludes others).
 */
export async function holds(
  tx: HubSql,
  name: string,
  holder: string,
  epoch: number,
  now: number,
): Promise<boolean> {
  const row = await tx.get(
    `SELECT 1 AS ok FROM leases WHERE name = ? AND holder = ? AND epoch = ? AND expires_at >= ?${
      tx.dialect === "postgres" ? " FOR SHARE" : ""
    }`,
    [name, holder, epoch, now],
  );
  return row !== undefined;
}
