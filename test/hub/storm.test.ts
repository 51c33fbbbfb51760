// Specification of the hub under a reconnect storm: gradual admission, heartbeats ahead of bulk, jittered timeouts.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { AgentStore } from "../../agent/store/index.ts";
import { SimAgent } from "../../bench/_sim-agent.ts";
import { AdmissionGate, looksLikeMetricsBatch } from "../../hub/gateway/index.ts";
import { Registry, type StatusPolicy } from "../../hub/registry/index.ts";
import { Link } from "../../shared/link/index.ts";
import { createLogger } from "../../shared/log.ts";
import {
  encodeCbor,
  encodeFrame,
  encodeFrameRawBody,
  envelope,
  PROTOCOL_VERSION,
} from "../../shared/protocol/index.ts";
import { encodeMetrics } from "../../shared/protocol/metrics-codec.ts";
import { HubBusyError } from "../../shared/secure/index.ts";
import { FakeClock, settle } from "../support/fake-clock.ts";
import { FakeHub } from "../support/fake-hub.ts";
import { admitDirect, helloBody, joinNode, openHubCore } from "../support/hub-core.ts";
import { openTestStore } from "../support/hub-store.ts";
import { startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const quiet = createLogger("test", { write: () => {} });

function batchBody(seq: number) {
  const enc = encodeMetrics({
    start: 1000 * seq,
    interval: 1000,
    ticks: 10,
    series: [{ name: "cpu.util", values: Array.from({ length: 10 }, (_, i) => seq + i) }],
  });
  return { start: 1000 * seq, interval: 1000, ticks: 10, ...enc };
}

/** Counter or gauge total from Prometheus text (all label sets summed). */
function metric(text: string, name: string, labels = ""): number {
  let total = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)$`, "gm"))) {
    if (!labels || (m[1] ?? "").includes(labels)) total += Number(m[2]);
  }
  return total;
}

describe("storm: admission", () => {
  test("a burst beyond the rate is told to come back at times spread over the backlog, and every one gets in at the rate", () => {
    let now = 0;
    let seed = 1;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const gate = new AdmissionGate({
      perSecond: 20,
      burst: 10,
      maxRetryAfterMs: 60_000,
      now: () => now,
      random,
    });
    // 200 agents at once; each refused one comes back when it was told to.
    let due: { at: number; id: number }[] = Array.from({ length: 200 }, (_, id) => ({ at: 0, id }));
    const admittedAt = new Map<number, number>();
    const waits: number[] = [];
    while (due.length > 0 && now < 120_000) {
      const ready = due.filter((d) => d.at <= now);
      due = due.filter((d) => d.at > now);
      for (const d of ready) {
        const v = gate.take();
        if (v.ok) admittedAt.set(d.id, now);
        else {
          waits.push(v.retryAfterMs);
          due.push({ at: now + v.retryAfterMs, id: d.id });
        }
      }
      now += 10;
    }
    expect(admittedAt.size).toBe(200);
    // Gradual: the first second lets in the burst plus one second's rate, no more.
    const perSecond = new Map<number, number>();
    for (const at of admittedAt.values())
      perSecond.set(Math.floor(at / 1000), (perSecond.get(Math.floor(at / 1000)) ?? 0) + 1);
    for (const n of perSecond.values()) expect(n).toBeLessThanOrEqual(10 + 20);
    // Spread: the waits handed out cover the backlog (about 190 / 20 per s), not one instant.
    expect(Math.max(...waits)).toBeGreaterThan(5_000);
    expect(Math.min(...waits)).toBeLessThan(1_000);
    // And it took about as long as the rate says, not far longer (no one starved behind the others).
    expect(Math.max(...admittedAt.values())).toBeLessThan(40_000);
  });

  test("the agent's link waits at least the time a busy hub names before it tries again", async () => {
    using dir = tempDir();
    const store = new AgentStore(dir.path, { bufferBytes: 1 << 20 });
    const clock = new FakeClock();
    const hub = new FakeHub(clock);
    let busyAnswers = 2;
    const link = new Link({
      endpoints: ["ws://hub.test:8091"],
      nodeId: "edge-1",
      outbox: store.outbox,
      hello: () => helloBody("edge-1"),
      transports: (url, o) => {
        const t = hub.transportFactory(url, o);
        if (busyAnswers > 0) {
          busyAnswers -= 1;
          // The session layer's answer to a handshake the hub's admission gate refused.
          t.connect = () => {
            hub.connects.push(url);
            return Promise.reject(new HubBusyError("hub refused the handshake: busy", 5_000));
          };
        }
        return t;
      },
      log: quiet,
      clock,
      heartbeatMs: 1000,
      maxFrameBytes: 1 << 20,
      reconnectBaseMs: 100,
      reconnectCapMs: 400,
    });
    try {
      link.start();
      await settle();
      expect(hub.connects.length).toBe(1);
      // Its own back-off alone would have retried within 400 ms; the hub asked for 5 s.
      for (let t = 0; t < 4_900; t += 100) await clock.advance(100);
      expect(hub.connects.length).toBe(1);
      for (let i = 0; i < 10 && hub.connects.length < 2; i++) await clock.advance(100);
      expect(hub.connects.length).toBe(2);
      for (let t = 0; t < 4_900; t += 100) await clock.advance(100);
      expect(hub.connects.length).toBe(2);
      for (let i = 0; i < 20 && !link.status().connected; i++) await clock.advance(100);
      expect(link.status().connected).toBe(true);
      expect(hub.connects.length).toBe(3);
    } finally {
      await link.stop();
      store.close();
    }
  });

  test("a burst of agents reconnecting to a restarted hub is admitted gradually, with busy answers, and all get in; none is down", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub"), args: ["--admit-rate", "20"] });
    const url = `${hub.wsUrl}/v1/agent`;
    const sims = Array.from(
      { length: 60 },
      (_, i) => new SimAgent(`storm-${i}`, [], { window: 8, heartbeatMs: 1000, resume: true }),
    );
    // First contact: all at once; the gate lets in its burst (10) and asks the rest to wait.
    await Promise.all(sims.map((s) => s.connectRetrying(url, hub.joinToken, 60_000)));
    const first = sims.reduce((n, s) => n + s.busy, 0);
    expect(first).toBeGreaterThan(0);
    for (const s of sims) s.close();

    await hub.restart();
    for (const s of sims) s.busy = 0;
    await Promise.all(sims.map((s) => s.connectRetrying(url, hub.joinToken, 60_000)));
    for (const s of sims) s.idle();
    const told = sims.filter((s) => s.busy > 0);
    // Gradual: well over half were told to come back, each with a time to wait.
    expect(told.length).toBeGreaterThan(30);
    for (const s of told) expect(s.busyWaits.every((w) => w > 0)).toBe(true);
    const text = await (await fetch(`${hub.url}/metrics`)).text();
    expect(metric(text, "novacron_hub_frames_unauthenticated_total", 'reason="busy"')).toBeGreaterThanOrEqual(
      sims.reduce((n, s) => n + s.busy, 0),
    );
    // Every one got in (a welcome each), and the hub holds each node once, none down.
    const nodes = await waitFor(
      async () => {
        const r = await hub.api<{ nodes: { id: string; status: string; connected: boolean }[] }>(
          "/api/v1/nodes",
        );
        const list = r.body.nodes.filter((n) => n.id.startsWith("storm-"));
        return list.length === 60 && list.every((n) => n.connected) ? list : undefined;
      },
      { what: "all 60 nodes connected" },
    );
    expect(nodes.filter((n) => n.status === "down")).toEqual([]);
    for (const s of sims) s.close();
  }, 120_000);
});

describe("storm: heartbeats ahead of bulk", () => {
  test("a heartbeat that arrives behind 3,000 batches is answered before any of them is processed, and every batch is stored once", async () => {
    using dir = tempDir();
    using core = await openHubCore(dir.path);
    const { gateway, registry, metrics } = core;
    const bulk = await joinNode(core, "bulk-1");
    const live = await joinNode(core, "live-1");
    expect(bulk.received[0]?.t).toBe("welcome");
    expect(live.received[0]?.t).toBe("welcome");
    bulk.received.length = 0;
    live.received.length = 0;
    // All of it arrives in one read of the sockets, as in a catch-up storm.
    for (let q = 1; q <= 3000; q++) {
      gateway.onFrame(bulk.peer, encodeFrame(envelope("metrics_batch", "bulk-1", batchBody(q), { q })));
    }
    gateway.onFrame(live.peer, encodeFrame(envelope("heartbeat", "live-1", { pending: 0 }, { ts: 42 })));
    // The heartbeat was answered at once, and nothing of the bulk was processed before it.
    const beatAck = live.received.find((m) => m.t === "ack");
    expect(beatAck?.t === "ack" && beatAck.b.echo).toBe(42);
    expect(bulk.received.filter((m) => m.t === "ack")).toEqual([]);
    // Read before anything awaits the store (the lane takes its slices meanwhile).
    expect(gateway.bulkQueued).toBe(3000);
    expect((await registry.fresh("bulk-1"))?.batches).toBe(0);
    expect(metrics.value("novacron_hub_heartbeats_ahead_of_bulk_total")).toBe(1);
    // Then the bulk lane works through it in slices: all stored once, in order, acked to the end.
    await waitFor(() => bulk.received.some((m) => m.t === "ack" && m.b.upto === 3000), {
      what: "an ack up to 3000",
    });
    expect(await registry.fresh("bulk-1")).toMatchObject({
      batches: 3000,
      last_seq: 3000,
      duplicates: 0,
      gaps: 0,
    });
    expect(gateway.bulkQueued).toBe(0);
  });

  test("a node's other reliable messages queue behind its batches, so its sequence stays in order", async () => {
    using dir = tempDir();
    using core = await openHubCore(dir.path);
    const { gateway, registry } = core;
    const n = await joinNode(core, "n1");
    for (let q = 1; q <= 5; q++)
      gateway.onFrame(n.peer, encodeFrame(envelope("metrics_batch", "n1", batchBody(q), { q })));
    gateway.onFrame(
      n.peer,
      encodeFrame(envelope("event", "n1", { kind: "test", at: 1, message: "after five batches" }, { q: 6 })),
    );
    expect(gateway.bulkQueued).toBe(6);
    await waitFor(() => n.received.some((m) => m.t === "ack" && m.b.upto === 6), { what: "an ack up to 6" });
    expect(await registry.fresh("n1")).toMatchObject({ last_seq: 6, batches: 5, gaps: 0 });
  });

  test("under a real catch-up flood a live agent's heartbeats are all answered while batches wait, and every batch is stored once", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub") });
    const url = `${hub.wsUrl}/v1/agent`;
    const bodies = Array.from({ length: 1500 }, (_, i) => encodeCbor(batchBody(i + 1)));
    const bulk = Array.from(
      { length: 20 },
      (_, i) => new SimAgent(`bulk-${i}`, bodies, { window: 64, heartbeatMs: 0 }),
    );
    const live = new SimAgent("live-0", [], { window: 1, heartbeatMs: 100, keepBeating: true });
    await Promise.all([...bulk, live].map((s) => s.connectRetrying(url, hub.joinToken)));
    live.idle();
    await Promise.all(bulk.map((s) => s.run()));
    await waitFor(() => live.beatAcks >= 5, { what: "five answered heartbeats" });
    live.silence();
    await waitFor(() => live.beatAcks === live.beats, { what: "every heartbeat answered" });
    const text = await (await fetch(`${hub.url}/metrics`)).text();
    expect(metric(text, "novacron_hub_heartbeats_ahead_of_bulk_total")).toBeGreaterThan(0);
    expect(metric(text, "novacron_hub_bulk_queued_peak")).toBeGreaterThan(0);
    for (const s of bulk) {
      const r = await hub.api<{ ingest: { batches: number; last_seq: number; duplicates: number } }>(
        `/api/v1/nodes/${s.node}`,
      );
      expect(r.body.ingest).toMatchObject({ batches: 1500, last_seq: 1500 });
    }
    for (const s of [...bulk, live]) s.close();
  }, 120_000);
});

describe("storm: detection timing at scale", () => {
  const POLICY: StatusPolicy = {
    suspectAfterMs: 25_000,
    downAfterMs: 60_000,
    restartGraceMs: 30_000,
    keyLifetimeMs: 30 * 86_400_000,
    jitter: 0.1,
  };

  test("after a hub restart, 1,000 silent nodes stay suspect through the grace period and then go down spread over the jitter, never all at once", async () => {
    using dir = tempDir();
    const T0 = 1_700_000_000_000;
    {
      const store = await openTestStore(dir.path);
      const registry = new Registry(store.sql, POLICY, () => T0);
      for (let i = 0; i < 1000; i++) {
        const r = await admitDirect(registry, helloBody(`site-a-node-${i}`));
        expect(r.ok).toBe(true);
      }
      await store.close();
    }
    // The hub comes back an hour later (on the same store) and hears from nobody.
    const restart = T0 + 3_600_000;
    let now = restart;
    const store = await openTestStore(dir.path);
    try {
      const registry = new Registry(store.sql, POLICY, () => now);
      await registry.load();
      const nodes = registry.list();
      expect(nodes.length).toBe(1000);
      const downAt = new Map<string, number>();
      for (let t = 0; t <= 70_000; t += 250) {
        now = restart + t;
        for (const n of nodes) {
          const s = registry.status(n);
          if (t < POLICY.downAfterMs) expect(s).toBe("suspect");
          if (s === "down" && !downAt.has(n.id)) downAt.set(n.id, t);
        }
      }
      expect(downAt.size).toBe(1000);
      const times = [...downAt.values()];
      // Spread over [downAfter, 1.1 × downAfter]: no second holds more than a quarter of the fleet.
      expect(Math.min(...times)).toBeGreaterThanOrEqual(POLICY.downAfterMs);
      expect(Math.max(...times)).toBeLessThanOrEqual(POLICY.downAfterMs * 1.1 + 250);
      const perSecond = new Map<number, number>();
      for (const t of times)
        perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
      expect(Math.max(...perSecond.values())).toBeLessThan(250);
      expect(perSecond.size).toBeGreaterThanOrEqual(6);
    } finally {
      await store.close();
    }
  });
});

describe("storm: in-flight budget", () => {
  test("each welcome names the session's share of the hub-wide in-flight budget: the agent's 64 for a small fleet, 8 each for 1,000 nodes", async () => {
    using dir = tempDir();
    using core = await openHubCore(dir.path);
    const first = await joinNode(core, "edge-0");
    const w0 = first.received.find((m) => m.t === "welcome");
    expect(w0?.t === "welcome" && w0.b.window).toBe(64);
    for (let i = 1; i < 1000; i++) await admitDirect(core.registry, helloBody(`edge-${i}`));
    const later = await joinNode(core, "edge-new");
    const w1 = later.received.find((m) => m.t === "welcome");
    expect(w1?.t === "welcome" && w1.b.window).toBe(8);
  });

  test("the link keeps no more messages unacked than the window the hub's welcome names", async () => {
    using dir = tempDir();
    const store = new AgentStore(dir.path, { bufferBytes: 1 << 20 });
    const clock = new FakeClock();
    const hub = new FakeHub(clock);
    hub.answerHello = false;
    hub.acking = false;
    const link = new Link({
      endpoints: ["ws://hub.test:8091"],
      nodeId: "edge-1",
      outbox: store.outbox,
      hello: () => helloBody("edge-1"),
      transports: hub.transportFactory,
      log: quiet,
      clock,
      heartbeatMs: 1000,
      maxFrameBytes: 1 << 20,
      window: 64,
    });
    try {
      for (let i = 0; i < 20; i++)
        store.outbox.append("event", encodeCbor({ kind: "t", at: i, message: `m${i}` }), 0, clock.now());
      link.start();
      await settle();
      hub.say("welcome", {
        hub_id: hub.id,
        server_time: clock.now(),
        last_acked: 0,
        config_rev: 0,
        heartbeat_ms: 1000,
        window: 3,
      });
      await settle();
      expect(hub.seqsReceived()).toEqual([1, 2, 3]);
      hub.say("ack", { upto: 2 });
      await settle();
      expect(hub.seqsReceived()).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await link.stop();
      store.close();
    }
  });

  test("a metrics batch is recognised by its first bytes, as the link and as envelope() encode it; nothing else is", () => {
    const body = encodeCbor(batchBody(1));
    const head = { v: PROTOCOL_VERSION, t: "metrics_batch" as const, s: "n1", q: 1, base: 1, ts: 5 };
    expect(looksLikeMetricsBatch(encodeFrameRawBody(head, body))).toBe(true);
    expect(looksLikeMetricsBatch(encodeFrame(envelope("metrics_batch", "n1", batchBody(1), { q: 1 })))).toBe(
      true,
    );
    expect(looksLikeMetricsBatch(encodeFrame(envelope("heartbeat", "n1", { pending: 0 })))).toBe(false);
    expect(
      looksLikeMetricsBatch(
        encodeFrame(envelope("event", "n1", { kind: "metrics_batch", at: 1, message: "x" }, { q: 1 })),
      ),
    ).toBe(false);
    expect(looksLikeMetricsBatch(new Uint8Array(40))).toBe(false);
  });
});
