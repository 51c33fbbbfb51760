// The hub without its sockets: registry, ingest, gateway, workloads and the HTTP app, wired together.
import type { Database } from "bun:sqlite";
import type { Logger } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { createApi } from "./api/index.ts";
import { CacheDistributor } from "./cache/index.ts";
import { type DecisionCheck, EventStore } from "./events/index.ts";
import { Gateway, type SecureLimits, SecureSessions } from "./gateway/index.ts";
import { encodeKey, generateKeyPair, type KeyPair } from "../shared/secure/index.ts";
import { Ingest } from "./ingest/index.ts";
import { Registry, type StatusPolicy } from "./registry/index.ts";
import { fleetState, WorkloadController, WorkloadStore } from "./workloads/index.ts";

export interface HubCoreOptions {
  hubId: string;
  /** The default join token (the hub's flag or DIR/join.token); minted ones live in the database. */
  joinToken: string;
  adminToken: string;
  /** The hub's static key: agents pin its public half. A fresh one when absent (tests). */
  hubKey?: KeyPair;
  /** Limits of the session layer before authentication. */
  secureLimits?: Partial<SecureLimits>;
  heartbeatMs: number;
  maxFrameBytes: number;
  statusPolicy: StatusPolicy;
  log: Logger;
  /** Period of the rollout controller's tick. */
  tickMs?: number;
  /** The hub's policy check of a node's offline decision (default: no policy, verdict unknown). */
  checkDecision?: DecisionCheck;
}

const noPolicy: DecisionCheck = () => ({
  verdict: "unknown",
  reason: "the hub holds no rules for this node",
});

/** Everything a hub does, given a database; the server adds Bun.serve and MQTT, tests feed frames directly. */
export function createHubCore(db: Database, o: HubCoreOptions) {
  const metrics = new MetricsRegistry();
  const registry = new Registry(db, o.statusPolicy);
  registry.joinTokens.ensureDefault(o.joinToken, Date.now());
  let gateway: Gateway | undefined;
  const workloads = new WorkloadStore(db);
  const events = new EventStore(db);
  const cache = new CacheDistributor(
    db,
    (node, e) =>
      gateway?.sendTo(node, "command", {
        id: `cache:${e.key}:${e.version}`,
        kind: "cache_put",
        args: { key: e.key, value: e.value, version: e.version, ...(e.ttl_ms ? { ttl_ms: e.ttl_ms } : {}) },
      }) ?? false,
  );
  const controller = new WorkloadController({
    store: workloads,
    log: o.log.child("workloads"),
    sendAllocs: (node, body) => gateway?.sendTo(node, "allocs", body) ?? false,
    fleet: () => fleetState(registry, ingest, workloads),
    ...(o.tickMs ? { tickMs: o.tickMs } : {}),
  });
  const ingest = new Ingest(db, {
    log: o.log.child("ingest"),
    metrics,
    acks: (node, upto) => gateway?.sendTo(node, "ack", { upto }),
    apply: (node, msg) => {
      if (msg.t === "alloc_status") controller.onAllocStatus(node, msg.b);
      else if (msg.t === "task_result") controller.onTaskResult(node, msg.b);
      else if (msg.t === "event") events.onEvent(node, msg.b);
      else if (msg.t === "decision_validation") events.onDecision(node, msg.b, o.checkDecision ?? noPolicy);
    },
  });
  gateway = new Gateway({
    hubId: o.hubId,
    registry,
    ingest,
    log: o.log.child("gateway"),
    metrics,
    heartbeatMs: o.heartbeatMs,
    maxFrameBytes: o.maxFrameBytes,
    onSession: (node, hello) => {
      controller.onSession(node, hello.alloc_generation);
      const record = registry.get(node);
      if (record) cache.onSession(record);
    },
  });
  const hubKey = o.hubKey ?? generateKeyPair();
  const secure = new SecureSessions({
    gateway,
    registry,
    hubKey,
    hubId: o.hubId,
    log: o.log.child("sessions"),
    metrics,
    ...(o.secureLimits ? { limits: o.secureLimits } : {}),
  });
  metrics.gauge("novacron_hub_nodes", "Known nodes by status", () => {
    const by = new Map<string, number>();
    for (const n of registry.list()) {
      const status = registry.status(n);
      by.set(status, (by.get(status) ?? 0) + 1);
    }
    return [...by].map(([status, n]) => [{ status }, n]);
  });
  const app = createApi({
    hubId: o.hubId,
    hubKey: encodeKey(hubKey.publicKey),
    registry,
    ingest,
    metrics,
    adminToken: () => o.adminToken,
    workloads,
    controller,
    gateway,
    events,
    cache,
    fleet: () => fleetState(registry, ingest, workloads),
  });
  return {
    metrics,
    registry,
    ingest,
    gateway,
    secure,
    workloads,
    controller,
    events,
    app,
    /** Stops timers and writes what is pending; the caller closes the database. */
    close(): void {
      controller.stop();
      ingest.flush();
      registry.flushSeen();
    },
  };
}

export type HubCore = ReturnType<typeof createHubCore>;
