// Attacks through an anonymous broker against a real hub and real agents: forged, spoofed and replayed
// frames, a stolen join token, forged presence, a topic flood, and a passive listener. All refused.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MqttClient } from "../../shared/mqtt/index.ts";
import { encodeCbor, encodeFrame, envelope } from "../../shared/protocol/index.ts";
import { encodeMetrics } from "../../shared/protocol/metrics-codec.ts";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { expectNothingLost, type NodeJson, quiesce, writeAgentConfig } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";
import { describeOnPostgres } from "../support/postgres.ts";

const BASE = { sample_interval: "1s", batch_interval: "1s", heartbeat_interval: "1s" };

/** A Prometheus sample of `text` by family and one label, 0 when absent. */
function sample(text: string, family: string, label: string, value: string): number {
  const m = new RegExp(`${family}\\{${label}="${value}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}
const hubCount = async (hub: HubHandle, reason: string) =>
  sample(
    await (await fetch(`${hub.url}/metrics`)).text(),
    "novacron_hub_frames_unauthenticated_total",
    "reason",
    reason,
  );
const agentCount = async (agent: AgentHandle, reason: string) =>
  sample(
    await (await fetch(`${agent.apiUrl}/metrics`)).text(),
    "novacron_agent_frames_refused_total",
    "reason",
    reason,
  );

const tasks = async (agent: AgentHandle) =>
  ((await (await fetch(`${agent.apiUrl}/v1/tasks`)).json()) as { tasks: unknown[] }).tasks;

/** Pins a `sleep 300` workload named svc to the victim; returns the API's status. */
const placeSleeper = async (hub: HubHandle, env: Record<string, string> = {}) =>
  (
    await hub.api("/api/v1/workloads", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: "svc",
        driver: "exec",
        command: "sleep",
        args: ["300"],
        env,
        nodes: ["victim"],
      }),
    })
  ).status;

/** Everything published on the broker, as an anonymous subscriber to novacron/# sees it. */
async function listen(url: string) {
  const client = await MqttClient.connect(url, { clientId: `listener-${Math.random()}` });
  const seen: { topic: string; payload: Uint8Array; retain: boolean }[] = [];
  client.onMessage((m) =>
    seen.push({ topic: m.topic, payload: new Uint8Array(m.payload), retain: m.retain }),
  );
  await client.subscribe([{ topic: "novacron/#", qos: 1 }]);
  return { client, seen };
}

const contains = (hay: Uint8Array, needle: Uint8Array) => Buffer.from(hay).includes(Buffer.from(needle));

/** A private anonymous broker, a hub on it and one MQTT agent "victim"; a listener first when asked. */
async function scene(dir: string, opts: { listen?: boolean } = {}) {
  const broker = await startMosquitto(dir);
  const hub = await startHub({ data: join(dir, "hub"), mqtt: broker.url });
  // Subscribed before the agent joins, so it records the handshake too.
  const listener = opts.listen ? await listen(broker.url) : undefined;
  const config = join(dir, "victim.yaml");
  writeAgentConfig(config, { ...BASE, labels: { site: "lab" } });
  const agent = await startAgent({
    data: join(dir, "victim"),
    nodeId: "victim",
    hub: broker.url,
    joinToken: hub.joinToken,
    args: ["--config", config],
  });
  await waitFor(async () => (await agent.status()).connected, { what: "victim connected" });
  return {
    broker,
    hub,
    agent,
    config,
    listener,
    async [Symbol.asyncDispose]() {
      await listener?.client.end().catch(() => {});
      await agent[Symbol.asyncDispose]();
      await hub[Symbol.asyncDispose]();
      await broker[Symbol.asyncDispose]();
    },
  };
}

describe.skipIf(mosquittoBinary() === undefined)("attacks through an anonymous broker", () => {
  test("forged, retained and replayed downlink frames (allocs running a command, ack, config, command) are refused and counted; the agent runs nothing and loses nothing", async () => {
    using dir = tempDir();
    await using s = await scene(dir.path, { listen: true });
    const { broker, hub, agent, config } = s;
    const listener = s.listener!;
    await waitFor(
      () => listener.seen.filter((m) => m.topic.startsWith("novacron/v1/down/victim/ack")).length >= 5,
      {
        what: "real acks on the downlink",
      },
    );
    // A workload the hub placed: the forgeries must leave it running, same process, no restart.
    expect(await placeSleeper(hub)).toBe(201);
    const running = await waitFor(
      async () => {
        const t = (await tasks(agent)) as { pid?: number; status: string; restarts: number }[];
        return t.length === 1 && t[0]!.status === "running" && t[0]!.pid ? t[0]! : undefined;
      },
      { what: "the real workload running" },
    );
    const marker = join(dir.path, "pwned");
    const evil = {
      id: "evil-1",
      workload: "evil",
      version: 1,
      spec: {
        name: "evil",
        driver: "job",
        command: "touch",
        args: [marker],
        env: {},
        replicas: 1,
        restart: "never",
        priority: 10,
        resources: {},
      },
    };
    const forger = await MqttClient.connect(broker.url, { clientId: "forger" });
    const down = (type: string) => `novacron/v1/down/victim/${type}`;
    // As protocol 1 frames (plain CBOR), as sealed-looking frames with fresh counters, and retained.
    const plain = {
      allocs: encodeFrame(envelope("allocs", "hub", { generation: 2 ** 40, allocs: [evil as never] })),
      ack: encodeFrame(envelope("ack", "hub", { upto: 1_000_000_000 })),
      config: encodeFrame(envelope("config", "hub", { rev: 99, config: { sample_interval: "1h" } })),
      command: encodeFrame(
        envelope("command", "hub", {
          id: "x",
          kind: "cache_put",
          args: { key: "k", value: "v", version: 9 },
        }),
      ),
    };
    for (const [type, frame] of Object.entries(plain)) {
      await forger.publish(down(type), frame, { qos: 1 });
      const sealedLooking = new Uint8Array([
        0x24,
        0,
        0,
        0x10,
        0,
        0,
        0,
        0,
        1,
        ...frame,
        ...new Uint8Array(16),
      ]);
      await forger.publish(down(type), sealedLooking, { qos: 1 });
      await forger.publish(down(type), sealedLooking, { qos: 1, retain: true });
    }
    // Replays of the hub's own sealed acks, captured a moment ago.
    for (const m of listener.seen.filter((x) => x.topic === down("ack")).slice(0, 5)) {
      await forger.publish(m.topic, m.payload, { qos: 1 });
    }
    let counts: number[] = [];
    await waitFor(
      async () => {
        counts = [
          await agentCount(agent, "unexpected"),
          await agentCount(agent, "forged"),
          await agentCount(agent, "replayed"),
        ];
        return counts[0]! >= 4 && counts[1]! >= 4 && counts[2]! >= 5;
      },
      { what: "the agent to refuse and count the forged and replayed frames" },
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; unexpected, forged, replayed = ${counts.join(", ")}`);
    });
    expect(existsSync(marker)).toBe(false);
    expect(await tasks(agent)).toMatchObject([
      { workload: "svc", status: "running", pid: running.pid, restarts: 0 },
    ]);
    // Retained messages never even reach the session layer: the agent's fresh subscription sees them only on reconnect.
    await agent.restart();
    await waitFor(async () => (await agent.status()).connected, { what: "victim reconnected" });
    await Bun.sleep(1000);
    expect(existsSync(marker)).toBe(false);
    expect(await tasks(agent)).toMatchObject([{ workload: "svc", status: "running", pid: running.pid }]);
    const status = await agent.status();
    expect(status.config.sample_interval_ms).toBe(1000);
    await forger.end();
    expectNothingLost(await quiesce(agent, hub, config, BASE));
  }, 90_000);

  test("a spoofed uplink batch at last_seq+1 is refused; the real batch with that number is stored and nothing is dropped", async () => {
    using dir = tempDir();
    await using s = await scene(dir.path);
    const { broker, hub, agent, config } = s;
    await waitFor(async () => (await hub.api<NodeJson>("/api/v1/nodes/victim")).body.ingest?.last_seq >= 2, {
      what: "some batches stored",
    });
    const forger = await MqttClient.connect(broker.url, { clientId: "spoofer" });
    for (let i = 0; i < 5; i++) {
      const last = (await hub.api<NodeJson>("/api/v1/nodes/victim")).body.ingest.last_seq;
      const enc = encodeMetrics({
        start: Date.now(),
        interval: 1000,
        ticks: 1,
        series: [{ name: "cpu.util", values: [666] }],
      });
      const batch = encodeFrame(
        envelope(
          "metrics_batch",
          "victim",
          { start: Date.now(), interval: 1000, ticks: 1, ...enc },
          { q: last + 1 },
        ),
      );
      await forger.publish("novacron/v1/up/victim/metrics_batch", batch, { qos: 1 });
      await forger.publish(
        "novacron/v1/up/victim/metrics_batch",
        new Uint8Array([0x24, 0, 0, 0x20, 0, 0, 0, 0, i, ...batch, ...new Uint8Array(16)]),
        { qos: 1 },
      );
    }
    await forger.end();
    await waitFor(
      async () => (await hubCount(hub, "forged")) >= 5 && (await hubCount(hub, "protocol_1")) >= 5,
      {
        what: "the hub to refuse the spoofed batches",
      },
    );
    const r = await quiesce(agent, hub, config, BASE);
    expectNothingLost(r);
    expect(r.dropped).toBe(0);
    expect(r.node.ingest.duplicates).toBe(0);
    const points = await hub.api<{ points: [number, number][] }>(
      `/api/v1/nodes/victim/metrics?series=cpu.util&from=0&to=${Date.now() + 60_000}`,
    );
    expect(points.body.points.some(([, v]) => v === 666)).toBe(false);
  }, 90_000);

  test("a replayed handshake and hello start no session, and the join token cannot take over an existing node id", async () => {
    using dir = tempDir();
    await using s = await scene(dir.path, { listen: true });
    const { broker, hub, agent, config } = s;
    const listener = s.listener!;
    const up = listener.seen.filter((m) => m.topic.startsWith("novacron/v1/up/victim/"));
    expect(up.some((m) => m.topic.endsWith("/hs"))).toBe(true);
    const forger = await MqttClient.connect(broker.url, { clientId: "replayer" });
    const before = (await hub.api<{ version?: string }>("/api/v1/nodes/victim")).body;
    for (const m of up.slice(0, 6)) await forger.publish(m.topic, m.payload, { qos: 1 });
    await waitFor(
      async () => (await hubCount(hub, "handshake")) >= 1 && (await hubCount(hub, "replayed")) >= 1,
      {
        what: "the replayed handshake and frames refused",
      },
    );
    await forger.end();
    // A second machine with the join token claims the victim's id (its own, new key): refused.
    await using impostor = await startAgent({
      data: join(dir.path, "impostor"),
      nodeId: "victim",
      hub: broker.url,
      joinToken: hub.joinToken,
      args: ["--label", "site=elsewhere", "--level", "1"],
    });
    await waitFor(() => hub.proc.lines.some((l) => /registered with another key/.test(l)), {
      what: "the hub to refuse the impostor",
    });
    expect((await impostor.status()).connected).toBe(false);
    const after = (await hub.api<NodeJson & { level: number }>("/api/v1/nodes/victim")).body;
    expect(after.labels).toEqual({ site: "lab" });
    expect(after).toMatchObject({ connected: true });
    expect(after.level).toBe((before as { level?: number }).level ?? after.level);
    await impostor[Symbol.asyncDispose]();
    expectNothingLost(await quiesce(agent, hub, config, BASE));
  }, 90_000);

  test("a forged offline presence does not end a session; the real Last Will does, at once", async () => {
    using dir = tempDir();
    await using s = await scene(dir.path);
    const { broker, hub, agent } = s;
    const forger = await MqttClient.connect(broker.url, { clientId: "presence-forger" });
    for (const payload of ["offline", "offline:guess", "offline:"]) {
      await forger.publish("novacron/v1/presence/victim", payload, { qos: 1 });
    }
    await forger.publish("novacron/v1/presence/victim", "offline", { qos: 1, retain: true });
    await waitFor(async () => (await hubCount(hub, "forged_presence")) >= 3, {
      what: "forged presences counted",
    });
    await forger.end();
    expect((await hub.api<NodeJson>("/api/v1/nodes/victim")).body.connected).toBe(true);
    // kill -9: the broker publishes the agent's Last Will, which carries this session's secret.
    const killedAt = Date.now();
    await agent.proc.kill("SIGKILL");
    await waitFor(async () => !(await hub.api<NodeJson>("/api/v1/nodes/victim")).body.connected, {
      what: "the Last Will to end the session",
      timeoutMs: 60_000,
    });
    expect(Date.now() - killedAt).toBeLessThan(50_000); // the broker's keepalive (30 s x 1.5) bounds it
  }, 90_000);

  test("10,000 distinct topic names of garbage and handshakes keep hub memory within its bound; retained plants are refused; the real node still gets in", async () => {
    using dir = tempDir();
    await using s = await scene(dir.path);
    const { broker, hub, agent, config } = s;
    const rss = () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${hub.proc.pid}/status`, "utf8"));
      return Number(m![1]) * 1024;
    };
    const before = rss();
    const flooder = await MqttClient.connect(broker.url, { clientId: "flooder" });
    const v2 = encodeCbor({ v: 2 });
    for (let i = 0; i < 10_000; i++) {
      // Each with its own ephemeral key, as 10,000 joining nodes would send.
      const hello1 = new Uint8Array([0x21, ...crypto.getRandomValues(new Uint8Array(32)), ...v2]);
      void flooder.publish(`novacron/v1/up/flood-${i}/hs`, hello1, { qos: 0 });
      void flooder.publish(`novacron/v1/up/garbage-${i}/metrics_batch`, new Uint8Array([0xde, i & 0xff]), {
        qos: 0,
      });
    }
    await waitFor(async () => (await hubCount(hub, "unexpected")) >= 9_000, {
      what: "the hub to see the flood",
      timeoutMs: 60_000,
    });
    // Planted retained handshakes: the hub meets them on every resubscription and must not answer them.
    for (let i = 0; i < 20; i++) {
      const planted = new Uint8Array([0x21, ...crypto.getRandomValues(new Uint8Array(32)), ...v2]);
      await flooder.publish(`novacron/v1/up/planted-${i}/hs`, planted, { qos: 1, retain: true });
    }
    await flooder.end();
    const after = rss();
    // The stated bound: at most 1,024 handshakes pending and 1,024 sessions awaiting a hello, nothing per topic.
    expect(after - before).toBeLessThan(64 * 1024 * 1024);
    const gauge = async () =>
      Number(
        /novacron_hub_handshakes_pending (\d+)/.exec(await (await fetch(`${hub.url}/metrics`)).text())?.[1],
      );
    expect(await gauge()).toBeLessThanOrEqual(2048);
    const nodes = (await hub.api<{ nodes: unknown[] }>("/api/v1/nodes")).body.nodes;
    expect(nodes.length).toBe(1);
    // After the flood, and after a hub restart that resubscribes to the retained plants, the node comes back.
    await hub.restart();
    await waitFor(async () => (await hubCount(hub, "retained")) >= 20, {
      what: "the retained plants refused",
    });
    await waitFor(async () => (await agent.status()).connected, { what: "victim back after the flood" });
    expectNothingLost(await quiesce(agent, hub, config, BASE));
  }, 120_000);

  test("a passive listener on novacron/# through a join, a reconnect and traffic collects nothing that lets it join, impersonate or read", async () => {
    using dir = tempDir();
    await using s = await scene(dir.path, { listen: true });
    const { broker, hub, agent, config } = s;
    const listener = s.listener!;
    const secretEnv = "s3cr3t-workload-value";
    expect(await placeSleeper(hub, { TOKEN: secretEnv })).toBe(201);
    await waitFor(async () => (await tasks(agent)).length === 1, {
      what: "the workload running",
    });
    await agent.restart(); // a reconnect: a second handshake for the listener to record
    await waitFor(async () => (await agent.status()).connected, { what: "victim reconnected" });
    await Bun.sleep(3000);
    const captured = listener.seen.map((m) => m.payload);
    const utf8 = (s: string) => new TextEncoder().encode(s);
    const nodeKey = new Database(join(dir.path, "victim", "agent.db"), { readonly: true })
      .query("SELECT value FROM state WHERE key = 'node_key'")
      .get() as { value: string };
    const hubSecret = readFileSync(join(dir.path, "hub", "hub.key"), "utf8").trim();
    for (const secret of [hub.joinToken, nodeKey.value, hubSecret]) {
      expect(captured.some((p) => contains(p, utf8(secret)))).toBe(false);
      expect(captured.some((p) => contains(p, Buffer.from(secret, "base64url")))).toBe(false);
    }
    // Nothing readable: no series names, no workload spec or its env, no node identity in any payload.
    for (const plain of [
      secretEnv,
      "cpu.util",
      "mem.used_pct",
      "sleep",
      "site",
      "welcome",
      "metrics_batch",
    ]) {
      expect(captured.some((p) => contains(p, utf8(plain)))).toBe(false);
    }
    // Replaying the whole capture under another node's topics admits nobody.
    const thief = await MqttClient.connect(broker.url, { clientId: "thief" });
    for (const m of listener.seen.filter((x) => x.topic.startsWith("novacron/v1/up/victim/"))) {
      await thief.publish(m.topic.replace("/victim/", "/thief/"), m.payload, { qos: 1 });
    }
    await thief.end();
    await Bun.sleep(500);
    expect((await hub.api("/api/v1/nodes/thief")).status).toBe(404);
    expectNothingLost(await quiesce(agent, hub, config, BASE));
  }, 120_000);
});

// A hub on PostgreSQL is a replica: its handshake names a route, and an MQTT agent sends the rest of its
// session on novacron/v1/via/<replica>/<node>/... An attacker on the broker sees that topic too.
describeOnPostgres("attacks on a hub replica's routed uplink", (pg) => {
  test.skipIf(!mosquittoBinary())(
    "a listener learns the replica's route; every frame it replays there and every batch it forges there is refused, and nothing is lost or stored from it",
    async () => {
      using dir = tempDir();
      await using broker = await startMosquitto(dir.path);
      await using hub = await startHub({
        data: join(dir.path, "hub"),
        mqtt: broker.url,
        args: ["--store", await pg().newDatabase()],
      });
      const listener = await listen(broker.url);
      const config = join(dir.path, "victim.yaml");
      writeAgentConfig(config, BASE);
      await using agent = await startAgent({
        data: join(dir.path, "victim"),
        nodeId: "victim",
        hub: broker.url,
        joinToken: hub.joinToken,
        args: ["--config", config],
      });
      try {
        await waitFor(
          async () => (await hub.api<NodeJson>("/api/v1/nodes/victim")).body.ingest?.last_seq >= 3,
          {
            what: "some batches stored",
          },
        );
        const routed = listener.seen.filter((m) => m.topic.startsWith("novacron/v1/via/"));
        expect(routed.length).toBeGreaterThan(0);
        const topic = routed[0]!.topic;
        const route = topic.split("/")[3]!;
        const forger = await MqttClient.connect(broker.url, { clientId: "via-forger" });
        const replayedBefore = await hubCount(hub, "replayed");
        // Every sealed frame the agent sent on the route, again.
        for (const m of routed) await forger.publish(m.topic, m.payload, { qos: 1 });
        // A batch in clear on the route, and one with a session frame's header but no valid seal.
        const last = (await hub.api<NodeJson>("/api/v1/nodes/victim")).body.ingest.last_seq;
        const enc = encodeMetrics({
          start: Date.now(),
          interval: 1000,
          ticks: 1,
          series: [{ name: "cpu.util", values: [666] }],
        });
        const batch = encodeFrame(
          envelope(
            "metrics_batch",
            "victim",
            { start: Date.now(), interval: 1000, ticks: 1, ...enc },
            { q: last + 1 },
          ),
        );
        const batchTopic = `novacron/v1/via/${route}/victim/metrics_batch`;
        for (let i = 0; i < 5; i++) {
          await forger.publish(batchTopic, batch, { qos: 1 });
          await forger.publish(
            batchTopic,
            new Uint8Array([0x24, 0, 0, 0x20, 0, 0, 0, 0, i, ...batch, ...new Uint8Array(16)]),
            { qos: 1 },
          );
        }
        await forger.end();
        await waitFor(
          async () =>
            (await hubCount(hub, "replayed")) > replayedBefore &&
            (await hubCount(hub, "forged")) >= 5 &&
            (await hubCount(hub, "protocol_1")) >= 5,
          { what: "the hub to refuse the replayed and forged frames on the route" },
        );
        const r = await quiesce(agent, hub, config, BASE);
        expectNothingLost(r);
        expect(r.dropped).toBe(0);
        expect(r.node.ingest.duplicates).toBe(0);
        const points = await hub.api<{ points: [number, number][] }>(
          `/api/v1/nodes/victim/metrics?series=cpu.util&from=0&to=${Date.now() + 60_000}`,
        );
        expect(points.body.points.some(([, v]) => v === 666)).toBe(false);
      } finally {
        await listener.client.end().catch(() => {});
      }
    },
    120_000,
  );
});
