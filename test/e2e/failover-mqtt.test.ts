// Failover over MQTT: a killed agent's Last Will makes its node suspect at once, and its workload moves.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loop, pids } from "../support/marked-procs.ts";
import { mosquittoBinary, startMosquitto } from "../support/mosquitto.ts";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const hasMosquitto = mosquittoBinary() !== undefined;

describe("failover over MQTT", () => {
  test.skipIf(!hasMosquitto)(
    "an agent on MQTT SIGKILLed: its Last Will makes the node suspect within a second, and the service runs on another node",
    async () => {
      using dir = tempDir();
      await using broker = await startMosquitto(dir.path);
      await using hub = await startHub({ data: join(dir.path, "hub"), mqtt: broker.url });
      const args = ["--heartbeat-interval", "10s", "--batch-interval", "1s", "--level", "2"];
      const victim = await startAgent({
        data: join(dir.path, "m1"),
        nodeId: "m1",
        hub: broker.url,
        joinToken: hub.joinToken,
        args,
      });
      const mark = `novacron-failover-mqtt-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
      try {
        await waitFor(async () => (await victim.status()).connected, { what: "m1 connected over MQTT" });
        await hub.api("/api/v1/workloads", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            name: "svc",
            driver: "exec",
            command: "/bin/sh",
            args: loop(mark),
          }),
        });
        await waitFor(async () => (await pids(mark)).length === 1, { what: "the service on m1" });
        await using standby = await startAgent({
          data: join(dir.path, "w1"),
          nodeId: "w1",
          hub: hub.wsUrl,
          joinToken: hub.joinToken,
          args,
        });
        await waitFor(async () => (await standby.status()).connected, { what: "w1 connected" });
        const killedAt = Date.now();
        for (const p of await pids(mark)) process.kill(p, "SIGKILL");
        await victim.proc.kill("SIGKILL");
        type Ev = { kind: string; node: string | null; change: string | null; at: number; reason: string };
        const suspect = await waitFor(
          async () =>
            (await hub.api<{ events: Ev[] }>("/api/v1/failover/events?node=m1")).body.events.find(
              (e) => e.change === "ready -> suspect",
            ),
          { what: "m1 suspect" },
        );
        // Heartbeats are 10 s apart here: only the Last Will can make it this fast.
        expect(suspect.at - killedAt).toBeLessThan(1500);
        expect(suspect.reason).toBe("connection closed");
        await waitFor(
          async () =>
            (
              await hub.api<{ allocs: { node: string; status: string }[] }>("/api/v1/workloads/svc")
            ).body.allocs.some((a) => a.node === "w1" && a.status === "running"),
          { what: "the service running on w1", timeoutMs: 30_000 },
        );
      } finally {
        for (const p of await pids(mark)) process.kill(p, "SIGKILL");
        await victim.proc.kill("SIGKILL");
      }
    },
    60_000,
  );
});
