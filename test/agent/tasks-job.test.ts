// Specification of the agent's job driver and log ring: one run, one result, bounded output on disk.
import { describe, expect, test } from "bun:test";
import { readdirSync, statSync } from "node:fs";
import { waitFor } from "../support/wait.ts";
import { alloc, taskHarness, taskPids } from "./fixtures/tasks/harness.ts";

const job = (script: string) => ({ driver: "job" as const, command: "/bin/sh", args: ["-c", script] });

describe("job driver", () => {
  test("job: reports exit code, duration and output tail once, then failed for a non-zero exit", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [alloc("batch", job("echo to-stdout; echo to-stderr >&2; sleep 0.2; exit 3"))]);
    await waitFor(() => h.last("batch")?.status === "failed");
    expect(h.results).toHaveLength(1);
    const r = h.results[0]!;
    expect(r).toMatchObject({ alloc: "batch", workload: "w", exit_code: 3 });
    expect(r.signal).toBeUndefined();
    expect(r.output_tail).toBe("to-stdout\nto-stderr\n");
    expect(r.duration_ms).toBeGreaterThanOrEqual(200);
    expect(r.started_ms).toBeLessThanOrEqual(Date.now() - r.duration_ms);
    expect(h.last("batch")?.message).toBe("exited with code 3");
    // onResult comes before the final status.
    expect(h.journal.filter((e) => e.includes(":batch"))).toEqual([
      "status:batch:pending",
      "status:batch:running",
      "result:batch",
      "status:batch:failed",
    ]);
    // The same set again, in a newer generation: the job is not run again.
    h.tm.reconcile(2, [alloc("batch", job("echo to-stdout; exit 3"))]);
    await Bun.sleep(200);
    expect(h.results).toHaveLength(1);
    expect(h.view("batch")).toMatchObject({ status: "failed", pid: null, restarts: 0 });
  });

  test("job: exit 0 completes; a job killed by a signal reports the signal and no exit code", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [alloc("good", job("echo fine")), alloc("killed", job("echo bye; kill -KILL $$"))]);
    await waitFor(() => h.results.length === 2, { what: "two results" });
    const good = h.results.find((r) => r.alloc === "good")!;
    const killed = h.results.find((r) => r.alloc === "killed")!;
    expect(good).toMatchObject({ exit_code: 0, output_tail: "fine\n" });
    expect(killed).toMatchObject({ exit_code: null, signal: "SIGKILL", output_tail: "bye\n" });
    await waitFor(() => h.last("good")?.status === "complete" && h.last("killed")?.status === "failed");
    expect(h.last("killed")?.message).toBe("killed by SIGKILL");
  });

  test("job: the output tail is the last 4 KiB of combined output", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [
      alloc("chatty", job("i=0; while [ $i -lt 500 ]; do echo line-$i-padding-padding; i=$((i+1)); done")),
    ]);
    const r = await waitFor(() => h.results[0]);
    expect(r.output_tail.length).toBe(4096);
    expect(r.output_tail.endsWith("line-499-padding-padding\n")).toBe(true);
  });

  test("job: one that cannot start reports failed with the error text and a result, and is not retried", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [alloc("broken", { driver: "job", command: "/no/such/bin" })]);
    await waitFor(() => h.last("broken")?.status === "failed");
    const msg = 'cannot start "/no/such/bin": no such file or directory';
    expect(h.last("broken")?.message).toBe(msg);
    expect(h.results).toEqual([
      expect.objectContaining({ alloc: "broken", exit_code: null, output_tail: msg }),
    ]);
    await Bun.sleep(200);
    expect(h.results).toHaveLength(1);
    expect(h.view("broken")?.restarts).toBe(0);
  });

  test("job: a job removed while it runs is stopped, reported failed, and gets no result", async () => {
    await using h = await taskHarness();
    h.tm.reconcile(1, [alloc("long", job("sleep 1000"))]);
    await waitFor(() => h.view("long")?.pid);
    h.tm.reconcile(2, []);
    await waitFor(() => h.tm.list().length === 0);
    expect(h.last("long")).toMatchObject({
      status: "failed",
      message: "stopped before it finished: no longer assigned",
    });
    expect(h.results).toHaveLength(0);
    expect(taskPids(h.dir, "long")).toEqual([]);
  });

  test("logs: the on-disk ring stays bounded while a task writes 2 MB, and logs() returns the tail", async () => {
    await using h = await taskHarness();
    const bound = 256 * 1024;
    // ~2.1 MB in 30,000 lines, written in bursts so that rotation (every 100 ms here) keeps up.
    const script =
      'i=0; while [ $i -lt 30000 ]; do echo "line $i ..................................................";' +
      " i=$((i+1)); [ $((i % 3000)) -eq 0 ] && sleep 0.15; done; echo done; exec sleep 1000";
    h.tm.reconcile(1, [alloc("noisy", { command: "/bin/sh", args: ["-c", script] })]);
    const dir = `${h.dir}/tasks/noisy`;
    const sizes = () => readdirSync(dir).map((f) => statSync(`${dir}/${f}`).size);
    let peak = 0;
    await waitFor(
      () => {
        peak = Math.max(peak, ...sizes());
        return h.tm.logs("noisy", 1) === "done\n";
      },
      { intervalMs: 20, what: "all output written" },
    );
    await waitFor(() => sizes().every((s) => s <= bound), { what: "rotated within the bound" });
    expect(readdirSync(dir).sort()).toEqual(["output.log", "output.log.1"]);
    // Between two checks the live file may pass the bound by one burst (~210 KB here), never by the whole 2 MB.
    expect(peak).toBeLessThan(bound + 300 * 1024);
    const tail = h.tm.logs("noisy", 3)!.split("\n");
    expect(tail).toEqual([
      "line 29998 ..................................................",
      "line 29999 ..................................................",
      "done",
      "",
    ]);
    expect(h.tm.logs("noisy", 5000)!.split("\n").length).toBeLessThanOrEqual(5001);
  });
});
