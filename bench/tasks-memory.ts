// What supervising workloads costs the agent in memory: RSS of this process with 50 supervised `sleep` tasks, children not counted.
//
//   bun bench/tasks-memory.ts [--tasks 50] [--settle 10] [--measure 5] [--health]
//
// One process hosts a TaskManager on a fresh SQLite file, as the agent does. Phases, each measured
// as the median of VmRSS (this process only: the tasks are separate processes) sampled every 250 ms
// for --measure seconds after --settle seconds:
//   baseline   modules loaded, database open, manager created, nothing running
//   spawned    N `sleep` tasks started by this manager (Bun subprocess handles, exit watchers,
//              1 s log-rotation checks)
//   adopted    a fresh process (its own baseline first) re-adopts the same N processes after the
//              first manager stopped: the restart path, /proc polled every second per task
// --health adds a TCP health check every second to each task (against a closed port: a failed
// connect each time, the cheapest check that still exercises the monitor).
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as v from "valibot";
import { TaskManager } from "../agent/tasks/index.ts";
import { createLogger } from "../shared/log.ts";
import { AllocSpec } from "../shared/workload/index.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    tasks: { type: "string", default: "50" },
    settle: { type: "string", default: "10" },
    measure: { type: "string", default: "5" },
    health: { type: "boolean", default: false },
    "adopt-dir": { type: "string" },
  },
});
const N = Number(opts.tasks);
const settleMs = Number(opts.settle) * 1000;
const measureMs = Number(opts.measure) * 1000;

// The agent always has a 1 s tick; without one the baseline would miss what any timer costs Bun
// (an idle 20 ms interval alone adds ~2.5 MiB of RSS here), and charge it to the task manager.
const tick = setInterval(() => {}, 1000);
const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? Number.NaN;

const dir = opts["adopt-dir"] ?? mkdtempSync(join(tmpdir(), "novacron-tasks-bench-"));
const db = new Database(join(dir, "agent.db"), { create: true, strict: true });
db.run("PRAGMA journal_mode = WAL");
db.run("PRAGMA synchronous = NORMAL");
const log = createLogger("bench", { level: "warn" });
let running = 0;
const events = { onStatus: () => {}, onResult: () => {} };
const manager = () => new TaskManager({ db, dataDir: dir, log, events });

interface Mem {
  rss: number;
  heap: number;
}

async function rss(): Promise<Mem> {
  await Bun.sleep(settleMs);
  Bun.gc(true);
  const samples: number[] = [];
  const end = Date.now() + measureMs;
  while (Date.now() < end) {
    samples.push(process.memoryUsage().rss);
    await Bun.sleep(250);
  }
  return { rss: median(samples), heap: process.memoryUsage().heapUsed };
}

async function waitRunning(tm: TaskManager): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    running = tm.list().filter((t) => t.status === "running" && t.pid !== null).length;
    if (running === N) return;
    await Bun.sleep(50);
  }
  throw new Error(`only ${running} of ${N} tasks running after 30 s`);
}

const allocs = Array.from({ length: N }, (_, i) =>
  v.parse(AllocSpec, {
    id: `bench-${i}`,
    workload: "sleeper",
    version: 1,
    spec: {
      name: "sleeper",
      driver: "exec",
      command: "sleep",
      args: ["3600"],
      ...(opts.health ? { health: { type: "tcp", port: 9, interval_ms: 1000, timeout_ms: 500 } } : {}),
    },
  }),
);

/** Child mode: adopt what the parent's manager left running, print this process's figures as JSON. */
async function adoptChild(): Promise<void> {
  const baseline = await rss();
  const b = manager();
  await b.start();
  await waitRunning(b);
  const adopted = await rss();
  await b.stop();
  console.log(JSON.stringify({ baseline, adopted }));
}

/** Runs the adopted phase in a fresh process, so that the first manager's memory is not counted. */
async function adoptInChild(): Promise<{ baseline: Mem; adopted: Mem }> {
  const args = ["--adopt-dir", dir, "--tasks", String(N), "--settle", opts.settle, "--measure", opts.measure];
  const child = Bun.spawn([process.execPath, import.meta.path, ...args], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const out = await new Response(child.stdout).text();
  if ((await child.exited) !== 0) throw new Error("adopting child failed");
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

if (opts["adopt-dir"]) {
  await adoptChild();
  clearInterval(tick);
  db.close();
  process.exit(0);
}

const pids: number[] = [];
try {
  printMachine(machineInfo());
  const a = manager();
  const baseline = await rss();
  await a.start();
  a.reconcile(1, allocs);
  await waitRunning(a);
  for (const t of a.list()) if (t.pid) pids.push(t.pid);
  const spawned = await rss();
  await a.stop();
  const child = await adoptInChild();

  const row = (name: string, m: Mem, base: Mem) => [
    name,
    mib(m.rss),
    mib(m.heap),
    m === base ? "" : mib(m.rss - base.rss),
    m === base ? "" : ((m.rss - base.rss) / N / 1024).toFixed(1),
  ];
  console.log(`\n${N} supervised sleep tasks${opts.health ? ", TCP health check every 1 s" : ""}`);
  console.log(
    table([
      ["phase", "RSS MiB", "heap MiB", "Δ RSS MiB", "Δ KiB/task"],
      row("baseline", baseline, baseline),
      row("spawned", spawned, baseline),
      row("baseline (fresh process)", child.baseline, child.baseline),
      row("adopted (fresh process)", child.adopted, child.baseline),
    ]),
  );
} finally {
  for (const pid of pids) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  clearInterval(tick);
  db.close();
  rmSync(dir, { recursive: true, force: true });
}
