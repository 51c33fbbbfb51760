// PostgreSQL client for the hub store: Bun's built-in SQL against the `postgres` npm package, on the ingest hot path.
//
//   bun bench/pg-client.ts [--postgres-module /tmp/pgbench/node_modules/postgres/src/index.js]
//                          [--rounds 3] [--seconds 3] [--fsync on|off]
//
// Starts one private PostgreSQL (test/support/postgres.ts: initdb + pg_ctl on a free port, fsync on by
// default, as a hub would run it), then, interleaved round by round, for each client:
//   - hot path: transactions per second of the hub's ingest shape, one transaction each:
//     SELECT a node row FOR UPDATE, INSERT one 2 KB bytea batch row ON CONFLICT DO NOTHING, UPDATE the
//     node row's counters; with 1 and 4 concurrent workers (each its own node, a pool of 4);
//   - point select: one SELECT of a node row by key, one at a time (round trip, µs).
// Clients: `bun` (Bun.SQL, tagged templates), `hubsql` (Bun.SQL through hub/store/sql's HubSql, the
// hub's layer: `?` text, translated once per call), and `postgres` (the npm package, tagged templates).
// The npm package is not a dependency of the project: install it anywhere (e.g. `cd /tmp/pgbench &&
// npm install postgres`) and pass its entry file with --postgres-module; without the flag it is left out.
import { parseArgs } from "node:util";
import { SQL } from "bun";
import { type HubSql, openPostgres } from "../hub/store/sql/index.ts";
import { startPostgres } from "../test/support/postgres.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    "postgres-module": { type: "string" },
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "3" },
    fsync: { type: "string", default: "on" },
  },
});
const ROUNDS = Number(opts.rounds);
const SECONDS = Number(opts.seconds);
if (!(Number.isInteger(ROUNDS) && ROUNDS >= 1 && ROUNDS <= 20)) throw new Error("--rounds must be in 1..20");
if (!(SECONDS > 0 && SECONDS <= 60)) throw new Error("--seconds must be in (0, 60]");
if (opts.fsync !== "on" && opts.fsync !== "off") throw new Error("--fsync takes on or off");

/** One client under test: the hot-path transaction and the point select, for a node. */
interface Client {
  name: string;
  hot(node: string, seq: number, data: Uint8Array): Promise<void>;
  point(node: string): Promise<number>;
  close(): Promise<void>;
}

const SCHEMA = `
CREATE TABLE nodes (id TEXT PRIMARY KEY, last_seq BIGINT NOT NULL DEFAULT 0, samples BIGINT NOT NULL DEFAULT 0,
  batches BIGINT NOT NULL DEFAULT 0, last_seen BIGINT NOT NULL DEFAULT 0);
CREATE TABLE batches (node TEXT NOT NULL, seq BIGINT NOT NULL, start BIGINT NOT NULL, data BYTEA NOT NULL,
  PRIMARY KEY (node, seq));
`;

function bunClient(url: string): Client {
  const sql = new SQL({ url, max: 4, bigint: true });
  return {
    name: "bun",
    async hot(node, seq, data) {
      await sql.begin(async (tx) => {
        await tx`SELECT last_seq FROM nodes WHERE id = ${node} FOR UPDATE`;
        await tx`INSERT INTO batches (node, seq, start, data) VALUES (${node}, ${seq}, ${seq * 1000}, ${data})
                 ON CONFLICT DO NOTHING`;
        await tx`UPDATE nodes SET last_seq = ${seq}, samples = samples + 40, batches = batches + 1,
                 last_seen = ${Date.now()} WHERE id = ${node}`;
      });
    },
    async point(node) {
      const rows = await sql`SELECT last_seq FROM nodes WHERE id = ${node}`;
      return Number(rows[0].last_seq);
    },
    close: () => sql.close(),
  };
}

function hubSqlClient(url: string): Client {
  const sql: HubSql = openPostgres(url, { max: 4 });
  return {
    name: "hubsql",
    async hot(node, seq, data) {
      await sql.tx(async (tx) => {
        await tx.get("SELECT last_seq FROM nodes WHERE id = ? FOR UPDATE", [node]);
        await tx.run(
          "INSERT INTO batches (node, seq, start, data) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
          [node, seq, seq * 1000, data],
        );
        await tx.run(
          "UPDATE nodes SET last_seq = ?, samples = samples + 40, batches = batches + 1, last_seen = ? WHERE id = ?",
          [seq, Date.now(), node],
        );
      });
    },
    async point(node) {
      return (await sql.get<{ last_seq: number }>("SELECT last_seq FROM nodes WHERE id = ?", [node]))!
        .last_seq;
    },
    close: () => sql.close(),
  };
}

// The npm package's default export: postgres(url, options) → a tagged-template client with begin().
type Tag = (strings: TemplateStringsArray, ...values: unknown[]) => Promise<Record<string, unknown>[]>;
interface PostgresJsSql extends Tag {
  begin<T>(fn: (tx: Tag) => Promise<T>): Promise<T>;
  end(o: { timeout: number }): Promise<void>;
}
type PostgresJs = (url: string, o: Record<string, unknown>) => PostgresJsSql;

function postgresJsClient(make: PostgresJs, url: string): Client {
  const sql = make(url, { max: 4, onnotice: () => {} });
  return {
    name: "postgres",
    async hot(node, seq, data) {
      await sql.begin(async (tx) => {
        await tx`SELECT last_seq FROM nodes WHERE id = ${node} FOR UPDATE`;
        await tx`INSERT INTO batches (node, seq, start, data) VALUES (${node}, ${seq}, ${seq * 1000}, ${Buffer.from(data.buffer, data.byteOffset, data.byteLength)})
                 ON CONFLICT DO NOTHING`;
        await tx`UPDATE nodes SET last_seq = ${seq}, samples = samples + 40, batches = batches + 1,
                 last_seen = ${Date.now()} WHERE id = ${node}`;
      });
    },
    async point(node) {
      const rows = await sql`SELECT last_seq FROM nodes WHERE id = ${node}`;
      return Number(rows[0]!.last_seq);
    },
    close: () => sql.end({ timeout: 5 }),
  };
}

const data = new Uint8Array(2048);
for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;

let nodeSerial = 0;
async function hotPath(c: Client, admin: SQL, workers: number): Promise<number> {
  const nodes = Array.from({ length: workers }, () => `${c.name}-${++nodeSerial}`);
  for (const n of nodes) await admin`INSERT INTO nodes (id) VALUES (${n})`;
  let done = 0;
  const deadline = performance.now() + SECONDS * 1000;
  await Promise.all(
    nodes.map(async (n) => {
      for (let seq = 1; performance.now() < deadline; seq++) {
        await c.hot(n, seq, data);
        done++;
      }
    }),
  );
  // Every transaction committed one row: a client that lost writes would not get this far.
  const [{ stored }] = await admin`SELECT count(*)::int AS stored FROM batches WHERE node IN ${admin(nodes)}`;
  if (stored !== done) throw new Error(`${c.name}: ${done} transactions but ${stored} rows stored`);
  return done / SECONDS;
}

async function pointSelect(c: Client, node: string): Promise<{ p50: number; p99: number; perSec: number }> {
  const times: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  const start = performance.now();
  while (performance.now() < deadline) {
    const t = performance.now();
    if ((await c.point(node)) !== 1) throw new Error(`${c.name}: the point select read a wrong row`);
    times.push((performance.now() - t) * 1000);
  }
  const elapsed = (performance.now() - start) / 1000;
  times.sort((a, b) => a - b);
  return { p50: pct(times, 0.5), p99: pct(times, 0.99), perSec: times.length / elapsed };
}

printMachine(machineInfo());
await using pg = await startPostgres({ fsync: opts.fsync === "on" });
console.log(
  `postgres: ${pg.url} (fsync ${opts.fsync}); ${ROUNDS} rounds of ${SECONDS} s per figure, clients interleaved`,
);
const admin = new SQL({ url: pg.url, max: 1 });
await admin.unsafe(SCHEMA);

let makePostgresJs: PostgresJs | undefined;
if (opts["postgres-module"]) {
  const mod = await import(opts["postgres-module"]);
  makePostgresJs = mod.default ?? mod;
} else console.log("postgres (npm) left out: pass --postgres-module PATH to its entry file");

const factories: (() => Client)[] = [
  () => bunClient(pg.url),
  () => hubSqlClient(pg.url),
  ...(makePostgresJs ? [() => postgresJsClient(makePostgresJs!, pg.url)] : []),
];

type Row = { tx1: number; tx4: number; p50: number; p99: number; perSec: number };
const results = new Map<string, Row[]>();
const rows: (string | number)[][] = [
  ["round", "client", "tx/s (1)", "tx/s (4)", "point p50 µs", "point p99 µs", "point/s"],
];
for (let round = 1; round <= ROUNDS; round++) {
  // Alternate the order, so that neither client always runs first in a round.
  const order = round % 2 === 1 ? factories : [...factories].reverse();
  for (const make of order) {
    const c = make();
    // One warm-up transaction and select: connections and prepared statements.
    const warm = `${c.name}-warm-${round}`;
    await admin`INSERT INTO nodes (id) VALUES (${warm})`;
    await c.hot(warm, 1, data);
    const tx1 = await hotPath(c, admin, 1);
    const tx4 = await hotPath(c, admin, 4);
    const p = await pointSelect(c, warm);
    await c.close();
    const row = { tx1, tx4, ...p };
    results.set(c.name, [...(results.get(c.name) ?? []), row]);
    rows.push([
      round,
      c.name,
      tx1.toFixed(0),
      tx4.toFixed(0),
      p.p50.toFixed(0),
      p.p99.toFixed(0),
      p.perSec.toFixed(0),
    ]);
  }
}
console.log(table(rows));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const med = (name: string, k: keyof Row) => median(results.get(name)!.map((r) => r[k]));
const summary: (string | number)[][] = [["median", "tx/s (1)", "tx/s (4)", "point p50 µs", "point/s"]];
for (const name of results.keys())
  summary.push([
    name,
    med(name, "tx1").toFixed(0),
    med(name, "tx4").toFixed(0),
    med(name, "p50").toFixed(0),
    med(name, "perSec").toFixed(0),
  ]);
console.log(`\n${table(summary)}`);
// Ratios within each round (same minute of a noisy machine), then their median.
for (const other of [...results.keys()].filter((n) => n !== "bun")) {
  const ratio = (k: keyof Row) =>
    median(results.get("bun")!.map((r, i) => r[k] / results.get(other)![i]![k])).toFixed(2);
  console.log(
    `bun / ${other}, median of per-round ratios: tx/s (1) ${ratio("tx1")}, tx/s (4) ${ratio("tx4")}, point/s ${ratio("perSec")}`,
  );
}
await admin.close();
