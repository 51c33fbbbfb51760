// Specification of hub workloads: the API, desired sets per node with rising generations, and rollouts.
import { describe, expect, test } from "bun:test";
import type { Peer } from "../../hub/gateway/index.ts";
import { type Body, encodeFrame, envelope, type Message } from "../../shared/protocol/index.ts";
import { ADMIN, joinNode, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

/** A hub core plus simulated agents: each records what the hub sends and can report alloc status. */
async function setup(dir: string) {
  const core = await openHubCore(dir);
  const agents = new Map<string, { received: Message[]; seq: number; peer: Peer }>();
  const agent = async (node: string) => {
    let a = agents.get(node);
    if (a) return a;
    const { peer, received } = await joinNode(core, node);
    a = { received, seq: 0, peer };
    agents.set(node, a);
    return a;
  };
  const lastAllocs = (node: string): Body<"allocs"> | undefined => {
    const m = agents
      .get(node)
      ?.received.filter((x) => x.t === "allocs")
      .at(-1);
    return m?.t === "allocs" ? m.b : undefined;
  };
  const report = async (
    node: string,
    body: Omit<Body<"alloc_status">, "generation"> & { generation?: number },
  ) => {
    const a = await agent(node);
    a.seq += 1;
    core.gateway.onFrame(
      a.peer,
      encodeFrame(envelope("alloc_status", node, { generation: 0, ...body }, { q: a.seq })),
    );
    await core.ingest.flush();
  };
  const api = async <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => {
    const res = await core.app.request(path, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  /** Every agent reports every allocation it was given as running and healthy. */
  const allHealthy = async () => {
    for (const node of agents.keys()) {
      for (const alloc of lastAllocs(node)?.allocs ?? []) {
        await report(node, {
          alloc: alloc.id,
          workload: alloc.workload,
          version: alloc.version,
          status: "running",
          healthy: true,
        });
      }
    }
  };
  return {
    core,
    agent,
    lastAllocs,
    report,
    api,
    allHealthy,
    [Symbol.dispose]: () => core[Symbol.dispose](),
  };
}

const spec = (extra: Record<string, unknown> = {}) => ({
  name: "web",
  driver: "exec",
  command: "/bin/sleep",
  args: ["3600"],
  nodes: ["n1", "n2", "n3"],
  rollout: { min_healthy_ms: 0 },
  ...extra,
});

type WorkloadJson = {
  version: number;
  args: string[];
  rollout_status: { state: string; message?: string };
  allocs: { id: string; node: string; status: string; generation: number; version: number }[];
};

describe("workloads API", () => {
  test("bad specs get 400 naming the field", async () => {
    using dir = tempDir();
    using h = await setup(dir.path);
    const cases: [unknown, string][] = [
      ["{not json", "body"],
      [{ driver: "exec", command: "x" }, "name"],
      [{ name: "Bad Name", driver: "exec", command: "x" }, "name"],
      [{ name: "w", driver: "docker", command: "x" }, "driver"],
      [{ name: "w", driver: "exec", command: "" }, "command"],
      [{ name: "w", driver: "exec", command: "x", replicas: -1 }, "replicas"],
      [{ name: "w", driver: "exec", command: "x", priority: 11 }, "priority"],
      [{ name: "w", driver: "exec", command: "x", resources: { mem_mb: "lots" } }, "resources.mem_mb"],
      [{ name: "w", driver: "exec", command: "x", restart: "sometimes" }, "restart"],
      [{ name: "w", driver: "exec", command: "x", health: { type: "http", url: "nope" } }, "health.url"],
      [{ name: "w", driver: "exec", command: "x", env: { "1BAD": "v" } }, "env.1BAD"],
      [{ name: "w", driver: "exec", command: "x", nodes: ["a", "b"], replicas: 3 }, "replicas"],
    ];
    for (const [body, field] of cases) {
      const r = await h.api<{ error: { field: string; message: string } }>("POST", "/api/v1/workloads", body);
      expect({ field: r.body.error.field, status: r.status }).toEqual({ field, status: 400 });
      expect(r.body.error.message).toContain(field === "body" ? "JSON" : field);
    }
  });

  test("a pinned workload gets one allocation per node; each node receives its desired set on hello and on change", async () => {
    using dir = tempDir();
    using h = await setup(dir.path);
    await h.agent("n1");
    const created = await h.api<WorkloadJson>("POST", "/api/v1/workloads", spec());
    expect(created.status).toBe(201);
    expect(created.body.allocs.map((a) => [a.node, a.status]).sort()).toEqual([
      ["n1", "pending"],
      ["n2", "pending"],
      ["n3", "pending"],
    ]);
    // n1 was connected: it got its set at once. n2 joins later and gets it on hello.
    expect(h.lastAllocs("n1")?.allocs.map((a) => a.workload)).toEqual(["web"]);
    await h.agent("n2");
    await h.core.settled();
    expect(h.lastAllocs("n2")?.allocs).toHaveLength(1);
    expect((await h.api("POST", "/api/v1/workloads", spec())).status).toBe(400);
    const id = h.lastAllocs("n1")!.allocs[0]!.id;
    await h.report("n1", { alloc: id, workload: "web", status: "running", pid: 1234 });
    const got = await h.api<WorkloadJson>("GET", "/api/v1/workloads/web");
    expect(got.body.allocs.find((a) => a.node === "n1")?.status).toBe("running");
    expect((await h.api<{ allocs: unknown[] }>("GET", "/api/v1/nodes/n3/allocs")).body.allocs).toHaveLength(
      1,
    );
    const before = h.lastAllocs("n1")!.generation;
    expect((await h.api("DELETE", "/api/v1/workloads/web")).status).toBe(200);
    expect(h.lastAllocs("n1")).toEqual({ generation: before + 1, allocs: [] });
    expect((await h.api("GET", "/api/v1/workloads/web")).status).toBe(404);
  });
});

describe("rollouts", () => {
  test("rolling: replicas move to the new version one at a time, each after the previous proved healthy", async () => {
    using dir = tempDir();
    using h = await setup(dir.path);
    for (const n of ["n1", "n2", "n3"]) await h.agent(n);
    await h.api("POST", "/api/v1/workloads", spec());
    await h.allHealthy();
    await h.api("PUT", "/api/v1/workloads/web", spec({ args: ["7200"] }));
    const versions = () =>
      ["n1", "n2", "n3"].map((n) =>
        h
          .lastAllocs(n)!
          .allocs.map((a) => a.version)
          .join(","),
      );
    expect(versions()).toEqual(["2", "1", "1"]);
    await h.core.controller.tick();
    expect(versions()).toEqual(["2", "1", "1"]);
    await h.allHealthy();
    await h.core.controller.tick();
    expect(versions()).toEqual(["2", "2", "1"]);
    await h.allHealthy();
    await h.core.controller.tick();
    await h.allHealthy();
    await h.core.controller.tick();
    expect(versions()).toEqual(["2", "2", "2"]);
    const w = await h.api<WorkloadJson>("GET", "/api/v1/workloads/web");
    expect(w.body.rollout_status.state).toBe("idle");
    expect(w.body.args).toEqual(["7200"]);
  });

  test("rolling: a new version that fails its health check stops the rollout and everything returns to the old version", async () => {
    using dir = tempDir();
    using h = await setup(dir.path);
    for (const n of ["n1", "n2", "n3"]) await h.agent(n);
    await h.api("POST", "/api/v1/workloads", spec());
    await h.allHealthy();
    await h.api("PUT", "/api/v1/workloads/web", spec({ args: ["broken"] }));
    const fresh = h.lastAllocs("n1")!.allocs[0]!;
    expect(fresh.version).toBe(2);
    await h.report("n1", {
      alloc: fresh.id,
      workload: "web",
      status: "running",
      healthy: false,
      message: "http check failed",
    });
    await h.core.controller.tick();
    const w = await h.api<WorkloadJson>("GET", "/api/v1/workloads/web");
    expect(w.body.rollout_status.state).toBe("rolled-back");
    expect(w.body.rollout_status.message).toContain("health check");
    expect(w.body.version).toBe(1);
    expect(w.body.args).toEqual(["3600"]);
    for (const n of ["n1", "n2", "n3"]) expect(h.lastAllocs(n)!.allocs.map((a) => a.version)).toEqual([1]);
  });

  test("canary: the first replica moves, the rest wait for promotion through the API", async () => {
    using dir = tempDir();
    using h = await setup(dir.path);
    for (const n of ["n1", "n2", "n3"]) await h.agent(n);
    await h.api(
      "POST",
      "/api/v1/workloads",
      spec({ rollout: { strategy: "canary", canary: 1, min_healthy_ms: 0 } }),
    );
    await h.allHealthy();
    await h.api(
      "PUT",
      "/api/v1/workloads/web",
      spec({ args: ["v2"], rollout: { strategy: "canary", canary: 1, min_healthy_ms: 0 } }),
    );
    await h.allHealthy();
    await h.core.controller.tick();
    let w = await h.api<WorkloadJson>("GET", "/api/v1/workloads/web");
    expect(w.body.rollout_status.state).toBe("awaiting-promotion");
    expect(w.body.allocs.map((a) => a.version).sort()).toEqual([1, 1, 2]);
    expect((await h.api("POST", "/api/v1/workloads/web/promote")).status).toBe(200);
    for (let i = 0; i < 4; i++) {
      await h.allHealthy();
      await h.core.controller.tick();
    }
    w = await h.api<WorkloadJson>("GET", "/api/v1/workloads/web");
    expect(w.body.rollout_status.state).toBe("idle");
    expect(w.body.allocs.map((a) => a.version)).toEqual([2, 2, 2]);
    expect((await h.api("POST", "/api/v1/workloads/web/promote")).status).toBe(400);
  });

  test("blue-green: the new version runs beside the old one, and the old stops only when all new replicas are healthy", async () => {
    using dir = tempDir();
    using h = await setup(dir.path);
    for (const n of ["n1", "n2"]) await h.agent(n);
    const bg = { strategy: "blue-green", min_healthy_ms: 0 };
    await h.api("POST", "/api/v1/workloads", spec({ nodes: ["n1", "n2"], rollout: bg }));
    await h.allHealthy();
    await h.api("PUT", "/api/v1/workloads/web", spec({ nodes: ["n1", "n2"], args: ["v2"], rollout: bg }));
    expect(h.lastAllocs("n1")!.allocs.map((a) => a.version)).toEqual([1, 2]);
    await h.core.controller.tick();
    expect(h.lastAllocs("n1")!.allocs.map((a) => a.version)).toEqual([1, 2]);
    await h.allHealthy();
    await h.core.controller.tick();
    expect(h.lastAllocs("n1")!.allocs.map((a) => a.version)).toEqual([2]);
    expect(h.lastAllocs("n2")!.allocs.map((a) => a.version)).toEqual([2]);
  });

  test("a job's result reaches the workload's allocation: exit code, output tail, status", async () => {
    using dir = tempDir();
    using h = await setup(dir.path);
    await h.agent("n1");
    await h.api("POST", "/api/v1/workloads", {
      name: "once",
      driver: "job",
      command: "/bin/echo",
      args: ["hi"],
      nodes: ["n1"],
    });
    const alloc = h.lastAllocs("n1")!.allocs[0]!;
    const a = await h.agent("n1");
    a.seq += 1;
    h.core.gateway.onFrame(
      a.peer,
      encodeFrame(
        envelope(
          "task_result",
          "n1",
          { alloc: alloc.id, workload: "once", exit_code: 3, duration_ms: 12, output_tail: "hi\n" },
          { q: a.seq },
        ),
      ),
    );
    await waitFor(
      async () =>
        (await h.api<WorkloadJson>("GET", "/api/v1/workloads/once")).body.allocs[0]?.status === "failed",
    );
    const w = await h.api<{ allocs: { exit_code: number; output_tail: string; message: string }[] }>(
      "GET",
      "/api/v1/workloads/once",
    );
    expect(w.body.allocs[0]).toMatchObject({ exit_code: 3, output_tail: "hi\n", message: "exited 3" });
  });
});

describe("generations", () => {
  test("a node that applied a higher generation elsewhere (hub data lost, or another hub) gets this hub's set above it", async () => {
    using dir = tempDir();
    using h = await setup(dir.path);
    await h.api("POST", "/api/v1/workloads", spec({ nodes: ["moved"] }));
    const { received } = await joinNode(h.core, "moved", { alloc_generation: 41 });
    await h.core.settled();
    const sets = received.filter((m) => m.t === "allocs");
    const last = sets.at(-1);
    expect(last?.t === "allocs" && last.b.generation).toBeGreaterThan(41);
    expect(last?.t === "allocs" && last.b.allocs.map((a) => a.workload)).toEqual(["web"]);
  });
});

describe("rollback", () => {
  test("after a finished rollout, rollback rolls the previous spec out again as a new version", async () => {
    using dir = tempDir();
    using h = await setup(dir.path);
    for (const n of ["n1", "n2", "n3"]) await h.agent(n);
    await h.api("POST", "/api/v1/workloads", spec());
    await h.allHealthy();
    await h.api("PUT", "/api/v1/workloads/web", spec({ args: ["7200"] }));
    for (let i = 0; i < 4; i++) {
      await h.allHealthy();
      await h.core.controller.tick();
    }
    const done = await h.api<WorkloadJson>("GET", "/api/v1/workloads/web");
    expect([done.body.version, done.body.rollout_status.state]).toEqual([2, "idle"]);
    const r = await h.api<WorkloadJson>("POST", "/api/v1/workloads/web/rollback");
    expect(r.status).toBe(200);
    expect(r.body.version).toBe(3);
    expect(r.body.args).toEqual(["3600"]);
    for (let i = 0; i < 4; i++) {
      await h.allHealthy();
      await h.core.controller.tick();
    }
    const specs = ["n1", "n2", "n3"].map((n) =>
      h.lastAllocs(n)!.allocs.map((a) => `${a.version}:${a.spec.args.join(" ")}`),
    );
    expect(specs).toEqual([["3:3600"], ["3:3600"], ["3:3600"]]);
  });

  test("a workload that never changed has nothing to roll back to", async () => {
    using dir = tempDir();
    using h = await setup(dir.path);
    await h.api("POST", "/api/v1/workloads", spec());
    const r = await h.api<{ error: { message: string } }>("POST", "/api/v1/workloads/web/rollback");
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain("no rollout to roll back");
  });
});
