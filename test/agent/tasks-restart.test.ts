// Specification of the task runner across agent restarts and crashes (re-adoption, jobs, recycled pids) and of cgroup limits.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { TaskResultEvent, TaskStatusEvent } from "../../agent/tasks/index.ts";
import type { AllocSpec } from "../../shared/workload/index.ts";
import { Proc, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";
import { alive, alloc, FIXTURES, type TaskHarness, taskHarness, taskPids } from "./fixtures/tasks/harness.ts";

const SLEEP = { command: "sleep", args: ["1000"] };
const FAST = { backoff: { initial_ms: 100, max_ms: 1000 } };
const job = (script: string) => ({ driver: "job" as const, command: "/bin/sh", args: ["-c", script] });

/** Runs a separate agent process on the harness's db that applies `allocs`; the caller SIGKILLs it. */
function crashAgent(h: TaskHarness, allocs: AllocSpec[], generation = 3) {
  const proc = new Proc("crash-agent", [
    process.execPath,
    `${FIXTURES}/crash-agent.ts`,
    `${h.dir}/agent.db`,
    h.dir,
    String(generation),
    JSON.stringify(allocs),
  ]);
  proc.start();
  const reports = () =>
    proc.lines
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { status?: TaskStatusEvent; result?: TaskResultEvent });
  return {
    proc,
    statuses: () => reports().flatMap((r) => (r.status ? [r.status] : [])),
    results: () => reports().flatMap((r) => (r.result ? [r.result] : [])),
    pidOf: (id: string) =>
      reports().findLast((r) => r.status?.alloc === id && r.status.status === "running")?.status?.pid,
  };
}

describe("task runner across agent restarts", () => {
  test("a stored generation beyond any a hub issues (a forgery older builds took) is set aside: the hub's next set applies", async () => {
    await using h = await taskHarness();
    await h.restart(() => {
      h.db.run(
        "INSERT INTO task_meta (key, value) VALUES ('applied_generation', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [String(2 ** 53 - 1)],
      );
    });
    expect(h.tm.appliedGeneration()).toBe(0);
    h.tm.reconcile(1, [alloc("after-forgery", SLEEP)]);
    await waitFor(() => h.last("after-forgery")?.status === "running", { what: "the hub's set applied" });
    expect(h.tm.appliedGeneration()).toBe(1);
  });

  test("crash: after the agent is SIGKILLed, the next one re-adopts running execs (one process each) and restarts one that dies", async () => {
    await using h = await taskHarness();
    const agent = crashAgent(h, [alloc("a", { ...SLEEP, ...FAST }), alloc("b", { ...SLEEP, ...FAST })]);
    try {
      const pa = await waitFor(() => agent.pidOf("a"));
      const pb = await waitFor(() => agent.pidOf("b"));
      await agent.proc.kill("SIGKILL");
      // setsid: the tasks outlive the agent.
      expect(alive(pa) && alive(pb)).toBe(true);
      await h.restart();
      expect(h.view("a")).toMatchObject({ status: "running", pid: pa, restarts: 0 });
      expect(h.view("b")).toMatchObject({ status: "running", pid: pb, restarts: 0 });
      expect(h.last("a")?.message).toBe(`re-adopted after an agent restart (pid ${pa})`);
      expect(taskPids(h.dir, "a")).toEqual([pa]);
      expect(taskPids(h.dir, "b")).toEqual([pb]);
      // The applied generation survived too: the crashed agent's set is not undone by a stale message.
      h.tm.reconcile(3, []);
      expect(h.tm.list()).toHaveLength(2);
      process.kill(pa, "SIGKILL");
      await waitFor(() => h.last("a")?.status === "failed", { what: "adopted exit noticed" });
      expect(h.last("a")?.message).toBe("exited while adopted; exit status unknown; restarting in 100 ms");
      const next = await waitFor(() => (h.view("a")?.restarts === 1 ? h.view("a")?.pid : undefined));
      expect(next).not.toBe(pa);
      expect(taskPids(h.dir, "a")).toEqual([next]);
      expect(taskPids(h.dir, "b")).toEqual([pb]);
    } finally {
      await agent.proc.kill("SIGKILL");
    }
  });

  test("crash: a finished job is not re-run; a job that died meanwhile is failed; a running one is adopted and reported", async () => {
    await using h = await taskHarness();
    const counter = `${h.dir}/runs`;
    const agent = crashAgent(h, [
      alloc("done", job(`echo run >> ${counter}; echo finished`)),
      alloc("gone", job("sleep 1000")),
      alloc("still", job("echo working; sleep 1000")),
    ]);
    try {
      await waitFor(() => agent.results().some((r) => r.alloc === "done"));
      const gone = await waitFor(() => agent.pidOf("gone"));
      const still = await waitFor(() => agent.pidOf("still"));
      await agent.proc.kill("SIGKILL");
      process.kill(gone, "SIGKILL");
      await waitFor(() => !alive(gone));
      await h.restart();
      await waitFor(() => h.results.some((r) => r.alloc === "gone"));
      expect(h.results.find((r) => r.alloc === "gone")).toMatchObject({ exit_code: null });
      expect(h.last("gone")).toMatchObject({
        status: "failed",
        message: "agent restarted while the job ran; exit status unknown",
      });
      expect(h.view("still")).toMatchObject({ status: "running", pid: still });
      expect(h.view("done")?.status).toBe("complete");
      // The hub sends the same set again: nothing finished runs twice.
      h.tm.reconcile(4, [
        alloc("done", job(`echo run >> ${counter}`)),
        alloc("gone", job("sleep 1000")),
        alloc("still", job("sleep 1000")),
      ]);
      process.kill(still, "SIGKILL");
      const r = await waitFor(() => h.results.find((x) => x.alloc === "still"));
      expect(r).toMatchObject({ exit_code: null, output_tail: "working\n" });
      expect(h.last("still")).toMatchObject({
        status: "failed",
        message: "exited while adopted; exit status unknown",
      });
      expect(h.results.map((x) => x.alloc).sort()).toEqual(["gone", "still"]);
      expect(readFileSync(counter, "utf8")).toBe("run\n");
      expect(taskPids(h.dir)).toEqual([]);
    } finally {
      await agent.proc.kill("SIGKILL");
    }
  });

  test("restart: a result saved but not handed over before a crash is handed over on the next start, once", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [alloc("report", job("exit 7"))]);
    await waitFor(() => h.results.length === 1);
    await h.restart(() => h.db.run("UPDATE task_allocs SET reported = 0 WHERE alloc = 'report'"));
    expect(h.results.map((r) => r.exit_code)).toEqual([7, 7]);
    await h.restart();
    expect(h.results).toHaveLength(2);
  });

  test("restart: a pid whose start time does not match (a recycled pid) is not adopted; the task starts afresh", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [alloc("svc", { ...SLEEP, ...FAST })]);
    const pid = (await waitFor(() => h.view("svc")?.pid)) as number;
    await h.restart(() => h.db.run("UPDATE task_allocs SET pid_start = pid_start + 1 WHERE alloc = 'svc'"));
    const fresh = await waitFor(() => (h.view("svc")?.restarts === 1 ? h.view("svc")?.pid : undefined));
    expect(fresh).not.toBe(pid);
    expect(h.statuses.some((e) => e.message?.startsWith("re-adopted"))).toBe(false);
    // The stranger keeps running: it was never ours to signal.
    expect(alive(pid)).toBe(true);
  });

  test("restart: a start whose pid was not saved (a crash between spawn and save) is found by its intent id and adopted, not started twice", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [alloc("svc", { ...SLEEP, ...FAST })]);
    const pid = (await waitFor(() => h.view("svc")?.pid)) as number;
    const env = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
    const launch = env.find((e) => e.startsWith("NOVACRON_LAUNCH="))?.slice("NOVACRON_LAUNCH=".length);
    expect(launch).toBeDefined();
    // The row as a crash right after the spawn leaves it: the intent saved, the pid not.
    await h.restart(() =>
      h.db.run("UPDATE task_allocs SET pid = NULL, pid_start = NULL, launch_id = ? WHERE alloc = 'svc'", [
        launch!,
      ]),
    );
    expect(h.view("svc")).toMatchObject({ status: "running", pid, restarts: 0 });
    expect(taskPids(h.dir, "svc")).toEqual([pid]);
    expect(h.logLines.some((l) => l.includes("found the process of a start"))).toBe(true);
    // Adopted for real: its exit is noticed and it is restarted, one copy.
    process.kill(pid, "SIGKILL");
    const next = await waitFor(() => (h.view("svc")?.restarts === 1 ? h.view("svc")?.pid : undefined));
    expect(taskPids(h.dir, "svc")).toEqual([next]);
  });

  test("restart: a start with no process left (a crash within it) restarts an exec once and fails a job without running it again", async () => {
    await using h = await taskHarness();
    const runs = `${h.dir}/runs`;
    h.tm.reconcile(1, [alloc("svc", { ...SLEEP, ...FAST }), alloc("once", job(`echo ran >> ${runs}`))]);
    const pid = (await waitFor(() => h.view("svc")?.pid)) as number;
    await waitFor(() => h.results.length === 1, { what: "the job's result" });
    process.kill(pid, "SIGKILL");
    await waitFor(() => !alive(pid));
    await h.restart(() => {
      h.db.run(
        "UPDATE task_allocs SET pid = NULL, pid_start = NULL, launch_id = 'gone-1' WHERE alloc = 'svc'",
      );
      h.db.run(
        `UPDATE task_allocs SET pid = NULL, launch_id = 'gone-2', finished = 0, reported = 0, result = NULL,
         want_run = 1, status = 'running' WHERE alloc = 'once'`,
      );
    });
    const next = await waitFor(() => (h.view("svc")?.restarts === 1 ? h.view("svc")?.pid : undefined));
    expect(taskPids(h.dir, "svc")).toEqual([next]);
    await waitFor(() => h.results.length === 2, { what: "the job's second report" });
    expect(h.results[1]).toMatchObject({ alloc: "once", exit_code: null });
    expect(h.last("once")).toMatchObject({ status: "failed" });
    expect(h.last("once")?.message).toMatch(/while starting the job .* it may have run/);
    expect(readFileSync(runs, "utf8")).toBe("ran\n");
  });

  test("restart: a removal interrupted by an agent restart is finished by the next agent", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [
      alloc("stubborn", {
        command: "/bin/sh",
        args: ["-c", 'trap "" TERM; echo ready; while :; do sleep 0.05; done'],
        stop_timeout_ms: 300,
      }),
    ]);
    await waitFor(() => h.tm.logs("stubborn")?.includes("ready"));
    h.tm.reconcile(2, []);
    await h.restart();
    await waitFor(() => h.tm.list().length === 0, { what: "removal finished" });
    expect(taskPids(h.dir, "stubborn")).toEqual([]);
    expect(h.db.query("SELECT count(*) AS n FROM task_allocs").get()).toEqual({ n: 0 });
    expect(existsSync(`${h.dir}/tasks/stubborn`)).toBe(false);
  });
});

describe("resource limits", () => {
  test("cgroup: the manager says whether limits are enforced, and tasks run either way", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [alloc("lim", { ...SLEEP, resources: { cpu_millis: 500, mem_mb: 64 } })]);
    const pid = (await waitFor(() => h.view("lim")?.pid)) as number;
    const cgroup = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    if (h.tm.limitsEnforced()) {
      expect(cgroup).toContain("/novacron/lim");
    } else {
      expect(cgroup).not.toContain("/novacron/");
      expect(h.logLines.filter((l) => l.includes("limits not enforced"))).toHaveLength(1);
      expect(h.tm.limitsReason().length).toBeGreaterThan(0);
    }
  });

  test("cgroup: where the agent may write a cgroup v2 tree (a stand-in directory here), each alloc gets its limits and pid", async () => {
    using tmp = tempDir("novacron-cgroup-");
    const root = tmp.path;
    writeFileSync(`${root}/cgroup.controllers`, "cpuset cpu io memory pids\n");
    writeFileSync(`${root}/cgroup.subtree_control`, "");
    await using g = await taskHarness({ cgroupRoot: root });
    expect(g.tm.limitsEnforced()).toBe(true);
    expect(readFileSync(`${root}/cgroup.subtree_control`, "utf8")).toBe("+cpu +memory");
    expect(readFileSync(`${root}/novacron/cgroup.subtree_control`, "utf8")).toBe("+cpu +memory");
    g.tm.reconcile(1, [
      alloc("lim", { ...SLEEP, resources: { cpu_millis: 500, mem_mb: 64 } }),
      alloc("free", SLEEP),
    ]);
    const pid = (await waitFor(() => g.view("lim")?.pid)) as number;
    await waitFor(() => g.view("free")?.pid);
    expect(readFileSync(`${root}/novacron/lim/memory.max`, "utf8")).toBe(String(64 * 1024 * 1024));
    expect(readFileSync(`${root}/novacron/lim/cpu.max`, "utf8")).toBe("50000 100000");
    expect(readFileSync(`${root}/novacron/lim/cgroup.procs`, "utf8")).toBe(String(pid));
    expect(readFileSync(`${root}/novacron/free/memory.max`, "utf8")).toBe("max");
    expect(readFileSync(`${root}/novacron/free/cpu.max`, "utf8")).toBe("max 100000");
    // Not a real cgroupfs, so clone3 cannot start the task inside it: the pid is moved in after the start.
    expect(g.logLines.filter((l) => l.includes("moving them in after the start"))).toHaveLength(1);
  });

  test("cgroup: a tree without cpu and memory controllers means no limits, logged once, and the tasks still run", async () => {
    using tmp = tempDir("novacron-cgroup-");
    writeFileSync(`${tmp.path}/cgroup.controllers`, "pids\n");
    await using h = await taskHarness({ cgroupRoot: tmp.path });
    h.tm.reconcile(1, [alloc("a", { ...SLEEP, resources: { mem_mb: 8 } }), alloc("b", SLEEP)]);
    await waitFor(() => h.view("a")?.pid && h.view("b")?.pid);
    expect(h.tm.limitsEnforced()).toBe(false);
    expect(h.tm.limitsReason()).toBe(`${tmp.path} offers no cpu/memory controller (controllers: "pids")`);
    expect(h.logLines.filter((l) => l.includes("limits not enforced"))).toHaveLength(1);
    expect(existsSync(`${tmp.path}/novacron`)).toBe(false);
  });
});
