// End to end: a refusal that repeats on every reconnect is logged once a minute on both sides, and says what to do.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

async function authFailures(hub: Awaited<ReturnType<typeof startHub>>): Promise<number> {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  const m = /^novacron_hub_auth_failures_total(?:\{[^}]*\})? (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

test("quiet logs: a wrong join token or a taken node id is retried, logged once by agent and hub, with what to do", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  const hubKey = readFileSync(join(dir.path, "hub", "hub.pub"), "utf8").trim();
  // The pinned hub key gets it past the handshake, so the hub itself refuses each hello.
  await using wrong = await startAgent({
    data: join(dir.path, "a"),
    nodeId: "gw-1",
    hub: hub.wsUrl,
    joinToken: "not-the-token",
    args: ["--hub-key", hubKey],
  });
  await using first = await startAgent({
    data: join(dir.path, "b"),
    nodeId: "gw-2",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
  });
  await first.proc.waitForLine(/connected to hub/);
  // A second agent with the same node id, as two agents on one host with the default id (the host name).
  await using twin = await startAgent({
    data: join(dir.path, "c"),
    nodeId: "gw-2",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
  });

  await waitFor(async () => (await authFailures(hub)) >= 10, {
    timeoutMs: 30_000,
    what: "10 refused hellos",
  });
  const count = (lines: string[], re: RegExp) => lines.filter((l) => re.test(l)).length;

  expect(count(wrong.proc.lines, /hub refused this node/)).toBe(1);
  expect(wrong.proc.lines.find((l) => /hub refused this node/.test(l))).toContain("check --join-token");
  expect(count(twin.proc.lines, /hub refused this node/)).toBe(1);
  expect(twin.proc.lines.find((l) => /hub refused this node/.test(l))).toContain("its own --node-id");
  expect(count(hub.proc.lines, /agent refused node=gw-1/)).toBe(1);
  expect(count(hub.proc.lines, /(session|agent) refused node=gw-2/)).toBe(1);
  // The first gw-2 was never disturbed.
  expect((await first.status()).connected).toBe(true);
}, 60_000);
