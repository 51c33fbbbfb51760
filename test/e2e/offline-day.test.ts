// End to end: a day without a hub, on an injected clock. The agent samples every second, its rules fire
// and clear and pause and resume real tasks, it restarts once, its buffer stays inside its budget by
// downsampling; then the hub comes back and the whole backlog arrives, counted to the sample.
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Agent } from "../../agent/agent.ts";
import { type AgentConfig, loadAgentConfig } from "../../agent/config/index.ts";
import { createLogger } from "../../shared/log.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { freePort } from "../support/ports.ts";
import { startHub, tempDir } from "../support/processes.ts";
import type { NodeJson } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";

const MIN = 60_000;
const DAY_MIN = 24 * 60;
const BUDGET = 256 * 1024;
// The sensor runs hot for half an hour every three hours, from minute 60: eight episodes in the day.
const hot = (minute: number) => minute % 180 >= 60 && minute % 180 < 90;
const RESTART_AT = 795; // inside the fifth episode, while its rule is firing

const RULES = [
  {
    name: "hot",
    when: "sensor.temp > 80",
    for: "2m",
    clear_when: "sensor.temp < 60",
    clear_for: "2m",
    severity: "warning",
    actions: [{ alert: "sensor over 80" }, { pause_tasks_below: 5 }],
    clear_actions: [{ resume_tasks: true }],
  },
  {
    name: "long-offline",
    when: "state.offline_s > 3600",
    clear_when: "state.connected == 1",
    severity: "info",
    actions: [{ alert: "offline for over an hour" }],
  },
  {
    // Fires after the restart only if the time offline counts on from before it.
    name: "offline-14h",
    when: "state.offline_s > 50400",
    clear_when: "state.connected == 1",
    severity: "info",
    actions: [{ alert: "offline for 14 hours" }],
  },
];

interface Decision {
  rule: string;
  kind: string;
  at: number;
}

test("a day offline on an injected clock: rules fire and clear, tasks pause and resume, a restart resumes from disk, the buffer downsamples within its budget, and the backlog then reaches the hub exactly once", async () => {
  using dir = tempDir();
  const port = freePort();
  await using hub = await startHub({ data: join(dir.path, "hub"), port });
  const configPath = join(dir.path, "agent.yaml");
  writeFileSync(
    configPath,
    [
      "node_id: day",
      `data: ${join(dir.path, "agent")}`,
      `hub: [${hub.wsUrl}]`,
      `join_token: ${hub.joinToken}`,
      `api: 127.0.0.1:${freePort()}`,
      "sample_interval: 1s",
      "batch_interval: 20s",
      "heartbeat_interval: 1s",
      `buffer_bytes: ${BUDGET}`,
      `rules: ${JSON.stringify(RULES)}`,
      "",
    ].join("\n"),
  );
  const loaded = loadAgentConfig(["--config", configPath], {});
  if (loaded.action !== "run") throw new Error("config did not load");
  const config: AgentConfig = loaded.config;
  const lines: string[] = [];
  const log = createLogger("agent", { write: (l) => lines.push(l) });
  // Agent time starts a day and ten minutes back, so that after the day it is close to the hub's.
  const clock = new FakeClock(Math.floor((Date.now() - 86_400_000 - 10 * MIN) / 1000) * 1000);

  // Runs agent time alongside real time (2.5× faster) until `done` holds: for the parts with real I/O.
  const lockstep = async <T>(done: () => T | Promise<T>, what: string, limitMs = 30_000): Promise<T> => {
    const until = Date.now() + limitMs;
    while (Date.now() < until) {
      const v = await done();
      if (v) return v;
      await clock.advance(50);
      await Bun.sleep(20);
    }
    throw new Error(`never happened: ${what}`);
  };
  const during = async <T>(p: Promise<T>): Promise<T> => {
    let settled = false;
    const r = p.finally(() => {
      settled = true;
    });
    await lockstep(() => settled, "the agent to start or stop");
    return r;
  };

  let agent = new Agent(config, log, { clock });
  await during(agent.start());
  const api = () => agent.apiUrl!;
  // Supervised tasks outlive their agent by design; this test ends them.
  const pids = new Set<number>();
  try {
    // Connected: two workloads land on the node, one below the rule's priority threshold.
    for (const [name, priority] of [
      ["low", 3],
      ["high", 8],
    ] as const) {
      const r = await hub.api(`/api/v1/workloads`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          name,
          driver: "exec",
          command: "/bin/sleep",
          args: ["3600"],
          priority,
          nodes: ["day"],
        }),
      });
      expect(r.status).toBe(201);
    }
    const task = (name: string) => agent.tasks().find((t) => t.workload === name);
    await lockstep(
      () => task("low")?.status === "running" && task("high")?.status === "running",
      "both tasks to run",
    );
    for (const t of agent.tasks()) if (t.pid) pids.add(t.pid);
    const put = await fetch(`${api()}/v1/cache/site.threshold?ttl_ms=${2 * 86_400_000}`, {
      method: "PUT",
      body: "81",
    });
    expect(put.status).toBeLessThan(300);

    // The hub goes away for a day.
    await hub.proc.kill("SIGKILL");
    const offlineFrom = clock.now();
    let pauses = 0;
    let resumes = 0;
    let wasPaused = false;
    let maxBytes = 0;
    let restarted: { produced: number } | undefined;
    for (let minute = 0; minute < DAY_MIN; minute++) {
      const value = hot(minute) ? 90 : 20;
      const r = await fetch(`${api()}/v1/ingest`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ points: [{ series: "sensor.temp", value }] }),
      });
      expect(r.status).toBe(202);
      await clock.advance(MIN);
      const paused = task("low")?.paused === true;
      if (paused && !wasPaused) pauses += 1;
      if (!paused && wasPaused) resumes += 1;
      wasPaused = paused;
      expect(task("high")?.paused).toBe(false);
      maxBytes = Math.max(maxBytes, agent.status().outbox.bytes);

      if (minute === RESTART_AT) {
        // The agent restarts while offline, in the middle of a firing rule.
        expect(paused).toBe(true);
        const before = {
          decisions: agent.decisions(1000),
          produced: agent.status().samples.produced,
        };
        await during(agent.stop());
        agent = new Agent(config, log, { clock });
        await during(agent.start());
        restarted = before;
        const after = agent.status();
        expect(after.connected).toBe(false);
        // Buffer: every sample produced before is still held or counted, and sampling goes on.
        expect(after.samples.produced).toBeGreaterThanOrEqual(before.produced);
        // Rules: resumed from disk, still firing: no new decision, and the task stays paused.
        expect(lines.some((l) => l.includes("rules resumed from the local store"))).toBe(true);
        expect(agent.decisions(1000).map((d) => d.id)).toEqual(before.decisions.map((d) => d.id));
        expect(task("low")?.paused).toBe(true);
        // Cache: the entry written before is served again.
        const got = await fetch(`${api()}/v1/cache/site.threshold`);
        expect(got.status).toBe(200);
        expect(await got.text()).toBe("81");
      }
    }
    expect(restarted).toBeDefined();
    const offline = agent.status();
    const decisions = agent.decisions(1000) as Decision[];
    const hotFires = decisions.filter((d) => d.rule === "hot" && d.kind === "fire");
    const hotClears = decisions.filter((d) => d.rule === "hot" && d.kind === "clear");
    expect(hotFires.length).toBe(8);
    expect(hotClears.length).toBe(8);
    expect(decisions.filter((d) => d.rule === "long-offline" && d.kind === "fire").length).toBe(1);
    const fourteen = decisions.filter((d) => d.rule === "offline-14h" && d.kind === "fire");
    expect(fourteen.length).toBe(1);
    expect(fourteen[0]!.at - offlineFrom).toBeGreaterThan(14 * 60 * MIN - 2 * MIN);
    expect(fourteen[0]!.at - offlineFrom).toBeLessThan(14 * 60 * MIN + 2 * MIN);
    expect(pauses).toBe(8);
    expect(resumes).toBe(8);
    // A buffer that never left its budget (one batch of slack).
    expect(maxBytes).toBeLessThanOrEqual(BUDGET + 64 * 1024);
    expect(offline.samples.downsampled).toBeGreaterThan(0);
    console.log(
      `offline day: produced ${offline.samples.produced}, downsampled ${offline.samples.downsampled}, dropped ${offline.samples.dropped}, outbox ${offline.outbox.bytes} B in ${offline.outbox.pending} messages`,
    );

    // The hub comes back; time runs for real from here.
    clock.goLive();
    const t0 = performance.now();
    await hub.restart();
    const drained = await waitFor(
      () => {
        const s = agent.status();
        return s.connected && s.outbox.pending <= 1 ? s : undefined;
      },
      { timeoutMs: 60_000, what: "the backlog to drain" },
    );
    const catchUpMs = performance.now() - t0;
    // Heartbeats were answered promptly all through the catch-up.
    const rttMax = (drained.link as { rtt_max_ms: number | null }).rtt_max_ms;
    expect(rttMax).not.toBeNull();
    expect(rttMax!).toBeLessThanOrEqual(1000);
    console.log(
      `catch-up: ${catchUpMs.toFixed(0)} ms including the hub's start; heartbeat RTT max ${rttMax} ms`,
    );

    // Quiesce (sampling every hour), then count: produced - dropped = stored, rollups included.
    agent.applyConfig({ ...config, sample_interval: 3_600_000 }, ["sample_interval"], []);
    const final = await waitFor(
      () => {
        const s = agent.status();
        return s.connected && s.outbox.pending === 0 && s.samples.staged_ticks === 0 ? s : undefined;
      },
      { timeoutMs: 30_000, what: "the agent to settle" },
    );
    const node = await waitFor(
      async () => {
        const r = await hub.api<NodeJson>("/api/v1/nodes/day");
        return r.body.ingest.samples === final.samples.produced - final.samples.dropped ? r.body : undefined;
      },
      { timeoutMs: 10_000, what: "the hub to hold every sample" },
    ).catch(async () => (await hub.api<NodeJson>("/api/v1/nodes/day")).body);
    expect(node.ingest.samples).toBe(final.samples.produced - final.samples.dropped);
    expect(node.ingest.rolled_up).toBeGreaterThan(0);
    if (final.samples.dropped === 0) expect(node.ingest.rolled_up).toBe(final.samples.downsampled);

    // A day of 1 s ticks reached the hub: fine seconds, and minutes that stand for the seconds they folded.
    const day = await hub.api<{
      points: [number, number][];
      rollups: [number, number, number, number, number][];
    }>(
      `/api/v1/nodes/day/metrics?series=mem.used_pct&from=${clock.now() - 2 * 86_400_000}&to=${clock.now()}`,
    );
    const minutes = new Set(day.body.rollups.map((m) => m[0]));
    const seconds =
      day.body.rollups.reduce((a, m) => a + m[4], 0) +
      day.body.points.filter((p) => !minutes.has(p[0])).length;
    // Less the few seconds the restart took.
    expect(seconds).toBeGreaterThan(86_400 - 120);
    expect(seconds).toBeLessThanOrEqual(86_400 + 700);

    // Every decision reached the hub once and was checked; the alerts are listed there.
    const checked = await waitFor(
      async () => {
        const r = await hub.api<{ decisions: { rule: string; verdict: string }[] }>(
          "/api/v1/nodes/day/decisions",
        );
        return r.body.decisions.length >= decisions.length ? r.body.decisions : undefined;
      },
      { what: "the decisions at the hub" },
    );
    const all = agent.decisions(1000) as Decision[];
    expect(checked.length).toBe(all.length);
    expect(checked.every((d) => ["agree", "disagree", "unknown"].includes(d.verdict))).toBe(true);
    const alerts = await hub.api<{ alerts: { node: string; message: string }[] }>(
      "/api/v1/alerts?limit=1000",
    );
    expect(alerts.body.alerts.filter((a) => a.node === "day" && a.message === "sensor over 80").length).toBe(
      8,
    );
    // Back online, the long-offline rule clears.
    expect(all.some((d) => d.rule === "long-offline" && d.kind === "clear")).toBe(true);
  } finally {
    await agent.stop();
    for (const pid of pids) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {}
    }
  }
}, 240_000);
