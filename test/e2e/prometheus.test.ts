// Prometheus as a real client: promtool (Debian's prometheus package) checks the hub's and the agent's /metrics.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const promtool =
  Bun.which("promtool") ?? (Bun.file("/usr/bin/promtool").size > 0 ? "/usr/bin/promtool" : null);

/** `promtool check metrics` on a scrape: its exit code and every line it printed (errors and lint findings). */
async function check(text: string): Promise<{ code: number; output: string }> {
  const p = Bun.spawn([promtool!, "check", "metrics"], {
    stdin: new Blob([text]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  return { code, output: (out + err).trim() };
}

test.skipIf(!promtool)(
  "prometheus: promtool check metrics passes with no lint finding on the hub's and the agent's /metrics, also after an agent pushes dup{node=\"other\"}",
  async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub") });
    await using agent = await startAgent({
      data: join(dir.path, "agent"),
      nodeId: "edge-1",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--batch-interval", "1s", "--heartbeat-interval", "1s"],
    });
    const push = await fetch(`${agent.apiUrl}/v1/ingest`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        points: [
          { series: 'dup{node="other"}', value: 1 },
          { series: 'odd.name_ms{path="a\\"b",le="0.5"}', value: 250 },
          { series: "jobs_total", value: 3 },
        ],
      }),
    });
    expect(push.status).toBe(202);
    // The hub's scrape holds the node's own series and the pushed ones.
    const scrape = await waitFor(
      async () => {
        const text = await (await fetch(`${hub.url}/metrics`)).text();
        return text.includes("novacron_node_dup{") && text.includes("novacron_node_cpu_util{")
          ? text
          : undefined;
      },
      { timeoutMs: 60_000, what: "node series in the hub's /metrics" },
    );
    expect(scrape).toContain('novacron_node_dup{exported_node="other",node="edge-1"} 1');
    expect(scrape).toContain("# HELP novacron_node_dup ");
    expect(scrape).toContain("# TYPE novacron_node_jobs_total counter");
    expect(scrape).toContain("# TYPE novacron_hub_frames_received_total counter");
    expect(await check(scrape)).toEqual({ code: 0, output: "" });
    const own = await (await fetch(`${agent.apiUrl}/metrics`)).text();
    expect(own).toContain("# TYPE novacron_agent_samples_total counter");
    expect(await check(own)).toEqual({ code: 0, output: "" });
    // The check can fail: the scrape as it was before (a node's `node` label beside the hub's) is refused.
    const broken = `${scrape}novacron_node_dup{node="edge-1",node="other"} 1\n`;
    expect((await check(broken)).code).not.toBe(0);
  },
  120_000,
);
