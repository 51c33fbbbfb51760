// The hub's HTTP surface: health, Prometheus metrics, and the authenticated /api/v1.
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import * as v from "valibot";
import { ConflictError, NotFoundError, NovaError, RequestError, TooLargeError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import type { AuditLog, OperatorTokens } from "../auth/index.ts";
import type { CacheDistributor, CacheReplicator } from "../cache/index.ts";
import type { AlertStore, EventStore, WebhookStore } from "../events/index.ts";
import type { Gateway } from "../gateway/index.ts";
import type { Ingest } from "../ingest/index.ts";
import type { FleetState } from "../placement/index.ts";
import type { Registry } from "../registry/index.ts";
import type { RuleSets } from "../rule-sets/index.ts";
import type { WorkloadController, WorkloadStore } from "../workloads/index.ts";
import { type AlertsApiDeps, alertRulesApi, alertsApi, webhooksApi } from "./alerts.ts";
import { auditApi } from "./audit.ts";
import { auditTrail } from "./audit-trail.ts";
import { authorize, identify } from "./authorize.ts";
import { cacheApi } from "./cache.ts";
import { cachesApi } from "./caches.ts";
import { fleetMetrics } from "./fleet-metrics.ts";
import { joinTokensApi } from "./join-tokens.ts";
import { nodesApi, type RemoteNodes } from "./nodes.ts";
import { describeRoute, openApiDocument } from "./openapi.ts";
import { placementApi } from "./placement.ts";
import { ruleSetsApi } from "./rule-sets.ts";
import { tokensApi, whoamiApi } from "./tokens.ts";
import { bundleUi, embeddedUi, type UiAssets, uiAssetSource } from "../ui/index.ts";
import { mountUi, wantsHtml } from "./ui.ts";
import { workloadsApi } from "./workloads.ts";
import type { Readiness } from "../store/readiness.ts";

export interface ApiDeps {
  /** Whether the hub's store takes writes now (GET /readyz). */
  readiness?: () => Readiness;
  registry: Registry;
  ingest: Ingest;
  metrics: MetricsRegistry;
  adminToken: () => string;
  /** Operator tokens (roles) and the audit log. */
  tokens: OperatorTokens;
  audit: AuditLog;
  workloads: WorkloadStore;
  gateway: Gateway;
  events: EventStore;
  cache: CacheDistributor;
  /** Named caches: figures, holders and declarations. */
  caches?: CacheReplicator;
  /** The fleet as placement sees it now (allocations read from the store). */
  fleet: () => Promise<FleetState>;
  controller: WorkloadController;
  /** The hub's public key (base64url) that agents pin. */
  hubKey: string;
  hubId: string;
  ruleSets: RuleSets;
  /** Largest request body, every route (default 2 MiB). */
  maxBodyBytes?: number;
  /** The agents' frame limit: a workload whose desired set would not fit is refused. */
  maxFrameBytes?: number;
  /** When true, /metrics needs a token (any role). */
  metricsNeedToken?: () => boolean;
  /** The alert lifecycle and its rules, webhooks, and an evaluation on demand. */
  alerts: AlertStore;
  webhooks: WebhookStore;
  evaluateAlerts: () => Promise<unknown>;
  now: () => number;
  log?: Logger;
  /** Nodes below child hubs (federation). */
  remote?: RemoteNodes;
  /** Open alerts of the subtrees below child hubs (federation). */
  subtreeAlerts?: AlertsApiDeps["subtreeAlerts"];
  /** The dashboard's files (default: embedded in a compiled hub, else bundled on first request). */
  ui?: () => Promise<UiAssets>;
}

/** Default of --api-body-limit. */
export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;

/** Builds the Hono app (tests call app.request() on it directly). */
export function createApi(deps: ApiDeps): Hono {
  const app = new Hono();
  const now = deps.now ?? Date.now;
  const maxBody = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const metricsNeedToken = deps.metricsNeedToken ?? (() => false);
  // Node samples left out of /metrics (counted in novacron_hub_node_samples_unexported_total).
  let skipped = 0;
  app.use(
    "*",
    bodyLimit({
      maxSize: maxBody,
      onError: (c) =>
        c.json(
          {
            error: {
              code: "too_large",
              message: `the request body is over the limit of ${maxBody} bytes (api_body_limit)`,
              field: "body",
            },
          },
          413,
        ),
    }),
  );
  app.get("/healthz", describeRoute({ summary: "liveness", public: true }), (c) => c.json({ status: "ok" }));
  // Readiness: 503 while the store does not take writes (a full disk, a database away), so a load
  // balancer sends new connections elsewhere; the process stays up and says why.
  app.get(
    "/readyz",
    describeRoute({
      summary: "readiness: whether the hub's store takes writes now",
      public: true,
      errors: [503],
    }),
    (c) => {
      const r = deps.readiness?.() ?? { ready: true, since: 0, reason: null };
      return r.ready
        ? c.json({ status: "ready", since: r.since })
        : c.json(
            { status: "not_ready", since: r.since, reason: `the store does not take writes: ${r.reason}` },
            503,
          );
    },
  );
  // Browsers get the dashboard; every other client keeps getting this JSON.
  app.get(
    "/",
    describeRoute({
      summary: "what this server is and where to look (a browser is sent to /ui/)",
      public: true,
    }),
    (c) =>
      wantsHtml(c.req.header("accept"))
        ? c.redirect("/ui/", 302)
        : c.json({
            name: "novacron-hub",
            endpoints: {
              health: "/healthz",
              ready: "/readyz",
              metrics: "/metrics",
              openapi: "/api/v1/openapi.json",
              nodes: "/api/v1/nodes (Authorization: Bearer <token>)",
              agents: "/v1/agent (WebSocket)",
              dashboard: "/ui/",
            },
          }),
  );
  mountUi(app, deps.ui ?? uiAssetSource({ embedded: embeddedUi(), bundle: bundleUi }));
  app.get(
    "/metrics",
    describeRoute({
      summary:
        "Prometheus text: the hub's own metrics and every node's newest series (a token with --metrics-auth)",
      contentType: "text/plain",
    }),
    async (c) => {
      if (metricsNeedToken()) {
        const who = await identify(c.req.header("authorization"), deps);
        if ("refused" in who) return c.json({ error: { code: "unauthorized", message: who.refused } }, 401);
      }
      const fleet = fleetMetrics(deps.ingest.latest());
      skipped += fleet.skipped;
      const own = await deps.metrics.scrape((err) =>
        deps.log?.warn("a metric's figures could not be read; the last ones are shown", {
          error: (err as Error).message,
        }),
      );
      return c.text(own + fleet.text, 200, {
        "content-type": "text/plain; version=0.0.4",
      });
    },
  );
  deps.metrics.counterOf(
    "novacron_hub_node_samples_unexported_total",
    "Node series left out of /metrics: a name that does not parse, or two series that became one",
    () => skipped,
  );
  app.use("/api/v1/*", authorize(deps));
  app.use("/api/v1/*", auditTrail(app, deps.audit));
  app.get(
    "/api/v1/openapi.json",
    describeRoute({ summary: "this document: every route, body, error and auth scheme (OpenAPI 3.1)" }),
    (c) => c.json(openApiDocument(app, { metricsNeedToken: metricsNeedToken() })),
  );
  app.get(
    "/api/v1/hub",
    describeRoute({
      summary: "the hub's id and public key (agents pin it)",
      response: v.object({ hub_id: v.string(), public_key: v.string() }),
    }),
    (c) => c.json({ hub_id: deps.hubId, public_key: deps.hubKey }),
  );
  app.route("/api/v1/tokens", tokensApi({ tokens: deps.tokens, now }));
  app.route("/api/v1/whoami", whoamiApi());
  app.route("/api/v1/audit", auditApi(deps.audit));
  app.route(
    "/api/v1/nodes",
    nodesApi({
      ...deps,
      askRotation: (id) =>
        deps.gateway.sendTo(id, "command", { id: `rotate:${Date.now()}`, kind: "rotate_key", args: {} }),
      endSession: (id) => deps.gateway.endSession(id, "the node's key was reset by an operator"),
    }),
  );
  app.route("/api/v1/join-tokens", joinTokensApi(deps));
  const alertDeps = { ...deps, evaluate: deps.evaluateAlerts };
  app.route("/api/v1/alerts", alertsApi(alertDeps));
  app.route("/api/v1/alert-rules", alertRulesApi(alertDeps));
  app.route("/api/v1/webhooks", webhooksApi(alertDeps));
  app.route("/api/v1/cache", cacheApi(deps));
  if (deps.caches) app.route("/api/v1/caches", cachesApi({ caches: deps.caches }));
  app.route("/api/v1/rule-sets", ruleSetsApi(deps));
  app.route(
    "/api/v1/workloads",
    workloadsApi({
      store: deps.workloads,
      controller: deps.controller,
      gateway: deps.gateway,
      fleet: deps.fleet,
      frame: { maxFrameBytes: deps.maxFrameBytes ?? 1024 * 1024, hubId: deps.hubId },
    }),
  );
  app.route(
    "/api/v1/placement",
    placementApi({
      fleet: deps.fleet,
      workloads: async () => (await deps.workloads.list()).map((w) => w.name),
    }),
  );
  app.notFound((c) =>
    c.json({ error: { code: "not_found", message: `no route ${c.req.method} ${c.req.path}` } }, 404),
  );
  // The one place errors become HTTP responses.
  app.onError((err, c) => {
    if (err instanceof RequestError) {
      return c.json({ error: { code: err.code, message: err.message, field: err.field } }, 400);
    }
    if (err instanceof TooLargeError) {
      return c.json({ error: { code: err.code, message: err.message, field: err.field } }, 413);
    }
    if (err instanceof ConflictError) return c.json({ error: { code: err.code, message: err.message } }, 409);
    if (err instanceof NotFoundError) return c.json({ error: { code: err.code, message: err.message } }, 404);
    if (err instanceof NovaError) return c.json({ error: { code: err.code, message: err.message } }, 400);
    return c.json({ error: { code: "internal", message: "internal error" } }, 500);
  });
  return app;
}
