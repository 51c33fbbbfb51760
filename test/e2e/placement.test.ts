// End to end: real agents at different tiers, labels and measured latencies; the hub places and explains.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { freePort } from "../support/ports.ts";
import { type AgentHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

interface PlanJson {
  placements: { node: string }[];
  complete: boolean;
  reason?: string;
  candidates: { node: string; score: number; parts: Record<string, { value: number; points: number }> }[];
  filtered: { filter: string; count: number; text: string; examples: string[] }[];
  summary: string;
}

const NYSE = 'probe.rtt_ms{target="market:NYSE"}';

test("a workload for levels 3-4, market:NYSE under 1 ms and jurisdiction US lands on the one node that fits, the dry run says why no other did, and a new node that fits picks up a pending workload", async () => {
  using dir = tempDir();
  // The "exchange gateway": a TCP listener on loopback that the probes connect to.
  const gatewayPort = freePort();
  const gateway = Bun.listen({ hostname: "127.0.0.1", port: gatewayPort, socket: { data() {} } });
  await using hub = await startHub({ data: join(dir.path, "hub") });
  const agents: AgentHandle[] = [];
  const join_ = async (id: string, level: number, labels: Record<string, string>, extra: string[] = []) => {
    const a = await startAgent({
      data: join(dir.path, id),
      nodeId: id,
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: [
        "--level",
        String(level),
        ...Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
        "--batch-interval",
        "1s",
        "--heartbeat-interval",
        "1s",
        "--probe-interval",
        "1s",
        ...extra,
      ],
    });
    agents.push(a);
    return a;
  };
  try {
    const probe = ["--probe", `market:NYSE=127.0.0.1:${gatewayPort}`];
    await join_("fit", 3, { jurisdiction: "US", region: "us-east" }, probe);
    await join_("too-high", 2, { jurisdiction: "US", region: "us-east" }, probe);
    await join_("abroad", 4, { jurisdiction: "EU", region: "eu-west" }, probe);
    await join_("unmeasured", 4, { jurisdiction: "US", region: "us-east" });
    for (const id of ["fit", "too-high", "abroad"]) {
      await waitFor(
        async () =>
          (await hub.api<{ series: string[] }>(`/api/v1/nodes/${id}/series`)).body.series?.includes(NYSE),
        {
          what: `${id}'s NYSE probe at the hub`,
        },
      );
    }
    // The premise: the node that fits has measured the gateway under 1 ms.
    await waitFor(
      async () => {
        const r = await hub.api<{ points: [number, number][] }>(
          `/api/v1/nodes/fit/metrics?series=${encodeURIComponent(NYSE)}&from=0`,
        );
        const last = r.body.points.at(-1);
        return last !== undefined && last[1] < 1;
      },
      { what: "fit's latest NYSE probe under 1 ms" },
    );
    const request = {
      resources: { cpu_millis: 100, mem_mb: 64 },
      replicas: 1,
      placement: { levels: [3, 4], jurisdictions: ["US"], latency: { target: "market:NYSE", max_ms: 1 } },
    };
    const dry = await hub.api<PlanJson>("/api/v1/placement/plan", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
    });
    expect(dry.status).toBe(200);
    if (dry.body.placements.length === 0) console.error(JSON.stringify(dry.body, null, 1));
    expect(dry.body.placements.map((p) => p.node)).toEqual(["fit"]);
    const removed = Object.fromEntries(dry.body.filtered.map((f) => [f.filter, f.examples]));
    expect(removed).toEqual({ level: ["too-high"], jurisdiction: ["abroad"], latency: ["unmeasured"] });
    expect(dry.body.summary).toContain("level");
    expect(dry.body.summary).toContain("market:NYSE");
    const best = dry.body.candidates[0]!;
    expect(best.node).toBe("fit");
    expect(Object.keys(best.parts).sort()).toEqual([
      "availability",
      "capabilities",
      "cost",
      "latency",
      "level",
      "resources",
    ]);

    // The real thing: same request as a workload with no pinned nodes.
    const created = await hub.api<{ allocs: { node: string }[] }>("/api/v1/workloads", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: "quote",
        driver: "exec",
        command: "/bin/sleep",
        args: ["600"],
        ...request,
      }),
    });
    expect(created.status).toBe(201);
    expect(created.body.allocs.map((a) => a.node)).toEqual(["fit"]);
    await waitFor(
      async () => {
        const tasks = (await (await fetch(`${agents[0]!.apiUrl}/v1/tasks`)).json()) as {
          tasks: { status: string }[];
        };
        return tasks.tasks[0]?.status === "running";
      },
      { what: "the workload running on the node that fits" },
    );
    const w = await hub.api<{ placement_explanation: PlanJson }>("/api/v1/workloads/quote");
    expect(w.body.placement_explanation.summary).toBe(dry.body.summary);

    // Nothing fits yet: the workload waits with the reason, and runs as soon as a node that fits joins.
    const gpu = await hub.api<{ allocs: unknown[]; pending_reason: string; placement_explanation: PlanJson }>(
      "/api/v1/workloads",
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          name: "vision",
          driver: "exec",
          command: "/bin/sleep",
          args: ["600"],
          placement: { capabilities: ["gpu"], levels: [3, 4] },
        }),
      },
    );
    expect(gpu.status).toBe(201);
    expect(gpu.body.allocs).toEqual([]);
    expect(gpu.body.pending_reason).toBeTruthy();
    expect(gpu.body.placement_explanation.summary).toContain("gpu");
    await join_("gpu-box", 3, { jurisdiction: "US" }, ["--capability", "gpu"]);
    const placed = await waitFor(
      async () => {
        const v = await hub.api<{ allocs: { node: string; status: string }[] }>("/api/v1/workloads/vision");
        return v.body.allocs[0]?.status === "running" ? v.body.allocs : undefined;
      },
      { what: "the pending workload placed on the new node", timeoutMs: 20_000 },
    );
    expect(placed.map((a) => a.node)).toEqual(["gpu-box"]);

    // Bad requests name the field.
    const bad: [unknown, string][] = [
      [
        { replicas: 1, placement: { latency: { target: "market:NASDAQ", max_ms: 1 } } },
        "placement.latency.target",
      ],
      [{ replicas: 1, placement: { levels: [4, 2] } }, "placement.levels"],
      [{ replicas: "two" }, "replicas"],
    ];
    for (const [body, field] of bad) {
      const r = await hub.api<{ error: { field: string } }>("/api/v1/placement/plan", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect({ status: r.status, field: r.body.error.field }).toEqual({ status: 400, field });
    }
  } finally {
    for (const a of agents) await a[Symbol.asyncDispose]();
    gateway.stop(true);
  }
}, 90_000);
