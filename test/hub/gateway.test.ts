// Specification of the hub gateway's handling of bad reliable messages from an authenticated node.
import { expect, test } from "bun:test";
import { Gateway, type Peer } from "../../hub/gateway/index.ts";
import { Ingest } from "../../hub/ingest/index.ts";
import { Registry } from "../../hub/registry/index.ts";
import { openHubDb } from "../../hub/store/db.ts";
import { createLogger } from "../../shared/log.ts";
import { MetricsRegistry } from "../../shared/metrics.ts";
import { decodeFrame, encodeCbor, encodeFrame, envelope, type Message } from "../../shared/protocol/index.ts";
import { encodeMetrics } from "../../shared/protocol/metrics-codec.ts";
import { tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const quiet = createLogger("test", { write: () => {} });

function batch(seq: number) {
  const enc = encodeMetrics({
    start: 1000 * seq,
    interval: 1000,
    ticks: 1,
    series: [{ name: "cpu.util", values: [seq] }],
  });
  return envelope("metrics_batch", "n1", { start: 1000 * seq, interval: 1000, ticks: 1, ...enc }, { q: seq });
}

test("gateway: a reliable message with an invalid body is refused with its seq, acked past, and the next one is stored", async () => {
  using dir = tempDir();
  const db = openHubDb(dir.path);
  const metrics = new MetricsRegistry();
  const registry = new Registry(db, { suspectAfterMs: 15_000, downAfterMs: 60_000, restartGraceMs: 30_000 });
  let gateway: Gateway | undefined;
  const ingest = new Ingest(db, {
    log: quiet,
    metrics,
    acks: (node, upto) => gateway?.sendTo(node, "ack", { upto }),
  });
  gateway = new Gateway({
    hubId: "hub",
    registry,
    ingest,
    log: quiet,
    metrics,
    joinToken: () => "join",
    heartbeatMs: 5000,
    maxFrameBytes: 1 << 20,
  });
  const received: Message[] = [];
  const peer: Peer = {
    via: "ws",
    remote: "test",
    node: undefined,
    send: (frame) => received.push(decodeFrame(frame)),
    close: () => {},
  };
  const hello = {
    node_id: "n1",
    level: 4,
    labels: {},
    capabilities: [],
    resources: {},
    version: "t",
    boot_id: "b",
    last_acked: 0,
    join_token: "join",
  };
  gateway.onFrame(peer, encodeFrame(envelope("hello", "n1", hello)));
  expect(received[0]?.t).toBe("welcome");
  gateway.onFrame(peer, encodeFrame(batch(1)));
  // seq 2: a sound envelope around a body that can never be valid.
  gateway.onFrame(
    peer,
    encodeCbor({ v: 1, t: "metrics_batch", s: "n1", ts: 1, q: 2, b: { start: "yesterday" } }),
  );
  gateway.onFrame(peer, encodeFrame(batch(3)));
  const error = received.find((m) => m.t === "error");
  expect(error?.t === "error" && error.b.code).toBe("bad_body");
  expect(error?.t === "error" && error.b.ref).toBe(2);
  await waitFor(() => received.some((m) => m.t === "ack" && m.b.upto === 3), { what: "an ack up to 3" });
  expect(registry.get("n1")?.last_seq).toBe(3);
  expect(registry.get("n1")?.samples).toBe(2);
  expect(metrics.value("novacron_hub_messages_refused_total", { reason: "bad_body" })).toBe(1);
  db.close();
});
