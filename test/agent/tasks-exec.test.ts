// Specification of the agent's exec driver: supervised processes, restart policy with back-off, reconcile, health, rules.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { freePort } from "../support/ports.ts";
import { waitFor } from "../support/wait.ts";
import { alive, alloc, FIXTURES, procState, taskHarness, taskPids } from "./fixtures/tasks/harness.ts";

const SLEEP = { command: "sleep", args: ["1000"] };
const FAST = { backoff: { initial_ms: 100, max_ms: 1000 } };

describe("exec driver", () => {
  test("exec: starts the command in its own process group with a minimal environment and reports running", async () => {
    await using h = await taskHarness({
      env: { PATH: process.env.PATH, HOME: "/root", SECRET: "agent-only" },
    });
    h.tm.reconcile(1, [
      alloc("web-1", {
        command: "/bin/sh",
        args: ["-c", "echo started; exec sleep 1000"],
        env: { GREETING: "hello" },
      }),
    ]);
    const running = await waitFor(() =>
      h.statuses.find((e) => e.alloc === "web-1" && e.status === "running"),
    );
    expect(h.statuses.find((e) => e.alloc === "web-1")?.status).toBe("pending");
    const pid = running.pid!;
    expect(alive(pid)).toBe(true);
    expect(h.view("web-1")).toMatchObject({ status: "running", pid, restarts: 0, version: 1, paused: false });
    // setsid: the task leads its own session and process group.
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    expect(Number(fields[2])).toBe(pid);
    expect(Number(fields[3])).toBe(pid);
    const env = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
    expect(env).toContain("GREETING=hello");
    expect(env).toContain("HOME=/root");
    expect(env).toContain("NOVACRON_ALLOC=web-1");
    expect(env.some((e) => e.startsWith("PATH="))).toBe(true);
    expect(env.some((e) => e.startsWith("SECRET="))).toBe(false);
    await waitFor(() => h.tm.logs("web-1")?.includes("started"), { what: "output in the log ring" });
    expect(h.tm.logs("nope")).toBeUndefined();
  });

  test("exec: a process killed with SIGKILL is restarted with exponential back-off and the restarts count rises", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [alloc("svc", { ...SLEEP, ...FAST, restart: "on-failure" })]);
    let pid = (await waitFor(() => h.view("svc")?.pid)) as number;
    for (const [n, delay] of [
      [1, 100],
      [2, 200],
      [3, 400],
    ] as const) {
      process.kill(pid, "SIGKILL");
      await waitFor(() =>
        h.statuses.find((e) => e.alloc === "svc" && e.restarts === n - 1 && e.status === "failed"),
      );
      expect(h.last("svc")?.message).toBe(`killed by SIGKILL; restarting in ${delay} ms`);
      const next = await waitFor(() => {
        const v = h.view("svc");
        return v?.status === "running" && v.restarts === n ? v.pid : undefined;
      });
      expect(next).not.toBe(pid);
      expect(alive(pid)).toBe(false);
      pid = next;
    }
    expect(taskPids(h.dir, "svc")).toEqual([pid]);
  });

  test("exec: restart never leaves a killed task failed, and nothing runs it again", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [alloc("once", { ...SLEEP, ...FAST, restart: "never" })]);
    const pid = (await waitFor(() => h.view("once")?.pid)) as number;
    process.kill(pid, "SIGKILL");
    await waitFor(() => h.last("once")?.status === "failed");
    expect(h.last("once")?.message).toBe("killed by SIGKILL");
    await Bun.sleep(400); // four back-off periods: a restart would have happened by now
    expect(h.view("once")).toMatchObject({ status: "failed", pid: null, restarts: 0 });
    expect(taskPids(h.dir, "once")).toEqual([]);
  });

  test("exec: on-failure completes on exit 0, always restarts it", async () => {
    await using h = await taskHarness();
    const quick = { command: "/bin/sh", args: ["-c", "exit 0"], ...FAST };
    h.tm.reconcile(1, [
      alloc("ok", { ...quick, restart: "on-failure" }),
      alloc("loop", { ...quick, restart: "always" }),
    ]);
    await waitFor(() => h.last("ok")?.status === "complete");
    expect(h.last("ok")?.message).toBe("exited with code 0");
    await waitFor(() => (h.view("loop")?.restarts ?? 0) >= 2, { what: "always restarting a clean exit" });
  });

  test("reconcile: a removed alloc is stopped with SIGTERM, and SIGKILLed after stop_timeout_ms if it traps TERM", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [
      alloc("plain", SLEEP),
      alloc("stubborn", {
        command: "/bin/sh",
        args: ["-c", 'trap "" TERM; echo ready; while :; do sleep 0.05; done'],
        stop_timeout_ms: 400,
      }),
    ]);
    const plain = (await waitFor(() => h.view("plain")?.pid)) as number;
    await waitFor(() => h.tm.logs("stubborn")?.includes("ready"), { what: "the TERM trap installed" });
    expect(taskPids(h.dir, "stubborn").length).toBeGreaterThan(0);
    const t0 = Date.now();
    h.tm.reconcile(2, []);
    await waitFor(() => !alive(plain), { what: "plain gone after SIGTERM" });
    expect(Date.now() - t0).toBeLessThan(400);
    await waitFor(() => taskPids(h.dir, "stubborn").length === 0, { what: "stubborn group killed" });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect(h.logLines.some((l) => l.includes("ignored SIGTERM") && l.includes("stubborn"))).toBe(true);
    await waitFor(() => h.tm.list().length === 0, { what: "both allocs forgotten" });
    expect(h.last("plain")).toMatchObject({ status: "complete", message: "stopped: no longer assigned" });
    expect(h.last("stubborn")?.status).toBe("complete");
    expect(existsSync(`${h.dir}/tasks/plain`)).toBe(false);
  });

  test("reconcile: a changed version replaces the running process", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [alloc("app", SLEEP, 1)]);
    const old = (await waitFor(() => h.view("app")?.pid)) as number;
    h.tm.reconcile(2, [alloc("app", { command: "sleep", args: ["999"] }, 2)]);
    const next = await waitFor(() => {
      const v = h.view("app");
      return v?.version === 2 && v.status === "running" ? v.pid : undefined;
    });
    expect(next).not.toBe(old);
    expect(alive(old)).toBe(false);
    expect(readFileSync(`/proc/${next}/cmdline`, "latin1")).toContain("999");
    expect(h.last("app")).toMatchObject({ version: 2, status: "running", restarts: 0, generation: 2 });
    expect(taskPids(h.dir, "app")).toEqual([next]);
  });

  test("reconcile: a generation at or below the applied one is ignored", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(5, [alloc("keep", SLEEP)]);
    const pid = (await waitFor(() => h.view("keep")?.pid)) as number;
    h.tm.reconcile(5, []);
    h.tm.reconcile(4, []);
    h.tm.reconcile(3, [alloc("keep", { command: "sleep", args: ["2"] }, 9)]);
    await Bun.sleep(200);
    expect(h.view("keep")).toMatchObject({ status: "running", pid, version: 1 });
    expect(h.logLines.filter((l) => l.includes("generation already applied")).length).toBe(3);
    h.tm.reconcile(6, []);
    await waitFor(() => h.tm.list().length === 0 && !alive(pid), { what: "removed at generation 6" });
  });

  test("exec: a command that cannot start fails with the error text, retried only with back-off", async () => {
    await using h = await taskHarness();
    const t0 = Date.now();
    h.tm.reconcile(1, [
      alloc("missing", { command: "/no/such/bin", ...FAST, restart: "on-failure" }),
      alloc("noexec", { command: "/etc/passwd", restart: "never" }),
      alloc("nocwd", { command: "sleep", args: ["1"], cwd: "/no/such/dir", restart: "never" }),
      alloc("unknown", { command: "no-such-command-xyz", restart: "never" }),
    ]);
    await waitFor(() => (h.view("missing")?.restarts ?? 0) >= 3, { what: "three retries" });
    // Delays of 100, 200 and 400 ms come before the third retry: no tight loop.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    expect(h.last("missing")?.message).toMatch(
      /^cannot start "\/no\/such\/bin": no such file or directory; retrying in/,
    );
    expect(h.last("noexec")).toMatchObject({
      status: "failed",
      message: 'cannot start "/etc/passwd": permission denied',
    });
    expect(h.last("nocwd")?.message).toBe(
      'cannot start "sleep": working directory "/no/such/dir": no such file or directory',
    );
    expect(h.last("unknown")?.message).toBe('cannot start "no-such-command-xyz": not found in PATH');
    // The agent is fine: the next alloc starts.
    h.tm.reconcile(2, [alloc("fine", SLEEP)]);
    await waitFor(() => h.view("fine")?.status === "running");
  });

  test("health: an http check failing `threshold` times marks the task unhealthy and restarts it", async () => {
    await using h = await taskHarness();
    const port = freePort();
    const failFile = `${h.dir}/fail`;
    h.tm.reconcile(1, [
      alloc("api", {
        command: process.execPath,
        args: [`${FIXTURES}/http-server.ts`],
        env: { PORT: String(port), FAIL_FILE: failFile },
        restart: "on-failure",
        ...FAST,
        health: {
          type: "http",
          url: `http://127.0.0.1:${port}/health`,
          interval_ms: 100,
          timeout_ms: 500,
          threshold: 2,
        },
      }),
    ]);
    await waitFor(() => h.last("api")?.healthy === true, { what: "healthy" });
    const pid = h.view("api")!.pid!;
    const before = h.statuses.length;
    await Bun.sleep(350); // a few successful probes: no report for each
    expect(h.statuses.length).toBe(before);
    writeFileSync(failFile, "");
    await waitFor(() => h.statuses.some((e) => e.alloc === "api" && e.healthy === false), {
      what: "unhealthy",
    });
    expect(h.statuses.find((e) => e.healthy === false)?.message).toMatch(
      /HTTP 500 \(2 consecutive failures\)/,
    );
    const next = await waitFor(() => {
      const v = h.view("api");
      return v && v.restarts >= 1 && v.status === "running" ? v.pid : undefined;
    });
    expect(next).not.toBe(pid);
    expect(alive(pid)).toBe(false);
    expect(h.statuses.find((e) => e.alloc === "api" && e.status === "failed")?.message).toBe(
      "stopped: unhealthy; restarting in 100 ms",
    );
  });

  test("health: tcp and command checks; restart never keeps an unhealthy task running", async () => {
    await using h = await taskHarness();
    const closed = freePort();
    h.tm.reconcile(1, [
      alloc("tcp", {
        ...SLEEP,
        restart: "never",
        health: { type: "tcp", port: closed, interval_ms: 100, timeout_ms: 300, threshold: 1 },
      }),
      alloc("cmd", {
        ...SLEEP,
        health: { type: "command", command: "/bin/sh", args: ["-c", "exit 0"], interval_ms: 100 },
      }),
    ]);
    await waitFor(() => h.last("tcp")?.healthy === false, { what: "tcp unhealthy" });
    expect(h.last("tcp")?.message).toMatch(/^unhealthy: connect 127\.0\.0\.1:\d+/);
    await waitFor(() => h.last("cmd")?.healthy === true, { what: "command healthy" });
    expect(h.view("tcp")).toMatchObject({ status: "running", restarts: 0, healthy: false });
  });

  test("rules: pauseBelow SIGSTOPs low-priority tasks, resumeAll continues them; stopBelow holds them until resumeAll", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [alloc("low", { ...SLEEP, priority: 2 }), alloc("high", { ...SLEEP, priority: 8 })]);
    const low = (await waitFor(() => h.view("low")?.pid)) as number;
    const high = (await waitFor(() => h.view("high")?.pid)) as number;
    expect(h.tm.pauseBelow(5)).toEqual(["low"]);
    await waitFor(() => procState(low) === "T", { what: "low stopped" });
    expect(procState(high)).not.toBe("T");
    expect(h.view("low")?.paused).toBe(true);
    expect(h.tm.resumeAll()).toEqual(["low"]);
    await waitFor(() => procState(low) === "S", { what: "low continued" });
    expect(h.tm.stopBelow(5)).toEqual(["low"]);
    await waitFor(() => !alive(low), { what: "low stopped by the rule" });
    await waitFor(() => h.last("low")?.status === "pending");
    expect(h.last("low")?.message).toBe("stopped by a local rule");
    expect(alive(high)).toBe(true);
    expect(h.tm.resumeAll()).toEqual(["low"]);
    const again = await waitFor(() => h.view("low")?.pid);
    expect(again).not.toBe(low);
    expect(h.view("low")?.status).toBe("running");
  });
});
