// End to end on a real, small file system: a full disk is a state of the agent, not a crash; its store
// stays inside its byte budget; every sample it could not keep is counted; it drains and recovers alone.
import { afterAll, expect, test } from "bun:test";
import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  type AgentHandle,
  type AgentStatusJson,
  startAgent,
  startHub,
  tempDir,
} from "../support/processes.ts";
import { freePort } from "../support/ports.ts";
import { expectNothingLost, quiesce, writeAgentConfig } from "../support/telemetry.ts";
import { mountTmpfs, type Tmpfs } from "../support/tmpfs.ts";
import { waitFor } from "../support/wait.ts";

const MiB = 1024 * 1024;
const mounts: Tmpfs[] = [];
afterAll(() => {
  for (const m of mounts) m[Symbol.dispose]();
});

interface DiskJson {
  full: boolean;
  reason: string | null;
  store_bytes: number;
  store_budget_bytes: number | null;
}
type Status = AgentStatusJson & {
  disk: DiskJson;
  samples: AgentStatusJson["samples"] & {
    dropped_by: { budget: number; disk: number; invalid: number; folded: number };
  };
};
const status = async (a: AgentHandle) => (await a.status()) as Status;

// Bytes of the store's files, as `du` would count them: agent.db, -wal, -shm and the ballast.
function storeFiles(dir: string): number {
  let total = 0;
  for (const f of readdirSync(dir)) {
    if (f.startsWith("agent.db") || f === "store.reserve") {
      try {
        total += statSync(join(dir, f)).size;
      } catch {}
    }
  }
  return total;
}

// Pushes `series` random values every 50 ms to the agent's /v1/ingest: a fast producer that does not
// compress. Keeps the answers it got to a push the disk had no room for.
function pusher(agent: AgentHandle, series: number): { stop(): Promise<void>; refused: string[] } {
  let running = true;
  const refused: string[] = [];
  const loop = (async () => {
    while (running) {
      const points = Array.from({ length: series }, (_, i) => ({
        series: `load.s${String(i).padStart(4, "0")}`,
        value: Math.random(),
      }));
      const res = await fetch(`${agent.apiUrl}/v1/ingest`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ points }),
      }).catch(() => undefined);
      if (res?.status === 507) refused.push(await res.text());
      else await res?.body?.cancel();
      await Bun.sleep(50);
    }
  })();
  return {
    refused,
    async stop() {
      running = false;
      await loop;
    },
  };
}

// Samples the store's size on disk every 20 ms until stopped; returns the largest seen.
function sizeWatch(dir: string): { stop(): number } {
  let peak = 0;
  const timer = setInterval(() => {
    const n = storeFiles(dir);
    if (n > peak && process.env.DEBUG_SIZES)
      console.error(
        n,
        readdirSync(dir)
          .map((f) => `${f}=${statSync(join(dir, f)).size}`)
          .join(" "),
      );
    peak = Math.max(peak, n);
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, storeFiles(dir));
    },
  };
}

test("disk: an agent offline on a small tmpfs keeps its store inside the byte budget, survives the disk filling, counts what it could not keep, and delivers the rest when the hub returns", async () => {
  const fs = mountTmpfs(8 * MiB);
  mounts.push(fs);
  using dir = tempDir();
  const data = join(fs.path, "agent");
  const config = join(dir.path, "agent.yaml");
  const hubPort = freePort();
  const base: Record<string, unknown> = {
    sample_interval: "100ms",
    batch_interval: "1s",
    heartbeat_interval: "1s",
    store_bytes: "1MiB",
    disk_reserve: "64KiB",
  };
  writeAgentConfig(config, base);
  // The hub is not there yet: the agent buffers.
  await using agent = await startAgent({
    data,
    nodeId: "tmpfs",
    hub: `ws://127.0.0.1:${hubPort}`,
    joinToken: "test-join-token",
    args: ["--config", config],
  });
  const push = pusher(agent, 1500);

  // 1. The budget: 1 MiB for every file of the store, sampled from outside while it fills past it.
  const watch = sizeWatch(data);
  await waitFor(
    async () => {
      const s = await status(agent);
      return s.samples.downsampled > 0 || s.samples.dropped_by.budget > 0;
    },
    { timeoutMs: 40_000, what: "the budget to bite (downsampling or budget drops)" },
  );
  await Bun.sleep(3000);
  const budgetPeak = watch.stop();
  expect(budgetPeak).toBeLessThanOrEqual(MiB);
  expect((await status(agent)).disk.full).toBe(false);

  // 2. A budget larger than the disk, and the disk nearly taken by something else: it fills.
  Object.assign(base, { store_bytes: "64MiB" });
  writeAgentConfig(config, base);
  fs.fill("other-program", Math.max(0, fs.free() - 1.5 * MiB));
  const full = await waitFor(
    async () => {
      const s = await status(agent);
      return s.disk.full && s.samples.dropped_by.disk > 0 ? s : undefined;
    },
    { timeoutMs: 30_000, what: "the disk to fill" },
  );
  // It stays up and keeps serving for several housekeeping rounds (the old agent died 12 s in).
  await Bun.sleep(4000);
  expect(agent.proc.running).toBe(true);
  // Cutting its own WAL back can give the disk room for a moment, so the state may clear and come back
  // while it keeps sampling: read it while the disk is full again, still counting what it cannot keep.
  const { later, metrics } = await waitFor(
    async () => {
      const s = await status(agent);
      if (!s.disk.full || s.samples.dropped_by.disk <= full.samples.dropped_by.disk) return undefined;
      const m = await (await fetch(`${agent.apiUrl}/metrics`)).text();
      return m.includes("novacron_agent_disk_full 1") ? { later: s, metrics: m } : undefined;
    },
    { timeoutMs: 30_000, what: "the disk full again, with more disk drops" },
  );
  expect(later.samples.produced).toBeGreaterThan(full.samples.produced);
  expect(metrics).toMatch(/novacron_agent_samples_dropped_total\{reason="disk"\} [1-9]/);
  // A push the disk had no room for is answered so, not `accepted`: the client knows it was dropped.
  await waitFor(() => push.refused.length > 0, { timeoutMs: 30_000, what: "a push answered 507" });
  expect(JSON.parse(push.refused[0]!)).toEqual({
    error: {
      code: "disk_full",
      message: "not stored: the agent's disk is full; the 1500 points are counted as dropped (reason disk)",
    },
  });
  await push.stop();

  // 3. The hub returns: the agent drains, acks free the disk, the state clears by itself.
  await using hub = await startHub({ data: join(dir.path, "hub"), port: hubPort });
  const recovered = await waitFor(
    async () => {
      const s = await status(agent);
      // Thrown, so that a timeout says where it stood.
      if (!s.connected || s.disk.full) {
        const files = readdirSync(data).map((f) => `${f}=${statSync(join(data, f)).size}`);
        throw new Error(
          `connected: ${s.connected}, disk: ${JSON.stringify(s.disk)}, files: ${files.join(" ")}`,
        );
      }
      return s;
    },
    // About 5 s; the bound leaves room for a heavily loaded machine.
    { timeoutMs: 90_000, what: "the agent to drain and leave the disk-full state" },
  );
  const disk = recovered.samples.dropped_by.disk;
  // Sampling resumes: produced grows, disk drops do not.
  await waitFor(async () => (await status(agent)).samples.produced > recovered.samples.produced + 20, {
    what: "sampling to resume",
  });
  expect((await status(agent)).samples.dropped_by.disk).toBe(disk);
  const r = await quiesce(agent, hub, config, base);
  expectNothingLost(r);
  expect(r.dropped).toBeGreaterThanOrEqual(disk);
  // The hub heard about it: the alert and its clear.
  const alerts = await hub.api<{ alerts: { message: string }[] }>("/api/v1/alerts?node=tmpfs");
  expect(alerts.body.alerts.some((a) => /disk full/.test(a.message))).toBe(true);
  expect(agent.proc.running).toBe(true);
}, 200_000);

test("disk: an agent started on a full disk runs, drains its backlog to the hub, and recovers", async () => {
  const fs = mountTmpfs(6 * MiB);
  mounts.push(fs);
  using dir = tempDir();
  const data = join(fs.path, "agent");
  const config = join(dir.path, "agent.yaml");
  const base: Record<string, unknown> = {
    sample_interval: "100ms",
    batch_interval: "1s",
    heartbeat_interval: "1s",
    store_bytes: "3MiB",
    disk_reserve: "64KiB",
  };
  writeAgentConfig(config, base);
  // A backlog, made offline.
  const first = await startAgent({ data, nodeId: "startfull", args: ["--config", config] });
  const push = pusher(first, 1500);
  await waitFor(async () => (await status(first)).outbox.bytes > 600_000, {
    timeoutMs: 40_000,
    what: "a backlog of 600 kB",
  });
  await push.stop();
  const before = await status(first);
  await first[Symbol.asyncDispose]();
  // Then something else takes every last byte.
  fs.fill("other-program");
  expect(fs.free()).toBeLessThan(4096);

  await using hub = await startHub({ data: join(dir.path, "hub") });
  await using agent = await startAgent({
    data,
    nodeId: "startfull",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--config", config],
  });
  await agent.proc.waitForLine(/disk full/);
  const recovered = await waitFor(
    async () => {
      const s = await status(agent);
      return s.connected && !s.disk.full && s.outbox.pending < 3 ? s : undefined;
    },
    { timeoutMs: 40_000, what: "the agent to drain its backlog and leave the disk-full state" },
  );
  expect(recovered.samples.produced).toBeGreaterThan(before.samples.produced);
  // Ticks taken while it was full are counted, and sampling resumed after.
  expect(recovered.samples.dropped_by.disk).toBeGreaterThan(0);
  await waitFor(async () => (await status(agent)).samples.produced > recovered.samples.produced + 20, {
    what: "sampling to resume",
  });
  const r = await quiesce(agent, hub, config, base);
  expectNothingLost(r);
  // Found full while opening its store, it still told the hub (below the reserve there is room for that).
  const alerts = await hub.api<{ alerts: { message: string }[] }>("/api/v1/alerts?node=startfull");
  expect(alerts.body.alerts.some((a) => /disk full \(reserve\)/.test(a.message))).toBe(true);
}, 150_000);

test("disk: an agent killed on a disk that another program keeps full waits for room to open its store, instead of exiting", async () => {
  const fs = mountTmpfs(4 * MiB);
  mounts.push(fs);
  using dir = tempDir();
  const data = join(fs.path, "agent");
  const config = join(dir.path, "agent.yaml");
  writeAgentConfig(config, { sample_interval: "100ms", batch_interval: "1s", disk_reserve: "64KiB" });
  await using agent = await startAgent({ data, nodeId: "noroom", args: ["--config", config] });
  await waitFor(async () => (await status(agent)).samples.produced > 10, { what: "a few samples" });
  const before = (await status(agent)).samples.produced;
  await agent.proc.kill("SIGKILL");
  // Killed while the disk was full: its ballast already spent, and SQLite's shared-memory index gone
  // with the machine's reboot (it is rebuilt from the WAL on open, which needs room).
  rmSync(join(data, "store.reserve"), { force: true });
  rmSync(join(data, "agent.db-shm"), { force: true });
  fs.fill("other-program");
  expect(fs.free()).toBe(0);
  const from = agent.proc.lines.length;
  agent.proc.start();
  await agent.proc.waitForLine(/the local store cannot open: its disk is full/, 20_000, from);
  await Bun.sleep(3000);
  expect(agent.proc.running).toBe(true);
  rmSync(join(fs.path, "other-program"));
  await agent.proc.waitForLine(/local API listening/, 20_000, from);
  await waitFor(async () => (await status(agent)).samples.produced > before, { what: "sampling to resume" });
}, 90_000);
