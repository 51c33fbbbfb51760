// /api/v1/alerts, /api/v1/alert-rules and /api/v1/webhooks: the alert lifecycle, its rules and where it is sent.
import { type Context, Hono } from "hono";
import * as v from "valibot";
import { ConflictError, NotFoundError, RequestError } from "../../shared/errors.ts";
import {
  AckBody,
  AlertRuleBody,
  type AlertStore,
  BUILTIN_RULES,
  checkBody,
  checkRuleName,
  effectiveRules,
  type EventStore,
  parseRule,
  ruleView,
  type Webhook,
  WebhookBody,
  type WebhookStore,
} from "../events/index.ts";
import { callerOf } from "./authorize.ts";
import { jsonBody } from "./json-body.ts";
import { describeRoute } from "./openapi.ts";

export interface AlertsApiDeps {
  events: EventStore;
  alerts: AlertStore;
  webhooks: WebhookStore;
  /** Evaluate the rules now (after a rule changed). */
  /** Evaluates the rules now; a failure is logged, never the request's (its change is stored). */
  evaluate: () => Promise<unknown>;
  now: () => number;
  /** Open alerts of the subtrees below (federation): each with the hub it came from and its age. */
  subtreeAlerts?: (state: "open" | "acknowledged" | "all", limit: number, node?: string) => unknown[];
}

const STATES = ["open", "acknowledged", "resolved", "all"] as const;

function limitOf(c: Context, fallback = 500): number {
  const limit = Number(c.req.query("limit") ?? fallback);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new RequestError("query parameter limit must be an integer from 1 to 10000", "limit");
  }
  return limit;
}

/** Who makes the request, as the authorization middleware named them. */
function actorOf(c: Context): string {
  return callerOf(c)?.actor ?? "admin";
}

const LIMIT = { limit: v.optional(v.string()) };

function alertId(c: Context): number {
  const id = Number(c.req.param("id"));
  if (!Number.isSafeInteger(id) || id < 1)
    throw new RequestError("alert id must be a positive integer", "id");
  return id;
}

const publicAlert = <T extends { key: string; resolution: string | null }>(a: T) => {
  const { key: _key, ...rest } = a;
  return rest;
};

/** Routes for alerts. */
export function alertsApi(deps: AlertsApiDeps): Hono {
  const app = new Hono();
  app.get(
    "/",
    describeRoute({
      summary:
        "alerts: with ?state= the lifecycle (open, acknowledged, resolved, all), and subtree_alerts from child hubs; without it, the agents' raise and clear events, newest first",
      query: v.object({ ...LIMIT, node: v.optional(v.string()), state: v.optional(v.string()) }),
    }),
    async (c) => {
      const limit = limitOf(c);
      const node = c.req.query("node");
      const state = c.req.query("state");
      // Without `state`: the agents' raise and clear events, one row each, as before the alert lifecycle.
      if (state === undefined) {
        return c.json({ alerts: await deps.events.alerts({ limit, ...(node ? { node } : {}) }) });
      }
      if (!(STATES as readonly string[]).includes(state))
        throw new RequestError(`query parameter state must be one of ${STATES.join(", ")}`, "state");
      const list = await deps.alerts.list({
        state: state as (typeof STATES)[number],
        limit,
        ...(node ? { node } : {}),
      });
      // Subtrees' alerts apart (their ids are their own hubs'): only open and acknowledged ones travel up.
      const below =
        deps.subtreeAlerts && state !== "resolved"
          ? deps.subtreeAlerts(state as "open" | "acknowledged" | "all", limit, node)
          : undefined;
      return c.json({ alerts: list.map(publicAlert), ...(below ? { subtree_alerts: below } : {}) });
    },
  );
  app.get("/:id", describeRoute({ summary: "one alert with its history" }), async (c) => {
    const id = alertId(c);
    const a = await deps.alerts.get(id);
    if (!a) throw new NotFoundError(`no alert ${id}`);
    return c.json({ alert: publicAlert(a), history: await deps.alerts.history(id) });
  });
  app.post(
    "/:id/ack",
    describeRoute({ summary: "acknowledge an open alert", body: AckBody, bodyOptional: true, errors: [409] }),
    async (c) => {
      const id = alertId(c);
      const text = await c.req.text();
      let body: unknown = {};
      if (text.trim() !== "") {
        try {
          body = JSON.parse(text);
        } catch {
          throw new RequestError("body is not valid JSON", "body");
        }
      }
      const { comment } = checkBody(AckBody, body);
      return c.json({ alert: publicAlert(await deps.alerts.ack(id, actorOf(c), comment)) });
    },
  );
  return app;
}

/** Routes for alert rules: the built-ins and the operator's, which replace built-ins of the same name. */
export function alertRulesApi(deps: AlertsApiDeps): Hono {
  const app = new Hono();
  app.get(
    "/",
    describeRoute({ summary: "the alert rules in force: built-in and the operator's" }),
    async (c) => c.json({ rules: effectiveRules(await deps.alerts.rules()).map(ruleView) }),
  );
  app.post(
    "/",
    describeRoute({
      summary: "add or replace an alert rule (a built-in's name replaces it)",
      body: AlertRuleBody,
    }),
    async (c) => {
      const rule = parseRule(await jsonBody(c));
      const existed = await deps.alerts.putRule(rule);
      await deps.evaluate();
      return c.json({ rule: ruleView(rule) }, existed ? 200 : 201);
    },
  );
  app.delete(
    "/:name",
    describeRoute({
      summary: "delete an operator's alert rule (a built-in it replaced comes back)",
      errors: [409],
    }),
    async (c) => {
      const name = checkRuleName(c.req.param("name"));
      if (!(await deps.alerts.deleteRule(name))) {
        if (BUILTIN_RULES.some((r) => r.name === name))
          throw new ConflictError(
            `${name} is a built-in rule: post a rule of that name with "enabled": false to turn it off`,
          );
        throw new NotFoundError(`no alert rule named ${name}`);
      }
      await deps.evaluate();
      const builtin = BUILTIN_RULES.find((r) => r.name === name);
      return c.json({ deleted: name, ...(builtin ? { restored: ruleView(builtin) } : {}) });
    },
  );
  return app;
}

const hookView = (w: Webhook, pending: number) => {
  const { secret: _secret, ...rest } = w;
  return { ...rest, pending };
};

/** Routes for webhooks and their delivery logs. */
export function webhooksApi(deps: AlertsApiDeps): Hono {
  const app = new Hono();
  app.get("/", describeRoute({ summary: "webhooks, with their pending notifications" }), async (c) => {
    const hooks = await deps.webhooks.list();
    const pending = await Promise.all(hooks.map((w) => deps.webhooks.pending(w.id)));
    return c.json({ webhooks: hooks.map((w, i) => hookView(w, pending[i]!)) });
  });
  app.post(
    "/",
    describeRoute({
      summary: "add a webhook; its signing secret is shown only here",
      body: WebhookBody,
      status: 201,
    }),
    async (c) => {
      const b = checkBody(WebhookBody, await jsonBody(c));
      const hook = await deps.webhooks.create({
        name: b.name ?? new URL(b.url).host,
        url: b.url,
        events: b.events ? [...new Set(b.events)] : ["opened", "resolved"],
        min_severity: b.min_severity ?? "info",
        created_at: deps.now(),
        ...(b.secret ? { secret: b.secret } : {}),
      });
      // The secret is shown here only (the receiver needs it to check signatures).
      return c.json({ ...hookView(hook, 0), secret: hook.secret }, 201);
    },
  );
  app.delete("/:id", describeRoute({ summary: "delete a webhook" }), async (c) => {
    const id = c.req.param("id");
    if (!(await deps.webhooks.delete(id))) throw new NotFoundError(`no webhook ${id}`);
    return c.json({ deleted: id });
  });
  app.get(
    "/:id/deliveries",
    describeRoute({ summary: "a webhook's delivery log, newest first", query: v.object(LIMIT) }),
    async (c) => {
      const id = c.req.param("id");
      if (!(await deps.webhooks.get(id))) throw new NotFoundError(`no webhook ${id}`);
      return c.json({
        pending: await deps.webhooks.pending(id),
        deliveries: await deps.webhooks.deliveries(id, limitOf(c, 100)),
      });
    },
  );
  return app;
}
