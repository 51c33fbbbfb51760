// Specification of the OpenAPI document: valid by an independent validator, one entry per route and no more, the routes' own schemas.
import { expect, test } from "bun:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { toJsonSchema } from "@valibot/to-json-schema";
import { servedRoutes } from "../../hub/api/openapi.ts";
import { WorkloadSpec } from "../../shared/workload/index.ts";
import { call } from "../support/api-routes.ts";
import { ADMIN, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";

// biome-ignore lint/suspicious/noExplicitAny: the document is walked as plain JSON
type Doc = any;

async function documentOf(app: Parameters<typeof call>[0]): Promise<Doc> {
  const res = await call(app, ADMIN, "GET", "/api/v1/openapi.json");
  expect(res.status).toBe(200);
  return res.json();
}

test("openapi: /api/v1/openapi.json is a valid OpenAPI 3.1 document by @seriousme/openapi-schema-validator", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const doc = await documentOf(core.app);
  expect(doc.openapi).toBe("3.1.0");
  const result = await new Validator().validate(doc);
  expect(result.errors ?? []).toEqual([]);
  expect(result.valid).toBe(true);
  expect(doc.components.securitySchemes.bearer).toEqual(
    expect.objectContaining({ type: "http", scheme: "bearer" }),
  );
});

test("openapi: every route of the Hono app is in the document with its own description, and every operation in the document is a route", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const doc = await documentOf(core.app);
  const served = servedRoutes(core.app);
  expect(served.length).toBeGreaterThan(30);
  const inApp = served.map((r) => `${r.method} ${r.path}`).sort();
  const inDoc = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
  expect(inDoc).toEqual(inApp);
  // A route without describeRoute() would be listed as undocumented: none is.
  expect(served.filter((r) => !r.doc).map((r) => `${r.method} ${r.path}`)).toEqual([]);
  // And each operation answers: a request to it is routed (never the app's "no route" 404).
  for (const r of served) {
    const url = r.path.replace(/\{[^}]+\}/g, "x1");
    if (r.method !== "GET" || url.endsWith("/logs")) continue;
    const res = await call(core.app, ADMIN, r.method, url);
    if (r.doc?.contentType === "text/event-stream") {
      // A live stream never ends: that it answers 200 with its type is the routing.
      expect([r.path, res.status, res.headers.get("content-type")?.split(";")[0]]).toEqual([
        r.path,
        200,
        "text/event-stream",
      ]);
      await res.body?.cancel();
      continue;
    }
    const text = await res.text();
    expect({ route: `${r.method} ${r.path}`, noRoute: text.includes('"no route ') }).toEqual({
      route: `${r.method} ${r.path}`,
      noRoute: false,
    });
  }
});

test("openapi: bodies come from the schemas the routes validate with; errors and auth are described", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const doc = await documentOf(core.app);
  const create = doc.paths["/api/v1/workloads"].post;
  const { $schema: _, ...expected } = toJsonSchema(WorkloadSpec, {
    errorMode: "ignore",
    target: "draft-2020-12",
  });
  expect(create.requestBody.content["application/json"].schema).toEqual(expected);
  expect(Object.keys(create.responses).sort()).toEqual(["201", "400", "401", "403", "409", "413"]);
  expect(create.responses["403"].content["application/json"].schema).toEqual({
    $ref: "#/components/schemas/Error",
  });
  expect(create["x-required-role"]).toBe("operator");
  expect(doc.paths["/api/v1/tokens"].post["x-required-role"]).toBe("admin");
  expect(doc.paths["/api/v1/nodes/{id}/reset-key"].post["x-required-role"]).toBe("admin");
  expect(doc.paths["/api/v1/nodes"].get["x-required-role"]).toBe("viewer");
  expect(doc.paths["/healthz"].get.security).toEqual([]);
  const mint = doc.paths["/api/v1/tokens"].post.requestBody.content["application/json"].schema;
  expect(mint.properties.role.enum).toEqual(["viewer", "operator", "admin"]);
  expect(doc.paths["/api/v1/audit"].get.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
    "actor",
    "limit",
    "object",
    "since",
    "until",
  ]);
});
