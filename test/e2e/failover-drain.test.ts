// Drain end to end: every copy on a draining node gets a healthy twin elsewhere before it stops, within max_parallel.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loop, pids, pidsOfAny } from "../support/marked-procs.ts";
import { freePort } from "../support/ports.ts";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

async function agent(hub: HubHandle, dir: string, id: string): Promise<AgentHandle> {
  const a = await startAgent({
    data: join(dir, id),
    nodeId: id,
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--heartbeat-interval", "1s", "--batch-interval", "1s", "--level", "2"],
  });
  await waitFor(async () => (await a.status()).connected, { what: `${id} to connect` });
  return a;
}

interface AllocJson {
  node: string;
  status: string;
}

/** Three services on d1, then d2 and d3 join; returns the markers of the services' processes. */
async function setup(hub: HubHandle, dir: string): Promise<{ marks: string[]; agents: AgentHandle[] }> {
  const agents = [await agent(hub, dir, "d1")];
  const marks = [0, 1, 2].map((i) => `novacron-drain-${i}-${process.pid}-${Math.floor(Math.random() * 1e9)}`);
  for (const [i, mark] of marks.entries()) {
    const res = await hub.api("/api/v1/workloads", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: `svc-${i}`,
        driver: "exec",
        command: "/bin/sh",
        args: loop(mark),
        health: { type: "command", command: "/bin/true", interval_ms: 300, threshold: 1 },
      }),
    });
    expect(res.status).toBe(201);
  }
  await waitFor(async () => (await Promise.all(marks.map(pids))).every((p) => p.length === 1), {
    what: "three services on d1",
  });
  agents.push(await agent(hub, dir, "d2"), await agent(hub, dir, "d3"));
  return { marks, agents };
}

/** Samples every 100 ms: the fewest copies any service had, and the most services with two copies at once. */
function sampler(marks: string[]) {
  let fewest = Number.POSITIVE_INFINITY;
  let mostMoving = 0;
  let on = true;
  const done = (async () => {
    while (on) {
      const counts = (await Promise.all(marks.map(pids))).map((p) => p.length);
      fewest = Math.min(fewest, ...counts);
      mostMoving = Math.max(mostMoving, counts.filter((n) => n >= 2).length);
      await Bun.sleep(100);
    }
  })();
  return {
    async stop() {
      on = false;
      await done;
      return { fewest, mostMoving };
    },
  };
}

async function allMoved(hub: HubHandle): Promise<boolean> {
  for (const i of [0, 1, 2]) {
    const allocs = (await hub.api<{ allocs: AllocJson[] }>(`/api/v1/workloads/svc-${i}`)).body.allocs;
    if (allocs.length !== 1 || allocs[0]!.node === "d1" || allocs[0]!.status !== "running") return false;
  }
  return true;
}

describe("drain end to end", () => {
  test("drain moves everything make-before-break, one at a time with max_parallel 1; the node then takes no new work", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub"), args: ["--heartbeat-interval", "1s"] });
    const { marks, agents } = await setup(hub, dir.path);
    try {
      const watch = sampler(marks);
      const res = await hub.api("/api/v1/nodes/d1/drain", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ max_parallel: 1, deadline_ms: 120_000 }),
      });
      expect(res.status).toBe(202);
      await waitFor(() => allMoved(hub), { what: "every service moved off d1", timeoutMs: 60_000 });
      await Bun.sleep(500);
      const seen = await watch.stop();
      expect(seen.fewest).toBe(1);
      expect(seen.mostMoving).toBe(1);
      for (const m of marks) expect(await pids(m)).toHaveLength(1);
      const nodes = (await hub.api<{ nodes: { id: string; status: string }[] }>("/api/v1/nodes")).body.nodes;
      expect(nodes.find((n) => n.id === "d1")?.status).toBe("draining");
      const drains = (
        await hub.api<{ drains: { node: string; done: number | null }[] }>("/api/v1/failover/drains")
      ).body;
      await waitFor(
        async () =>
          (await hub.api<{ drains: { node: string; done: number | null }[] }>("/api/v1/failover/drains")).body
            .drains[0]?.done !== null,
        { what: "the drain done" },
      );
      expect(drains.drains.map((d) => d.node)).toEqual(["d1"]);
      const bad = await hub.api("/api/v1/nodes/d1/drain", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ max_parallel: 0 }),
      });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toContain("max_parallel");
      expect((await hub.api("/api/v1/nodes/nope/drain", { method: "POST" })).status).toBe(404);
      expect((await hub.api("/api/v1/nodes/d1/undrain", { method: "POST" })).status).toBe(200);
      const after = (await hub.api<{ nodes: { id: string; status: string }[] }>("/api/v1/nodes")).body.nodes;
      expect(after.find((n) => n.id === "d1")?.status).toBe("ready");
    } finally {
      for (const a of agents) await a[Symbol.asyncDispose]();
      for (const m of marks) for (const p of await pids(m)) process.kill(p, "SIGKILL");
    }
  }, 90_000);

  test("the hub SIGKILLed and restarted mid-drain finishes it, still make-before-break", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub"), args: ["--heartbeat-interval", "1s"] });
    const { marks, agents } = await setup(hub, dir.path);
    try {
      const watch = sampler(marks);
      await hub.api("/api/v1/nodes/d1/drain", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ max_parallel: 1 }),
      });
      await waitFor(
        async () => (await hub.api<{ moves: unknown[] }>("/api/v1/failover/drains")).body.moves.length === 1,
        { what: "the first move under way" },
      );
      await hub.restart();
      await waitFor(() => allMoved(hub), {
        what: "every service moved off d1 after the restart",
        timeoutMs: 60_000,
      });
      await Bun.sleep(500);
      const seen = await watch.stop();
      expect(seen.fewest).toBe(1);
      expect(seen.mostMoving).toBeLessThanOrEqual(1);
      for (const m of marks) expect(await pids(m)).toHaveLength(1);
    } finally {
      for (const a of agents) await a[Symbol.asyncDispose]();
      for (const m of marks) for (const p of await pids(m)) process.kill(p, "SIGKILL");
    }
  }, 90_000);

  test("one allocation moved by hand, and a node's request_migration rule: each copy gets a healthy twin elsewhere before it stops", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub"), args: ["--heartbeat-interval", "1s"] });
    // m1 asks to be left once it has run a task for 6 s (a stand-in for "too hot", "maintenance due").
    const config = join(dir.path, "m1.yaml");
    writeFileSync(
      config,
      `rules:\n  - name: leave\n    when: "state.tasks_running >= 1"\n    for: 6s\n    actions: [{request_migration: {reason: "maintenance due"}}]\n`,
    );
    const m1 = await startAgent({
      data: join(dir.path, "m1"),
      nodeId: "m1",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--heartbeat-interval", "1s", "--batch-interval", "1s", "--level", "2", "--config", config],
    });
    const marks = ["asked", "manual"].map(
      (t) => `novacron-move-${t}-${process.pid}-${Math.floor(Math.random() * 1e9)}`,
    );
    const agents = [m1];
    try {
      await waitFor(async () => (await m1.status()).connected, { what: "m1 connected" });
      for (const [i, mark] of marks.entries()) {
        await hub.api("/api/v1/workloads", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            name: i === 0 ? "asked" : "manual",
            driver: "exec",
            command: "/bin/sh",
            args: loop(mark),
          }),
        });
      }
      await waitFor(async () => (await Promise.all(marks.map(pids))).every((p) => p.length === 1), {
        what: "both on m1",
      });
      agents.push(await agent(hub, dir.path, "m2"));
      const watch = sampler(marks);
      // By hand: one copy of "manual" to m2.
      const manual = (await hub.api<{ allocs: { id: string }[] }>("/api/v1/workloads/manual")).body
        .allocs[0]!;
      const moved = await hub.api<{ node: string }>(`/api/v1/workloads/manual/allocs/${manual.id}/move`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ to: "m2" }),
      });
      expect(moved.status).toBe(202);
      expect(moved.body.node).toBe("m2");
      const on = async (name: string) =>
        (await hub.api<{ allocs: AllocJson[] }>(`/api/v1/workloads/${name}`)).body.allocs.map(
          (a) => `${a.node}:${a.status}`,
        );
      await waitFor(async () => JSON.stringify(await on("manual")) === '["m2:running"]', {
        what: "manual moved to m2",
      });
      // Asked by the node's rule: everything movable leaves m1.
      await waitFor(async () => JSON.stringify(await on("asked")) === '["m2:running"]', {
        what: "the rule's request to move asked off m1",
        timeoutMs: 30_000,
      });
      await Bun.sleep(500);
      const seen = await watch.stop();
      expect(seen.fewest).toBe(1);
      for (const m of marks) expect(await pids(m)).toHaveLength(1);
      const log = (await hub.api<{ events: { kind: string; reason: string }[] }>("/api/v1/failover/events"))
        .body.events;
      expect(log.find((e) => e.kind === "migration_request")?.reason).toBe("maintenance due");
      const again = await hub.api(`/api/v1/workloads/manual/allocs/${manual.id}/move`, { method: "POST" });
      expect(again.status).toBe(404);
    } finally {
      for (const a of agents) await a[Symbol.asyncDispose]();
      for (const m of marks) for (const p of await pids(m)) process.kill(p, "SIGKILL");
    }
  }, 90_000);

  test("a maintenance window about to open drains its node (with --migration-triggers): its work moves make-before-break", async () => {
    using dir = tempDir();
    await using hub = await startHub({
      data: join(dir.path, "hub"),
      args: ["--heartbeat-interval", "1s", "--migration-triggers"],
    });
    const opens = new Date(Date.now() + 5 * 60_000).toISOString();
    const closes = new Date(Date.now() + 65 * 60_000).toISOString();
    const m1 = await startAgent({
      data: join(dir.path, "mw1"),
      nodeId: "mw1",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--heartbeat-interval", "1s", "--level", "2", "--label", `maintenance=${opens}/${closes}`],
    });
    const mark = `novacron-maint-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
    const agents = [m1];
    try {
      await waitFor(async () => (await m1.status()).connected, { what: "mw1 connected" });
      await hub.api("/api/v1/workloads", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          name: "svc",
          driver: "exec",
          command: "/bin/sh",
          args: loop(mark),
        }),
      });
      await waitFor(async () => (await pids(mark)).length === 1, { what: "the service on mw1" });
      agents.push(await agent(hub, dir.path, "mw2"));
      const watch = sampler([mark]);
      await waitFor(
        async () => {
          const allocs = (await hub.api<{ allocs: AllocJson[] }>("/api/v1/workloads/svc")).body.allocs;
          return allocs.length === 1 && allocs[0]!.node === "mw2" && allocs[0]!.status === "running";
        },
        { what: "the service moved to mw2", timeoutMs: 30_000 },
      );
      await Bun.sleep(300);
      expect((await watch.stop()).fewest).toBe(1);
      const nodes = (await hub.api<{ nodes: { id: string; status: string }[] }>("/api/v1/nodes")).body.nodes;
      expect(nodes.find((n) => n.id === "mw1")?.status).toBe("draining");
      const log = (await hub.api<{ events: { kind: string; reason: string }[] }>("/api/v1/failover/events"))
        .body.events;
      expect(log.find((e) => e.kind === "migration_request")?.reason).toContain("maintenance window");
    } finally {
      for (const a of agents) await a[Symbol.asyncDispose]();
      for (const p of await pids(mark)) process.kill(p, "SIGKILL");
    }
  }, 90_000);

  test("a rolling update on one node where old and new take the same fixed port: the old copy stops before the new one starts, and the rollout completes", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub"), args: ["--heartbeat-interval", "1s"] });
    const a = await agent(hub, dir.path, "fp1");
    const port = freePort();
    const marks = ["v1", "v2"].map(
      (v) => `novacron-port-${v}-${process.pid}-${Math.floor(Math.random() * 1e9)}`,
    );
    const listen = (mark: string) => [
      "-c",
      // A graceful shutdown holds the port for a second after SIGTERM, as real services do.
      `import socket,time,signal,sys; signal.signal(signal.SIGTERM, lambda *a: (time.sleep(1), sys.exit(0))); s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1",${port})); s.listen(); time.sleep(600) # ${mark}`,
    ];
    const spec = (mark: string) => ({
      name: "web",
      driver: "exec",
      command: "python3",
      args: listen(mark),
      restart: "never",
      nodes: ["fp1"],
      // Three misses: python can take a few hundred ms to bind on a loaded machine.
      health: { type: "tcp", port, interval_ms: 200, threshold: 3 },
      rollout: { strategy: "rolling", min_healthy_ms: 500, deadline_ms: 20_000 },
    });
    try {
      await hub.api("/api/v1/workloads", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(spec(marks[0]!)),
      });
      // Listening, so its SIGTERM handler is in place (it is set before the bind): a copy signalled
      // while python was still starting would die at once and prove nothing about the handoff.
      await waitFor(
        async () =>
          (await pids(marks[0]!)).length === 1 &&
          (await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } })
            .then((s) => {
              s.end();
              return true;
            })
            .catch(() => false)),
        { what: "v1 listening" },
      );
      let most = 0;
      let on = true;
      const watching = (async () => {
        while (on) {
          // Both versions in one snapshot: two readings at two instants could count a handoff twice.
          most = Math.max(most, (await pidsOfAny(marks)).length);
          await Bun.sleep(100);
        }
      })();
      const put = await hub.api("/api/v1/workloads/web", {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(spec(marks[1]!)),
      });
      expect(put.status).toBe(200);
      const done = await waitFor(
        async () => {
          const w = (
            await hub.api<{ version: number; rollout_status: { state: string } }>("/api/v1/workloads/web")
          ).body;
          return w.rollout_status.state !== "rolling" ? w : undefined;
        },
        { what: "the rollout to end", timeoutMs: 30_000 },
      );
      on = false;
      await watching;
      expect(done.rollout_status.state).toBe("idle");
      expect(done.version).toBe(2);
      expect(await pids(marks[0]!)).toHaveLength(0);
      expect(await pids(marks[1]!)).toHaveLength(1);
      expect(most).toBe(1);
    } finally {
      await a[Symbol.asyncDispose]();
      for (const m of marks) for (const p of await pids(m)) process.kill(p, "SIGKILL");
    }
  }, 60_000);
});
