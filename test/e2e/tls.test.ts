// End to end: a hub over HTTPS/WSS, mutual TLS, and hub and agents through a Mosquitto TLS listener, with CAs made at test time.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loadAgentConfig } from "../../agent/config/index.ts";
import { loadHubConfig } from "../../hub/config/index.ts";
import type { TlsMaterial } from "../../shared/tls.ts";
import { hasOpenssl, makeTestCa, type TestCa } from "../support/certs.ts";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const hasMosquitto = mosquittoBinary() !== undefined;
if (!hasOpenssl()) console.warn("SKIPPING TLS tests: the openssl binary is not installed");
if (!hasMosquitto) console.warn("SKIPPING the MQTT TLS test: the mosquitto binary is not installed");

type Nodes = { nodes: { id: string; status: string; connected: boolean }[] };

async function connectedNodes(hub: HubHandle): Promise<string[]> {
  const r = await hub.api<Nodes>("/api/v1/nodes");
  expect(r.status).toBe(200);
  return r.body.nodes.filter((n) => n.status === "ready" && n.connected).map((n) => n.id);
}

// The agent's log says why its link failed, and the hub never saw it.
async function expectRefused(agent: AgentHandle, hub: HubHandle, url: string, why: RegExp): Promise<void> {
  const endpoint = url.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const line = await agent.proc.waitForLine(new RegExp(`hub link failed endpoint=${endpoint}.*`));
  expect(line[0]).toMatch(why);
  expect(agent.proc.lines.some((l) => /connected to hub/.test(l))).toBe(false);
  expect((await agent.status()).connected).toBe(false);
  const r = await hub.api<Nodes>("/api/v1/nodes");
  expect(r.body.nodes.map((n) => n.id)).not.toContain(agent.nodeId);
}

describe.skipIf(!hasOpenssl())("TLS and mutual TLS", () => {
  let pki: { path: string; [Symbol.dispose](): void };
  let good: TestCa;
  let wrong: TestCa;
  let client: TlsMaterial;

  beforeAll(() => {
    pki = tempDir("novacron-pki-");
    good = makeTestCa(pki.path, "good");
    wrong = makeTestCa(pki.path, "wrong");
    client = { ca: good.pem.ca, cert: good.pem.clientCert, key: good.pem.clientKey };
  });
  afterAll(() => pki[Symbol.dispose]());

  const serve = () => ["--tls-cert", good.serverCert, "--tls-key", good.serverKey];
  const clientCert = (ca: TestCa) => ["--tls-cert", ca.clientCert, "--tls-key", ca.clientKey];

  test("half a certificate pair, a client CA without TLS, broker files without mqtts:// or a file that is not PEM are refused, naming the field", () => {
    const hub =
      (...argv: string[]) =>
      () =>
        loadHubConfig(["--config", "", ...argv], {});
    const agent =
      (...argv: string[]) =>
      () =>
        loadAgentConfig(["--config", "", ...argv], {});
    expect(hub("--tls-cert", good.serverCert)).toThrow(/^tls_key: must be set with tls_cert/);
    expect(hub("--tls-key", good.serverKey)).toThrow(/^tls_cert: must be set with tls_key/);
    expect(hub("--tls-client-ca", good.ca)).toThrow(/^tls_client_ca: needs tls_cert/);
    expect(hub("--tls-cert", good.serverKey, "--tls-key", good.serverKey)).toThrow(
      /^tls_cert: the file holds no PEM certificate/,
    );
    expect(hub("--mqtt", "mqtt://127.0.0.1:1883", "--mqtt-ca", good.ca)).toThrow(
      /^mqtt_ca: needs an mqtts:\/\/ broker/,
    );
    expect(hub("--mqtt", "mqtts://127.0.0.1:8883", "--mqtt-key", good.clientKey)).toThrow(
      /^mqtt_cert: must be set with mqtt_key/,
    );
    expect(agent("--tls-cert", good.clientCert)).toThrow(/^tls_key: must be set with tls_cert/);
    expect(agent("--hub-ca", join(pki.path, "missing.pem"))).toThrow(
      /^hub_ca: cannot read the file \(ENOENT\)/,
    );
    expect(agent("--tls-cert", good.clientCert, "--tls-key", good.clientCert)).toThrow(
      /^tls_key: the file holds no PEM private key/,
    );
    const ok = loadHubConfig(["--config", "", ...serve(), "--tls-client-ca", good.ca], {});
    expect(ok.action).toBe("run");
  });

  test("a hub with a certificate serves https and wss: an agent that trusts its CA connects", async () => {
    using dir = tempDir();
    await using hub = await startHub({
      data: join(dir.path, "hub"),
      args: serve(),
      apiTls: { ca: good.pem.ca },
    });
    expect(hub.proc.lines.find((l) => /hub listening/.test(l))).toMatch(
      /http=https:\/\/127\.0\.0\.1:\d+ agents=wss:\/\/127\.0\.0\.1:\d+\/v1\/agent/,
    );
    const health = await fetch(`${hub.url}/healthz`, { tls: { ca: good.pem.ca } });
    expect(health.status).toBe(200);
    // Plain HTTP on the same port gets no answer from a TLS listener.
    await expect(fetch(`http://127.0.0.1:${hub.port}/healthz`)).rejects.toThrow();
    await using agent = await startAgent({
      data: join(dir.path, "agent"),
      nodeId: "edge-tls",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--hub-ca", good.ca],
    });
    await waitFor(async () => (await connectedNodes(hub)).includes("edge-tls"), {
      what: "edge-tls connected",
    });
    await agent.proc.waitForLine(/connected to hub endpoint=wss:\/\//);
  }, 30_000);

  test("an agent with another CA, or with none (public roots), never connects and says the certificate failed verification", async () => {
    using dir = tempDir();
    await using hub = await startHub({
      data: join(dir.path, "hub"),
      args: serve(),
      apiTls: { ca: good.pem.ca },
    });
    const common = { hub: hub.wsUrl, joinToken: hub.joinToken };
    await using wrongCa = await startAgent({
      ...common,
      data: join(dir.path, "wrong"),
      nodeId: "edge-wrong-ca",
      args: ["--hub-ca", wrong.ca],
    });
    await using noCa = await startAgent({ ...common, data: join(dir.path, "none"), nodeId: "edge-no-ca" });
    for (const agent of [wrongCa, noCa]) {
      await expectRefused(
        agent,
        hub,
        hub.wsUrl,
        /cannot connect to wss:\/\/127\.0\.0\.1:\d+\/v1\/agent: certificate verify failed: .*(self.signed|unable to|issuer)/i,
      );
    }
  }, 30_000);

  test("a hub with --tls-client-ca refuses agents without a client certificate or with one from another CA, and admits its own", async () => {
    using dir = tempDir();
    await using hub = await startHub({
      data: join(dir.path, "hub"),
      args: [...serve(), "--tls-client-ca", good.ca],
      apiTls: client,
    });
    expect(hub.proc.lines.find((l) => /hub listening/.test(l))).toMatch(/tls=mutual/);
    // The API is behind the same handshake: a client without a certificate gets no answer at all.
    await expect(fetch(`${hub.url}/healthz`, { tls: { ca: good.pem.ca } })).rejects.toThrow();
    const common = { hub: hub.wsUrl, joinToken: hub.joinToken };
    await using noCert = await startAgent({
      ...common,
      data: join(dir.path, "none"),
      nodeId: "edge-no-cert",
      args: ["--hub-ca", good.ca],
    });
    await using wrongCert = await startAgent({
      ...common,
      data: join(dir.path, "wrong"),
      nodeId: "edge-wrong-cert",
      args: ["--hub-ca", good.ca, ...clientCert(wrong)],
    });
    await using admitted = await startAgent({
      ...common,
      data: join(dir.path, "good"),
      nodeId: "edge-mtls",
      args: ["--hub-ca", good.ca, ...clientCert(good)],
    });
    await waitFor(async () => (await connectedNodes(hub)).includes("edge-mtls"), {
      what: "edge-mtls connected",
    });
    await expectRefused(noCert, hub, hub.wsUrl, /the server requires a client certificate/);
    await expectRefused(wrongCert, hub, hub.wsUrl, /ended the connection|does not trust|unknown.ca/i);
    expect(await connectedNodes(hub)).toEqual(["edge-mtls"]);
    void admitted;
  }, 30_000);

  test.skipIf(!hasMosquitto)(
    "hub and agent over mqtts:// to a broker that requires client certificates: data arrives; an agent without one, or that cannot verify the broker, is refused",
    async () => {
      using dir = tempDir();
      await using broker = await startMosquitto(dir.path, {
        tls: [
          `cafile ${good.ca}`,
          `certfile ${good.serverCert}`,
          `keyfile ${good.serverKey}`,
          "require_certificate true",
        ],
      });
      expect(broker.url).toStartWith("mqtts://");
      await using hub = await startHub({
        data: join(dir.path, "hub"),
        mqtt: broker.url,
        args: ["--mqtt-ca", good.ca, "--mqtt-cert", good.clientCert, "--mqtt-key", good.clientKey],
      });
      const common = { hub: broker.url, joinToken: hub.joinToken };
      await using agent = await startAgent({
        ...common,
        data: join(dir.path, "agent"),
        nodeId: "edge-mqtts",
        args: ["--hub-ca", good.ca, ...clientCert(good), "--batch-interval", "1s"],
      });
      await using noCert = await startAgent({
        ...common,
        data: join(dir.path, "none"),
        nodeId: "edge-mqtts-no-cert",
        args: ["--hub-ca", good.ca],
      });
      await using wrongCa = await startAgent({
        ...common,
        data: join(dir.path, "wrong"),
        nodeId: "edge-mqtts-wrong-ca",
        args: ["--hub-ca", wrong.ca, ...clientCert(good)],
      });
      await waitFor(
        async () => {
          const r = await hub.api<{ series: string[] }>("/api/v1/nodes/edge-mqtts/series");
          return r.status === 200 && r.body.series.includes("cpu.util");
        },
        { what: "edge-mqtts series at the hub" },
      );
      expect(await connectedNodes(hub)).toContain("edge-mqtts");
      await expectRefused(
        noCert,
        hub,
        broker.url,
        /TLS with mqtts:\/\/127\.0\.0\.1:\d+ failed: the server requires a client certificate/,
      );
      await expectRefused(
        wrongCa,
        hub,
        broker.url,
        /TLS with mqtts:\/\/127\.0\.0\.1:\d+ failed: certificate verify failed: /,
      );
      void agent;
    },
    40_000,
  );
});
