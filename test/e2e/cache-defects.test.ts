// The two cache defects at their depth: one byte definition of a key at hub and agent, deletable hub
// entries, invalid stored entries never sent, and local writes that give way to the hub's next send.
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { join } from "node:path";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const json = { "content-type": "application/json" };
type ApiError = { error?: { code: string; field?: string; message: string } };

function putEntry(hub: HubHandle, body: unknown) {
  return hub.api<{ delivered_now: string[] } & ApiError>("/api/v1/cache", {
    method: "PUT",
    headers: json,
    body: JSON.stringify(body),
  });
}

async function read(
  a: AgentHandle,
  key: string,
): Promise<{ value: string; version: string | null } | undefined> {
  const r = await fetch(`${a.apiUrl}/v1/cache/${encodeURIComponent(key)}`);
  return r.status === 200 ? { value: await r.text(), version: r.headers.get("x-version") } : undefined;
}

async function agentOf(hub: HubHandle, dir: string, nodeId: string): Promise<AgentHandle> {
  const a = await startAgent({
    data: join(dir, nodeId),
    nodeId,
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--heartbeat-interval", "1s"],
  });
  await waitFor(async () => (await a.status()).connected, { what: `${nodeId} connected` });
  return a;
}

test("cache keys are counted in bytes at the hub as at the agent: 90 x '€' (90 characters, 270 bytes) is refused naming the key; 85 x '€' + 'x' (256 bytes) reaches the node", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  await using a = await agentOf(hub, dir.path, "a");
  const tooLong = await putEntry(hub, { key: "€".repeat(90), value: "x", version: 1 });
  expect(tooLong.status).toBe(400);
  expect(tooLong.body.error?.field).toBe("key");
  expect(tooLong.body.error?.message).toContain("270 bytes; at most 256");
  // A lone surrogate has no UTF-8 form: refused too, by the same definition.
  const lone = await putEntry(hub, { key: "a\ud800", value: "x", version: 1 });
  expect(lone.body.error?.field).toBe("key");
  const longest = `${"€".repeat(85)}x`;
  const ok = await putEntry(hub, { key: longest, value: "fits", version: 1 });
  expect(ok.status).toBe(200);
  expect(ok.body.delivered_now).toEqual(["a"]);
  await waitFor(async () => (await read(a, longest))?.value === "fits", {
    what: "the 256-byte key on the node",
  });
  // The agent's own API applies the same definition.
  const local = await fetch(`${a.apiUrl}/v1/cache/${encodeURIComponent("€".repeat(90))}`, {
    method: "PUT",
    body: "x",
  });
  expect(local.status).toBe(400);
  expect(((await local.json()) as ApiError).error?.field).toBe("key");
}, 60_000);

test("an invalid entry an older hub stored is never sent, is listed as invalid, and DELETE removes it; the node runs on through restarts", async () => {
  using dir = tempDir();
  const hubDir = join(dir.path, "hub");
  await using hub = await startHub({ data: hubDir });
  await hub.proc.kill("SIGTERM");
  // What a hub that counted characters let in: a 270-byte key, targeted at every node.
  const bad = "€".repeat(90);
  const db = new Database(join(hubDir, "hub.db"));
  db.query(
    "INSERT INTO cache_entries (key, value, version, ttl_ms, target, updated) VALUES (?, 'x', 1, NULL, '{}', 0)",
  ).run(bad);
  db.close();
  await hub.restart();
  await putEntry(hub, { key: "good", value: "g", version: 1 });
  await using a = await agentOf(hub, dir.path, "a");
  await waitFor(async () => (await read(a, "good"))?.value === "g", { what: "the valid entry on the node" });
  const listed = await hub.api<{ entries: { key: string; invalid?: string }[] }>("/api/v1/cache");
  expect(listed.body.entries.find((e) => e.key === bad)?.invalid).toBe("key: is 270 bytes; at most 256");
  expect(hub.proc.lines.some((l) => /hub cache entry not sent: invalid/.test(l))).toBe(true);
  // Nothing refused on the node: the hub never sent it.
  const refusedOnNode = async () => {
    const text = await (await fetch(`${a.apiUrl}/metrics`)).text();
    return Number(/novacron_agent_frames_refused_total\{reason="unappliable"\} (\d+)/.exec(text)?.[1] ?? 0);
  };
  expect(await refusedOnNode()).toBe(0);
  await a.restart();
  await waitFor(async () => (await a.status()).connected, { what: "reconnected" });
  expect(a.proc.running).toBe(true);

  const del = await hub.api<{ deleted: boolean; version: number }>(
    `/api/v1/cache/${encodeURIComponent(bad)}`,
    {
      method: "DELETE",
    },
  );
  expect(del.status).toBe(200);
  expect(del.body).toMatchObject({ deleted: true, version: 1 });
  const after = await hub.api<{ entries: { key: string }[] }>("/api/v1/cache");
  expect(after.body.entries.map((e) => e.key)).toEqual(["good"]);
  expect((await hub.api(`/api/v1/cache/${encodeURIComponent(bad)}`, { method: "DELETE" })).status).toBe(404);
}, 90_000);

test("a deleted hub entry disappears from the nodes: a connected one at once, one that was away at its next session; an older or equal version cannot bring it back", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  await using a = await agentOf(hub, dir.path, "a");
  await using b = await agentOf(hub, dir.path, "b");
  expect((await putEntry(hub, { key: "geo/zones", value: "z1", version: 3 })).status).toBe(200);
  for (const n of [a, b])
    await waitFor(async () => (await read(n, "geo/zones"))?.value === "z1", { what: `${n.nodeId} has it` });
  await b.proc.kill("SIGKILL");
  // The key holds a slash: the rest of the path is the key.
  const del = await hub.api<{ delivered_now: string[] }>("/api/v1/cache/geo%2Fzones", { method: "DELETE" });
  expect(del.status).toBe(200);
  expect(del.body.delivered_now).toEqual(["a"]);
  await waitFor(async () => (await read(a, "geo/zones")) === undefined, { what: "gone from a" });
  // b comes back with the entry in its own store: the hub's deletion at its hello removes it.
  await b.restart();
  await waitFor(async () => (await read(b, "geo/zones")) === undefined, {
    what: "gone from b at its next session",
  });
  const listed = await hub.api<{ deleted: { key: string; version: number }[] }>("/api/v1/cache");
  expect(listed.body.deleted).toEqual([{ key: "geo/zones", version: 3, target: {} } as never]);
  const same = await putEntry(hub, { key: "geo/zones", value: "z1 again", version: 3 });
  expect(same.status).toBe(400);
  expect(same.body.error?.field).toBe("version");
  expect((await putEntry(hub, { key: "geo/zones", value: "z4", version: 4 })).status).toBe(200);
  for (const n of [a, b])
    await waitFor(async () => (await read(n, "geo/zones"))?.value === "z4", { what: `${n.nodeId} has v4` });
  expect((await hub.api("/api/v1/cache/nothing-here", { method: "DELETE" })).status).toBe(404);
}, 90_000);

test("a local write over a hub entry holds until the hub sends that key again: the next session restores the hub's value and version, and a newer version replaces a later local write", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  await using a = await agentOf(hub, dir.path, "a");
  await putEntry(hub, { key: "tariff", value: "hub-1", version: 1 });
  await waitFor(async () => (await read(a, "tariff"))?.value === "hub-1", { what: "hub value" });
  expect((await fetch(`${a.apiUrl}/v1/cache/tariff`, { method: "PUT", body: "mine" })).status).toBe(200);
  // The local value does not pass itself off as the hub's version 1.
  expect(await read(a, "tariff")).toEqual({ value: "mine", version: null });
  await a.restart();
  await waitFor(async () => (await read(a, "tariff"))?.value === "hub-1", {
    what: "the hub's resend at the next session to restore its value",
  });
  expect((await read(a, "tariff"))?.version).toBe("1");
  await fetch(`${a.apiUrl}/v1/cache/tariff`, { method: "PUT", body: "mine again" });
  expect((await read(a, "tariff"))?.value).toBe("mine again");
  await putEntry(hub, { key: "tariff", value: "hub-2", version: 2 });
  await waitFor(async () => (await read(a, "tariff"))?.value === "hub-2", { what: "the newer hub version" });
  expect((await read(a, "tariff"))?.version).toBe("2");
}, 90_000);

test("a bad named-cache declaration in the agent's config stops the start with a message naming caches.NAME.FIELD", async () => {
  using dir = tempDir();
  const proc = Bun.spawn(
    [
      process.execPath,
      "agent/main.ts",
      "run",
      "--data",
      join(dir.path, "a"),
      "--node-id",
      "a",
      "--caches",
      JSON.stringify({ quotes: { strategy: "write-sometimes" } }),
    ],
    {
      cwd: join(import.meta.dir, "../.."),
      env: { ...process.env, NOVACRON_CONFIG: "" },
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  expect(code).not.toBe(0);
  expect(err).toContain("caches.quotes.strategy");
}, 30_000);
