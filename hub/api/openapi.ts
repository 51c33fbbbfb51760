// OpenAPI 3.1 from the routes themselves: each route declares its schemas beside it with `describeRoute`,
// and the document is built by walking the Hono app, so a route cannot be served without being listed.
import { toJsonSchema } from "@valibot/to-json-schema";
import type { Hono, MiddlewareHandler } from "hono";
import * as v from "valibot";
import { SOFTWARE_VERSION } from "../../shared/version.ts";
import { requiredRole } from "../auth/index.ts";

/** What a route says about itself; the schemas are the ones its handler validates with. */
export interface RouteDoc {
  summary: string;
  /** The request body (JSON), as the handler checks it. */
  body?: v.GenericSchema;
  /** Whether the body may be left out (defaults apply). */
  bodyOptional?: boolean;
  /** Query parameters: an object schema whose entries are strings or optional strings. */
  query?: v.ObjectSchema<v.ObjectEntries, undefined>;
  /** The success response's JSON. */
  response?: v.GenericSchema;
  /** The success status (default 200). */
  status?: number;
  /** Error statuses beyond those implied (400 with a body or query, 401/403 behind auth, 404 with path parameters, 413 with a body). */
  errors?: number[];
  /** Not behind a bearer token (health, the root). */
  public?: boolean;
  /** Content type of the success response (default application/json). */
  contentType?: string;
}

const DOC = Symbol.for("novacron.route-doc");
type Documented = MiddlewareHandler & { [DOC]?: RouteDoc };

/** Declares a route's description; put it first among the route's handlers. It passes the request on. */
export function describeRoute(doc: RouteDoc): MiddlewareHandler {
  const mw: Documented = async (_c, next) => {
    await next();
  };
  mw[DOC] = doc;
  return mw;
}

/** The error body every route answers with. */
export const ErrorBody = v.object({
  error: v.object({
    code: v.string(),
    message: v.string(),
    field: v.optional(v.string()),
  }),
});

const ERROR_TEXT: Record<number, string> = {
  400: "bad request: the field is named",
  401: "no token, or an unknown, expired or revoked one",
  403: "the token's role is too low for this route",
  404: "no such object or route",
  409: "conflicts with an existing object",
  413: "the body (or what it would send an agent) is over a limit, which is named",
  503: "the node or the hub's store could not be reached",
};

/** A route as the app serves it. */
export interface ServedRoute {
  method: string;
  /** OpenAPI form: `/api/v1/nodes/{id}`. */
  path: string;
  doc: RouteDoc | undefined;
}

/** Hono's `/nodes/:id{[a-z]+}` as OpenAPI's `/nodes/{id}`. */
export const openApiPath = (honoPath: string) =>
  honoPath.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, "{$1}").replace(/(.)\/$/, "$1");

function docOf(handler: unknown): RouteDoc | undefined {
  const h = handler as Documented & { __COMPOSED_HANDLER?: Documented };
  return h[DOC] ?? h.__COMPOSED_HANDLER?.[DOC];
}

/** Every method + path the app answers (middleware left out), with its description when it has one. */
export function servedRoutes(app: Hono): ServedRoute[] {
  const out = new Map<string, ServedRoute>();
  for (const r of app.routes) {
    if (r.method === "ALL") continue;
    const path = openApiPath(r.path);
    const key = `${r.method} ${path}`;
    const cur = out.get(key) ?? { method: r.method, path, doc: undefined };
    cur.doc ??= docOf(r.handler);
    out.set(key, cur);
  }
  return [...out.values()];
}

function jsonSchema(schema: v.GenericSchema): Record<string, unknown> {
  const { $schema: _, ...rest } = toJsonSchema(schema, {
    errorMode: "ignore",
    target: "draft-2020-12",
  }) as Record<string, unknown>;
  return rest;
}

function operation(route: ServedRoute, metricsNeedToken: boolean) {
  const doc = route.doc;
  const params = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => ({
    name: m[1]!,
    in: "path",
    required: true,
    schema: { type: "string" },
  }));
  const query = doc?.query
    ? Object.entries(doc.query.entries).map(([name, s]) => {
        const schema = jsonSchema(s as v.GenericSchema);
        return {
          name,
          in: "query",
          required: (s as v.GenericSchema).type !== "optional",
          schema,
        };
      })
    : [];
  const isPublic = doc?.public === true || (route.path === "/metrics" && !metricsNeedToken);
  const success = doc?.status ?? 200;
  const errors = new Set<number>(doc?.errors ?? []);
  if (doc?.body || query.length > 0) errors.add(400);
  if (doc?.body) errors.add(413);
  if (params.length > 0) errors.add(404);
  if (!isPublic) {
    errors.add(401);
    errors.add(403);
  }
  const responses: Record<string, unknown> = {
    [success]: {
      description: "success",
      content: {
        [doc?.contentType ?? "application/json"]: {
          schema: doc?.response
            ? jsonSchema(doc.response)
            : doc?.contentType
              ? { type: "string" }
              : { type: "object" },
        },
      },
    },
  };
  for (const status of [...errors].sort()) {
    responses[status] = {
      description: ERROR_TEXT[status] ?? "error",
      content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
    };
  }
  return {
    operationId: `${route.method.toLowerCase()}${route.path.replace(/[{}]/g, "").replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ?? "").toUpperCase())}`,
    summary: doc?.summary ?? "undocumented route",
    ...(doc ? {} : { "x-undocumented": true }),
    ...(route.path.startsWith("/api/v1/")
      ? { "x-required-role": requiredRole(route.method, route.path) }
      : {}),
    ...(params.length + query.length > 0 ? { parameters: [...params, ...query] } : {}),
    ...(doc?.body
      ? {
          requestBody: {
            required: doc.bodyOptional !== true,
            content: { "application/json": { schema: jsonSchema(doc.body) } },
          },
        }
      : {}),
    responses,
    security: isPublic ? [] : [{ bearer: [] }],
  };
}

/** The OpenAPI 3.1 document of every route the app serves. */
export function openApiDocument(app: Hono, o: { metricsNeedToken: boolean }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of servedRoutes(app)) {
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = operation(route, o.metricsNeedToken);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "NovaCron hub API",
      version: SOFTWARE_VERSION,
      description:
        "The hub's operator API. Roles: viewer (every GET), operator (viewer + changes), admin (operator + tokens, join tokens, node key reset, hub config); each operation's x-required-role names the least role.",
    },
    paths,
    components: {
      schemas: { Error: jsonSchema(ErrorBody) },
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "an operator token (POST /api/v1/tokens) or the bootstrap admin token",
        },
      },
    },
    security: [{ bearer: [] }],
  };
}
