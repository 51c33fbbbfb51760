// The migrations give PostgreSQL the schema today's hub makes on SQLite, and adopt a hub.db made by openHubDb.
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { StoreError } from "../../shared/errors.ts";
import { openHubDb } from "../../hub/store/db.ts";
import {
  type HubSql,
  MIGRATIONS,
  migrate,
  openPostgres,
  openSqlite,
  type SqlValue,
  wrapSqlite,
} from "../../hub/store/sql/index.ts";
import { admitDirect, helloBody, hubCoreOn } from "../support/hub-core.ts";
import { describeOnPostgres } from "../support/postgres.ts";
import { tempDir } from "../support/processes.ts";

const root = tempDir("novacron-sql-schema-");
let dirs = 0;
afterAll(() => root[Symbol.dispose]());
const newDir = () => join(root.path, `hub-${++dirs}`);

/** What a schema is made of, by name: each table's columns, the indexes (not those of keys) and the triggers. */
interface Shape {
  tables: Record<string, string[]>;
  indexes: string[];
  triggers: string[];
}

function group(rows: { t: string; c: string }[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const r of rows) {
    out[r.t] ??= [];
    out[r.t]!.push(r.c);
  }
  for (const cols of Object.values(out)) cols.sort();
  return out;
}

async function shapeOf(sql: HubSql): Promise<Shape> {
  if (sql.dialect === "sqlite") {
    const cols = await sql.all<{ t: string; c: string }>(
      `SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p
       WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`,
    );
    const named = async (type: string) =>
      (
        await sql.all<{ name: string }>(
          "SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%' ORDER BY name",
          [type],
        )
      ).map((r) => r.name);
    return { tables: group(cols), indexes: await named("index"), triggers: await named("trigger") };
  }
  const cols = await sql.all<{ t: string; c: string }>(
    `SELECT table_name AS t, column_name AS c FROM information_schema.columns
     WHERE table_schema = current_schema()`,
  );
  // Indexes PostgreSQL makes for PRIMARY KEY and UNIQUE constraints carry the constraint's name.
  const indexes = await sql.all<{ name: string }>(
    `SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()
     AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname`,
  );
  const triggers = await sql.all<{ name: string }>(
    `SELECT DISTINCT trigger_name AS name FROM information_schema.triggers
     WHERE trigger_schema = current_schema() ORDER BY trigger_name`,
  );
  return { tables: group(cols), indexes: indexes.map((r) => r.name), triggers: triggers.map((r) => r.name) };
}

/**
 * The schema hubs made before the numbered migrations (openHubDb's own schema code and every store's
 * constructor), kept as a file: the constructors no longer make tables, so only this file remembers it.
 */
const BEFORE_MIGRATIONS = readFileSync(
  join(import.meta.dir, "fixtures/hub-db-before-migrations.sql"),
  "utf8",
);

/** A hub.db as hubs before the numbered migrations left it, with what `work` did through a hub core on it. */
async function todaysHub(
  dir: string,
  work?: (core: Awaited<ReturnType<typeof hubCoreOn>>) => unknown,
): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "hub.db");
  const db = new Database(path, { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run(BEFORE_MIGRATIONS);
  if (!work) {
    db.close();
    return path;
  }
  using core = await hubCoreOn(db);
  await work(core);
  return path;
}

/** What migrations 2, 3 and 7 and the migration log add beyond what today's hub makes. */
const MIGRATION_ONLY = ["leases", "node_replies", "node_sessions", "schema_migrations"];
const ALL_VERSIONS = MIGRATIONS.map((m) => m.version);
/** Columns migrations after 4 add to tables a hub.db already has, with the value an existing row gets. */
const LATER_COLUMNS: Record<string, Record<string, unknown>> = {
  cache_data: { text: 0 },
  // Steps recorded before migration 6 keep their order: seq is their rowid (the one row here: 1).
  hub_alert_events: { seq: 1 },
};
/** A table's columns once the later migrations ran. */
const withLaterColumns = (table: string, cols: readonly string[]) =>
  [...cols, ...Object.keys(LATER_COLUMNS[table] ?? {})].sort();
/** A table's rows once the later migrations ran. */
const withLaterValues = (table: string, rows: readonly Record<string, unknown>[]) =>
  rows.map((r) => ({ ...r, ...LATER_COLUMNS[table] }));

/** One row in every table that has none, each column given a value of its kind (through `sql`). */
async function fillEmptyTables(sql: HubSql): Promise<void> {
  const { tables } = await shapeOf(sql);
  // Each column's declared type, and whether the database assigns it (left out of the insert).
  const typed =
    sql.dialect === "sqlite"
      ? await sql.all<{ k: string; type: string; auto: number }>(
          `SELECT m.name || '.' || p.name AS k, p.type AS type,
             (p.pk = 1 AND m.sql LIKE '%AUTOINCREMENT%') AS auto
           FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'`,
        )
      : await sql.all<{ k: string; type: string; auto: number }>(
          `SELECT table_name || '.' || column_name AS k, data_type AS type,
             CASE WHEN is_identity = 'YES' THEN 1 ELSE 0 END AS auto
           FROM information_schema.columns WHERE table_schema = current_schema()`,
        );
  const kinds = new Map(typed.map((r) => [r.k, r] as const));
  for (const [table, all] of Object.entries(tables)) {
    if (table === "schema_migrations") continue;
    const count = await sql.get<{ n: number }>(`SELECT count(*) AS n FROM ${table}`);
    if (Number(count?.n) > 0) continue;
    const cols = all.filter((c) => !kinds.get(`${table}.${c}`)?.auto);
    const values: SqlValue[] = cols.map((c) => {
      const type = kinds.get(`${table}.${c}`)?.type.toUpperCase() ?? "";
      // 1 suits every integer column, audit_head's CHECK (id = 1) too.
      if (type.includes("INT")) return 1;
      if (type === "BLOB" || type === "BYTEA") return new Uint8Array([table.length, c.length, 0, 255]);
      return `${table}.${c}`;
    });
    const quoted = cols.map((c) => `"${c}"`).join(", ");
    await sql.run(`INSERT INTO ${table} (${quoted}) VALUES (${cols.map(() => "?").join(", ")})`, values);
  }
}

/** Every row of every table, in a stable order. */
async function rowsOf(sql: HubSql): Promise<Record<string, unknown[]>> {
  const { tables } = await shapeOf(sql);
  const out: Record<string, unknown[]> = {};
  for (const table of Object.keys(tables).sort()) {
    if (table === "schema_migrations") continue;
    const rows = await sql.all(`SELECT * FROM ${table}`);
    out[table] = rows
      .map((r) => [JSON.stringify(r, (_k, v) => (v instanceof Uint8Array ? [...v] : v)), r] as const)
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([, r]) => r);
  }
  return out;
}

describe("migration 4 (hub tables) on SQLite", () => {
  test("today's hub.db is adopted: every table and column it has, plus only what migrations 2 and 3 add", async () => {
    const path = await todaysHub(newDir());
    const before = await (async () => {
      const sql = openSqlite(path);
      try {
        return await shapeOf(sql);
      } finally {
        await sql.close();
      }
    })();
    // The hub as it is made today: its own tables, nothing of the migrations.
    expect(Object.keys(before.tables)).toContain("audit_log");
    expect(Object.keys(before.tables)).not.toContain("schema_migrations");
    expect(before.tables.nodes).toHaveLength(28);
    const db = new Database(path, { strict: true });
    try {
      const sql = wrapSqlite(db);
      expect(await migrate(sql)).toEqual(ALL_VERSIONS);
      const after = await shapeOf(sql);
      const added = Object.keys(after.tables).filter((t) => !(t in before.tables));
      expect(added.sort()).toEqual(MIGRATION_ONLY);
      for (const [table, cols] of Object.entries(before.tables))
        expect(after.tables[table]).toEqual(withLaterColumns(table, cols));
      expect(after.indexes.filter((i) => !before.indexes.includes(i))).toEqual(["node_sessions_by_replica"]);
      expect(after.triggers).toEqual(before.triggers);
    } finally {
      db.close();
    }
  });

  test("a fresh file migrated has exactly the shape of today's hub.db migrated", async () => {
    const todays = await todaysHub(newDir());
    const a = openSqlite(todays);
    const b = openSqlite(join(root.path, `fresh-${++dirs}.db`));
    try {
      await migrate(a);
      await migrate(b);
      expect(await shapeOf(b)).toEqual(await shapeOf(a));
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("migrate on a hub.db with rows in every table keeps every row, twice over, and openHubDb opens it after", async () => {
    const dir = newDir();
    const path = await todaysHub(dir, async (core) => {
      await admitDirect(core.registry, helloBody("edge-1", { labels: { zone: "a" } }));
      await core.tokens.mint("ops", "admin", null);
      await core.audit.append({
        actor: "test",
        action: "put",
        object: "x",
        before: null,
        after: "y",
        detail: "d",
      });
    });
    const sql = openSqlite(path);
    try {
      await fillEmptyTables(sql);
      const rows = await rowsOf(sql);
      for (const [table, list] of Object.entries(rows))
        expect({ table, n: list.length > 0 }).toEqual({ table, n: true });
      expect((rows.nodes as { id: string; labels: string }[]).find((n) => n.id === "edge-1")?.labels).toBe(
        '{"zone":"a"}',
      );
      expect(await migrate(sql)).toEqual(ALL_VERSIONS);
      const once = await rowsOf(sql);
      expect(
        Object.keys(once)
          .filter((t) => !(t in rows))
          .sort(),
      ).toEqual(["leases", "node_replies", "node_sessions"]);
      for (const [table, list] of Object.entries(rows))
        expect({ table, rows: once[table] }).toEqual({
          table,
          rows: withLaterValues(table, list as Record<string, unknown>[]),
        });
      expect(await migrate(sql)).toEqual([]);
      expect(await rowsOf(sql)).toEqual(once);
    } finally {
      await sql.close();
    }
    // The hub opens the migrated file as before, and its rows are still there.
    using core = await hubCoreOn(await openHubDb(dir));
    expect(core.registry.get("edge-1")?.labels).toEqual({ zone: "a" });
  });

  test("a hub.db from an older hub (columns openHubDb adds are missing) gets them with their defaults, rows kept", async () => {
    const dir = newDir();
    const path = await todaysHub(dir, async (core) => {
      await admitDirect(core.registry, helloBody("edge-1"));
    });
    const old = new Database(path, { strict: true });
    const dropped: [string, string][] = [
      ["nodes", "kind"],
      ["nodes", "sample_end"],
      ["nodes", "pubkey"],
      ["batches", "fold"],
      ["batches", "rollup"],
      ["workloads", "placement"],
    ];
    for (const [table, column] of dropped) old.run(`ALTER TABLE ${table} DROP COLUMN ${column}`);
    old.close();
    const sql = openSqlite(path);
    try {
      const before = await shapeOf(sql);
      for (const [table, column] of dropped) expect(before.tables[table]).not.toContain(column);
      expect(await migrate(sql)).toEqual(ALL_VERSIONS);
      const after = await shapeOf(sql);
      for (const [table, column] of dropped) expect(after.tables[table]).toContain(column);
      expect(await sql.get("SELECT id, kind, sample_end, pubkey FROM nodes")).toEqual({
        id: "edge-1",
        kind: "agent",
        sample_end: 0,
        pubkey: null,
      });
    } finally {
      await sql.close();
    }
  });

  test("openHubDb adopts a hub.db left by an older hub: every migration recorded, its rows and pragmas kept, once", async () => {
    const dir = newDir();
    await todaysHub(dir, async (core) => {
      await admitDirect(core.registry, helloBody("edge-1"));
    });
    const versions = (db: Database) =>
      (db.query("SELECT version FROM schema_migrations ORDER BY version").all() as { version: number }[]).map(
        (r) => r.version,
      );
    const db = await openHubDb(dir);
    try {
      expect(versions(db)).toEqual(ALL_VERSIONS);
      expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
      expect(db.query("SELECT id FROM nodes").all()).toEqual([{ id: "edge-1" }]);
      // Migrating again through the hub's connection finds nothing to do, and leaves it open.
      const sql = wrapSqlite(db);
      expect(await migrate(sql)).toEqual([]);
      await sql.close();
      expect(db.query("SELECT count(*) AS n FROM schema_migrations").get()).toEqual({
        n: ALL_VERSIONS.length,
      });
    } finally {
      db.close();
    }
    const again = await openHubDb(dir);
    expect(versions(again)).toEqual(ALL_VERSIONS);
    again.close();
  });

  test("openHubDb refuses a hub.db whose schema is newer than this hub knows, naming the version", async () => {
    const dir = newDir();
    (await openHubDb(dir)).close();
    const db = new Database(join(dir, "hub.db"), { strict: true });
    db.run("INSERT INTO schema_migrations (version, name, applied) VALUES (99, 'future', 0)");
    db.close();
    const err = await openHubDb(dir).catch((e) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err.message).toContain("version 99, newer than this hub knows");
  });
});

/** What both back ends must do with the migrated schema. */
async function expectUsable(sql: HubSql): Promise<void> {
  await fillEmptyTables(sql);
  // The audit log takes rows and refuses to change or lose one.
  for (const stmt of ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"]) {
    const err = await sql.run(stmt).catch((e) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err.message).toContain("the audit log is append-only");
  }
  expect(await sql.get("SELECT count(*) AS n FROM audit_log")).toEqual({ n: 1 });
  // Row ids the database assigns rise; times and counters past 2^31 fit.
  const big = 2 ** 52 + 1;
  for (let i = 0; i < 2; i++)
    await sql.run("INSERT INTO failover_events (at, kind, node, reason) VALUES (?, 'node_down', 'n', 'r')", [
      big + i,
    ]);
  const ids = await sql.all<{ id: number; at: number }>("SELECT id, at FROM failover_events ORDER BY id");
  expect(ids.map((r) => r.at)).toEqual([1, big, big + 1]);
  expect(ids[1]!.id).toBeGreaterThan(ids[0]!.id);
  expect(ids[2]!.id).toBeGreaterThan(ids[1]!.id);
  // One live alert per key (the partial unique index), any number resolved.
  const alert = (state: string) =>
    sql.run(
      `INSERT INTO hub_alerts (key, source, rule, severity, state, message, started_at, updated_at)
       VALUES ('k', 's', 'r', 'warning', ?, 'm', 1, 1)`,
      [state],
    );
  await alert("open");
  await alert("resolved");
  await alert("resolved");
  expect(await alert("open").catch((e) => e)).toBeInstanceOf(StoreError);
}

test("sqlite: the migrated schema keeps the audit log append-only, assigns rising ids, one live alert per key", async () => {
  const sql = openSqlite(join(root.path, `usable-${++dirs}.db`));
  try {
    await migrate(sql);
    await expectUsable(sql);
  } finally {
    await sql.close();
  }
});

describeOnPostgres("postgres", (pg) => {
  test("postgres after migrate has the tables, columns, indexes and triggers of today's hub.db migrated", async () => {
    const pgSql = openPostgres(await pg().newDatabase());
    const liteSql = openSqlite(await todaysHub(newDir()));
    try {
      expect(await migrate(pgSql)).toEqual(ALL_VERSIONS);
      await migrate(liteSql);
      const onPg = await shapeOf(pgSql);
      const onLite = await shapeOf(liteSql);
      expect(Object.keys(onPg.tables).sort()).toEqual(Object.keys(onLite.tables).sort());
      for (const [table, cols] of Object.entries(onLite.tables))
        expect({ table, cols: onPg.tables[table] }).toEqual({ table, cols });
      expect(onPg).toEqual(onLite);
      expect(await migrate(pgSql)).toEqual([]);
    } finally {
      await pgSql.close();
      await liteSql.close();
    }
  });

  test("postgres: the migrated schema keeps the audit log append-only, assigns rising ids, one live alert per key", async () => {
    const sql = openPostgres(await pg().newDatabase());
    try {
      await migrate(sql);
      await expectUsable(sql);
      // An id the writer gives is refused rather than left for a later row to collide with.
      const given = await sql
        .run("INSERT INTO failover_events (id, at, kind, reason) VALUES (?, ?, 'node_down', 'r')", [100, 1])
        .catch((e) => e);
      expect(given).toBeInstanceOf(StoreError);
      expect(given.message).toContain("failover_events");
    } finally {
      await sql.close();
    }
  });

  test("postgres: a database with migrations 1-3 only (nodes with 13 columns) gets the rest, rows kept", async () => {
    const sql = openPostgres(await pg().newDatabase());
    try {
      expect(await migrate(sql, MIGRATIONS.slice(0, 3))).toEqual([1, 2, 3]);
      await sql.run("INSERT INTO nodes (id, level, first_seen, last_seen, samples) VALUES (?, ?, ?, ?, ?)", [
        "n1",
        3,
        1,
        2,
        2 ** 40,
      ]);
      expect((await shapeOf(sql)).tables.nodes).toHaveLength(13);
      expect(await migrate(sql)).toEqual(ALL_VERSIONS.filter((v) => v >= 4));
      expect((await shapeOf(sql)).tables.nodes).toHaveLength(28);
      expect(await sql.get("SELECT id, samples, labels, draining, kind FROM nodes")).toEqual({
        id: "n1",
        samples: 2 ** 40,
        labels: "{}",
        draining: 0,
        kind: "agent",
      });
    } finally {
      await sql.close();
    }
  });
});
