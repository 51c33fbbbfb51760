// A hub message that authenticates but cannot be applied is refused and reported: never a crash, never a crash loop.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

test("a hub-pushed cache key over the agent's byte limit (90 x '€': 256 characters, 270 bytes) is refused and counted; the agent stays up, and again after a restart when the hub sends it anew", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  await using agent = await startAgent({
    data: join(dir.path, "a"),
    nodeId: "a",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--heartbeat-interval", "1s"],
  });
  await waitFor(async () => (await agent.status()).connected, { what: "agent connected" });
  const key = "€".repeat(90);
  const put = await hub.api("/api/v1/cache", {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key, value: "x", version: 1, target: { nodes: ["a"] } }),
  });
  expect(put.status).toBe(200);
  const refused = async () => {
    const text = await (await fetch(`${agent.apiUrl}/metrics`)).text();
    return Number(/novacron_agent_frames_refused_total\{reason="unappliable"\} (\d+)/.exec(text)?.[1] ?? 0);
  };
  await waitFor(async () => (await refused()) >= 1, { what: "the agent to refuse the entry" });
  expect(agent.proc.lines.some((l) => /hub message refused .*key: is 270 bytes; at most 256/.test(l))).toBe(
    true,
  );
  expect((await fetch(`${agent.apiUrl}/healthz`)).status).toBe(200);
  // The hub sends its entries again on every hello: the restarted agent refuses it again and runs on.
  await agent.restart();
  await waitFor(async () => (await agent.status()).connected, { what: "agent reconnected" });
  await waitFor(async () => (await refused()) >= 1, { what: "the entry refused after the restart" });
  await Bun.sleep(1500);
  expect(agent.proc.running).toBe(true);
  expect((await agent.status()).connected).toBe(true);
}, 60_000);
