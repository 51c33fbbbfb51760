// Specification of task starts and job results under kill -9 at random points: never two copies, never a result twice.
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeCbor } from "../../shared/protocol/index.ts";
import type { AllocSpec } from "../../shared/workload/index.ts";
import { mulberry32 } from "../support/prng.ts";
import { Proc, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";
import { alloc, FIXTURES, taskPids } from "./fixtures/tasks/harness.ts";

/** Iterations of the test; bench/task-crash.ts runs the same with more. */
const ITERATIONS = Number(process.env.TASK_CRASH_ITERATIONS ?? 200);
const SEED = Number(process.env.TASK_CRASH_SEED ?? 11);
const EXECS = ["e1", "e2", "e3"];

/** What the agent's database says, read from a connection of our own (WAL: the agent may run). */
function readState(dbPath: string) {
  const results = new Map<string, number>();
  // The first agent may die before it has created its database or its tables.
  if (!existsSync(dbPath)) return { results, tasks: [] };
  const db = new Database(dbPath);
  try {
    db.run("PRAGMA busy_timeout = 2000");
    const tables = new Set(
      (db.query("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map(
        (t) => t.name,
      ),
    );
    if (!tables.has("outbox_body") || !tables.has("task_allocs")) return { results, tasks: [] };
    const rows = db
      .query(
        "SELECT o.type, b.body FROM outbox o JOIN outbox_body b ON b.id = o.id WHERE o.type = 'task_result'",
      )
      .all() as {
      body: Uint8Array;
    }[];
    for (const r of rows) {
      const { alloc } = decodeCbor(r.body) as { alloc: string };
      results.set(alloc, (results.get(alloc) ?? 0) + 1);
    }
    const tasks = db.query("SELECT alloc, pid, finished, reported FROM task_allocs").all() as {
      alloc: string;
      pid: number | null;
      finished: number;
      reported: number;
    }[];
    return { results, tasks };
  } finally {
    db.close();
  }
}

function runsOf(runsFile: string): Map<string, number> {
  const runs = new Map<string, number>();
  if (!existsSync(runsFile)) return runs;
  for (const line of readFileSync(runsFile, "utf8").split("\n"))
    if (line) runs.set(line, (runs.get(line) ?? 0) + 1);
  return runs;
}

test(
  `kill -9 of the agent at random points during job completion and task spawn, ${ITERATIONS} times: never two copies running, a job never run twice, its result in the outbox exactly once`,
  async () => {
    using dir = tempDir("novacron-task-crash-");
    const data = dir.path;
    const dbPath = join(data, "agent.db");
    const runsFile = join(data, "runs.log");
    const allocsFile = join(data, "allocs.json");
    const rand = mulberry32(SEED);
    const between = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    const versions = new Map(EXECS.map((e) => [e, 1]));
    const jobs: AllocSpec[] = [];
    const desired = () => [
      ...EXECS.map((id) =>
        alloc(
          id,
          { command: "sleep", args: ["1000"], restart: "always", backoff: { initial_ms: 20, max_ms: 100 } },
          versions.get(id),
        ),
      ),
      ...jobs,
    ];
    const start = (generation: number) => {
      writeFileSync(allocsFile, JSON.stringify(desired()));
      const p = new Proc("outbox-agent", [
        process.execPath,
        `${FIXTURES}/outbox-agent.ts`,
        data,
        String(generation),
        allocsFile,
        "3",
      ]);
      p.start();
      return p;
    };
    const check = (when: string) => {
      for (const id of EXECS) {
        const pids = taskPids(data, id);
        if (pids.length > 1) throw new Error(`${when}: ${id} runs ${pids.length} times (pids ${pids})`);
      }
      for (const [id, n] of runsOf(runsFile)) if (n > 1) throw new Error(`${when}: job ${id} ran ${n} times`);
      for (const [id, n] of readState(dbPath).results)
        if (n > 1) throw new Error(`${when}: ${n} results of ${id} in the outbox`);
    };
    // A test connection that takes the database's write lock: the agent then stops at its next write
    // (the next step of a start or a result), and the kill lands exactly between two of its writes.
    const lock = () => {
      const db = new Database(dbPath);
      db.run("PRAGMA busy_timeout = 2000");
      db.run("BEGIN IMMEDIATE");
      return () => {
        db.run("ROLLBACK");
        db.close();
      };
    };

    let killedLocked = 0;
    // How often a kill caught a start between its spawn and the save of its pid (the next agent says so).
    let adoptedAtLaunch = 0;
    let lostAtLaunch = 0;
    const tally = (p: Proc) => {
      adoptedAtLaunch += p.lines.filter((l) => l.includes("found the process of a start")).length;
      lostAtLaunch += p.lines.filter((l) => l.includes("left no running process")).length;
    };
    try {
      for (let i = 0; i < ITERATIONS; i++) {
        // Each round brings new jobs and a new version of one exec (a stop and a start).
        for (let k = 0; k < 3; k++)
          jobs.push(
            alloc(`j${i}-${k}`, {
              driver: "job",
              command: "/bin/sh",
              args: ["-c", `echo "$NOVACRON_ALLOC" >> ${runsFile}`],
            }),
          );
        const bumped = EXECS[i % EXECS.length]!;
        versions.set(bumped, versions.get(bumped)! + 1);
        const agent = start(i + 1);
        await Bun.sleep(between(40, 220));
        if (existsSync(dbPath) && rand() < 0.5) {
          const release = lock();
          await Bun.sleep(between(0, 30));
          await agent.kill("SIGKILL");
          release();
          killedLocked++;
        } else {
          await agent.kill("SIGKILL");
        }
        tally(agent);
        check(`after kill ${i + 1}`);
      }
      // A last agent runs undisturbed until every job has its result and every exec runs.
      const agent = start(ITERATIONS + 1);
      try {
        await waitFor(
          () => {
            const { tasks } = readState(dbPath);
            const jobsDone = tasks
              .filter((t) => t.alloc.startsWith("j"))
              .every((t) => t.finished && t.reported);
            const execsUp = EXECS.every((id) => taskPids(data, id).length === 1);
            return tasks.length === EXECS.length + jobs.length && jobsDone && execsUp;
          },
          { timeoutMs: 30_000, what: "every job finished and reported, every exec running" },
        );
      } finally {
        await agent.kill("SIGKILL");
      }
      tally(agent);
      console.log(
        `${ITERATIONS} kills (${killedLocked} at a write): ${adoptedAtLaunch} starts found and adopted, ${lostAtLaunch} lost within their start`,
      );
      check("at the end");
      const { results, tasks } = readState(dbPath);
      const runs = runsOf(runsFile);
      for (const job of jobs) expect(results.get(job.id)).toBe(1);
      for (const id of EXECS) {
        const row = tasks.find((t) => t.alloc === id)!;
        expect(taskPids(data, id)).toEqual([row.pid!]);
      }
      // Most jobs ran and reported their exit; the ones the kill caught within their start are failed, not re-run.
      expect(runs.size).toBeGreaterThan(jobs.length / 2);
      expect(killedLocked).toBeGreaterThan(ITERATIONS / 4);
    } finally {
      for (const pid of taskPids(data)) {
        for (const target of [-pid, pid]) {
          try {
            process.kill(target, "SIGKILL");
          } catch {
            // already gone
          }
        }
      }
    }
  },
  Math.max(170_000, ITERATIONS * 600),
);
