// End to end: `npm start` brings up a hub and a joined agent, prints how to reach them, and stops cleanly.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { freePort } from "../support/ports.ts";
import { Proc, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

test("npm start: hub and local agent come up joined, the first screen names the token, Ctrl-C stops both", async () => {
  using dir = tempDir();
  const hubPort = freePort();
  const agentPort = freePort();
  const proc = new Proc("start", [process.execPath, "scripts/start.ts"], {
    NOVACRON_START_DATA: join(dir.path, ".novacron"),
    NOVACRON_START_HUB_PORT: String(hubPort),
    NOVACRON_START_AGENT_API: `127.0.0.1:${agentPort}`,
  });
  proc.start();
  try {
    await proc.waitForLine(/NovaCron Edge is running/, 30_000);
    const token = (await proc.waitForLine(/Admin token\s+(\S+)/))[1]!;
    expect(proc.lines.some((l) => l.includes(`http://127.0.0.1:${hubPort}`))).toBe(true);
    expect(proc.lines.some((l) => /--join-token \S+/.test(l))).toBe(true);
    const nodes = await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${hubPort}/api/v1/nodes`, {
          headers: { authorization: `Bearer ${token}` },
        });
        const body = (await r.json()) as { nodes: { status: string }[] };
        return body.nodes.length === 1 && body.nodes[0]!.status === "ready" ? body.nodes : undefined;
      },
      { what: "the local agent to be ready at the hub" },
    );
    expect(nodes).toHaveLength(1);
    await proc.kill("SIGINT");
    expect(await proc.exited()).toBe(0);
    await proc.waitForLine(/stopped; every sample is in the local store/);
  } finally {
    await proc.kill("SIGKILL");
  }
}, 60_000);
