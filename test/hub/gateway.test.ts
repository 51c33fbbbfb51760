// Specification of the hub gateway's handling of bad reliable messages from an authenticated node.
import { expect, test } from "bun:test";
import { encodeCbor, encodeFrame, envelope, PROTOCOL_VERSION } from "../../shared/protocol/index.ts";
import { encodeMetrics } from "../../shared/protocol/metrics-codec.ts";
import { joinNode, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

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
  using core = openHubCore(dir.path);
  const { gateway, registry, metrics } = core;
  const { peer, received } = joinNode(core, "n1");
  expect(received[0]?.t).toBe("welcome");
  gateway.onFrame(peer, encodeFrame(batch(1)));
  // seq 2: a sound envelope around a body that can never be valid.
  gateway.onFrame(
    peer,
    encodeCbor({ v: PROTOCOL_VERSION, t: "metrics_batch", s: "n1", ts: 1, q: 2, b: { start: "yesterday" } }),
  );
  gateway.onFrame(peer, encodeFrame(batch(3)));
  const error = received.find((m) => m.t === "error");
  expect(error?.t === "error" && error.b.code).toBe("bad_body");
  expect(error?.t === "error" && error.b.ref).toBe(2);
  await waitFor(() => received.some((m) => m.t === "ack" && m.b.upto === 3), { what: "an ack up to 3" });
  expect(registry.get("n1")?.last_seq).toBe(3);
  expect(registry.get("n1")?.samples).toBe(2);
  expect(metrics.value("novacron_hub_messages_refused_total", { reason: "bad_body" })).toBe(1);
});
