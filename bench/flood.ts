// What strangers on an open broker cost the hub: its resident memory through rounds of 10,000 distinct topics.
//
//   bun bench/flood.ts [--rounds 5] [--topics 10000]
//
// A private Mosquitto (anonymous, as most field brokers run) and a real hub process. Each round, one
// client publishes, on --topics distinct node names each, a garbage frame and a handshake's first
// message (which the hub must answer: it cannot tell a stranger from a node that is joining). Between
// rounds the hub's VmRSS is read from /proc; its counters show how much of the flood it refused.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { MqttClient } from "../shared/mqtt/index.ts";
import { encodeCbor } from "../shared/protocol/index.ts";
import { startMosquitto } from "../test/support/mosquitto.ts";
import { startHub } from "../test/support/processes.ts";
import { machineInfo, printMachine } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: { rounds: { type: "string", default: "5" }, topics: { type: "string", default: "10000" } },
});
const ROUNDS = Number(opts.rounds);
const TOPICS = Number(opts.topics);

printMachine(machineInfo());
const dir = mkdtempSync(join(tmpdir(), "novacron-flood-"));
const broker = await startMosquitto(dir);
const hub = await startHub({ data: join(dir, "hub"), mqtt: broker.url });
const rss = () =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${hub.proc.pid}/status`, "utf8"))![1]) / 1024;
const counter = async (name: string) => {
  const text = await (await fetch(`${hub.url}/metrics`)).text();
  let total = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, "gm"))) total += Number(m[1]);
  return total;
};
try {
  await Bun.sleep(2000);
  console.log(`hub RSS at rest: ${rss().toFixed(1)} MiB`);
  for (let r = 1; r <= ROUNDS; r++) {
    const client = await MqttClient.connect(broker.url, { clientId: `flooder-${r}` });
    const hello1 = new Uint8Array([
      0x21,
      ...crypto.getRandomValues(new Uint8Array(32)),
      ...encodeCbor({ v: 2 }),
    ]);
    const before = await counter("novacron_hub_frames_unauthenticated_total");
    for (let i = 0; i < TOPICS; i++) {
      void client.publish(`novacron/v1/up/flood-${r}-${i}/hs`, hello1, { qos: 0 });
      void client.publish(`novacron/v1/up/junk-${r}-${i}/metrics_batch`, new Uint8Array([0xde, i & 0xff]), {
        qos: 0,
      });
    }
    for (let i = 0; i < 600; i++) {
      if ((await counter("novacron_hub_frames_unauthenticated_total")) - before >= TOPICS) break;
      await Bun.sleep(100);
    }
    await client.end();
    await Bun.sleep(3000);
    const answered = await counter("novacron_hub_handshakes_total");
    console.log(
      `after round ${r} (${2 * TOPICS} frames on ${2 * TOPICS} topics): hub RSS ${rss().toFixed(1)} MiB; handshakes answered so far ${answered}; pending ${await counter("novacron_hub_handshakes_pending")}`,
    );
  }
  const nodes = (await hub.api<{ nodes: unknown[] }>("/api/v1/nodes")).body.nodes.length;
  console.log(`nodes registered: ${nodes}`);
} finally {
  await hub[Symbol.asyncDispose]();
  await broker[Symbol.asyncDispose]();
  rmSync(dir, { recursive: true, force: true });
}
