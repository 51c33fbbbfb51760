// Specification of the alert routes on an in-process hub: the lifecycle of agent alerts, ack, rules and webhooks.
import { expect, test } from "bun:test";
import { loadHubConfig } from "../../hub/config/index.ts";
import type { ConfigError } from "../../shared/errors.ts";
import { envelope } from "../../shared/protocol/index.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { joinNode, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";

type Json = Record<string, unknown>;
interface AlertJson {
  id: number;
  source: string;
  rule: string;
  node: string | null;
  severity: string;
  state: string;
  message: string;
  started_at: number;
  updated_at: number;
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  resolved_at: number | null;
}

async function hub(dir: string) {
  const clock = new FakeClock();
  const core = await openHubCore(dir, { clock });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await core.app.request(path, {
      method,
      headers: { authorization: "Bearer admin", "content-type": "application/json" },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Json };
  };
  return { core, clock, call };
}

test("an agent's alert opens one hub alert (raised again, it opens nothing new), its clear resolves it; the event list without state stays as before", async () => {
  using dir = tempDir();
  const { core, call } = await hub(dir.path);
  using _core = core;
  const n = await joinNode(core, "n1");
  let q = 0;
  const event = async (kind: "alert" | "alert_clear", message: string) => {
    n.send(
      envelope(
        "event",
        "n1",
        { kind, at: Date.now(), message, fields: { severity: "critical", source: "rule:cpu-hot" } },
        { q: ++q },
      ),
    );
    await core.ingest.flush();
  };
  await event("alert", "CPU above 80%");
  await event("alert", "CPU above 80% still");
  const open = (await call("GET", "/api/v1/alerts?state=open")).body.alerts as AlertJson[];
  expect(open.map((a) => [a.source, a.rule, a.node, a.severity, a.state, a.message])).toEqual([
    ["agent", "rule:cpu-hot", "n1", "critical", "open", "CPU above 80%"],
  ]);
  await event("alert_clear", "CPU back under 70%");
  expect((await call("GET", "/api/v1/alerts?state=open")).body.alerts).toEqual([]);
  const all = (await call("GET", "/api/v1/alerts?state=all&node=n1")).body.alerts as AlertJson[];
  expect(all.map((a) => [a.state, a.resolved_at !== null])).toEqual([["resolved", true]]);
  // Existing callers: no state, one row per raise and clear.
  const legacy = (await call("GET", "/api/v1/alerts")).body.alerts as { state: string; message: string }[];
  expect(legacy.map((a) => [a.state, a.message])).toEqual([
    ["cleared", "CPU back under 70%"],
    ["raised", "CPU above 80% still"],
    ["raised", "CPU above 80%"],
  ]);
  expect((await call("GET", "/api/v1/alerts?state=firing")).body).toEqual({
    error: {
      code: "bad_request",
      message: "query parameter state must be one of open, acknowledged, resolved, all",
      field: "state",
    },
  });
});

test("ack: an open alert becomes acknowledged by the request's actor with its comment in the history; a second ack is a 409", async () => {
  using dir = tempDir();
  const { core, call } = await hub(dir.path);
  using _core = core;
  const n = await joinNode(core, "n1");
  n.send(
    envelope(
      "event",
      "n1",
      { kind: "alert", at: Date.now(), message: "disk nearly full", fields: { source: "rule:disk" } },
      { q: 1 },
    ),
  );
  await core.ingest.flush();
  const [alert] = (await call("GET", "/api/v1/alerts?state=open")).body.alerts as AlertJson[];
  const acked = await call("POST", `/api/v1/alerts/${alert!.id}/ack`, { comment: "cleaning up /var/log" });
  expect(acked.status).toBe(200);
  const a = acked.body.alert as AlertJson;
  expect([a.state, a.acknowledged_by, a.acknowledged_at !== null]).toEqual([
    "acknowledged",
    "bootstrap",
    true,
  ]);
  expect((await call("GET", "/api/v1/alerts?state=acknowledged")).body.alerts).toHaveLength(1);
  expect((await call("GET", "/api/v1/alerts?state=open")).body.alerts).toHaveLength(0);
  const again = await call("POST", `/api/v1/alerts/${alert!.id}/ack`, {});
  expect([again.status, (again.body.error as Json).code]).toEqual([409, "conflict"]);
  const shown = await call("GET", `/api/v1/alerts/${alert!.id}`);
  expect(
    (shown.body.history as { event: string; actor: string; message: string }[]).map((h) => [
      h.event,
      h.actor,
      h.message,
    ]),
  ).toEqual([
    ["opened", "node:n1", "disk nearly full"],
    ["acknowledged", "bootstrap", "cleaning up /var/log"],
  ]);
  expect((await call("POST", "/api/v1/alerts/999/ack")).status).toBe(404);
  expect((await call("POST", "/api/v1/alerts/abc/ack")).body.error).toMatchObject({ field: "id" });
  expect((await call("POST", `/api/v1/alerts/${alert!.id}/ack`, "{oops")).body.error).toMatchObject({
    field: "body",
  });
  expect((await call("POST", `/api/v1/alerts/${alert!.id}/ack`, { comment: 7 })).body.error).toMatchObject({
    field: "comment",
  });
});

test("alert rules: built-ins listed; an operator rule is added, replaces a built-in of its name, and is deleted; bad ones name the field", async () => {
  using dir = tempDir();
  const { core, call } = await hub(dir.path);
  using _core = core;
  const names = async () =>
    ((await call("GET", "/api/v1/alert-rules")).body.rules as { name: string; enabled: boolean }[]).map(
      (r) => `${r.name}${r.enabled ? "" : " (off)"}`,
    );
  expect(await names()).toEqual([
    "node-down",
    "node-offline-1h",
    "disk-full",
    "rollout-failed",
    "failover-done",
    "failover-failed",
    "buffer-dropping",
  ]);
  const hot = await call("POST", "/api/v1/alert-rules", {
    name: "cpu-hot",
    kind: "series",
    series: "cpu.util",
    op: ">",
    threshold: 95,
    for: "5m",
  });
  expect([hot.status, (hot.body.rule as Json).for]).toEqual([201, "5m"]);
  expect(
    (
      await call("POST", "/api/v1/alert-rules", {
        name: "disk-full",
        kind: "series",
        series: "disk.used_pct",
        threshold: 95,
        enabled: false,
      })
    ).status,
  ).toBe(201);
  expect(await names()).toContain("disk-full (off)");
  expect(await names()).toContain("cpu-hot");
  expect((await call("DELETE", "/api/v1/alert-rules/cpu-hot")).status).toBe(200);
  const restored = await call("DELETE", "/api/v1/alert-rules/disk-full");
  expect((restored.body.restored as Json).threshold).toBe(90);
  expect(await names()).not.toContain("cpu-hot");
  expect((await call("DELETE", "/api/v1/alert-rules/node-down")).status).toBe(409);
  expect((await call("DELETE", "/api/v1/alert-rules/nothing")).status).toBe(404);
  const bad = await call("POST", "/api/v1/alert-rules", {
    name: "x",
    kind: "series",
    series: "cpu.util",
    threshold: "high",
  });
  expect([bad.status, (bad.body.error as Json).field]).toEqual([400, "threshold"]);
});

test("webhooks: created with a secret shown once, listed without it, refused by field when bad, deleted; deliveries of an unknown one are a 404", async () => {
  using dir = tempDir();
  const { core, call } = await hub(dir.path);
  using _core = core;
  const made = await call("POST", "/api/v1/webhooks", { url: "http://127.0.0.1:9/hook", name: "ops" });
  expect(made.status).toBe(201);
  expect(typeof made.body.secret).toBe("string");
  expect(made.body).toMatchObject({ name: "ops", events: ["opened", "resolved"], min_severity: "info" });
  const list = (await call("GET", "/api/v1/webhooks")).body.webhooks as Json[];
  expect(list.map((w) => [w.id, "secret" in w])).toEqual([[made.body.id, false]]);
  const field = async (body: unknown) =>
    ((await call("POST", "/api/v1/webhooks", body)).body.error as Json | undefined)?.field;
  expect(await field({ url: "ftp://x" })).toBe("url");
  expect(await field({ url: "http://x", secret: "short" })).toBe("secret");
  expect(await field({ url: "http://x", events: ["exploded"] })).toBe("events.0");
  expect(await field({ url: "http://x", events: [] })).toBe("events");
  expect(await field({ url: "http://x", min_severity: "loud" })).toBe("min_severity");
  expect(await field({ url: "http://x", extra: 1 })).toBe("extra");
  expect((await call("GET", `/api/v1/webhooks/${made.body.id}/deliveries`)).body).toEqual({
    pending: 0,
    deliveries: [],
  });
  expect((await call("DELETE", `/api/v1/webhooks/${made.body.id}`)).status).toBe(200);
  expect((await call("GET", `/api/v1/webhooks/${made.body.id}/deliveries`)).status).toBe(404);
  expect((await call("DELETE", `/api/v1/webhooks/${made.body.id}`)).status).toBe(404);
});

test("hub settings: alerting's flags, file keys and variables are checked and name the field", () => {
  const refused = (argv: string[], env: Record<string, string> = {}) => {
    try {
      loadHubConfig(["--config", "", ...argv], env);
    } catch (err) {
      return err as ConfigError;
    }
    throw new Error("expected the settings to be refused");
  };
  expect(refused(["--alert-interval", "10ms"]).field).toBe("alert_interval");
  expect(refused([], { NOVACRON_WEBHOOK_RETRY_BASE: "soon" }).field).toBe("webhook_retry_base");
  const order = refused(["--webhook-retry-base", "10m", "--webhook-retry-max", "1m"]);
  expect([order.field, order.message]).toEqual([
    "webhook_retry_max",
    "webhook_retry_max: must be at least webhook_retry_base (got 1m, webhook_retry_base is 10m)",
  ]);
  const ok = loadHubConfig(["--config", "", "--alert-interval", "1s"], { NOVACRON_WEBHOOK_RETRY_MAX: "1h" });
  if (ok.action !== "run") throw new Error("expected run");
  expect([ok.config.alert_interval, ok.config.webhook_retry_base, ok.config.webhook_retry_max]).toEqual([
    1000, 1000, 3_600_000,
  ]);
});

test("the alert, rule and webhook routes refuse a request without the admin token, or with a wrong one", async () => {
  using dir = tempDir();
  const { core } = await hub(dir.path);
  using _core = core;
  const routes: [string, string][] = [
    ["GET", "/api/v1/alerts?state=all"],
    ["GET", "/api/v1/alerts/1"],
    ["POST", "/api/v1/alerts/1/ack"],
    ["GET", "/api/v1/alert-rules"],
    ["POST", "/api/v1/alert-rules"],
    ["DELETE", "/api/v1/alert-rules/node-down"],
    ["GET", "/api/v1/webhooks"],
    ["POST", "/api/v1/webhooks"],
    ["DELETE", "/api/v1/webhooks/wh_1"],
    ["GET", "/api/v1/webhooks/wh_1/deliveries"],
  ];
  for (const [method, path] of routes) {
    const tries: Record<string, string>[] = [
      {},
      { authorization: "Bearer not-the-token" },
      { authorization: "admin" },
    ];
    for (const headers of tries) {
      const res = await core.app.request(path, {
        method,
        headers: { ...headers, "content-type": "application/json" },
        ...(method === "POST"
          ? { body: JSON.stringify({ url: "http://127.0.0.1:9/x", name: "x", kind: "node_down" }) }
          : {}),
      });
      expect([method, path, res.status]).toEqual([method, path, 401]);
    }
  }
  expect(await core.webhooks.list()).toEqual([]);
  expect(await core.alerts.rules()).toEqual([]);
});
