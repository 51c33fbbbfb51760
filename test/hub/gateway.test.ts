// Specification of the hub gateway's handling of bad reliable messages from an authenticated node.
import { expect, test } from "bun:test";
import { encodeCbor, encodeFrame, envelope, PROTOCOL_VERSION } from "../../shared/protocol/index.ts";
import { encodeMetrics } from "../../shared/protocol/metrics-codec.ts";
import { ADMIN, helloBody, joinNode, openHubCore } from "../support/hub-core.ts";
import { TEST_STORE } from "../support/hub-store.ts";
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
  using core = await openHubCore(dir.path);
  const { gateway, registry, metrics } = core;
  const { peer, received } = await joinNode(core, "n1");
  expect(received[0]?.t).toBe("welcome");
  gateway.onFrame(peer, encodeFrame(batch(1)));
  // seq 2: a sound envelope around a body that can never be valid.
  gateway.onFrame(
    peer,
    encodeCbor({ v: PROTOCOL_VERSION, t: "metrics_batch", s: "n1", ts: 1, q: 2, b: { start: "yesterday" } }),
  );
  gateway.onFrame(peer, encodeFrame(batch(3)));
  // Batches are decoded in the bulk lane's turn, so the refusal comes when seq 2 is reached there.
  const error = await waitFor(() => received.find((m) => m.t === "error"), { what: "the refusal of seq 2" });
  expect(error?.t === "error" && error.b.code).toBe("bad_body");
  expect(error?.t === "error" && error.b.ref).toBe(2);
  await waitFor(() => received.some((m) => m.t === "ack" && m.b.upto === 3), { what: "an ack up to 3" });
  expect((await registry.fresh("n1"))?.last_seq).toBe(3);
  expect((await registry.fresh("n1"))?.samples).toBe(2);
  expect(metrics.value("novacron_hub_messages_refused_total", { reason: "bad_body" })).toBe(1);
});

test("gateway: a store that comes back behind what the hub stored from its epoch is told it is a copy, with the counters last seen", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const first = await joinNode(core, "n1", { epoch: "e1", seq_high: 0 });
  const w1 = first.received.find((m) => m.t === "welcome");
  expect(w1?.t === "welcome" && w1.b.restored).toBeUndefined();
  for (let q = 1; q <= 3; q++) first.send(batch(q));
  first.send(
    envelope("heartbeat", "n1", {
      pending: 0,
      epoch: "e1",
      produced: 30,
      dropped: 2,
      dropped_by: { budget: 2 },
      held: 1,
    }),
  );
  await waitFor(() => first.received.some((m) => m.t === "ack" && m.b.upto === 3), {
    what: "an ack up to 3",
  });
  // Not flushed yet: the report is read from memory.

  // The same epoch, having numbered only 1: a snapshot taken before 2 and 3 went out.
  const copy = await joinNode(core, "n1", { epoch: "e1", seq_high: 1 }, { key: first.key, join: false });
  const w2 = copy.received.find((m) => m.t === "welcome");
  expect(w2?.t === "welcome" && w2.b).toMatchObject({
    last_acked: 3,
    restored: true,
    counters: { produced: 30, dropped: 2 },
  });
  // The same epoch with everything it numbered stored is the store itself, not a copy.
  const same = await joinNode(core, "n1", { epoch: "e1", seq_high: 3 }, { key: first.key, join: false });
  const w3 = same.received.find((m) => m.t === "welcome");
  expect(w3?.t === "welcome" && w3.b.restored).toBeUndefined();
  // A store the hub never heard from is not a copy; it still learns the counters to resume from.
  const fresh = await joinNode(core, "n1", { epoch: "e2", seq_high: 0 }, { key: first.key, join: false });
  const w4 = fresh.received.find((m) => m.t === "welcome");
  expect(w4?.t === "welcome" && w4.b).toMatchObject({ counters: { produced: 30, dropped: 2 } });
  expect(w4?.t === "welcome" && w4.b.restored).toBeUndefined();

  const res = await core.app.request("/api/v1/nodes/n1", { headers: { authorization: `Bearer ${ADMIN}` } });
  const node = (await res.json()) as {
    ingest: { samples: number };
    counters: Record<string, unknown>;
    epochs: { epoch: string; seq_high: number; restored: number; produced: number }[];
  };
  expect(node.ingest.samples).toBe(3);
  // 30 produced, 2 dropped, 3 stored, 1 held: 24 the hub cannot account for.
  expect(node.counters).toEqual({
    epoch: "e1",
    produced: 30,
    dropped: 2,
    dropped_by: { budget: 2 },
    held: 1,
    lost: 24,
  });
  expect(node.epochs.map((e) => [e.epoch, e.seq_high, e.restored, e.produced])).toEqual([
    ["e1", 3, 1, 30],
    ["e2", 0, 0, 0],
  ]);
});

test("gateway: the counters a store resumes from are never below what the hub stored and the node dropped", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const first = await joinNode(core, "n1", { epoch: "e1", seq_high: 0 });
  // A report, then more stored after it (the report lags): the hub holds 3 samples, the report says 1.
  first.send(batch(1));
  first.send(envelope("heartbeat", "n1", { pending: 0, epoch: "e1", produced: 1, dropped: 1, held: 0 }));
  first.send(batch(2));
  first.send(batch(3));
  await waitFor(() => first.received.some((m) => m.t === "ack" && m.b.upto === 3), {
    what: "an ack up to 3",
  });
  const copy = await joinNode(core, "n1", { epoch: "e1", seq_high: 1 }, { key: first.key, join: false });
  const w = copy.received.find((m) => m.t === "welcome");
  expect(w?.t === "welcome" && w.b).toMatchObject({ restored: true, counters: { produced: 4, dropped: 1 } });
});

test("gateway: an envelope whose time is not a finite number is refused; a time with a fraction is stored as whole milliseconds", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const { peer, received } = await joinNode(core, "n1");
  const event = (q: number, ts: number) =>
    encodeCbor({
      v: PROTOCOL_VERSION,
      t: "event",
      s: "n1",
      ts,
      q,
      b: { kind: "note", at: 1000, message: `at ${ts}` },
    });
  for (const ts of [Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) core.gateway.onFrame(peer, event(1, ts));
  const errors = received.filter((m) => m.t === "error");
  expect(errors.map((m) => m.t === "error" && m.b.code)).toEqual([
    "bad_envelope",
    "bad_envelope",
    "bad_envelope",
  ]);
  expect(
    errors.every((m) => m.t === "error" && /ts \(time\) must be a finite number/.test(m.b.message)),
  ).toBe(true);
  core.gateway.onFrame(peer, event(1, 1_700_000_000_123.75));
  await waitFor(() => received.some((m) => m.t === "ack" && m.b.upto === 1), { what: "an ack up to 1" });
  expect(await core.sql.all("SELECT at FROM messages WHERE node = 'n1'")).toEqual([
    { at: 1_700_000_000_123 },
  ]);
});

test("gateway: an operator's key reset that lands while a node's hello is being admitted leaves no session with the old key", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const first = await joinNode(core, "n1");
  core.gateway.onClosed(first.peer);
  // The node comes back with its key; the reset is asked right after its hello went out, and then the
  // session is ended, as POST /api/v1/nodes/{id}/reset-key does. On SQLite (one connection, in turn)
  // the reset commits while the hello is with the store, after its admission; on PostgreSQL the two
  // race, and whichever order they take, no session may speak with the reset key.
  const again = await joinNode(core, "n1", {}, { key: first.key, join: false, hello: false });
  again.send(envelope("hello", "n1", helloBody("n1")));
  expect(await core.registry.resetKey("n1", 60_000)).toBe(true);
  core.gateway.endSession("n1", "its key was reset");
  await waitFor(() => again.received.some((m) => m.t === "welcome" || m.t === "error"), {
    what: "an answer to the hello",
  });
  await core.settled();
  expect(core.registry.isConnected("n1")).toBe(false);
  expect(core.gateway.sessions).toBe(0);
  expect(core.registry.keyInfo("n1")?.public_key).toBeNull();
  if (TEST_STORE === "sqlite")
    expect(again.received.map((m) => (m.t === "error" ? `${m.t}:${m.b.code}` : m.t))).toEqual([
      "error:auth_failed",
    ]);
});
