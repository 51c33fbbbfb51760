// Specification of the API's input bounds: a body limit on every route, desired sets within the agents' frame limit, safe /metrics.
import { expect, test } from "bun:test";
import { fleetMetrics } from "../../hub/api/fleet-metrics.ts";
import { servedRoutes } from "../../hub/api/openapi.ts";
import { call } from "../support/api-routes.ts";
import { decodeFrame, encodeFrame, envelope } from "../../shared/protocol/index.ts";
import { encodeMetrics } from "../../shared/protocol/metrics-codec.ts";
import { ADMIN, joinNode, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";

test("bounds: every route refuses a body over --api-body-limit with 413 naming the limit, before any handler runs", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path, { maxBodyBytes: 4096 });
  const body = JSON.stringify({ name: "x", pad: "a".repeat(5000) });
  const routes = servedRoutes(core.app).filter((r) => r.method !== "GET");
  expect(routes.length).toBeGreaterThan(15);
  for (const r of routes) {
    const url = r.path.replace(/\{[^}]+\}/g, "x1");
    const res = await core.app.request(url, {
      method: r.method,
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body,
    });
    expect({ route: `${r.method} ${r.path}`, status: res.status }).toEqual({
      route: `${r.method} ${r.path}`,
      status: 413,
    });
    const e = ((await res.json()) as { error: { code: string; message: string; field: string } }).error;
    expect(e.message).toContain("4096 bytes");
    expect(e.field).toBe("body");
  }
  // The same limit holds for a body sent without a length (chunked).
  const stream = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(body));
      c.close();
    },
  });
  const chunked = await core.app.request("/api/v1/workloads", {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: stream,
    duplex: "half",
  });
  expect(chunked.status).toBe(413);
});

test("bounds: a workload whose desired set would exceed the agents' frame limit is refused at the API naming the field", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path, { maxFrameBytes: 64 * 1024 });
  const spec = (name: string, pad: number) => ({
    name,
    driver: "exec",
    command: "/bin/sleep",
    nodes: ["n1"],
    env: { PAD: "a".repeat(pad) },
  });
  const big = await call(core.app, ADMIN, "POST", "/api/v1/workloads", spec("big", 70 * 1024));
  expect(big.status).toBe(413);
  const e = ((await big.json()) as { error: { field: string; message: string } }).error;
  expect(e.field).toBe("env");
  expect(e.message).toContain("65536");
  expect((await call(core.app, ADMIN, "GET", "/api/v1/workloads/big")).status).toBe(404);
  // Each fits alone; the third no longer fits beside the two already on the node.
  expect((await call(core.app, ADMIN, "POST", "/api/v1/workloads", spec("a", 25 * 1024))).status).toBe(201);
  expect((await call(core.app, ADMIN, "POST", "/api/v1/workloads", spec("b", 25 * 1024))).status).toBe(201);
  const third = await call(core.app, ADMIN, "POST", "/api/v1/workloads", spec("c", 25 * 1024));
  expect(third.status).toBe(413);
  expect(((await third.json()) as { error: { message: string } }).error.message).toContain("node n1");
  // A change that grows one past the limit is refused the same way.
  const grow = await call(core.app, ADMIN, "PUT", "/api/v1/workloads/a", spec("a", 60 * 1024));
  expect(grow.status).toBe(413);
});

test("bounds: node series in /metrics: labels escaped, no node sets its own node label, one family per name", () => {
  const latest = new Map([
    [
      "n1",
      new Map<string, [number, number]>([
        ['dup{node="other"}', [1, 5]],
        ['weird{path="a\\"b\\\\c\nd",le="1",__name__="x"}', [1, 1]],
        ['probe.rtt_ms{target="10.0.0.1:80"}', [1, 20]],
        ["mem.used_mb", [1, 2]],
        ["requests_total", [1, 7]],
        ["broken{unterminated", [1, 1]],
      ]),
    ],
    ["n2", new Map<string, [number, number]>([["dup", [1, 6]]])],
  ]);
  const { text, skipped } = fleetMetrics(latest);
  expect(skipped).toBe(1);
  const lines = text.trim().split("\n");
  expect(lines).toContain('novacron_node_dup{exported_node="other",node="n1"} 5');
  expect(lines).toContain('novacron_node_dup{node="n2"} 6');
  expect(lines.filter((l) => l === "# TYPE novacron_node_dup gauge")).toHaveLength(1);
  expect(lines).toContain('novacron_node_weird{exported_le="1",name="x",node="n1",path="a\\"b\\\\c\\nd"} 1');
  // Base units: milliseconds become seconds, MiB become bytes.
  expect(lines).toContain('novacron_node_probe_rtt_seconds{node="n1",target="10.0.0.1:80"} 0.02');
  expect(lines).toContain('novacron_node_mem_used_bytes{node="n1"} 2097152');
  expect(lines).toContain("# TYPE novacron_node_requests_total counter");
});

test("bounds: the series kept per node for /metrics are bounded and the rest counted", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path, { maxSeriesPerNode: 3 });
  await joinNode(core, "n1");
  const start = Date.now();
  const cols = Array.from({ length: 10 }, (_, i) => ({ name: `s${i}`, values: [i] }));
  const enc = encodeMetrics({ start, interval: 1000, ticks: 1, series: cols });
  const body = {
    start,
    interval: 1000,
    ticks: 1,
    samples: enc.samples,
    data: new Uint8Array(enc.data),
    z: enc.z,
  };
  core.ingest.receive(
    "n1",
    decodeFrame(encodeFrame(envelope("metrics_batch", "n1", body, { q: 1, ts: start }))),
  );
  await core.ingest.flush();
  expect(core.ingest.latest().get("n1")?.size).toBe(3);
  expect(core.metrics.value("novacron_hub_node_series_over_limit", { node: "n1" })).toBe(7);
  expect(core.metrics.value("novacron_hub_node_series", { node: "n1" })).toBe(3);
  // Every sample is still stored; only the re-export is bounded.
  expect(await core.ingest.series("n1")).toHaveLength(10);
});
