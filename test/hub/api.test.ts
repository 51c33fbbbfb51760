// Specification of the hub HTTP API: one table of cases, run in-process with app.request() and against a real hub.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHubCore } from "../../hub/core.ts";
import { createLogger } from "../../shared/log.ts";
import { type Envelope, envelope, type Message } from "../../shared/protocol/index.ts";
import { encodeMetrics } from "../../shared/protocol/metrics-codec.ts";
import { joinTokenKey, nodeTokenProof, parseJoinToken } from "../../shared/secure/index.ts";
import { joinNode } from "../support/hub-core.ts";
import { openTestStore } from "../support/hub-store.ts";
import { startHub, tempDir } from "../support/processes.ts";
import { connectSecure } from "../support/secure-client.ts";
import { waitFor } from "../support/wait.ts";

const ADMIN = "test-admin-token";
const JOIN = "test-join-token";
const NODE = "edge-1";
const T0 = 1_718_000_000_000;
const SEC = 1000;
const quiet = createLogger("test", { write: () => {} });

interface Res {
  status: number;
  type: string;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: a JSON body is checked field by field with expect()
  json: any;
}

/** What a test case needs of a hub: HTTP requests, and one agent session speaking the wire protocol. */
interface Target extends AsyncDisposable {
  request(path: string, headers: Record<string, string>): Promise<Res>;
  send(env: Envelope): void;
  received: Message[];
}

async function toRes(r: Response): Promise<Res> {
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, type: r.headers.get("content-type") ?? "", text, json };
}

/** The hub's parts wired as server.ts wires them, in this process; the agent session is a Peer. */
async function inProcess(dir: string): Promise<Target> {
  const store = await openTestStore(dir);
  const core = await createHubCore(store.sql, {
    hubId: "hub-test",
    joinToken: JOIN,
    adminToken: ADMIN,
    heartbeatMs: 5000,
    maxFrameBytes: 1 << 20,
    statusPolicy: {
      suspectAfterMs: 15_000,
      downAfterMs: 60_000,
      restartGraceMs: 30_000,
      keyLifetimeMs: 86_400_000,
    },
    log: quiet,
  });
  const { app, close } = core;
  // A real handshake with the session layer; the hello the seed sends gets this session's join proof.
  const node = await joinNode(core, NODE, {}, { join: false, hello: false });
  return {
    request: async (path, headers) => toRes(await app.request(path, { headers })),
    send: (env) => {
      if (env.t === "hello") {
        const t = parseJoinToken(JOIN);
        (env.b as Record<string, unknown>).join = {
          id: t.id,
          proof: nodeTokenProof(joinTokenKey(t.secret), node.channel.hash),
        };
      }
      node.send(env);
    },
    received: node.received,
    async [Symbol.asyncDispose]() {
      close();
      await core.settled();
      await store.close();
    },
  };
}

/** A real `novacron-hub serve` process and a real WebSocket session to it. */
async function realServer(dir: string): Promise<Target> {
  const hub = await startHub({ data: dir });
  const client = await connectSecure(hub.wsUrl, { nodeId: NODE, joinToken: hub.joinToken });
  return {
    request: async (path, headers) => toRes(await fetch(`${hub.url}${path}`, { headers })),
    send: (env) => client.send(env),
    received: client.received,
    async [Symbol.asyncDispose]() {
      await client[Symbol.asyncDispose]();
      await hub[Symbol.asyncDispose]();
    },
  };
}

function metricsBatch(q: number, start: number, series: Record<string, (number | null)[]>): Envelope {
  const cols = Object.entries(series).map(([name, values]) => ({ name, values }));
  const ticks = cols[0]!.values.length;
  const enc = encodeMetrics({ start, interval: SEC, ticks, series: cols });
  const body = {
    start,
    interval: SEC,
    ticks,
    samples: enc.samples,
    data: new Uint8Array(enc.data),
    z: enc.z,
  };
  return envelope("metrics_batch", NODE, body, { q, ts: start });
}

/** Joins edge-1, stores two batches (8 samples) and resends the first once: the same frames for both targets. */
async function seed(t: Target): Promise<void> {
  const seen = (pred: (m: Message) => boolean, what: string) =>
    waitFor(() => t.received.filter(pred).length, { timeoutMs: 5000, intervalMs: 5, what });
  t.send(
    envelope(
      "hello",
      NODE,
      {
        node_id: NODE,
        level: 2,
        labels: { site: "lab" },
        capabilities: ["exec"],
        resources: { cpu_cores: 2 },
        version: "test",
        boot_id: "boot-1",
        last_acked: 0,
      },
      { ts: Date.now() },
    ),
  );
  await seen((m) => m.t === "welcome", "welcome");
  t.send(metricsBatch(1, T0, { "cpu.util": [10, 20, 30], "mem.used_pct": [50, 51, 52] }));
  t.send(metricsBatch(2, T0 + 3 * SEC, { "cpu.util": [40, null, 60] }));
  const acked2 = (m: Message) => m.t === "ack" && m.b.upto === 2;
  const before = await seen(acked2, "ack of 2");
  t.send(metricsBatch(1, T0, { "cpu.util": [10, 20, 30], "mem.used_pct": [50, 51, 52] }));
  await waitFor(() => t.received.filter(acked2).length > before, {
    timeoutMs: 5000,
    intervalMs: 5,
    what: "the duplicate to be answered",
  });
  // A duplicate is answered at once and counted with the next group the hub commits.
  await waitFor(
    async () =>
      (
        (await t.request(`/api/v1/nodes/${NODE}`, { authorization: `Bearer ${ADMIN}` })).json as {
          ingest?: { duplicates?: number };
        }
      )?.ingest?.duplicates === 1,
    { timeoutMs: 5000, intervalMs: 5, what: "the duplicate to be counted" },
  );
}

const ROUTES = [
  "/api/v1/nodes",
  `/api/v1/nodes/${NODE}`,
  `/api/v1/nodes/${NODE}/series`,
  `/api/v1/nodes/${NODE}/metrics?series=cpu.util`,
];

const BAD_AUTH: [string, Record<string, string>][] = [
  ["without a bearer token", {}],
  ["with a wrong bearer token", { authorization: "Bearer not-the-admin-token" }],
  ["with the token but no Bearer scheme", { authorization: ADMIN }],
  ["with Basic auth", { authorization: `Basic ${btoa(`admin:${ADMIN}`)}` }],
];

const admin = { authorization: `Bearer ${ADMIN}` };

interface Case {
  name: string;
  path: string;
  headers?: Record<string, string>;
  check(r: Res): void;
}

function expectJsonError(r: Res, status: number, code: string): void {
  expect(r.status).toBe(status);
  expect(r.type).toStartWith("application/json");
  expect(r.json.error.code).toBe(code);
  expect(r.json.error.message).toBeString();
}

const CASES: Case[] = [
  {
    name: "GET /healthz answers 200 {status: ok} without auth",
    path: "/healthz",
    check: (r) => {
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ status: "ok" });
    },
  },
  {
    name: "GET /metrics answers Prometheus text without auth",
    path: "/metrics",
    check: (r) => {
      expect(r.status).toBe(200);
      expect(r.type).toStartWith("text/plain");
      expect(r.text).toContain("# TYPE novacron_hub_samples_ingested_total counter");
      expect(r.text).toContain("\nnovacron_hub_samples_ingested_total 8\n");
      expect(r.text).toContain("\nnovacron_hub_duplicates_total 1\n");
    },
  },
  ...ROUTES.flatMap((path) =>
    BAD_AUTH.map(
      ([how, headers]): Case => ({
        name: `GET ${path} answers 401 ${how}`,
        path,
        headers,
        check: (r) => expectJsonError(r, 401, "unauthorized"),
      }),
    ),
  ),
  {
    name: "a percent-encoded route is no way around the token",
    path: "/api/v1/%6Eodes",
    check: (r) => expectJsonError(r, 401, "unauthorized"),
  },
  {
    name: "an unknown node's route answers 401 without a token (auth comes before lookup)",
    path: "/api/v1/nodes/ghost",
    check: (r) => expectJsonError(r, 401, "unauthorized"),
  },
  {
    name: "GET /api/v1/nodes lists each node with exactly the fields of the stable interface",
    path: "/api/v1/nodes",
    headers: admin,
    check: (r) => {
      expect(r.status).toBe(200);
      expect(r.json.nodes).toHaveLength(1);
      const n = r.json.nodes[0];
      expect(Object.keys(n).sort()).toEqual(
        ["capabilities", "connected", "id", "labels", "last_seen", "level", "status"].sort(),
      );
      expect(n).toEqual({
        id: NODE,
        level: 2,
        status: "ready",
        connected: true,
        labels: { site: "lab" },
        capabilities: ["exec"],
        last_seen: expect.any(Number),
      });
      expect(Math.abs(n.last_seen - Date.now())).toBeLessThan(60_000);
    },
  },
  {
    name: "the Bearer scheme is matched without regard to case",
    path: "/api/v1/nodes",
    headers: { authorization: `bearer ${ADMIN}` },
    check: (r) => expect(r.status).toBe(200),
  },
  {
    name: "GET /api/v1/nodes/{id} is the node plus its ingest counters",
    path: `/api/v1/nodes/${NODE}`,
    headers: admin,
    check: (r) => {
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({
        id: NODE,
        level: 2,
        status: "ready",
        connected: true,
        labels: { site: "lab" },
        capabilities: ["exec"],
        last_seen: expect.any(Number),
        ingest: { samples: 8, batches: 2, last_seq: 2, duplicates: 1 },
      });
    },
  },
  {
    name: "GET /api/v1/nodes/{id} of an unknown node answers 404 JSON",
    path: "/api/v1/nodes/ghost",
    headers: admin,
    check: (r) => expectJsonError(r, 404, "not_found"),
  },
  {
    name: "GET /api/v1/nodes/{id}/series of an unknown node answers 404 JSON",
    path: "/api/v1/nodes/ghost/series",
    headers: admin,
    check: (r) => expectJsonError(r, 404, "not_found"),
  },
  {
    name: "GET /api/v1/nodes/{id}/metrics of an unknown node answers 404 JSON",
    path: "/api/v1/nodes/ghost/metrics?series=cpu.util",
    headers: admin,
    check: (r) => expectJsonError(r, 404, "not_found"),
  },
  {
    name: "an unknown /api/v1 route answers 404 JSON",
    path: "/api/v1/nope",
    headers: admin,
    check: (r) => expectJsonError(r, 404, "not_found"),
  },
  {
    name: "GET /api/v1/nodes/{id}/series lists the series names the node sent",
    path: `/api/v1/nodes/${NODE}/series`,
    headers: admin,
    check: (r) => {
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ series: ["cpu.util", "mem.used_pct"] });
    },
  },
  {
    name: "GET /api/v1/nodes/{id}/metrics returns the points within [from, to]",
    path: `/api/v1/nodes/${NODE}/metrics?series=cpu.util&from=${T0 + SEC}&to=${T0 + 5 * SEC}`,
    headers: admin,
    check: (r) => {
      expect(r.status).toBe(200);
      expect(r.json).toEqual({
        series: "cpu.util",
        points: [
          [T0 + SEC, 20],
          [T0 + 2 * SEC, 30],
          [T0 + 3 * SEC, 40],
          [T0 + 5 * SEC, 60],
        ],
      });
    },
  },
  ...(
    [
      ["without series", `from=${T0}&to=${T0 + SEC}`, "series"],
      ["with a non-numeric from", "series=cpu.util&from=yesterday", "from"],
      ["with a non-numeric to", `series=cpu.util&from=${T0}&to=soon`, "to"],
      ["with a negative from", "series=cpu.util&from=-5", "from"],
      ["with from after to", `series=cpu.util&from=${T0 + 5 * SEC}&to=${T0}`, "from"],
    ] as const
  ).map(
    ([how, query, field]): Case => ({
      name: `GET /api/v1/nodes/{id}/metrics ${how} answers 400 naming the field ${field}`,
      path: `/api/v1/nodes/${NODE}/metrics?${query}`,
      headers: admin,
      check: (r) => {
        expectJsonError(r, 400, "bad_request");
        expect(r.json.error.field).toBe(field);
        expect(r.json.error.message).toContain(field);
      },
    }),
  ),
];

const TARGETS: [string, (dir: string) => Promise<Target>][] = [
  ["in-process", inProcess],
  ["real server", realServer],
];

for (const [kind, open] of TARGETS) {
  describe(`hub API (${kind})`, () => {
    const dir = tempDir();
    let target: Target;
    beforeAll(async () => {
      target = await open(dir.path);
      await seed(target);
    });
    afterAll(async () => {
      await target?.[Symbol.asyncDispose]();
      dir[Symbol.dispose]();
    });
    for (const c of CASES) {
      test(c.name, async () => {
        c.check(await target.request(c.path, c.headers ?? {}));
      });
    }
  });
}
