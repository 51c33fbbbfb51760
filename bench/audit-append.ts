// The audit log's appends (AuditLog.append) on PostgreSQL with 1, 2 and 3 writers, against SQLite.
//
//   bun bench/audit-append.ts [--rounds 3] [--seconds 5] [--writers 1,2,3] [--concurrency 8]
//
// Every entry is chained to the one before through the single `audit_head` row, locked in each
// append's transaction: on replicas every append of every replica waits its turn there. This measures
// what that one row allows. Settings:
//   - sqlite: one store from openSqlite on a fresh file (WAL, synchronous=FULL, as the hub sets),
//     --concurrency appends in flight (the one connection takes them one by one);
//   - postgres W: W writers, each its own HubSql with its own pool (as W replica processes would have,
//     here in one process), --concurrency appends in flight per writer.
// One private PostgreSQL (test/support/postgres.ts, fsync on) and a fresh database per run; settings
// interleaved round by round, the order reversed every other round. After each run the chain is
// verified whole and its length equals the appends answered. Exit 1 if not.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { AuditLog } from "../hub/auth/index.ts";
import { type HubSql, migrate, openPostgres, openSqlite } from "../hub/store/sql/index.ts";
import { startPostgres } from "../test/support/postgres.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    writers: { type: "string", default: "1,2,3" },
    concurrency: { type: "string", default: "8" },
  },
});
const ROUNDS = Number(opts.rounds);
const SECONDS = Number(opts.seconds);
const WRITERS = opts.writers.split(",").map(Number);
const CONCURRENCY = Number(opts.concurrency);

interface Run {
  appends: number;
  perSecond: number;
  /** Milliseconds from call to answer, sorted. */
  latency: number[];
}

/** Appends from every writer for SECONDS; then checks the chain. */
async function run(writers: HubSql[], check: HubSql): Promise<Run> {
  const logs = writers.map((w) => new AuditLog(w, Date.now));
  const latency: number[] = [];
  let appends = 0;
  const until = performance.now() + SECONDS * 1000;
  const worker = async (log: AuditLog, w: number, c: number) => {
    for (let i = 0; performance.now() < until; i++) {
      const t0 = performance.now();
      await log.append({
        actor: `replica-${w}`,
        action: "bench.append",
        object: `things/${c}/${i}`,
        before: null,
        after: "0".repeat(64),
        detail: "a decision of about this size, with its reason",
      });
      latency.push(performance.now() - t0);
      appends++;
    }
  };
  const started = performance.now();
  await Promise.all(
    logs.flatMap((log, w) => Array.from({ length: CONCURRENCY }, (_, c) => worker(log, w, c))),
  );
  const elapsed = (performance.now() - started) / 1000;
  const verified = await new AuditLog(check, Date.now).verify();
  if (!verified.ok || verified.entries !== appends) {
    console.error(`chain check failed: ${JSON.stringify(verified)}, ${appends} appends answered`);
    process.exit(1);
  }
  latency.sort((a, b) => a - b);
  return { appends, perSecond: appends / elapsed, latency };
}

printMachine(machineInfo());
const pg = await startPostgres({ fsync: true });
const dir = mkdtempSync(join(tmpdir(), "novacron-audit-bench-"));
const settings = ["sqlite", ...WRITERS.map((w) => `postgres ${w}`)];
const results = new Map<string, Run[]>(settings.map((s) => [s, []]));
let files = 0;
try {
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? settings : [...settings].reverse();
    for (const setting of order) {
      let writers: HubSql[];
      let check: HubSql;
      if (setting === "sqlite") {
        const path = join(dir, `audit-${++files}.db`);
        check = openSqlite(path);
        await migrate(check);
        writers = [openSqlite(path)];
      } else {
        const url = await pg.newDatabase();
        check = openPostgres(url);
        await migrate(check);
        const w = Number(setting.split(" ")[1]);
        writers = Array.from({ length: w }, () => openPostgres(url, { max: CONCURRENCY }));
      }
      try {
        const r = await run(writers, check);
        results.get(setting)!.push(r);
        console.log(
          `round ${round + 1} ${setting}: ${r.appends} appends, ${r.perSecond.toFixed(0)}/s, p50 ${pct(r.latency, 0.5).toFixed(2)} ms, p99 ${pct(r.latency, 0.99).toFixed(2)} ms, chain verified`,
        );
      } finally {
        for (const w of writers) await w.close();
        await check.close();
      }
    }
  }
} finally {
  await pg[Symbol.asyncDispose]();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(results.get("sqlite")!.map((r) => r.perSecond));
const rows: (string | number)[][] = [
  ["setting", "appends/s (median)", "vs sqlite", "p50 ms (median)", "p99 ms (median)"],
];
for (const [setting, runs] of results) {
  const rate = median(runs.map((r) => r.perSecond));
  rows.push([
    setting,
    rate.toFixed(0),
    `${(rate / base).toFixed(2)}x`,
    median(runs.map((r) => pct(r.latency, 0.5))).toFixed(2),
    median(runs.map((r) => pct(r.latency, 0.99))).toFixed(2),
  ]);
}
console.log(`\n${SECONDS} s per run, ${ROUNDS} rounds, ${CONCURRENCY} appends in flight per writer\n`);
console.log(table(rows));
