// The hub's async SQL layer: one interface, SQLite and PostgreSQL back ends, migrations, the ingest
// transaction, and what replicas share: leases, the node-session directory and notifications.
export { forUpdate, groupConcat, keyLock, textOrder } from "./dialect.ts";
export { LeaseKeeper, type LeaseKeeperOptions } from "./lease-keeper.ts";
export { type Acquired, type LeaseRow, Leases, holds } from "./leases.ts";
export { migrate } from "./migrate.ts";
export { MIGRATIONS, type Migration } from "./migrations.ts";
export {
  MAX_CHANNEL_BYTES,
  MAX_PAYLOAD_BYTES,
  type Notifier,
  openNotifier,
  type Subscription,
} from "./notify.ts";
export { toNumbered } from "./placeholders.ts";
export { isRetryable, openPostgres, type PostgresOptions } from "./postgres.ts";
export { type Claimed, SessionDirectory, type SessionHolder } from "./sessions.ts";
export {
  fairShare,
  fnv1a,
  type ShardLeasesOptions,
  type ShardRound,
  ShardLeases,
  shardOf,
} from "./shard-leases.ts";
export { openSqlite, type SqliteOptions, wrapSqlite } from "./sqlite.ts";
export { insideTx } from "./types.ts";
export type { Dialect, HubSql, SqlValue } from "./types.ts";
