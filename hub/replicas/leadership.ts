// Whether this hub runs the controllers now: always alone, or while it holds the lease among replicas.
import { NovaError } from "../../shared/errors.ts";
import type { HubSql } from "../store/sql/index.ts";

/**
 * Whether this hub runs the controllers now (placement passes, failover, rollouts, alerting,
 * federation). One hub on SQLite always does; a replica does while it holds the `controller`
 * lease. `fence` runs first in a leader's writing transaction and throws once the lease is lost, so a
 * replica that stopped leading (a pause, a partition) writes nothing it decided before.
 */
export interface Leadership {
  active(): boolean;
  fence(tx: HubSql): Promise<void>;
  /** Called when this hub starts leading (to run a pass at once rather than at the next tick). */
  onGained(fn: () => void): void;
}

/** The one hub on its own store: always the leader. */
export const soleLeader: Leadership = {
  active: () => true,
  fence: async () => {},
  onGained: () => {},
};

/** A leader's write refused because its lease ended meanwhile; nothing of that transaction is kept. */
export class NotLeaderError extends NovaError {
  constructor(replica: string) {
    super("store_failed", `replica ${replica} no longer holds the controller lease`);
  }
}
