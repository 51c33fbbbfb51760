// /api/v1/workloads: create, read, change, delete workloads; promote or roll back a rollout.
import { type Context, Hono } from "hono";
import * as v from "valibot";
import { NotFoundError, RequestError } from "../../shared/errors.ts";
import { parseWorkloadSpec, WorkloadSpec } from "../../shared/workload/index.ts";
import type { Gateway } from "../gateway/index.ts";
import { type FleetState, indexFleet, validatePlacementRequest } from "../placement/index.ts";
import {
  type AllocRecord,
  checkDesiredSetSize,
  type WorkloadController,
  type WorkloadRecord,
  type WorkloadStore,
} from "../workloads/index.ts";
import { jsonBody } from "./json-body.ts";
import { describeRoute } from "./openapi.ts";
import { placementContext } from "./placement.ts";

/** The JSON of one allocation, as the API shows it. */
export function allocView(a: AllocRecord) {
  return {
    id: a.id,
    node: a.node,
    workload: a.workload,
    status: a.status,
    generation: a.generation,
    version: a.version,
    desired: a.desired,
    healthy: a.healthy,
    restarts: a.restarts,
    pid: a.pid,
    message: a.message,
    exit_code: a.exit_code,
    signal: a.signal,
    duration_ms: a.duration_ms,
    output_tail: a.output_tail,
    updated: a.updated,
  };
}

function workloadView(w: WorkloadRecord, allocs: AllocRecord[]) {
  const active = allocs.filter((a) => a.desired === "run");
  const pending =
    (w.spec.nodes ?? []).length === 0 && active.length < w.spec.replicas
      ? "some replicas are not placed yet: see placement_explanation"
      : undefined;
  return {
    ...w.spec,
    version: w.version,
    rollout_status: w.rollout,
    created: w.created,
    updated: w.updated,
    ...(pending ? { pending_reason: pending } : {}),
    allocs: active.map(allocView),
  };
}

/** Checks the placement block against the fleet (known targets, nodes, workloads); throws a field-naming RequestError. */
export function checkPlacement(spec: WorkloadSpec, fleet: FleetState, workloads: Iterable<string>): void {
  validatePlacementRequest(
    {
      name: spec.name,
      resources: spec.resources,
      replicas: spec.replicas,
      nodes: spec.nodes,
      placement: spec.placement,
    },
    placementContext(indexFleet(fleet), workloads),
  );
}

async function specFrom(c: Context): Promise<WorkloadSpec> {
  const body = await jsonBody(c);
  const parsed = parseWorkloadSpec(body);
  if (!parsed.ok) throw new RequestError(`${parsed.field}: ${parsed.message}`, parsed.field);
  return parsed.spec;
}

/** Routes for workloads. */
export function workloadsApi(deps: {
  store: WorkloadStore;
  controller: WorkloadController;
  gateway: Gateway;
  fleet: () => Promise<FleetState>;
  /** The agents' frame limit, which each node's desired set must fit. */
  frame: { maxFrameBytes: number; hubId: string };
}): Hono {
  const { store, controller, gateway, fleet } = deps;
  // A spec checked against what its pinned nodes already run and against the fleet now.
  const check = async (spec: WorkloadSpec): Promise<void> => {
    const existing = new Map<string, Awaited<ReturnType<WorkloadStore["desiredOn"]>>>();
    for (const node of new Set(spec.nodes ?? [])) existing.set(node, await store.desiredOn(node));
    checkDesiredSetSize(spec, { ...deps.frame, existingOn: (node) => existing.get(node) ?? [] });
    const names = (await store.list()).map((w) => w.name);
    checkPlacement(spec, await fleet(), names);
  };
  const app = new Hono();
  const view = async (name: string) => {
    const [w, allocs, placement] = await Promise.all([
      store.get(name),
      store.allocsOf(name),
      store.placement(name),
    ]);
    if (!w) throw new NotFoundError(`no workload ${name}`);
    return { ...workloadView(w, allocs), placement_explanation: placement };
  };
  const existing = async (name: string): Promise<string> => {
    if (!(await store.get(name))) throw new NotFoundError(`no workload ${name}`);
    return name;
  };

  app.post(
    "/",
    describeRoute({ summary: "create a workload", body: WorkloadSpec, status: 201, errors: [409] }),
    async (c) => {
      const spec = await specFrom(c);
      await check(spec);
      await controller.create(spec);
      return c.json(await view(spec.name), 201);
    },
  );
  app.get("/", describeRoute({ summary: "list workloads with their allocations" }), async (c) => {
    const [workloads, active] = await Promise.all([store.list(), store.activeAllocs()]);
    const by = Map.groupBy(active, (a) => a.workload);
    return c.json({ workloads: workloads.map((w) => workloadView(w, by.get(w.name) ?? [])) });
  });
  app.get(
    "/:name",
    describeRoute({ summary: "one workload: spec, version, rollout, allocations, placement" }),
    async (c) => c.json(await view(c.req.param("name"))),
  );
  app.put(
    "/:name",
    describeRoute({
      summary: "change a workload (a new version, rolled out by its strategy)",
      body: WorkloadSpec,
    }),
    async (c) => {
      const name = await existing(c.req.param("name"));
      const spec = await specFrom(c);
      await check(spec);
      await controller.update(name, spec);
      return c.json(await view(name));
    },
  );
  app.delete("/:name", describeRoute({ summary: "delete a workload (its copies stop)" }), async (c) => {
    const name = await existing(c.req.param("name"));
    await controller.remove(name);
    return c.json({ deleted: name });
  });
  app.post("/:name/promote", describeRoute({ summary: "promote a canary rollout" }), async (c) => {
    const name = await existing(c.req.param("name"));
    await controller.promote(name);
    return c.json(await view(name));
  });
  app.get(
    "/:name/allocs/:id/logs",
    describeRoute({
      summary: "the newest log lines of one allocation, asked of its node",
      query: v.object({ lines: v.optional(v.string()) }),
      errors: [503],
    }),
    async (c) => {
      const alloc = await store.alloc(c.req.param("id"));
      if (!alloc || alloc.workload !== c.req.param("name")) {
        throw new NotFoundError(`no allocation ${c.req.param("id")} of ${c.req.param("name")}`);
      }
      const lines = Number(c.req.query("lines") ?? 200);
      if (!Number.isInteger(lines) || lines < 1 || lines > 10_000) {
        throw new RequestError("query parameter lines must be an integer from 1 to 10000", "lines");
      }
      try {
        const reply = await gateway.request(alloc.node, "logs", { alloc: alloc.id, lines });
        if (!reply.ok) return c.json({ error: { code: "not_found", message: String(reply.body) } }, 404);
        return c.json({ alloc: alloc.id, node: alloc.node, logs: String(reply.body) });
      } catch (err) {
        return c.json({ error: { code: "unavailable", message: (err as Error).message } }, 503);
      }
    },
  );
  app.post(
    "/:name/rollback",
    describeRoute({ summary: "roll a workload back to its previous spec" }),
    async (c) => {
      const name = await existing(c.req.param("name"));
      await controller.rollback(name);
      return c.json(await view(name));
    },
  );
  return app;
}
