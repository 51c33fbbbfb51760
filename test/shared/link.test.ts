// Specification of the hub link: handshake, ordered outbox drain, acks, flow control, resends and failover.
import { describe, expect, test } from "bun:test";
import { AgentStore } from "../../agent/store/index.ts";
import { Link, type LinkOptions } from "../../shared/link/index.ts";
import { createLogger } from "../../shared/log.ts";
import { encodeCbor, type HelloBody, type Message } from "../../shared/protocol/index.ts";
import { FakeClock, settle, settleUntil } from "../support/fake-clock.ts";
import { FakeHub } from "../support/fake-hub.ts";
import { tempDir } from "../support/processes.ts";

const A = "ws://hub-a.test:8091";
const B = "ws://hub-b.test:8091";
const HEARTBEAT_MS = 1000;
const ACK_TIMEOUT_MS = 3000;
const RECONNECT_CAP_MS = 2000;

const HELLO: Omit<HelloBody, "last_acked"> = {
  node_id: "edge-1",
  level: 1,
  labels: { site: "lab" },
  capabilities: ["exec"],
  resources: { cpu_cores: 2 },
  version: "test",
  boot_id: "boot-1",
};

const quiet = createLogger("test", { write: () => {} });

/** A link on a real outbox (AgentStore in a temp dir), a fake clock and a fake hub; stopped on dispose. */
function setup(opts: Partial<LinkOptions> = {}) {
  const dir = tempDir();
  const store = new AgentStore(dir.path, { bufferBytes: 64 << 20 });
  const clock = new FakeClock();
  const hub = new FakeHub(clock);
  const link = new Link({
    endpoints: [A],
    nodeId: "edge-1",
    outbox: store.outbox,
    hello: () => HELLO,
    transports: hub.transportFactory,
    log: quiet,
    clock,
    heartbeatMs: HEARTBEAT_MS,
    maxFrameBytes: 1 << 20,
    ackTimeoutMs: ACK_TIMEOUT_MS,
    reconnectBaseMs: 100,
    reconnectCapMs: RECONNECT_CAP_MS,
    ...opts,
  });
  let n = 0;
  return {
    store,
    outbox: store.outbox,
    clock,
    hub,
    link,
    /** Appends `count` events to the outbox (created at the fake clock's time); returns their numbers. */
    append(count: number): number[] {
      return Array.from({ length: count }, () => {
        n += 1;
        const body = encodeCbor({ kind: "test", at: clock.now(), message: `m${n}` });
        return store.outbox.append("event", body, 0, clock.now());
      });
    },
    connected: (what = "the link to connect") => settleUntil(() => link.status().connected, what),
    async [Symbol.asyncDispose]() {
      await link.stop();
      store.close();
      dir[Symbol.dispose]();
    },
  };
}

const reliable = (msgs: Message[]) => msgs.filter((m) => m.q !== undefined);
/** Row ids held, in send order. */
const pendingIds = (s: { outbox: AgentStore["outbox"] }) => s.outbox.readFrom(0, 1000).map((e) => e.id);
const messages = (msgs: Message[]) => msgs.map((m) => (m.t === "event" ? m.b.message : m.t));

describe("link: handshake", () => {
  test("the first frame is a hello with last_acked, and nothing else goes out before the welcome", async () => {
    await using s = setup();
    s.hub.answerHello = false;
    s.append(2);
    s.link.start();
    await settle();
    const t = s.hub.current;
    expect(t.sent).toHaveLength(1);
    const hello = t.sent[0]!;
    expect(hello.t).toBe("hello");
    expect(hello.s).toBe("edge-1");
    // The store's epoch and the last number it handed out let the hub recognise a restored copy.
    expect(hello.b).toEqual({ ...HELLO, last_acked: 0, epoch: s.outbox.epoch, seq_high: 0 });
    expect(s.link.status().connected).toBe(false);

    s.hub.say("welcome", {
      hub_id: s.hub.id,
      server_time: s.clock.now(),
      last_acked: 0,
      config_rev: 0,
      heartbeat_ms: 1000,
    });
    await s.connected();
    await settleUntil(() => reliable(t.sent).length === 2, "both entries to be sent");
    expect(reliable(t.sent).map((m) => m.q)).toEqual([1, 2]);
  });

  test("after a reconnect the hello carries the last sequence number the hub acknowledged", async () => {
    await using s = setup();
    s.append(3);
    s.link.start();
    await settleUntil(() => s.outbox.stats().pending === 0, "the outbox to drain");
    s.hub.current.hangUp();
    await s.clock.advance(RECONNECT_CAP_MS);
    await s.connected("the link to reconnect");
    expect(s.hub.transports).toHaveLength(2);
    const hello = s.hub.transports[1]!.sent[0]!;
    expect(hello.t).toBe("hello");
    expect(hello.t === "hello" && hello.b.last_acked).toBe(3);
  });

  test("a welcome whose last_acked is ahead of the outbox makes the next sequence numbers larger", async () => {
    await using s = setup();
    s.hub.committed = 100; // the hub remembers more than this (fresh) store
    s.link.start();
    await s.connected();
    expect(s.outbox.lastSeq()).toBeGreaterThanOrEqual(100);
    s.append(2);
    s.link.notify();
    await settleUntil(() => s.hub.committed === 102, "the hub to store 101 and 102");
    expect(s.hub.stored.map((m) => m.q)).toEqual([101, 102]);
    expect(s.outbox.stats().pending).toBe(0);
  });

  // Regression: shared/link/link.ts #startSession calls outbox.ackUpTo(welcome.last_acked) after ensureSeqAbove.
  // When the hub's last_acked is above every number this outbox ever issued (the agent's store was reset
  // while the hub kept its sequence), the entries held are new messages the hub never saw, and they
  // are deleted unsent: lost, and not counted as dropped. Fix: when welcome.last_acked > outbox.lastSeq()
  // before ensureSeqAbove, renumber the held entries above last_acked instead of acking them.
  test("messages written before the first handshake survive a hub whose last_acked is ahead of the outbox", async () => {
    await using s = setup();
    s.hub.committed = 100;
    s.append(3);
    s.link.start();
    await s.connected();
    await settleUntil(() => s.hub.stored.length === 3, "the hub to store the three messages");
    expect(messages(s.hub.stored)).toEqual(["m1", "m2", "m3"]);
    expect(s.hub.stored.every((m) => m.q! > 100)).toBe(true);
  });
});

describe("link: store epochs", () => {
  test("a store the hub recognises as restored acks what it numbered, starts a new epoch, numbers above the hub and resumes its counters", async () => {
    const lines: string[] = [];
    await using s = setup({ log: createLogger("test", { write: (l) => lines.push(l) }) });
    s.append(4);
    // In an earlier session (of the original) rows 1 and 2 went out as 1 and 2; then the copy was taken.
    s.outbox.take(1, 2);
    s.outbox.bump("samples_produced", 100);
    const epoch = s.outbox.epoch;
    // The original went on and the hub stored up to 40 and saw 500 produced before the copy came back.
    s.hub.committed = 40;
    s.hub.welcomeExtra = { restored: true, counters: { produced: 500, dropped: 3 } };
    s.link.start();
    await settleUntil(() => s.hub.stored.length === 2, "the two unsent rows to be stored");
    expect(messages(s.hub.stored)).toEqual(["m3", "m4"]);
    expect(s.hub.stored.map((m) => m.q)).toEqual([41, 42]);
    expect(s.outbox.epoch).not.toBe(epoch);
    expect(s.link.status().epoch).toBe(s.outbox.epoch);
    // The hub's counts carry on, with the 100 this process counted since it opened the store on top.
    expect(s.outbox.counters()).toMatchObject({ produced: 600, dropped: 3 });
    expect(lines.some((l) => l.includes("restored from a snapshot or copied"))).toBe(true);
    // The first heartbeat after the welcome tells the hub the new epoch and the resumed counters.
    await settleUntil(
      () => s.hub.received.some((m) => m.t === "heartbeat" && m.b.epoch === s.outbox.epoch),
      "a heartbeat with the new epoch",
    );
    const beat = s.hub.received.find((m) => m.t === "heartbeat" && m.b.epoch === s.outbox.epoch)!;
    expect(beat.t === "heartbeat" && beat.b).toMatchObject({ produced: 600, dropped: 3, held: 0 });
  });

  test("a store the hub does not recognise sends again what it numbered, above the hub's mark, in the same epoch", async () => {
    await using s = setup();
    s.append(3);
    s.outbox.take(1, 2);
    const epoch = s.outbox.epoch;
    s.hub.committed = 40;
    s.link.start();
    await settleUntil(() => s.hub.stored.length === 3, "all three to be stored");
    expect(messages(s.hub.stored)).toEqual(["m1", "m2", "m3"]);
    expect(s.hub.stored.map((m) => m.q)).toEqual([41, 42, 43]);
    expect(s.outbox.epoch).toBe(epoch);
  });

  test("heartbeats carry the counters on the first beat of a session, then at most every countersEveryMs", async () => {
    await using s = setup({ countersEveryMs: 5000 });
    s.outbox.bump("samples_produced", 7);
    s.link.start();
    await s.connected();
    for (let i = 0; i < 12; i++) await s.clock.advance(HEARTBEAT_MS);
    const beats = s.hub.received.filter((m) => m.t === "heartbeat");
    const withCounters = beats.filter((m) => m.t === "heartbeat" && m.b.produced !== undefined);
    expect(beats.length).toBeGreaterThanOrEqual(12);
    expect(withCounters.length).toBe(3);
    expect(withCounters[0]!.b).toMatchObject({ epoch: s.outbox.epoch, produced: 7, dropped: 0, held: 0 });
  });
});

describe("link: outbox drain", () => {
  test("sends outbox entries oldest first with q, base = lowest held, and their stored time", async () => {
    await using s = setup();
    s.hub.acking = false;
    const created = s.clock.now();
    s.append(5);
    s.link.start();
    await settleUntil(() => reliable(s.hub.received).length === 5, "five entries to be sent");
    const sent = reliable(s.hub.received);
    expect(sent.map((m) => m.q)).toEqual([1, 2, 3, 4, 5]);
    expect(sent.map((m) => m.base)).toEqual([1, 1, 1, 1, 1]);
    expect(sent.every((m) => m.t === "event" && m.ts === created && m.s === "edge-1")).toBe(true);
    expect(messages(sent)).toEqual(["m1", "m2", "m3", "m4", "m5"]);

    s.hub.say("ack", { upto: 2 });
    s.append(1);
    s.link.notify();
    await settleUntil(() => reliable(s.hub.received).length === 6, "the sixth entry to be sent");
    expect(reliable(s.hub.received)[5]).toMatchObject({ q: 6, base: 3 });
  });

  test("entries in flight when the budget overflows are never dropped: the hub stores them, and only unsent ones count as dropped", async () => {
    await using s = setup();
    s.hub.acking = false;
    for (let i = 0; i < 3; i++) s.outbox.append("metrics_batch", encodeCbor(batchBody()), 2, s.clock.now());
    s.link.start();
    await settleUntil(() => reliable(s.hub.received).length === 3, "three batches in flight");
    // The budget shrinks under them and more arrive: the unsent go, the three in flight stay.
    s.outbox.setBudget(250);
    for (let i = 0; i < 3; i++) s.outbox.append("metrics_batch", encodeCbor(batchBody()), 2, s.clock.now());
    expect(pendingIds(s)).toEqual([1, 2, 3, 6]);
    expect(s.outbox.stats()).toMatchObject({ droppedMessages: 2, droppedSamples: 4 });
    s.hub.acking = true;
    await s.clock.advance(ACK_TIMEOUT_MS + 1000);
    await settleUntil(() => s.outbox.stats().pending === 0, "the hub to store what is held");
    // Stored: the three in flight and the one kept; dropped: two. Each batch once.
    expect(s.hub.stored.map((m) => m.q)).toEqual([1, 2, 3, 4]);
    expect(s.hub.stored.length * 2 + s.outbox.stats().droppedSamples).toBe(12);
  });

  test("a store that cannot write the numbers of what it sends (a full disk) keeps the session: nothing leaves unnumbered, and it sends once it can", async () => {
    await using s = setup();
    s.append(3);
    // Every write fails, as on a disk with no block left; reads still work.
    s.store.db.run("PRAGMA query_only = ON");
    s.link.start();
    await s.connected();
    await s.clock.advance(5 * HEARTBEAT_MS);
    expect(reliable(s.hub.received)).toEqual([]);
    expect(s.link.status().connected).toBe(true);
    expect(s.hub.connects.length).toBe(1);
    s.store.db.run("PRAGMA query_only = OFF");
    await s.clock.advance(HEARTBEAT_MS);
    await settleUntil(() => reliable(s.hub.received).length === 3, "the three entries to be sent");
    expect(reliable(s.hub.received).map((m) => m.q)).toEqual([1, 2, 3]);
    expect(s.hub.connects.length).toBe(1);
  });

  test("a cumulative ack deletes every entry it covers from the outbox", async () => {
    await using s = setup();
    s.hub.acking = false;
    s.append(5);
    s.link.start();
    await settleUntil(() => reliable(s.hub.received).length === 5, "five entries to be sent");
    s.hub.say("ack", { upto: 3 });
    await settle();
    expect(pendingIds(s)).toEqual([4, 5]);
    expect(s.link.status().lastAcked).toBe(3);
    s.hub.say("ack", { upto: 5 });
    await settle();
    expect(s.outbox.stats().pending).toBe(0);
    expect(s.link.status().lastAcked).toBe(5);
  });

  test("an ack above the highest sequence number ever sent is refused and counted: it cannot delete unsent entries", async () => {
    await using s = setup({ window: 2 });
    s.hub.acking = false;
    s.append(5);
    s.link.start();
    await settleUntil(() => reliable(s.hub.received).length === 2, "two entries in flight");
    s.hub.say("ack", { upto: 1_000_000 });
    s.hub.say("ack", { upto: 5 });
    await settle();
    expect(pendingIds(s)).toEqual([1, 2, 3, 4, 5]);
    expect(s.link.status().acksRefused).toBe(2);
    s.hub.say("ack", { upto: 2 });
    await settle();
    expect(pendingIds(s)).toEqual([3, 4, 5]);
  });

  test("a welcome claiming numbers this store never handed out deletes nothing: the held entries go out above them", async () => {
    await using s = setup();
    s.append(5);
    s.hub.committed = 4; // a hub that holds 1..4 from another store of this node
    s.hub.acking = false;
    s.hub.answerHeartbeats = false;
    s.link.start();
    await settleUntil(() => reliable(s.hub.received).length === 5, "all five sent");
    expect(reliable(s.hub.received).map((m) => m.q)).toEqual([5, 6, 7, 8, 9]);
    expect(pendingIds(s)).toEqual([1, 2, 3, 4, 5]);
    expect(s.link.status().acksRefused).toBe(0);
  });

  test("never has more than `window` messages in flight without an ack", async () => {
    await using s = setup({ window: 4 });
    s.hub.acking = false;
    s.append(10);
    s.link.start();
    await s.connected();
    await settle();
    expect(reliable(s.hub.received).map((m) => m.q)).toEqual([1, 2, 3, 4]);
    s.hub.say("ack", { upto: 1 });
    await settle();
    expect(reliable(s.hub.received).map((m) => m.q)).toEqual([1, 2, 3, 4, 5]);
    s.hub.say("ack", { upto: 5 });
    await settle();
    expect(reliable(s.hub.received).map((m) => m.q)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("go-back-N: with no ack within ackTimeoutMs it resends everything after the last ack", async () => {
    await using s = setup();
    s.hub.lose.add(2);
    s.append(3);
    s.link.start();
    await settleUntil(() => s.hub.seqsReceived().length === 3, "three entries to be sent");
    expect(s.hub.committed).toBe(1); // 2 was lost, so 3 was a gap the hub did not take
    expect(pendingIds(s)).toEqual([2, 3]);

    await s.clock.advance(ACK_TIMEOUT_MS);
    expect(s.hub.seqsReceived()).toEqual([1, 2, 3]);
    await s.clock.advance(1000);
    expect(s.hub.seqsReceived()).toEqual([1, 2, 3, 2, 3]);
    expect(s.hub.stored.map((m) => m.q)).toEqual([1, 2, 3]);
    expect(s.outbox.stats().pending).toBe(0);
    expect(s.link.status().connected).toBe(true);
  });

  test("stop() leaves unacked messages in the outbox for the next session", async () => {
    await using s = setup();
    s.hub.acking = false;
    s.append(3);
    s.link.start();
    await settleUntil(() => reliable(s.hub.received).length === 3, "three entries to be sent");
    await s.link.stop();
    expect(pendingIds(s)).toEqual([1, 2, 3]);
    expect(s.hub.current.closed).toBe(true);
  });
});

describe("link: session health", () => {
  test("an error frame with code hello_required ends the session and a new hello follows", async () => {
    await using s = setup();
    s.link.start();
    await s.connected();
    s.hub.say("error", { code: "hello_required", message: "send hello before anything else" });
    await settle();
    expect(s.hub.transports[0]!.closed).toBe(true);
    expect(s.link.status().connected).toBe(false);
    s.append(1);
    await s.clock.advance(RECONNECT_CAP_MS);
    await s.connected("the link to say hello again");
    expect(s.hub.transports).toHaveLength(2);
    expect(s.hub.transports[1]!.sent[0]!.t).toBe("hello");
    await settleUntil(() => s.hub.committed === 1, "the entry to be stored after the new hello");
  });

  // Regression: shared/link/link.ts onFrame handler for `error` closes the transport only for auth_failed and
  // hello_required, but then calls endSession(text) for every code, so the session ends (and the link
  // reconnects) on any error frame, e.g. the hub refusing one frame with bad_body/frame_too_large while
  // it keeps the connection (DESIGN §4: "the connection and every other sender carry on").
  // Fix: call endSession only for the codes that end a session (auth_failed, hello_required).
  test("an error frame refusing one message (bad_body) is logged and does not end the session", async () => {
    await using s = setup();
    s.link.start();
    await s.connected();
    s.hub.say("error", { code: "bad_body", message: "event body field kind: invalid", ref: 7 });
    await settle();
    expect(s.link.status().connected).toBe(true);
    expect(s.hub.transports[0]!.closed).toBe(false);
  });

  test("garbage frames from the hub are counted in badFrames and do not end the session", async () => {
    await using s = setup();
    s.link.start();
    await s.connected();
    const t = s.hub.current;
    t.deliver(Uint8Array.from([0xff, 0xfe, 0x00]));
    t.deliver(encodeCbor({ hello: "not an envelope" }));
    t.deliver(encodeCbor({ v: 99, t: "ack", s: "hub", ts: 1, b: { upto: 1 } }));
    t.deliver(encodeCbor({ v: 1, t: "ack", s: "hub", ts: 1, b: { upto: -5 } }));
    await settle();
    expect(s.link.status().badFrames).toBe(4);
    expect(s.link.status().connected).toBe(true);
    expect(t.closed).toBe(false);
    s.append(1);
    s.link.notify();
    await settleUntil(() => s.outbox.stats().pending === 0, "the session to keep working");
    expect(s.hub.transports).toHaveLength(1);
  });

  test("a silent hub (no frame for 3 heartbeats + 2 s) ends the session", async () => {
    await using s = setup();
    s.link.start();
    await s.connected();
    s.hub.silent = true;
    await s.clock.advance(3 * HEARTBEAT_MS + 2000);
    expect(s.link.status().connected).toBe(true);
    await s.clock.advance(1000);
    expect(s.link.status().connected).toBe(false);
    expect(s.hub.transports[0]!.closed).toBe(true);
  });

  test("a hub that answers heartbeats keeps the session up for hours", async () => {
    await using s = setup();
    s.link.start();
    await s.connected();
    for (let i = 0; i < 12; i++) await s.clock.advance(5 * 60_000);
    expect(s.link.status()).toMatchObject({ connected: true, reconnects: 1 });
    expect(s.hub.transports).toHaveLength(1);
    const beats = s.hub.received.filter((m) => m.t === "heartbeat").length;
    expect(beats).toBeGreaterThanOrEqual(3600 - 1);
  });

  test("measures round-trip time and clock offset from heartbeat acks", async () => {
    await using s = setup();
    s.hub.skewMs = 5000;
    s.link.start();
    await s.connected();
    await s.clock.advance(HEARTBEAT_MS);
    expect(s.link.status()).toMatchObject({ rttMs: 0, clockOffsetMs: 5000 });
  });
});

describe("link: endpoints", () => {
  test("after failuresPerEndpoint failed connects it moves to the next URL", async () => {
    await using s = setup({ endpoints: [A, B], failuresPerEndpoint: 2 });
    s.hub.refuse.add(A);
    s.link.start();
    for (let i = 0; i < 10 && !s.link.status().connected; i++) await s.clock.advance(RECONNECT_CAP_MS);
    expect(s.link.status()).toMatchObject({ connected: true, endpoint: B });
    expect(s.hub.connects).toEqual([A, A, B]);
  });

  test("wraps around to the first URL when every endpoint keeps failing", async () => {
    await using s = setup({ endpoints: [A, B], failuresPerEndpoint: 2 });
    s.hub.refuse.add(A);
    s.hub.refuse.add(B);
    s.link.start();
    for (let i = 0; i < 5; i++) await s.clock.advance(RECONNECT_CAP_MS);
    expect(s.hub.connects.slice(0, 6)).toEqual([A, A, B, B, A, A]);
    expect(s.link.status().connected).toBe(false);
  });

  test("a reconnect loop that keeps failing logs its first failure, then one summary a minute, then that it is restored", async () => {
    const lines: string[] = [];
    await using s = setup({ log: createLogger("test", { write: (l) => lines.push(l) }) });
    s.hub.refuse.add(A);
    s.link.start();
    for (let i = 0; i < 150; i++) await s.clock.advance(1000); // two and a half minutes, ~60 attempts
    expect(s.hub.connects.length).toBeGreaterThan(40);
    expect(lines.filter((l) => l.includes("hub link failed")).length).toBe(1);
    expect(lines.filter((l) => l.includes("hub link still failing")).length).toBe(2);
    s.hub.refuse.delete(A);
    for (let i = 0; i < 10 && !s.link.status().connected; i++) await s.clock.advance(RECONNECT_CAP_MS);
    expect(s.link.status().connected).toBe(true);
    expect(lines.some((l) => /hub link restored failed_attempts=\d+/.test(l))).toBe(true);
  });

  test("a failing endpoint is retried at least once per cap and never faster than half the base", async () => {
    await using s = setup({ endpoints: [A], reconnectBaseMs: 100, reconnectCapMs: 400 });
    s.hub.refuse.add(A);
    s.link.start();
    await settle();
    for (let i = 0; i < 20; i++) {
      const before = s.hub.connects.length;
      await s.clock.advance(400);
      expect(s.hub.connects.length - before).toBeGreaterThanOrEqual(1);
      expect(s.hub.connects.length - before).toBeLessThanOrEqual(400 / 50);
    }
  });
});

function batchBody() {
  return { start: 0, interval: 1000, ticks: 1, samples: 0, data: new Uint8Array(100), z: 0 };
}
