// End to end: a node going down reaches a real webhook receiver, signed, retried from the hub's durable queue.
import { expect, test } from "bun:test";
import { createHmac, timingSafeEqual } from "node:crypto";
import { join } from "node:path";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

interface Attempt {
  body: string;
  signature: string | null;
  delivery: string | null;
  status: number;
}

interface Notification {
  text: string;
  hub: string;
  delivery: string;
  attachments: { title: string; fields: { title: string; value: string }[] }[];
  alerts: {
    notification: number;
    event: string;
    id: number;
    rule: string;
    node: string | null;
    state: string;
  }[];
}

/** A webhook receiver that answers 500 to its first `failFirst` requests, then 200; it records every request. */
function receiver(failFirst: number) {
  const attempts: Attempt[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const status = attempts.length < failFirst ? 500 : 200;
      attempts.push({
        body: await req.text(),
        signature: req.headers.get("x-novacron-signature"),
        delivery: req.headers.get("x-novacron-delivery"),
        status,
      });
      return new Response(status === 200 ? "ok" : "try later", { status });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/hook`,
    attempts,
    [Symbol.dispose]: () => server.stop(true),
  };
}

const verifies = (secret: string, a: Attempt) => {
  const want = Buffer.from(`sha256=${createHmac("sha256", secret).update(a.body).digest("hex")}`);
  const got = Buffer.from(a.signature ?? "");
  return got.length === want.length && timingSafeEqual(got, want);
};

test("webhooks: a receiver that fails the first 3 attempts gets the node-down notification exactly once, across a hub SIGKILL and restart; the signature verifies; acknowledged, then the node's return is notified as resolved", async () => {
  using dir = tempDir();
  using hook = receiver(3);
  await using hub = await startHub({
    data: join(dir.path, "hub"),
    args: [
      "--disconnect-after",
      "500ms",
      "--restart-grace",
      "1s",
      "--alert-interval",
      "200ms",
      // Attempts 2, 3 and 4 come 1 s, 2 s and 4 s after the one before: time to kill the hub between them.
      "--webhook-retry-base",
      "1s",
    ],
  });
  const secret = "a-receiver-secret-of-some-length";
  const made = await hub.api<{ id: string }>("/api/v1/webhooks", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ url: hook.url, secret, name: "ops" }),
  });
  expect(made.status).toBe(201);
  await using agent = await startAgent({
    data: join(dir.path, "agent"),
    nodeId: "edge-1",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
  });
  const status = async () =>
    (await hub.api<{ nodes: { id: string; status: string }[] }>("/api/v1/nodes")).body.nodes?.find(
      (n) => n.id === "edge-1",
    )?.status;
  await waitFor(async () => (await status()) === "ready", { timeoutMs: 30_000, what: "edge-1 ready" });

  await agent.proc.kill("SIGKILL");
  await waitFor(() => hook.attempts.length >= 2, { timeoutMs: 30_000, what: "two failed attempts" });
  // Both recorded in the hub's log (the receiver hears an attempt before the hub has its answer): a kill
  // before that would lose an attempt from the log, though not from the receiver's count.
  await waitFor(
    async () =>
      (await hub.api<{ deliveries: unknown[] }>(`/api/v1/webhooks/${made.body.id}/deliveries`)).body
        .deliveries.length >= 2,
    { what: "two failed attempts in the hub's log" },
  );
  // Killed before the delivery succeeded: what is left to send is only in the hub's database.
  await hub.restart();
  expect(hook.attempts.filter((a) => a.status === 200)).toHaveLength(0);
  await waitFor(() => hook.attempts.some((a) => a.status === 200), {
    timeoutMs: 60_000,
    what: "a delivery after the restart",
  });

  // Everything queued is delivered: nothing is left that could be sent again.
  const log = await waitFor(
    async () => {
      const d = await hub.api<{
        pending: number;
        deliveries: { ok: boolean; status: number; attempt: number }[];
      }>(`/api/v1/webhooks/${made.body.id}/deliveries`);
      return d.body.pending === 0 ? d.body : undefined;
    },
    { what: "the queue to be empty" },
  );
  expect(log.deliveries.map((d) => [d.ok, d.status]).reverse()).toEqual([
    [false, 500],
    [false, 500],
    [false, 500],
    [true, 200],
  ]);
  expect(log.deliveries[0]!.attempt).toBe(4);

  const bodies = hook.attempts.map((a) => JSON.parse(a.body) as Notification);
  // The same notification on every attempt, with the same delivery id, each signed with the webhook's secret.
  expect(hook.attempts.every((a) => verifies(secret, a))).toBe(true);
  expect(new Set(hook.attempts.map((a) => a.delivery)).size).toBe(1);
  const opened = bodies.flatMap((b, i) =>
    b.alerts
      .filter((a) => a.event === "opened" && a.rule === "node-down" && a.node === "edge-1")
      .map((a) => ({ ...a, status: hook.attempts[i]!.status })),
  );
  expect(opened.map((a) => a.status)).toEqual([500, 500, 500, 200]);
  expect(new Set(opened.map((a) => a.notification)).size).toBe(1);
  const ok = bodies[3]!;
  expect(ok.text).toContain("[FIRING] critical node-down on edge-1: node edge-1 is down");
  expect(ok.attachments[0]!.fields.find((f) => f.title === "node")?.value).toBe("edge-1");

  // The hub holds one open alert for it: the restart did not resolve and reopen it.
  const open = await hub.api<{ alerts: { id: number; rule: string; node: string }[] }>(
    "/api/v1/alerts?state=open&node=edge-1",
  );
  expect(open.body.alerts.map((a) => a.rule)).toEqual(["node-down"]);

  // A forged signature would not verify with this secret.
  expect(
    verifies(secret, { ...hook.attempts[3]!, body: hook.attempts[3]!.body.replace("edge-1", "edge-2") }),
  ).toBe(false);

  // An operator acknowledges it through the real server: who and when are kept.
  const acked = await hub.api<{ alert: { state: string; acknowledged_by: string } }>(
    `/api/v1/alerts/${open.body.alerts[0]!.id}/ack`,
    { method: "POST", headers: { "content-type": "application/json" }, body: '{"comment": "on it"}' },
  );
  expect([acked.status, acked.body.alert.state, acked.body.alert.acknowledged_by]).toEqual([
    200,
    "acknowledged",
    "bootstrap",
  ]);

  // The node comes back: the alert resolves and the receiver hears it, once.
  await agent.restart();
  const resolved = await waitFor(
    () =>
      hook.attempts
        .slice(4)
        .map((a) => JSON.parse(a.body) as Notification)
        .flatMap((b) => b.alerts)
        .find((a) => a.event === "resolved" && a.id === open.body.alerts[0]!.id),
    { timeoutMs: 60_000, what: "the resolved notification" },
  );
  expect([resolved.state, (resolved as { acknowledged_by?: string }).acknowledged_by]).toEqual([
    "resolved",
    "bootstrap",
  ]);
  expect(hook.attempts.slice(4).every((a) => a.status === 200 && verifies(secret, a))).toBe(true);
}, 180_000);
