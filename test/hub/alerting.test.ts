// Hub alerting wired into one hub (the server's wiring, sessions at the transport boundary) on a fake clock.
import { describe, expect, test } from "bun:test";
import { envelope } from "../../shared/protocol/index.ts";
import { encodeMetrics } from "../../shared/protocol/metrics-codec.ts";
import { parseWorkloadSpec, type WorkloadSpec } from "../../shared/workload/index.ts";
import { FakeClock, settle } from "../support/fake-clock.ts";
import { ADMIN, type JoinedNode, joinNode, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const GIB = 1024 ** 3;
const RESOURCES = { cpu_cores: 4, mem_bytes: 8 * GIB, disk_bytes: 100 * GIB, arch: "x64" };

function spec(input: Record<string, unknown>): WorkloadSpec {
  const r = parseWorkloadSpec({ driver: "exec", command: "/bin/true", ...input });
  if (!r.ok) throw new Error(`${r.field}: ${r.message}`);
  return r.spec;
}

async function hub(dir: string, clock: FakeClock) {
  return await openHubCore(dir, {
    clock,
    statusPolicy: {
      suspectAfterMs: 10_000,
      downAfterMs: 60_000,
      restartGraceMs: 30_000,
      keyLifetimeMs: 30 * 86_400_000,
    },
    alerting: { intervalMs: 1000 },
  });
}
type Hub = Awaited<ReturnType<typeof hub>>;

interface AlertJson {
  id: number;
  rule: string;
  node: string | null;
  state: string;
  message: string;
}

async function alerts(core: Hub, state = "all"): Promise<AlertJson[]> {
  const res = await core.app.request(`/api/v1/alerts?state=${state}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  return ((await res.json()) as { alerts: AlertJson[] }).alerts;
}

const rulesOf = (list: AlertJson[]) => list.map((a) => `${a.rule}:${a.node ?? "-"}:${a.state}`).sort();

/** Runs the clock forward in steps, with a heartbeat from each node in `beating` every second. */
async function run(clock: FakeClock, ms: number, beating: JoinedNode[] = [], ids: string[] = []) {
  for (let t = 0; t < ms; t += 250) {
    await clock.advance(250);
    if (t % 1000 !== 0) continue;
    for (const [i, n] of beating.entries()) n.send(envelope("heartbeat", ids[i]!, { pending: 0 }));
  }
}

describe("alerting in one hub", () => {
  test("a closed session opens node-down once; failover placing a replacement opens failover-done; an hour later node-offline-1h; the node's return resolves both node alerts", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    using core = await hub(dir.path, clock);
    const a = await joinNode(core, "a", { level: 2, resources: RESOURCES });
    const b = await joinNode(core, "b", { level: 2, resources: RESOURCES });
    await core.controller.create(spec({ name: "svc" }));
    const first = (await core.workloads.allocsOf("svc"))[0]!;
    const [gone, stays] = first.node === "a" ? [a, b] : [b, a];
    const goneId = first.node;
    const staysId = goneId === "a" ? "b" : "a";
    core.gateway.onClosed(gone.peer);
    await run(clock, 1500, [stays], [staysId]);
    expect(await alerts(core)).toEqual([]);
    await run(clock, 8000, [stays], [staysId]);
    expect(rulesOf(await alerts(core))).toEqual([`failover-done:-:open`, `node-down:${goneId}:open`]);
    const done = (await alerts(core)).find((x) => x.rule === "failover-done")!;
    expect(done.message).toMatch(new RegExp(`^failover of svc: .*placed on ${staysId}$`));
    await run(clock, 3_600_000, [stays], [staysId]);
    // node-down stayed one alert for the whole hour; failover-done resolved itself after an hour.
    expect(rulesOf(await alerts(core))).toEqual([
      "failover-done:-:resolved",
      `node-down:${goneId}:open`,
      `node-offline-1h:${goneId}:open`,
    ]);
    await joinNode(core, goneId, { level: 2, resources: RESOURCES }, { key: gone.key });
    await run(clock, 2000, [stays], [staysId]);
    expect(rulesOf(await alerts(core))).toEqual([
      "failover-done:-:resolved",
      `node-down:${goneId}:resolved`,
      `node-offline-1h:${goneId}:resolved`,
    ]);
  });

  test("a node's disk.used_pct over 90 opens disk-full for that mount; a rollout that failed opens rollout-failed", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    using core = await hub(dir.path, clock);
    const n = await joinNode(core, "n1", { level: 2, resources: RESOURCES });
    const start = clock.now();
    const enc = encodeMetrics({
      start,
      interval: 1000,
      ticks: 1,
      series: [
        { name: 'disk.used_pct{mount="/"}', values: [95.5] },
        { name: 'disk.used_pct{mount="/boot"}', values: [20] },
      ],
    });
    n.send(
      envelope(
        "metrics_batch",
        "n1",
        { start, interval: 1000, ticks: 1, samples: enc.samples, data: new Uint8Array(enc.data), z: enc.z },
        { q: 1, ts: start },
      ),
    );
    await core.ingest.flush();
    await core.controller.create(spec({ name: "web", nodes: ["n1"] }));
    await core.sql.tx((tx) =>
      core.workloads.setRollout(tx, "web", {
        state: "failed",
        from: 1,
        to: 2,
        message: "allocation x on n1 failed",
      }),
    );
    await run(clock, 1500, [n], ["n1"]);
    const list = await alerts(core, "open");
    expect(list.map((x) => [x.rule, x.node, x.message]).sort()).toEqual([
      ["disk-full", "n1", 'disk.used_pct{mount="/"} on n1 is 95.5 (> 90)'],
      ["rollout-failed", null, "rollout of web failed: allocation x on n1 failed"],
    ]);
    await core.sql.tx((tx) => core.workloads.setRollout(tx, "web", { state: "idle" }));
    await run(clock, 1500, [n], ["n1"]);
    expect(rulesOf(await alerts(core, "open"))).toEqual(["disk-full:n1:open"]);
  });

  test("a node whose heartbeats report more dropped samples opens buffer-dropping; ten quiet minutes resolve it", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    using core = await hub(dir.path, clock);
    const n = await joinNode(core, "n1");
    const beat = async (dropped: number) => {
      n.send(envelope("heartbeat", "n1", { pending: 0, epoch: "store-1", produced: 10_000, dropped }));
      await core.registry.flushSeen();
      await run(clock, 1500, [n], ["n1"]);
    };
    await beat(40);
    expect(await alerts(core)).toEqual([]);
    await beat(40);
    expect(await alerts(core)).toEqual([]);
    await beat(75);
    expect((await alerts(core, "open")).map((x) => [x.rule, x.message])).toEqual([
      ["buffer-dropping", "node n1 is dropping samples (35 more, 75 in all)"],
    ]);
    // Heartbeats go on without counters (the agent sends them now and then): nothing new dropped.
    await run(clock, 540_000, [n], ["n1"]);
    expect(rulesOf(await alerts(core))).toEqual(["buffer-dropping:n1:open"]);
    await run(clock, 70_000, [n], ["n1"]);
    expect(rulesOf(await alerts(core))).toEqual(["buffer-dropping:n1:resolved"]);
  });

  test("a change is queued once per webhook that hears it: severity and event filters apply", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    using core = await hub(dir.path, clock);
    const loud = await core.webhooks.create({
      name: "all",
      url: "http://127.0.0.1:9/all",
      events: ["opened", "acknowledged", "resolved"],
      min_severity: "info",
      created_at: clock.now(),
    });
    const critical = await core.webhooks.create({
      name: "pager",
      url: "http://127.0.0.1:9/pager",
      events: ["opened"],
      min_severity: "critical",
      created_at: clock.now(),
    });
    const n = await joinNode(core, "n1");
    const raise = async (q: number, severity: string, source: string) => {
      n.send(
        envelope(
          "event",
          "n1",
          { kind: "alert", at: clock.now(), message: source, fields: { severity, source } },
          { q },
        ),
      );
      await core.ingest.flush();
    };
    await raise(1, "warning", "rule:a");
    await raise(2, "critical", "rule:b");
    await raise(3, "critical", "rule:b"); // the same alert again: nothing new to queue
    const b = (await alerts(core, "open")).find((x) => x.rule === "rule:b")!;
    await core.alerts.ack(b.id, "admin", undefined);
    expect([await core.webhooks.pending(loud.id), await core.webhooks.pending(critical.id)]).toEqual([3, 1]);
  });
});

describe("webhook delivery in one hub", () => {
  /** A receiver that answers each request with the next status of `statuses` (then 200), recording bodies. */
  function receiver(statuses: number[]) {
    const bodies: { alerts: { event: string; rule: string }[]; text: string }[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        bodies.push((await req.json()) as (typeof bodies)[number]);
        return new Response("", { status: statuses[bodies.length - 1] ?? 200 });
      },
    });
    return { url: `http://127.0.0.1:${server.port}/`, bodies, [Symbol.dispose]: () => server.stop(true) };
  }

  test("changes due together go in one POST; a failing receiver is retried after 1 s, 2 s, 4 s (doubling from the base), each attempt logged", async () => {
    using dir = tempDir();
    const clock = new FakeClock();
    using core = await hub(dir.path, clock);
    using rx = receiver([500, 503, 500]);
    const hook = await core.webhooks.create({
      name: "rx",
      url: rx.url,
      events: ["opened", "resolved"],
      min_severity: "info",
      created_at: clock.now(),
    });
    const n = await joinNode(core, "n1");
    const t0 = clock.now();
    for (const [q, source] of [
      [1, "rule:a"],
      [2, "rule:b"],
    ] as const)
      n.send(envelope("event", "n1", { kind: "alert", at: t0, message: source, fields: { source } }, { q }));
    await core.ingest.flush();
    const attempts = async (count: number) =>
      waitFor(
        async () => ((await core.webhooks.deliveries(hook.id, 100)).length >= count ? true : undefined),
        {
          what: `${count} delivery attempts`,
        },
      );
    await attempts(1);
    expect(rx.bodies).toHaveLength(1);
    expect(rx.bodies[0]!.alerts.map((a) => [a.event, a.rule])).toEqual([
      ["opened", "rule:a"],
      ["opened", "rule:b"],
    ]);
    expect(rx.bodies[0]!.text).toContain("2 alert changes");
    // Not before the wait is over; then once.
    await clock.advance(900);
    await settle();
    expect(rx.bodies).toHaveLength(1);
    await clock.advance(100);
    await attempts(2);
    await clock.advance(1900);
    await settle();
    expect(rx.bodies).toHaveLength(2);
    await clock.advance(100);
    await attempts(3);
    await clock.advance(4000);
    await attempts(4);
    const log = (await core.webhooks.deliveries(hook.id, 100)).reverse();
    expect(log.map((d) => [d.at - t0, d.attempt, d.status, d.ok])).toEqual([
      [0, 1, 500, false],
      [1000, 2, 503, false],
      [3000, 3, 500, false],
      [7000, 4, 200, true],
    ]);
    expect(log.every((d) => d.notifications.length === 2)).toBe(true);
    expect(await core.webhooks.pending(hook.id)).toBe(0);
    // Those two are not sent again however long the clock runs (the silent node's own alerts are).
    await clock.advance(600_000);
    await waitFor(() => rx.bodies.length > 4, { what: "the silent node's node-down" });
    const later = rx.bodies.slice(4).flatMap((b) => b.alerts.map((a) => a.rule));
    expect(later.length).toBeGreaterThan(0);
    expect(later.filter((r) => r === "rule:a" || r === "rule:b")).toEqual([]);
  });
});

test("webhook store: settled notifications go after a week and the delivery log after a month; queued ones stay", async () => {
  using dir = tempDir();
  const clock = new FakeClock();
  using core = await hub(dir.path, clock);
  // The store alone: no round of the hub's notifier delivers (and logs) what this test queues.
  core.notifier.stop();
  await core.notifier.settled();
  const t0 = clock.now();
  const hook = await core.webhooks.create({
    name: "x",
    url: "http://127.0.0.1:9/",
    events: ["opened"],
    min_severity: "info",
    created_at: t0,
  });
  const change = (id: number) => ({
    event: "opened" as const,
    alert: { id, severity: "warning" } as never,
  });
  for (const id of [1, 2, 3]) await core.webhooks.enqueue(core.sql, hook.id, change(id), t0);
  const [one, two] = await core.webhooks.due(hook.id, t0, 10);
  await core.webhooks.settle(
    [one!],
    { webhook: hook.id, at: t0, status: 200, ok: true, error: null, duration_ms: 1 },
    () => 0,
  );
  await core.webhooks.settle(
    [two!],
    { webhook: hook.id, at: t0, status: 500, ok: false, error: "HTTP 500", duration_ms: 1 },
    () => undefined,
  );
  const day = 86_400_000;
  expect(await core.webhooks.prune(t0 - 1, t0 - 1)).toBe(0);
  // A week on: the delivered and the given-up rows go, the queued one stays; the log is younger than a month.
  expect(await core.webhooks.prune(t0 + 7 * day, t0 - 23 * day)).toBe(2);
  expect(await core.webhooks.pending(hook.id)).toBe(1);
  expect(await core.webhooks.deliveries(hook.id, 10)).toHaveLength(2);
  expect(await core.webhooks.prune(t0 + 30 * day, t0 + 30 * day)).toBe(2);
  expect(await core.webhooks.deliveries(hook.id, 10)).toHaveLength(0);
  expect(await core.webhooks.pending(hook.id)).toBe(1);
});
