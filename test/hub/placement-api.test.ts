// Specification of the placement API: one request or a batch, against the nodes that said hello.
import { expect, test } from "bun:test";
import { joinNode, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";

test("placement API: a single dry run, a batch that fits more than one-by-one would, and field-named errors", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  {
    for (const [id, level, cores] of [
      ["small", 3, 1],
      ["big", 3, 4],
      ["edge", 5, 8],
    ] as const) {
      await joinNode(core, id, {
        level,
        labels: { region: "eu" },
        capabilities: [],
        resources: { cpu_cores: cores, mem_bytes: 8 * 2 ** 30, disk_bytes: 100 * 2 ** 30, arch: "x64" },
      });
    }
    const plan = async (body: unknown) => {
      const res = await core.app.request("/api/v1/placement/plan", {
        method: "POST",
        headers: { authorization: "Bearer admin", "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const one = await plan({ resources: { cpu_millis: 2000 }, placement: { levels: [1, 4] } });
    expect(one.status).toBe(200);
    expect((one.body.placements as { node: string }[]).map((p) => p.node)).toEqual(["big"]);
    expect(one.body.summary).toContain("level outside 1-4");
    // Two workloads: greedy one-by-one could put the small one on "big" first; the batch places both.
    const batch = await plan({
      requests: [
        { name: "light", resources: { cpu_millis: 800 }, placement: { levels: [3, 3] } },
        { name: "heavy", resources: { cpu_millis: 3500 }, placement: { levels: [3, 3] } },
      ],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.complete).toBe(true);
    const nodes = (batch.body.plans as { placements: { node: string }[] }[]).map(
      (p) => p.placements[0]?.node,
    );
    expect(nodes).toEqual(["small", "big"]);
    const bad = await plan({ requests: [{ replicas: 1 }, { replicas: "x" }] });
    expect(bad.status).toBe(400);
    expect((bad.body.error as { field: string }).field).toBe("requests.1.replicas");
    expect((await plan({ requests: [] })).status).toBe(400);
  }
});
