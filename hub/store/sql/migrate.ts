// Brings a store's schema up to date: the numbered migrations it lacks, in order, in one transaction.
import { StoreError } from "../../../shared/errors.ts";
import { spellFor } from "./dialect.ts";
import { type AddedColumn, MIGRATIONS, type Migration } from "./migrations.ts";
import type { HubSql } from "./types.ts";

// Any constant works; it only has to be the same for every replica that migrates this database.
const MIGRATION_LOCK = 7_262_001;

/**
 * Applies the migrations not yet recorded in `schema_migrations`; returns their versions. Replicas that
 * start together on PostgreSQL wait for each other on an advisory lock; on SQLite the transaction is
 * exclusive already. A database newer than the list is refused: this hub would not know its schema.
 */
export async function migrate(sql: HubSql, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version <= migrations[i - 1]!.version)
      throw new StoreError(sql.store, undefined, `migration ${migrations[i]!.version} is out of order`);
  }
  return sql.tx(async (tx) => {
    if (tx.dialect === "postgres") await tx.get(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await tx.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied BIGINT NOT NULL)",
    );
    const done = new Set(
      (await tx.all<{ version: number }>("SELECT version FROM schema_migrations")).map((r) => r.version),
    );
    const known = migrations.at(-1)?.version ?? 0;
    const newest = Math.max(0, ...done);
    if (newest > known)
      throw new StoreError(
        sql.store,
        undefined,
        `the database's schema is at version ${newest}, newer than this hub knows (${known})`,
      );
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      const text = typeof m.sql === "string" ? m.sql : m.sql[tx.dialect];
      if (text.trim() !== "") await tx.exec(text);
      await addColumns(tx, m.columns ?? []);
      const fill = typeof m.fill === "string" ? m.fill : m.fill?.[tx.dialect];
      if (fill) await tx.exec(fill);
      await tx.run("INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)", [
        m.version,
        m.name,
        Date.now(),
      ]);
      applied.push(m.version);
    }
    return applied;
  });
}

/** Adds each column its table lacks: PostgreSQL says IF NOT EXISTS itself, SQLite's columns are looked up. */
async function addColumns(tx: HubSql, columns: readonly AddedColumn[]): Promise<void> {
  const have = new Map<string, Set<string>>();
  for (const [table, column, type] of columns) {
    const spelled = `${column} ${spellFor(tx.dialect, type)}`;
    if (tx.dialect === "postgres") {
      await tx.exec(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${spelled}`);
      continue;
    }
    let names = have.get(table);
    if (!names) {
      const rows = await tx.all<{ name: string }>("SELECT name FROM pragma_table_info(?)", [table]);
      names = new Set(rows.map((r) => r.name));
      have.set(table, names);
    }
    if (names.has(column)) continue;
    await tx.exec(`ALTER TABLE ${table} ADD COLUMN ${spelled}`);
    names.add(column);
  }
}
