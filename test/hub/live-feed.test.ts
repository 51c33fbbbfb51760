// The live feed behind GET /api/v1/stream: what changed, as events; and the route as a client reads it.
import { expect, test } from "bun:test";
import { Hono } from "hono";
import { streamApi } from "../../hub/api/stream.ts";
import {
  type AllocView,
  diffSnapshots,
  emptySnapshot,
  encodeEvent,
  type NodeView,
  type Snapshot,
} from "../../hub/live/index.ts";
import { FakeClock, settle } from "../support/fake-clock.ts";
import { ADMIN, joinNode, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";

const node = (id: string, health = "ready", at = 1): NodeView => ({
  id,
  health,
  status: health,
  at,
  reason: "r",
});
const alloc = (id: string, status = "running"): AllocView => ({
  id,
  workload: "w",
  node: "n1",
  status,
  healthy: true,
  updated: 1,
});
function snap(o: Partial<Snapshot>): Snapshot {
  return { ...emptySnapshot(), ...o };
}

test("live diff: a node that appears or changes health is sent, an unchanged one is not", () => {
  const a = snap({ nodes: new Map([["n1", node("n1")]]) });
  const b = snap({
    nodes: new Map([
      ["n1", node("n1")],
      ["n2", node("n2")],
    ]),
  });
  const none = { failover: [], alerts: [] };
  expect(diffSnapshots(a, b, none)).toEqual([{ event: "node", data: node("n2") }]);
  const c = snap({
    nodes: new Map([
      ["n1", node("n1", "suspect", 5)],
      ["n2", node("n2")],
    ]),
  });
  expect(diffSnapshots(b, c, none)).toEqual([{ event: "node", data: node("n1", "suspect", 5) }]);
  expect(diffSnapshots(c, c, none)).toEqual([]);
});

test("live diff: allocations that start, change status or vanish are sent (a vanished one as stopped)", () => {
  const a = snap({ allocs: new Map([["a1", alloc("a1", "starting")]]) });
  const b = snap({ allocs: new Map([["a1", alloc("a1", "running")]]) });
  const none = { failover: [], alerts: [] };
  expect(diffSnapshots(a, b, none)).toEqual([{ event: "alloc", data: alloc("a1", "running") }]);
  expect(diffSnapshots(b, snap({}), none)).toEqual([{ event: "alloc", data: alloc("a1", "stopped") }]);
});

test("live diff: failover events newer than the last seen go out oldest first; alerts when new or their state moves", () => {
  const prev = snap({ failoverId: 2, alerts: new Map([["7", "open|100|"]]) });
  const next = snap({
    failoverId: 4,
    alerts: new Map([
      ["7", "acknowledged|150|150"],
      ["8", "open|160|"],
      ["6", "resolved|90|"],
    ]),
  });
  const prevAlerts = snap({ alerts: new Map([["6", "resolved|90|"]]) });
  const out = diffSnapshots({ ...prev, alerts: new Map([...prev.alerts, ...prevAlerts.alerts]) }, next, {
    failover: [{ id: 4 }, { id: 3 }, { id: 2 }, { id: 1 }],
    alerts: [{ id: 8 }, { id: 7 }, { id: 6 }],
  });
  expect(out.map((e) => `${e.event}:${(e.data as { id: unknown }).id}`)).toEqual([
    "failover:3",
    "failover:4",
    "alert:7",
    "alert:8",
  ]);
});

test("live diff: each event is one `event:` line and one JSON `data:` line", () => {
  expect(encodeEvent({ event: "node", data: node("n1") })).toBe(
    `event: node\ndata: ${JSON.stringify(node("n1"))}\n\n`,
  );
});

test("live feed: looks at the hub only while someone listens, and tells a listener when a node joins and when its session ends", async () => {
  using dir = tempDir();
  const clock = new FakeClock(Date.now());
  using core = await openHubCore(dir.path, { clock });
  expect(clock.pending).toBeGreaterThan(0);
  const before = clock.pending;
  const heard: { event: string; data: Record<string, unknown> }[] = [];
  const stop = core.live.subscribe((e) => heard.push(e as never));
  expect(clock.pending).toBe(before + 1);
  await joinNode(core, "edge-1");
  await core.live.tick();
  expect(heard).toContainEqual({
    event: "node",
    data: expect.objectContaining({ id: "edge-1", health: "ready" }),
  });
  heard.length = 0;
  core.gateway.endSession("edge-1", "test ends it");
  // The transition is in the failover log once written.
  await core.settled();
  await core.live.tick();
  expect(heard.filter((e) => e.event === "node")).toEqual([
    { event: "node", data: expect.objectContaining({ id: "edge-1", health: "suspect", status: "suspect" }) },
  ]);
  expect(heard.some((e) => e.event === "failover" && String(e.data.change).includes("suspect"))).toBe(true);
  const pending = clock.pending;
  stop();
  expect(clock.pending).toBe(pending - 1);
  // The failover pass the transition queued runs before the database closes.
  await settle();
});

test("GET /api/v1/stream: refused without the token; with it, server-sent events a fetch() reader can parse", async () => {
  using dir = tempDir();
  const clock = new FakeClock(Date.now());
  using core = await openHubCore(dir.path, { clock });
  expect((await core.app.request("/api/v1/stream")).status).toBe(401);
  expect(
    (await core.app.request("/api/v1/stream", { headers: { authorization: "Bearer stolen-guess" } })).status,
  ).toBe(401);
  const ctl = new AbortController();
  const res = await core.app.request("/api/v1/stream", {
    headers: { authorization: `Bearer ${ADMIN}` },
    signal: ctl.signal,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("text/event-stream");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  expect((await reader.read()).value).toStartWith(": ");
  expect(core.live.listeners).toBe(1);
  await joinNode(core, "edge-2");
  await core.live.tick();
  let text = "";
  while (!text.includes("\n\n")) text += (await reader.read()).value ?? "";
  const [eventLine, dataLine] = text.split("\n");
  expect(eventLine).toBe("event: node");
  expect(JSON.parse(dataLine!.slice("data: ".length))).toMatchObject({ id: "edge-2", health: "ready" });
  await reader.cancel();
  expect(core.live.listeners).toBe(0);
});

test("GET /api/v1/stream: a stream whose token stops being accepted (revoked, expired) ends by itself", async () => {
  using dir = tempDir();
  const clock = new FakeClock(Date.now());
  using core = await openHubCore(dir.path, { clock });
  let accepted = true;
  const app = new Hono();
  app.route("/stream", streamApi(core.live, { recheckMs: 20, stillAllowed: async () => accepted }));
  const res = await app.request("/stream", { headers: { authorization: "Bearer t" } });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  await reader.read();
  expect(core.live.listeners).toBe(1);
  accepted = false;
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  expect(text).toContain("no longer accepted");
  expect(core.live.listeners).toBe(0);
});
