// The outbox behind a day of backlog: appending one alert (it overtakes the unsent batches) and one downsampling pass.
//
//   bun bench/outbox.ts [--compare REV] [--appends 200] [--passes 5] [--series 11]
//
// 1. A day of 1 s samples (--series series, seeded values) goes through the agent's own MetricBuffer
//    into a real AgentStore, packed every 20 s like the agent's default batch_interval: 4,320 unsent
//    metrics batches. The file is built once and copied for every measurement.
// 2. Alert: `outbox.append("event", ...)` behind that backlog, --appends times, each timed on its own
//    (the median and p99 are printed). Alerts go before unsent bulk, so this is the overtaking path.
// 3. Downsampling: `downsampler.run(outbox, bytes - 1)` folds the oldest hour into rollups (one pass,
//    what the budget's relief does first); then `run(outbox, 0)` folds the whole day. Each --passes
//    times on a fresh copy; the median is printed.
// 4. Drain of large batches: --large incompressible metrics batches of --large-bytes (the size of a
//    catch-up batch), sent as the link does: take() a window of --window, then ackUpTo() it, until
//    empty. With automatic checkpoints off, the WAL's size at the end is every byte the drain wrote
//    (take's numbering, the acks, the counters); printed with the time. The WAL of numbering the first
//    window alone and of the whole-day downsampling pass (step 3, run in one transaction as the
//    budget's relief runs it inside an append) are printed too.
// With --compare REV the same measurements also run on the source of REV (exported with git archive into
// a temp dir), in the same process run one after the other, and the ratios are printed.
import { copyFileSync, mkdtempSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { machineInfo, printMachine, table } from "./_machine.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    compare: { type: "string" },
    appends: { type: "string", default: "200" },
    passes: { type: "string", default: "5" },
    series: { type: "string", default: "11" },
    large: { type: "string", default: "2000" },
    "large-bytes": { type: "string", default: "23000" },
    window: { type: "string", default: "64" },
    // Internal: measure the source under this root and print one JSON line.
    root: { type: "string" },
  },
});
const APPENDS = Number(opts.appends);
const PASSES = Number(opts.passes);
const SERIES = Number(opts.series);
const LARGE = Number(opts.large);
const LARGE_BYTES = Number(opts["large-bytes"]);
const WINDOW = Number(opts.window);
const DAY_TICKS = 86_400;
const BATCH_TICKS = 20;
const T0 = Math.floor(Date.UTC(2026, 10, 1) / 1000) * 1000;

interface Result {
  root: string;
  batches: number;
  bytes: number;
  fillS: number;
  appendMedianMs: number;
  appendP99Ms: number;
  onePassMs: number;
  onePassFolded: number;
  dayMs: number;
  dayFolded: number;
  /** WAL bytes of the whole-day pass in one transaction (as the relief runs it). */
  dayWalBytes: number;
  drainMs: number;
  /** WAL bytes written by the whole drain of the large batches. */
  drainWalBytes: number;
  /** WAL bytes of numbering the first window of large batches. */
  windowWalBytes: number;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

async function measure(root: string): Promise<Result> {
  // biome-ignore lint/suspicious/noExplicitAny: the store of another revision, loaded by path
  const mod: any = await import(join(root, "agent/store/index.ts"));
  const { encodeCbor } = await import(join(root, "shared/protocol/index.ts"));
  const dir = mkdtempSync(join(tmpdir(), "novacron-bench-outbox-"));
  try {
    const built = join(dir, "built");
    const t0 = performance.now();
    const store = new mod.AgentStore(built, { bufferBytes: 1 << 30 });
    const buffer = new mod.MetricBuffer(store, 1000);
    let seed = 11;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const level = Array.from({ length: SERIES }, (_, i) => 10 + i * 7);
    for (let i = 0; i < DAY_TICKS; i++) {
      const values: Record<string, number> = {};
      for (let s = 0; s < SERIES; s++) {
        level[s] = Math.max(0, level[s]! + (rand() - 0.5) * 2);
        values[`bench.s${s}`] = Math.round(level[s]! * 100) / 100;
      }
      buffer.add(T0 + i * 1000, values);
      if (i % BATCH_TICKS === BATCH_TICKS - 1) buffer.flush(T0 + i * 1000);
    }
    buffer.flush(T0 + DAY_TICKS * 1000);
    const stats = store.outbox.stats();
    store.close();
    const fillS = (performance.now() - t0) / 1000;

    const fresh = (name: string) => {
      const d = join(dir, name);
      const s0 = new mod.AgentStore(d, { bufferBytes: 1 << 30 });
      s0.close();
      copyFileSync(join(built, "agent.db"), join(d, "agent.db"));
      rmSync(join(d, "agent.db-wal"), { force: true });
      rmSync(join(d, "agent.db-shm"), { force: true });
      return new mod.AgentStore(d, { bufferBytes: 1 << 30 });
    };

    const a = fresh("append");
    const times: number[] = [];
    for (let i = 0; i < APPENDS; i++) {
      const body = encodeCbor({ kind: "alert", at: T0 + i, message: `alert ${i}` });
      const start = performance.now();
      a.outbox.append("event", body, 0, T0 + DAY_TICKS * 1000 + i);
      times.push(performance.now() - start);
    }
    a.close();

    const onePass: number[] = [];
    const day: number[] = [];
    let onePassFolded = 0;
    let dayFolded = 0;
    let dayWalBytes = 0;
    for (let i = 0; i < PASSES; i++) {
      const d = fresh(`downsample-${i}`);
      const begin = performance.now();
      onePassFolded = d.downsampler.run(d.outbox, d.outbox.bytes - 1);
      onePass.push(performance.now() - begin);
      d.close();
      const d2 = fresh(`downsample-day-${i}`);
      d2.db.run("PRAGMA wal_autocheckpoint = 0");
      d2.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
      const dayStart = performance.now();
      // In one transaction, as the budget's relief runs it (inside the append that went over).
      dayFolded = d2.db.transaction(() => d2.downsampler.run(d2.outbox, 0))();
      day.push(performance.now() - dayStart);
      dayWalBytes = walSize(d2);
      d2.close();
    }

    // 4. The drain of large batches.
    const l = new mod.AgentStore(join(dir, "drain"), { bufferBytes: 1 << 30 });
    const payload = new Uint8Array(LARGE_BYTES);
    for (let i = 0; i < LARGE; i++) {
      for (let at = 0; at < LARGE_BYTES; at += 65536)
        crypto.getRandomValues(payload.subarray(at, at + 65536));
      l.outbox.append("metrics_batch", payload, 100, T0 + i);
    }
    l.db.run("PRAGMA wal_autocheckpoint = 0");
    l.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    const start = performance.now();
    let next = 1;
    let sent = l.outbox.take(next, WINDOW);
    const windowWalBytes = walSize(l);
    while (sent.length > 0) {
      const last = sent[sent.length - 1].seq;
      l.outbox.ackUpTo(last);
      next = last + 1;
      sent = l.outbox.take(next, WINDOW);
    }
    const drainMs = performance.now() - start;
    const drainWalBytes = walSize(l);
    if (l.outbox.pending !== 0) throw new Error("the drain left entries behind");
    l.close();
    const onePassMs = quantile(onePass, 0.5);
    const dayMs = quantile(day, 0.5);
    return {
      root,
      batches: stats.pending,
      bytes: stats.bytes,
      fillS,
      appendMedianMs: quantile(times, 0.5),
      appendP99Ms: quantile(times, 0.99),
      onePassMs,
      onePassFolded,
      dayMs,
      dayFolded,
      dayWalBytes,
      drainMs,
      drainWalBytes,
      windowWalBytes,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// biome-ignore lint/suspicious/noExplicitAny: the store of another revision, loaded by path
function walSize(store: any): number {
  try {
    return statSync(`${store.path}-wal`).size;
  } catch {
    return 0;
  }
}

// Exports REV's source into a temp dir that shares this checkout's node_modules.
function exportRevision(rev: string): string {
  const dir = mkdtempSync(join(tmpdir(), "novacron-bench-rev-"));
  const archive = Bun.spawnSync(["git", "archive", "--format=tar", rev], { cwd: ROOT, stdout: "pipe" });
  if (archive.exitCode !== 0) throw new Error(`git archive ${rev} failed`);
  const untar = Bun.spawnSync(["tar", "-x", "-C", dir], { stdin: archive.stdout });
  if (untar.exitCode !== 0) throw new Error(`could not unpack ${rev}`);
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

async function child(root: string): Promise<Result> {
  const proc = Bun.spawn(
    [
      "bun",
      import.meta.path,
      "--root",
      root,
      "--appends",
      String(APPENDS),
      "--passes",
      String(PASSES),
      "--series",
      String(SERIES),
      "--large",
      String(LARGE),
      "--large-bytes",
      String(LARGE_BYTES),
      "--window",
      String(WINDOW),
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`measuring ${root} failed`);
  return JSON.parse(out.trim().split("\n").pop()!) as Result;
}

if (opts.root) {
  console.log(JSON.stringify(await measure(opts.root)));
} else {
  printMachine(machineInfo());
  const runs: [string, Result][] = [];
  if (opts.compare) {
    const dir = exportRevision(opts.compare);
    try {
      runs.push([opts.compare, await child(dir)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  runs.push(["this tree", await child(ROOT)]);
  const r0 = runs[0]![1];
  console.log(
    `backlog: a day of 1 s samples, ${SERIES} series, packed every ${BATCH_TICKS} s: ${r0.batches} batches, ${r0.bytes} B (built in ${r0.fillS.toFixed(1)} s)`,
  );
  const ms = (x: number) => x.toFixed(3);
  console.log(
    table([
      [
        "source",
        "alert append median ms",
        "p99 ms",
        "one pass median ms (folded)",
        "whole day median ms (folded)",
      ],
      ...runs.map(([name, r]) => [
        name,
        ms(r.appendMedianMs),
        ms(r.appendP99Ms),
        `${ms(r.onePassMs)} (${r.onePassFolded})`,
        `${ms(r.dayMs)} (${r.dayFolded})`,
      ]),
    ]),
  );
  const kb = (x: number) => (x / 1024).toFixed(0);
  console.log(
    `drain: ${LARGE} batches of ${LARGE_BYTES} B (${kb(LARGE * LARGE_BYTES)} KiB), windows of ${WINDOW}, take() then ackUpTo()`,
  );
  console.log(
    table([
      ["source", "drain ms", "drain WAL KiB", "one window numbered WAL KiB", "whole-day pass WAL KiB"],
      ...runs.map(([name, r]) => [
        name,
        ms(r.drainMs),
        kb(r.drainWalBytes),
        kb(r.windowWalBytes),
        kb(r.dayWalBytes),
      ]),
    ]),
  );
  if (runs.length === 2) {
    const [a, b] = [runs[0]![1], runs[1]![1]];
    console.log(
      `ratios (${runs[0]![0]} / this tree): alert append ${(a.appendMedianMs / b.appendMedianMs).toFixed(1)}x, one pass ${(a.onePassMs / b.onePassMs).toFixed(1)}x, whole day ${(a.dayMs / b.dayMs).toFixed(1)}x, drain time ${(a.drainMs / b.drainMs).toFixed(1)}x, drain WAL ${(a.drainWalBytes / b.drainWalBytes).toFixed(1)}x`,
    );
  }
}
