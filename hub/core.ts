// The hub without its sockets: registry, ingest, gateway, workloads and the HTTP app, wired together.
import { type Clock, systemClock } from "../shared/clock.ts";
import { LogLimiter, type Logger } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { drainApi, failoverApi, moveApi } from "./api/failover.ts";
import { fleetApi } from "./api/fleet.ts";
import { streamApi } from "./api/stream.ts";
import { createApi } from "./api/index.ts";
import { AuditLog, OperatorTokens, stateDigest } from "./auth/index.ts";
import { CacheDistributor, type CacheFigures, CacheReplicator, type StoredWrite } from "./cache/index.ts";
import {
  type Alert,
  Alerter,
  AlertStore,
  type DecisionCheck,
  EventStore,
  type NodeFacts,
  ruleSetPolicy,
  WebhookNotifier,
  WebhookStore,
} from "./events/index.ts";
import { Failover, type MonitorPolicy } from "./failover/index.ts";
import { Federation, type FederationOptions, type ParentOptions, topologyApi } from "./federation/index.ts";
import { type BulkBudget, Gateway, type SecureLimits, SecureSessions } from "./gateway/index.ts";
import { encodeKey, generateKeyPair, type KeyPair } from "../shared/secure/index.ts";
import { type FleetNode, readAtMostEvery, UNLABELLED } from "./fleet/index.ts";
import { Ingest } from "./ingest/index.ts";
import { LiveFeed } from "./live/index.ts";
import { Registry, type StatusPolicy } from "./registry/index.ts";
import { RuleSets } from "./rule-sets/index.ts";
import { type HubSql, insideTx } from "./store/sql/index.ts";
import { fleetState, WorkloadController, WorkloadStore } from "./workloads/index.ts";
import { oneAtATime } from "../shared/one-at-a-time.ts";
import { afterCommit, afterTx } from "./store/after-tx.ts";
import { StoreReadiness } from "./store/readiness.ts";
import { type Deliverable, type Leadership, type Replicas, soleLeader } from "./replicas/index.ts";

export interface HubCoreOptions {
  hubId: string;
  /** The default join token (the hub's flag or DIR/join.token); minted ones live in the database. */
  joinToken: string;
  adminToken: string;
  /** Largest API request body (default 2 MiB). */
  maxBodyBytes?: number;
  /** /metrics needs a token (any role). */
  metricsAuth?: boolean;
  /** Node series kept per node for /metrics (default 1000). */
  maxSeriesPerNode?: number;
  /** The hub's static key: agents pin its public half. A fresh one when absent (tests). */
  hubKey?: KeyPair;
  /** Limits of the session layer before authentication. */
  secureLimits?: Partial<SecureLimits>;
  /** The gateway's bulk lane and in-flight budget. */
  bulk?: Partial<BulkBudget>;
  heartbeatMs: number;
  maxFrameBytes: number;
  statusPolicy: StatusPolicy;
  log: Logger;
  /** Period of the rollout controller's tick. */
  tickMs?: number;
  /** The hub's policy check of a node's offline decision (default: no policy, verdict unknown). */
  checkDecision?: DecisionCheck;
  /** Time and timers of failover, the registry and workloads (tests run an hour of failover in seconds). */
  clock?: Clock;
  /** Failover timings beyond statusPolicy's (defaults: 2 s to disconnected, 20% jitter, 250 ms ticks). */
  failover?: Partial<Pick<MonitorPolicy, "disconnectAfterMs" | "jitter" | "tickMs">> & {
    passMs?: number;
    settleMs?: number;
    lostGcAfterMs?: number;
    /** Move work off nodes that stay hot, overloaded or badly linked, or enter a maintenance window. */
    migrationTriggers?: boolean;
  };
  /** Alerting: how often rules are evaluated, and the webhooks' retry timing. */
  alerting?: { intervalMs?: number; retryBaseMs?: number; retryMaxMs?: number };
  /** This hub's tier (1 cloud .. 5), told to its parent. */
  level?: number;
  /** This hub's parent hub (federation): it links there as a node of kind hub and reports its subtree. */
  parent?: ParentOptions;
  /** Federation timings and limits (tests, benchmarks). */
  federation?: Pick<FederationOptions, "summaryEveryMs" | "summaryMinMs" | "changeRate" | "changeBurst">;
  /**
   * This hub as one of several replicas on a shared store (hub/replicas): it leads the controllers
   * only while it holds the lease, claims its nodes' sessions, and routes work to other replicas'
   * nodes. Without it the hub is alone on its store.
   */
  replicas?: Replicas;
}

/** The failover monitor's policy from the hub's settings. */
export function monitorPolicy(o: Pick<HubCoreOptions, "statusPolicy" | "failover">): MonitorPolicy {
  return {
    suspectAfterMs: o.statusPolicy.suspectAfterMs,
    downAfterMs: o.statusPolicy.downAfterMs,
    restartGraceMs: o.statusPolicy.restartGraceMs,
    disconnectAfterMs: o.failover?.disconnectAfterMs ?? 2000,
    jitter: o.failover?.jitter ?? 0.2,
    tickMs: o.failover?.tickMs ?? 250,
  };
}

const noPolicy: DecisionCheck = () => ({
  verdict: "unknown",
  reason: "the hub holds no rules for this node",
});

/**
 * Everything a hub does, given its store (SQLite through wrapSqlite, or PostgreSQL); the server adds
 * Bun.serve and MQTT, tests feed frames directly.
 */
export async function createHubCore(sql: HubSql, o: HubCoreOptions) {
  const metrics = new MetricsRegistry();
  // Reads and writes that repeat on timers fail every time while the store is away: each is logged
  // once per 10 s, not on every round.
  const storeFailures = new LogLimiter(o.log, { intervalMs: 10_000 });
  // Ported stores take the async HubSql; the rest still use the Database (docs/hub-replicas.md, 2.2).
  const clock = o.clock ?? systemClock;
  const now = () => clock.now();
  const replicas = o.replicas;
  const leader: Leadership = replicas ?? soleLeader;
  // Work for a node whose session another replica holds goes there as a notice; false: nobody holds it.
  const forward = (node: string, kind: Deliverable): boolean => replicas?.forward(node, kind) ?? false;
  const registry = new Registry(sql, o.statusPolicy, now);
  // A node another live replica holds is connected; so is one whose replica died within the grace.
  if (replicas)
    registry.elsewhere = (id) => replicas.elsewhere(id) !== undefined || replicas.heldByDeparted(id);
  const tokens = new OperatorTokens(sql, now);
  const audit = new AuditLog(sql, now);
  // The hub's own decisions (placement, failover, rollback) in the audit log, actor `hub`. They are
  // made in synchronous code, some inside a transaction: each entry is appended after, in the order
  // they were made (outside any transaction of the caller's, whose commit it then waits for).
  let decisions: Promise<void> = Promise.resolve();
  const recordDecision = (action: string, object: string, detail: string, state?: unknown) => {
    const input = {
      actor: "hub",
      action,
      object,
      before: null,
      after: stateDigest(state === undefined ? null : JSON.stringify(state)),
      detail,
    };
    decisions = decisions
      .then(() => insideTx.exit(() => audit.append(input)))
      .then(
        () => {},
        (err: unknown) =>
          o.log.error("a hub decision was not written to the audit log", {
            action,
            object,
            error: (err as Error).message,
          }),
      );
  };
  await registry.joinTokens.ensureDefault(o.joinToken, Date.now());
  // Every node in memory before the first session (the gateway and the monitor read it synchronously).
  await registry.load();
  let gateway: Gateway | undefined;
  const workloads = new WorkloadStore(sql, now);
  const events = new EventStore(sql);
  const cache = new CacheDistributor(
    sql,
    {
      put: (node, e) =>
        (gateway?.sendTo(node, "command", {
          id: `cache:${e.version}:${e.key}`,
          kind: "cache_put",
          args: { key: e.key, value: e.value, version: e.version, ...(e.ttl_ms ? { ttl_ms: e.ttl_ms } : {}) },
        }) ??
          false) ||
        forward(node, "cache"),
      delete: (node, d) =>
        (gateway?.sendTo(node, "command", {
          id: `cache-delete:${d.version}:${d.key}`,
          kind: "cache_delete",
          args: { key: d.key, version: d.version },
        }) ??
          false) ||
        forward(node, "cache"),
    },
    o.log.child("cache"),
  );
  const caches = new CacheReplicator({
    sql,
    send: (node, kind, args) =>
      gateway?.sendTo(node, "command", { id: `${kind}:${String(args.hlc ?? args.name)}`, kind, args }) ??
      false,
    node: (id) => registry.get(id),
    connected: () => registry.list().filter((n) => registry.isConnected(n.id)),
    log: o.log.child("caches"),
    now,
    ...(replicas ? { announce: (w: StoredWrite) => replicas.announceCacheWrite(w) } : {}),
  });
  const controller = new WorkloadController({
    store: workloads,
    log: o.log.child("workloads"),
    sendAllocs: (node, body) => (gateway?.sendTo(node, "allocs", body) ?? false) || forward(node, "allocs"),
    fleet: (active) => fleetState(registry, ingest, active),
    now,
    onDecision: recordDecision,
    leader,
    ...(o.tickMs ? { tickMs: o.tickMs } : {}),
  });
  const failover = new Failover({
    sql,
    registry,
    workloads,
    controller,
    fleet: (active) => fleetState(registry, ingest, active),
    clock,
    log: o.log.child("failover"),
    metrics,
    onDecision: recordDecision,
    policy: monitorPolicy(o),
    leader,
    // A witness is a peer asked, through its session, whether it reaches the silent node.
    ask: async (peer, target) => {
      const reply = await gateway?.request(peer, "witness", { target, timeout_ms: 1500 }, 3000);
      if (!reply?.ok) return undefined;
      return (reply.body as { reached?: unknown } | null)?.reached === true;
    },
    ...(o.failover?.passMs ? { passMs: o.failover.passMs } : {}),
    ...(o.failover?.settleMs !== undefined ? { settleMs: o.failover.settleMs } : {}),
    ...(o.failover?.lostGcAfterMs !== undefined ? { lostGcAfterMs: o.failover.lostGcAfterMs } : {}),
    ...(o.failover?.migrationTriggers
      ? {
          signals: () => {
            const latest = ingest.latest();
            return registry
              .list()
              .filter((n) => !n.draining && registry.status(n) === "ready")
              .map((n) => ({
                id: n.id,
                cpuUtil: latest.get(n.id)?.get("cpu.util")?.[1],
                tempC: latest.get(n.id)?.get("temp.cpu_c")?.[1],
                hubRttMs: registry.rtt(n.id),
                maintenance: n.labels.maintenance,
              }));
          },
        }
      : {}),
  });
  failover.start();
  // Synchronous readers (federation's summary and tree) see the workloads as read at most a second ago
  // (sooner after this hub's own changes): another hub on the same store changes them too.
  controller.refreshView();
  const viewTimer = setInterval(controller.refreshView, 1000);
  // The registry's rows in memory take in ingest's counters and other hubs' writes every 2 s.
  const refreshNodes = oneAtATime(
    async () => {
      await registry.refresh();
      // Replicas: a key reset through another replica ends the session here even if its notice was lost.
      if (replicas) gateway?.endUnkeyed("the node's key was reset by an operator");
    },
    (err) => storeFailures.warn("nodes", "nodes could not be read", { error: (err as Error).message }),
  );
  const nodesTimer = setInterval(refreshNodes, 2000);
  // Last-seen times and heartbeat counters written in order, one flush at a time (server.ts: every 5 s).
  let seenFlush: Promise<void> = Promise.resolve();
  const flushSeen = (): Promise<void> => {
    seenFlush = seenFlush
      .then(() => registry.flushSeen())
      .catch((err: unknown) =>
        storeFailures.warn("seen", "last-seen times could not be written; they go with the next flush", {
          error: (err as Error).message,
        }),
      );
    return seenFlush;
  };
  // The app answers queries a parent forwards; it is built below, after everything it serves.
  let api: { fetch: (req: Request) => Response | Promise<Response> } | undefined;
  // Own open and acknowledged alerts as last read (the federation summary reads them synchronously):
  // read again after each change and each evaluation; one read at a time, the last asked for always runs.
  const liveAlerts: Record<"open" | "acknowledged", Alert[]> = { open: [], acknowledged: [] };
  const refreshLiveAlerts = oneAtATime(
    async () => {
      const [open, acknowledged] = await Promise.all([
        alerts.list({ state: "open", limit: 200 }),
        alerts.list({ state: "acknowledged", limit: 200 }),
      ]);
      liveAlerts.open = open;
      liveAlerts.acknowledged = acknowledged;
    },
    (err) => storeFailures.warn("alerts", "open alerts could not be read", { error: (err as Error).message }),
  );
  const federation = new Federation({
    leader,
    sql,
    hubId: o.hubId,
    level: o.level ?? 1,
    registry,
    gateway: () => gateway,
    workloads,
    // Federation reads synchronously: the allocations as last read (workloads.view).
    fleet: () => fleetState(registry, ingest, workloads.view.active),
    failover,
    metrics,
    log: o.log.child("federation"),
    now,
    localFetch: async (method, path, payload) => {
      const res = await api!.fetch(
        new Request(`http://federation.local${path}`, {
          method,
          headers: { authorization: `Bearer ${o.adminToken}`, "content-type": "application/json" },
          ...(payload !== undefined ? { body: JSON.stringify(payload) } : {}),
        }),
      );
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {}
      return { status: res.status, body };
    },
    // Own open and acknowledged alerts, for the summary (as last read: after each change and evaluation).
    alerts: () =>
      (["open", "acknowledged"] as const).flatMap((state) =>
        liveAlerts[state].map((a) => ({
          hub: o.hubId,
          id: a.id,
          rule: a.rule.slice(0, 64),
          node: a.node,
          severity: a.severity.slice(0, 64),
          state,
          message: a.message.slice(0, 256),
          open_ms: Math.max(0, now() - a.started_at),
        })),
      ),
    ...(o.parent ? { parent: o.parent } : {}),
    ...o.federation,
  });
  const ruleSets = new RuleSets(
    sql,
    (node, body) => (gateway?.sendTo(node, "config", body) ?? false) || forward(node, "config"),
  );
  // Decisions from a distributed rule are judged by that rule set at the node's revision.
  const checkDecision = ruleSetPolicy(
    (name, rev, via) => ruleSets.compiled(name, rev, via),
    o.checkDecision ?? noPolicy,
  );
  // Verdicts go back to each node once the ingest transaction that stored its decisions has committed.
  const verdicts = new Map<
    string,
    { id: number; rule: string; at: number; verdict: string; reason: string }[]
  >();
  const sendVerdicts = () => {
    for (const [node, list] of verdicts) {
      const sent = gateway?.sendTo(node, "command", {
        id: `verdicts:${list[0]!.id}-${list.at(-1)!.id}`,
        kind: "decision_verdicts",
        args: { verdicts: list },
      });
      if (!sent) forward(node, "verdicts");
    }
    verdicts.clear();
  };
  // Whether the store takes writes (GET /readyz): every ingest commit, and a write of its own every 2 s.
  const readiness = new StoreReadiness({ sql, clock, log: o.log.child("store") });
  const ingest = new Ingest({
    sql,
    // Each node's stored sequence is read at its hello (Ingest.open, from the gateway).
    onCommit: (ok, err) => readiness.commit(ok, err),
    log: o.log.child("ingest"),
    metrics,
    epochOf: (node) => registry.epochs.current(node),
    ...(o.maxSeriesPerNode ? { maxSeriesPerNode: o.maxSeriesPerNode } : {}),
    acks: (node, upto) => gateway?.sendTo(node, "ack", { upto }),
    // On SQLite the synchronous stores below write on the same connection, inside the group's transaction.
    apply: async (tx, node, msg) => {
      if (msg.t === "alloc_status") await controller.onAllocStatus(tx, node, msg.b);
      else if (msg.t === "task_result") await controller.onTaskResult(tx, node, msg.b);
      else if (msg.t === "cache_write") await caches.onWrite(tx, node, msg.b);
      else if (msg.t === "event") {
        await events.onEvent(tx, node, msg.b);
        await alerter.onAgentEvent(tx, node, msg.b);
        if (msg.b.kind === "rules_applied") await ruleSets.onApplied(tx, node, msg.b.fields ?? {}, msg.b.at);
        if (msg.b.kind === "cache_hot_keys") await caches.onHotKeys(tx, node, msg.b.fields ?? {}, msg.b.at);
        // A request that waited offline for long is history, not a wish.
        if (msg.b.kind === "migration_request" && clock.now() - msg.b.at < 300_000)
          afterCommit(() => {
            void failover
              .onMigrationRequest(node, msg.b.message)
              .catch((err: unknown) =>
                o.log.error("a node's migration request failed", { node, error: (err as Error).message }),
              );
          });
        if (msg.b.kind === "fenced" && typeof msg.b.fields?.alloc === "string")
          await failover.onFenced(tx, node, msg.b.fields.alloc, msg.b.at, msg.b.message);
      } else if (msg.t === "decision_validation") {
        const v = await events.onDecision(tx, node, msg.b, checkDecision);
        if (v.id !== undefined) {
          // Sent once the decision is stored (never for one a rolled-back group held); a commit's
          // verdicts go to each node in one command.
          const verdict = { ...v, id: v.id };
          afterCommit(() => {
            if (verdicts.size === 0) queueMicrotask(sendVerdicts);
            const list = verdicts.get(node) ?? [];
            list.push(verdict);
            verdicts.set(node, list);
          });
        }
      }
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
    fleetSize: () => registry.count(),
    ...(o.bulk ? { bulk: o.bulk } : {}),
    ...(replicas
      ? {
          sessions: {
            claim: (node: string) => replicas.claim(node),
            stands: (node: string, epoch: number) => replicas.stands(node, epoch),
            released: (node: string, epoch: number) => replicas.release(node, epoch),
            endElsewhere: (node: string, reason: string) => replicas.endEverywhere(node, reason),
            request: (node: string, kind: string, args: Record<string, unknown>, timeoutMs: number) =>
              replicas.request(node, kind, args, timeoutMs),
          },
        }
      : {}),
    // A node refused a pushed cache entry: the hub lists it (GET /api/v1/cache) and logs it.
    onCacheRead: async (node, read) => ({ id: read.id, ok: true, body: await caches.read(node, read) }),
    onReply: (node, reply) => {
      const m = /^cache:(\d+):(.*)$/s.exec(reply.id);
      if (m && !reply.ok) cache.onRefused(node, m[2]!, Number(m[1]), String(reply.body), clock.now());
    },
    onSubtree: (node, msg) => federation.onSubtree(node, msg),
    onSession: (node, hello) => {
      federation.onSession(node, hello);
      void controller
        .onSession(node, hello.alloc_generation)
        .catch((err: unknown) =>
          o.log.error("a node's desired set could not be sent", { node, error: (err as Error).message }),
        );
      const record = registry.get(node);
      if (record)
        void cache.onSession(record).catch((err: unknown) =>
          o.log.error("a node's hub cache entries could not be sent", {
            node,
            error: (err as Error).message,
          }),
        );
      if (record)
        void caches
          .onSession(record, hello.caches)
          .catch((err: unknown) =>
            o.log.error("a node's caches could not be caught up", { node, error: (err as Error).message }),
          );
      if (record)
        void ruleSets
          .onSession(record)
          .catch((err: unknown) =>
            o.log.error("a node's rule sets could not be sent", { node, error: (err as Error).message }),
          );
      // Verdicts that may not have reached the node before its last session ended.
      sendRecentVerdicts(node);
    },
  });
  function sendRecentVerdicts(node: string): void {
    void events.recentVerdicts(node).then(
      (recent) => {
        if (recent.length === 0) return;
        gateway?.sendTo(node, "command", {
          id: "verdicts:session",
          kind: "decision_verdicts",
          args: { verdicts: recent },
        });
      },
      (err: unknown) =>
        o.log.error("verdicts for a session could not be read", {
          node,
          error: (err as Error).message,
        }),
    );
  }
  const hubKey = o.hubKey ?? generateKeyPair();
  const secure = new SecureSessions({
    gateway,
    registry,
    hubKey,
    hubId: o.hubId,
    ...(replicas ? { route: replicas.id } : {}),
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
  // Alerting: rules over the fleet evaluated on a timer and on every node transition; webhooks notified.
  const alerts = new AlertStore(sql, now);
  const webhooks = new WebhookStore(sql);
  const notifier = new WebhookNotifier({
    leader,
    store: webhooks,
    clock,
    hubId: o.hubId,
    log: o.log.child("webhooks"),
    metrics,
    ...(o.alerting?.retryBaseMs ? { retryBaseMs: o.alerting.retryBaseMs } : {}),
    ...(o.alerting?.retryMaxMs ? { retryMaxMs: o.alerting.retryMaxMs } : {}),
  });
  alerts.subscribe(async (tx, change) => {
    await notifier.onChange(tx, change);
    afterTx(refreshLiveAlerts);
  });
  const alerter = new Alerter({
    leader,
    store: alerts,
    onEvaluated: refreshLiveAlerts,
    clock,
    log: o.log.child("alerts"),
    ...(o.alerting?.intervalMs ? { intervalMs: o.alerting.intervalMs } : {}),
    facts: async (via) => {
      const latest = ingest.latest();
      const dropped = await registry.epochs.droppedAll(via);
      const nodes: NodeFacts[] = registry.list().map((n) => {
        const l = failover.monitor.get(n.id);
        const series = new Map<string, number>();
        for (const [name, [, value]] of latest.get(n.id) ?? []) series.set(name, value);
        return {
          id: n.id,
          health: l?.health,
          reason: l?.reason ?? "",
          lastSeen: n.last_seen,
          dropped: dropped.get(n.id),
          series,
        };
      });
      const list = await workloads.list(via);
      return { nodes, workloads: list.map((w) => ({ name: w.name, rollout: w.rollout })) };
    },
    failoverAfter: (after, via) => failover.store.after(after, 1000, via),
    failoverLast: () => failover.store.lastId(),
  });
  failover.store.subscribe((e) => {
    if (e.kind === "node" || e.kind === "place") alerter.kick();
  });
  metrics.beforeScrape(() => alerts.refreshCounts());
  metrics.gauge("novacron_hub_alerts_open", "Alerts open or acknowledged, by severity and state", () =>
    alerts.liveCounts(),
  );
  alerter.start();
  notifier.start();
  readiness.start();
  // The summary's own alerts from the start, not only after the first evaluation.
  refreshLiveAlerts();
  // Served from the figures read before each scrape (metrics.beforeScrape).
  metrics.beforeScrape(() => caches.refreshFigures());
  const perCache = (pick: (f: CacheFigures) => number) => () =>
    caches.figures().map((f) => [{ cache: f.name }, pick(f)] as [Record<string, string>, number]);
  metrics.counterOf(
    "novacron_hub_cache_writes_total",
    "Named-cache writes received from nodes (each once)",
    perCache((f) => f.writes),
  );
  metrics.counterOf(
    "novacron_hub_cache_superseded_total",
    "Named-cache writes a higher stamp beat (concurrent writes)",
    perCache((f) => f.superseded),
  );
  metrics.counterOf(
    "novacron_hub_cache_replicas_sent_total",
    "Named-cache writes relayed to other nodes",
    perCache((f) => f.replicas_sent),
  );
  metrics.counterOf(
    "novacron_hub_cache_invalid_entries_skipped_total",
    "Hub cache entries not sent because the key or value is invalid",
    () => cache.invalidSkipped,
  );
  const app = createApi({
    readiness: () => readiness.state,
    hubId: o.hubId,
    hubKey: encodeKey(hubKey.publicKey),
    registry,
    ingest,
    metrics,
    adminToken: () => o.adminToken,
    tokens,
    audit,
    now,
    maxFrameBytes: o.maxFrameBytes,
    metricsNeedToken: () => o.metricsAuth === true,
    ...(o.maxBodyBytes ? { maxBodyBytes: o.maxBodyBytes } : {}),
    workloads,
    controller,
    gateway,
    events,
    cache,
    caches,
    fleet: async () => fleetState(registry, ingest, await workloads.activeAllocs()),
    ruleSets,
    alerts,
    webhooks,
    // After a rule changed: at once, and a failure is the evaluation's (logged), not the request's.
    evaluateAlerts: () =>
      alerter
        .evaluate()
        .catch((err: unknown) => o.log.error("alert evaluation failed", { error: (err as Error).message })),
    log: o.log.child("api"),
    remote: federation,
    subtreeAlerts: (state, limit, node) => federation.subtreeAlerts(state, limit, node),
  });
  api = app;
  app.route("/api/v1/topology", topologyApi(federation));
  federation.start();
  // Behind the role check and audit trail createApi puts on /api/v1/*.
  app.route("/api/v1/failover", failoverApi(failover));
  app.route("/api/v1/nodes", drainApi(failover));
  app.route("/api/v1/workloads", moveApi(failover));
  // The dashboard's overview and live feed read the monitor's liveness beside the registry.
  const fleetNodes = readAtMostEvery(1000, now, (): FleetNode[] =>
    registry.list().map((n) => {
      const l = failover.monitor.get(n.id);
      return {
        id: n.id,
        tier: n.level,
        region: n.labels.region ?? UNLABELLED,
        site: n.labels.site ?? UNLABELLED,
        status: registry.status(n),
        health: l?.health ?? "suspect",
        since: l?.since ?? n.first_seen,
        reason: l?.reason ?? "",
        last_seen: Math.max(n.last_seen, registry.lastHeard(n.id) ?? 0),
        connected: registry.isConnected(n.id),
      };
    }),
  );
  app.route("/api/v1/fleet", fleetApi(fleetNodes));
  const live = new LiveFeed({
    clock,
    sources: {
      *nodes() {
        for (const [id, l] of failover.monitor.all())
          yield {
            id,
            health: l.health,
            status: registry.statusSource?.(id) ?? l.health,
            at: l.since,
            reason: l.reason,
          };
      },
      allocs: async () =>
        (await workloads.activeAllocs()).map((a) => ({
          id: a.id,
          workload: a.workload,
          node: a.node,
          status: a.status,
          healthy: a.healthy,
          updated: a.updated,
        })),
      failoverEvents: (limit) => failover.events({ limit }) as never,
      // The alert lifecycle, newest first: an alert is sent again when its state or times change.
      alerts: (limit) => alerts.list({ state: "all", limit }) as never,
    },
  });
  // An open stream asks the API's own authentication again now and then (whatever checks tokens).
  app.route(
    "/api/v1/stream",
    streamApi(live, {
      stillAllowed: async (authorization) =>
        (await app.request("/api/v1/hub", { headers: { authorization } })).status === 200,
    }),
  );
  // A replica joins the others once everything it serves exists: notices may arrive at once.
  let replicasStopped: Promise<void> = Promise.resolve();
  let closed = false;
  if (replicas) {
    const deliverFailed = (node: string, kind: string) => (err: unknown) =>
      storeFailures.warn(`deliver:${kind}`, "what another replica asked to send a node could not be read", {
        node,
        kind,
        error: (err as Error).message,
      });
    const cacheDue = new Set<string>();
    leader.onGained(() => {
      void failover.pass().catch(() => {});
      void controller.tick().catch(() => {});
      alerter.kick();
    });
    await replicas.start({
      local: () => gateway!.nodes(),
      holds: (node) => gateway!.holds(node),
      moved: (node) => gateway!.dropSession(node, "the node's session moved to another replica"),
      end: (node, reason) => gateway!.endSession(node, reason, true),
      request: (node, kind, args, timeoutMs) => gateway!.request(node, kind, args, timeoutMs),
      relay: (w) => void caches.relayStored(w as StoredWrite).catch(deliverFailed(w.origin, "cache relay")),
      dropAll: (reason) => {
        for (const node of gateway!.nodes()) gateway!.dropSession(node, reason);
      },
      deliver: (node, kind) => {
        const record = registry.get(node);
        if (kind === "allocs") void controller.sendSet(node).catch(deliverFailed(node, kind));
        else if (kind === "verdicts") sendRecentVerdicts(node);
        else if (record && kind === "config")
          void ruleSets.onSession(record).catch(deliverFailed(node, kind));
        else if (kind === "cache" && !cacheDue.has(node)) {
          // Each put or delete elsewhere asks once per node; a burst shares one resend of the entries.
          cacheDue.add(node);
          setTimeout(() => {
            cacheDue.delete(node);
            if (closed) return;
            const rec = registry.get(node);
            if (rec && gateway!.holds(node)) void cache.onSession(rec).catch(deliverFailed(node, kind));
          }, 200);
        }
      },
    });
  }
  return {
    /** The hub's store. */
    sql,
    /** This hub as a replica among others on its store (undefined: alone). */
    replicas,
    readiness,
    metrics,
    registry,
    ingest,
    gateway,
    secure,
    workloads,
    controller,
    events,
    ruleSets,
    failover,
    tokens,
    audit,
    alerts,
    alerter,
    webhooks,
    notifier,
    federation,
    app,
    live,
    /**
     * Resolves when what was received is stored and the hub's decisions made so far are in the audit
     * log (before the database closes).
     */
    /** Writes last-seen times and heartbeat counters (server.ts every 5 s, and at close). */
    flushSeen,
    async settled(): Promise<void> {
      await ingest.flush();
      await seenFlush;
      await controller.settled();
      await failover.settled();
      await alerter.settled();
      await notifier.settled();
      await refreshLiveAlerts.idle();
      await refreshNodes.idle();
      await decisions;
      await replicasStopped;
    },
    /** Stops timers and writes what is pending; the caller awaits settled() and closes the database. */
    close(): void {
      void federation.stop();
      live.stop();
      failover.stop();
      alerter.stop();
      notifier.stop();
      readiness.stop();
      controller.stop();
      clearInterval(viewTimer);
      clearInterval(nodesTimer);
      gateway?.drainBulk();
      void ingest.flush();
      void flushSeen();
      closed = true;
      // After the last writes above are asked for: the directory forgets this replica's sessions.
      if (replicas) replicasStopped = seenFlush.then(() => replicas.stop()).catch(() => {});
    },
  };
}

export type HubCore = Awaited<ReturnType<typeof createHubCore>>;
