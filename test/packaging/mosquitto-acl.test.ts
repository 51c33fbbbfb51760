// The shipped Mosquitto configuration (packaging/mosquitto/) on a real broker: what each account may
// publish and receive, and a real hub and agent talking through it with passwords in their URLs.
import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { PRESENCE_WILDCARD, routedUpTopic, routedWildcard, UP_WILDCARD } from "../../shared/link/index.ts";
import { type IncomingMessage, MqttClient, type MqttConnectOptions } from "../../shared/mqtt/index.ts";
import { type Broker, mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import type { NodeJson } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";

const DIR = resolve(import.meta.dir, "../../packaging/mosquitto");
// The hub's subscription (hub/gateway/mqtt-gateway.ts), shared between hub replicas.
const HUB_UPLINK = `$share/novacron-hubs/${UP_WILDCARD}`;

const passwdBinary =
  Bun.which("mosquitto_passwd") ??
  Bun.which("mosquitto_passwd", { PATH: "/usr/sbin:/usr/local/sbin:/sbin" }) ??
  undefined;
const hasMosquitto = mosquittoBinary() !== undefined && passwdBinary !== undefined;
if (!hasMosquitto)
  console.warn(
    "SKIPPING Mosquitto ACL tests: mosquitto or mosquitto_passwd is not installed (apt-get install mosquitto)",
  );

/** The shipped config with only what a test must change: the port, the file paths, the user. */
function testConfig(shipped: string, port: number, files: { passwd: string; acl: string }): string {
  const rewrites: [RegExp, string][] = [
    [/^listener 1883$/m, `listener ${port} 127.0.0.1`],
    [/^password_file .*$/m, `password_file ${files.passwd}`],
    [/^acl_file .*$/m, `acl_file ${files.acl}`],
  ];
  let text = shipped;
  for (const [re, line] of rewrites) {
    if (!re.test(text)) throw new Error(`packaging/mosquitto/novacron.conf has no line matching ${re}`);
    text = text.replace(re, line);
  }
  // Started as root, mosquitto would switch to the "mosquitto" user, who cannot read the temp dir.
  return process.getuid?.() === 0 ? `${text}\nuser root\n` : text;
}

interface AclBroker extends AsyncDisposable {
  broker: Broker;
  /** `mqtt://user:password@127.0.0.1:port` for one of the accounts. */
  url(user: string): string;
  password(user: string): string;
}

/** Mosquitto with the shipped config and ACL, and one password per user (made with mosquitto_passwd). */
async function startAclBroker(dir: string, users: string[]): Promise<AclBroker> {
  const passwd = join(dir, "novacron.passwd");
  const acl = join(dir, "novacron.acl");
  writeFileSync(acl, readFileSync(join(DIR, "novacron.acl")));
  writeFileSync(passwd, "", { mode: 0o600 });
  const passwords = new Map<string, string>();
  for (const user of users) {
    // Characters that need escaping in a URL, so the test also covers parseBrokerUrl's decoding.
    const password = `p@ss:${randomUUID()}/%`;
    const r = Bun.spawnSync([passwdBinary!, "-b", passwd, user, password], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`mosquitto_passwd failed: ${r.stderr.toString()}`);
    passwords.set(user, password);
  }
  const shipped = readFileSync(join(DIR, "novacron.conf"), "utf8");
  const broker = await startMosquitto(dir, { config: (port) => testConfig(shipped, port, { passwd, acl }) });
  return {
    broker,
    password: (user) => passwords.get(user)!,
    url: (user) =>
      `mqtt://${encodeURIComponent(user)}:${encodeURIComponent(passwords.get(user)!)}@127.0.0.1:${broker.port}`,
    [Symbol.asyncDispose]: () => broker[Symbol.asyncDispose](),
  };
}

/** One MQTT connection that records what it receives, in order. */
class Client implements AsyncDisposable {
  readonly received: IncomingMessage[] = [];
  readonly client: MqttClient;

  private constructor(client: MqttClient) {
    this.client = client;
    client.onMessage((m) => this.received.push(m));
  }

  static async connect(url: string, opts: Partial<MqttConnectOptions> = {}): Promise<Client> {
    return new Client(await MqttClient.connect(url, { clientId: `test-${randomUUID()}`, ...opts }));
  }

  /** What was received, as `topic payload` lines. */
  get lines(): string[] {
    return this.received.map((m) => `${m.topic} ${new TextDecoder().decode(m.payload)}`);
  }

  /** Waits until `line` has been received (everything before it has been too). */
  async waitFor(line: string): Promise<void> {
    await waitFor(() => this.lines.includes(line), {
      timeoutMs: 5000,
      intervalMs: 20,
      what: `"${line}" (received: ${JSON.stringify(this.lines)})`,
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.client.end();
  }
}

/** Subscribes like the hub's MQTT gateway does. */
async function hubClient(b: AclBroker): Promise<Client> {
  const hub = await Client.connect(b.url("novacron-hub"));
  expect(
    await hub.client.subscribe([
      { topic: HUB_UPLINK, qos: 1 },
      { topic: PRESENCE_WILDCARD, qos: 1 },
    ]),
  ).toEqual([1, 1]);
  return hub;
}

describe("mosquitto ACL (packaging/mosquitto)", () => {
  test.skipIf(!hasMosquitto)(
    "acl: a node's uplink of any type reaches the hub through its shared subscription; another node's uplink or presence written by it does not",
    async () => {
      using dir = tempDir();
      await using b = await startAclBroker(dir.path, ["novacron-hub", "node-a", "node-b"]);
      await using hub = await hubClient(b);
      await using a = await Client.connect(b.url("node-a"));
      await a.client.publish("novacron/v1/up/node-a/metrics_batch", "a-1", { qos: 1 });
      await a.client.publish("novacron/v1/up/node-b/metrics_batch", "forged", { qos: 1 });
      await a.client.publish("novacron/v1/up/node-b/hello", "forged", { qos: 0 });
      await a.client.publish("novacron/v1/presence/node-b", "offline", { qos: 1, retain: true });
      // A message type this ACL has never heard of (the handshake frames, say) is still the node's own.
      await a.client.publish("novacron/v1/up/node-a/hs", "a-2", { qos: 1 });
      await hub.waitFor("novacron/v1/up/node-a/hs a-2");
      expect(hub.lines).toEqual(["novacron/v1/up/node-a/metrics_batch a-1", "novacron/v1/up/node-a/hs a-2"]);
    },
    20_000,
  );

  test.skipIf(!hasMosquitto)(
    "acl: only the hub writes downlinks, and a node receives its own downlink and nothing of another node's, whatever it subscribes to",
    async () => {
      using dir = tempDir();
      await using b = await startAclBroker(dir.path, ["novacron-hub", "node-a", "node-b"]);
      await using hub = await hubClient(b);
      await using nodeB = await Client.connect(b.url("node-b"));
      await nodeB.client.subscribe([{ topic: "novacron/v1/down/node-b/+", qos: 1 }]);
      await using a = await Client.connect(b.url("node-a"));
      // Mosquitto grants any SUBSCRIBE; the ACL decides what each delivery may carry.
      await a.client.subscribe([
        { topic: "novacron/v1/down/node-b/+", qos: 1 },
        { topic: "#", qos: 1 },
      ]);
      await a.client.publish("novacron/v1/down/node-b/allocs", "forged-by-a", { qos: 1 });
      await a.client.publish("novacron/v1/down/node-a/allocs", "forged-by-a", { qos: 1 });
      await nodeB.client.publish("novacron/v1/up/node-b/metrics_batch", "b-up", { qos: 1 });
      await nodeB.client.publish("novacron/v1/presence/node-b", "online", { qos: 1, retain: true });
      await hub.client.publish("novacron/v1/down/node-b/ack", "hub-to-b", { qos: 1 });
      await hub.client.publish("novacron/v1/down/node-a/ack", "hub-to-a", { qos: 1 });
      await nodeB.waitFor("novacron/v1/down/node-b/ack hub-to-b");
      await a.waitFor("novacron/v1/down/node-a/ack hub-to-a");
      expect(nodeB.lines).toEqual(["novacron/v1/down/node-b/ack hub-to-b"]);
      expect(a.lines).toEqual(["novacron/v1/down/node-a/ack hub-to-a"]);
      await hub.waitFor("novacron/v1/presence/node-b online");
      expect(hub.lines).toEqual([
        "novacron/v1/up/node-b/metrics_batch b-up",
        "novacron/v1/presence/node-b online",
      ]);
    },
    20_000,
  );

  test.skipIf(!hasMosquitto)(
    "acl: with hub replicas a node writes its routed uplink (novacron/v1/via/<replica>/<node>/...) only under its own id, and only the hub reads it",
    async () => {
      using dir = tempDir();
      await using b = await startAclBroker(dir.path, ["novacron-hub", "node-a", "node-b"]);
      await using hub = await Client.connect(b.url("novacron-hub"));
      // A replica subscribes to its own route (hub/gateway/mqtt-gateway.ts).
      expect(await hub.client.subscribe([{ topic: routedWildcard("hub-1.abc"), qos: 1 }])).toEqual([1]);
      await using nodeB = await Client.connect(b.url("node-b"));
      await nodeB.client.subscribe([{ topic: "#", qos: 1 }]);
      await using a = await Client.connect(b.url("node-a"));
      await a.client.publish(routedUpTopic("hub-1.abc", "node-b", "metrics_batch"), "forged-by-a", {
        qos: 1,
      });
      await a.client.publish(routedUpTopic("hub-1.abc", "node-a", "metrics_batch"), "a-routed", { qos: 1 });
      await hub.waitFor("novacron/v1/via/hub-1.abc/node-a/metrics_batch a-routed");
      expect(hub.lines).toEqual(["novacron/v1/via/hub-1.abc/node-a/metrics_batch a-routed"]);
      // Another node reads nothing of it, whatever it subscribes to.
      await Bun.sleep(300);
      expect(nodeB.lines).toEqual([]);
    },
    20_000,
  );

  test.skipIf(!hasMosquitto)(
    "acl: anonymous clients, unknown users and wrong passwords are refused",
    async () => {
      using dir = tempDir();
      await using b = await startAclBroker(dir.path, ["node-a"]);
      const at = `127.0.0.1:${b.broker.port}`;
      for (const url of [`mqtt://${at}`, `mqtt://node-z:whatever@${at}`, `mqtt://node-a:wrong@${at}`]) {
        await expect(MqttClient.connect(url, { clientId: "intruder" })).rejects.toThrow(
          /broker refused the connection/,
        );
      }
      await using a = await Client.connect(b.url("node-a"));
      expect(a.client.connected).toBe(true);
    },
    20_000,
  );

  test.skipIf(!hasMosquitto)(
    "acl: a node's Last Will on its own presence reaches the hub; a Will on another node's presence does not",
    async () => {
      using dir = tempDir();
      await using b = await startAclBroker(dir.path, ["novacron-hub", "node-a", "node-b"]);
      await using hub = await hubClient(b);
      const will = (node: string) => ({
        topic: `novacron/v1/presence/${node}`,
        payload: "offline",
        qos: 1 as const,
        retain: true,
      });
      const forger = await Client.connect(b.url("node-a"), { will: will("node-b") });
      forger.client.destroy();
      // Same user, so the same client id: by the time this CONNECT is answered the broker has
      // dealt with the forger's Will, either on seeing its socket close or on taking its id over.
      const a = await Client.connect(b.url("node-a"), { will: will("node-a") });
      await a.client.publish("novacron/v1/presence/node-a", "online", { qos: 1, retain: true });
      a.client.destroy();
      await hub.waitFor("novacron/v1/presence/node-a offline");
      expect(hub.lines).toEqual([
        "novacron/v1/presence/node-a online",
        "novacron/v1/presence/node-a offline",
      ]);
    },
    20_000,
  );

  test.skipIf(!hasMosquitto)(
    "acl: one node's credentials cannot take another node's connection over by using its client id",
    async () => {
      using dir = tempDir();
      await using b = await startAclBroker(dir.path, ["novacron-hub", "node-a", "node-b"]);
      await using hub = await hubClient(b);
      await using nodeB = await Client.connect(b.url("node-b"), { clientId: "novacron-agent-node-b" });
      await nodeB.client.subscribe([{ topic: "novacron/v1/down/node-b/+", qos: 1 }]);
      await using intruder = await Client.connect(b.url("node-a"), { clientId: "novacron-agent-node-b" });
      await hub.client.publish("novacron/v1/down/node-b/ack", "still-there", { qos: 1 });
      await nodeB.waitFor("novacron/v1/down/node-b/ack still-there");
      expect(nodeB.client.connected).toBe(true);
      expect(intruder.client.connected).toBe(true);
    },
    20_000,
  );

  test.skipIf(!hasMosquitto)(
    "acl: a real hub and agent with passwords in their broker URLs: the node connects and sends metrics, no log shows a password, and its Will disconnects it at the hub when it crashes",
    async () => {
      using dir = tempDir();
      await using b = await startAclBroker(dir.path, ["novacron-hub", "edge-acl"]);
      await using hub = await startHub({ data: join(dir.path, "hub"), mqtt: b.url("novacron-hub") });
      await using agent = await startAgent({
        data: join(dir.path, "agent"),
        nodeId: "edge-acl",
        hub: b.url("edge-acl"),
        joinToken: hub.joinToken,
        args: ["--batch-interval", "1s"],
      });
      const node = async () => {
        const r = await hub.api<NodeJson>("/api/v1/nodes/edge-acl");
        return r.status === 200 ? r.body : undefined;
      };
      await waitFor(
        async () => {
          const n = await node();
          return n?.status === "ready" && n.connected && n.ingest.samples > 0;
        },
        { timeoutMs: 20_000, what: "edge-acl to be ready, connected and sending samples" },
      );
      const status = await agent.status();
      expect(status.connected).toBe(true);
      expect(status.hub).toBe(`mqtt://edge-acl:***@127.0.0.1:${b.broker.port}`);
      for (const user of ["novacron-hub", "edge-acl"]) {
        const secret = b.password(user);
        for (const text of [...hub.proc.lines, ...agent.proc.lines, JSON.stringify(status)]) {
          expect(text).not.toContain(secret);
          expect(text).not.toContain(encodeURIComponent(secret));
        }
      }
      // Heartbeats would take suspect_after (25 s) to notice; only the Last Will is this quick.
      await agent.proc.kill("SIGKILL");
      await waitFor(async () => (await node())?.connected === false, {
        timeoutMs: 10_000,
        what: "the hub to see edge-acl disconnected",
      });
    },
    45_000,
  );
});
