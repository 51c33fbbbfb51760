// Specification of operator tokens and roles: what each role may do, tried on every route as an attacker would.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { FakeClock } from "../support/fake-clock.ts";
import { ADMIN, openHubCore } from "../support/hub-core.ts";
import { call, mutatingRoutes } from "../support/api-routes.ts";
import { startHub, tempDir } from "../support/processes.ts";

async function mint(app: Parameters<typeof call>[0], role: string, name = role, extra: object = {}) {
  const res = await call(app, ADMIN, "POST", "/api/v1/tokens", { name, role, ...extra });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; token: string; expires_at: number | null; role: string };
}

test("roles: a viewer token is refused 403 on every mutating route of the app, and changes nothing", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const viewer = await mint(core.app, "viewer");
  const routes = mutatingRoutes(core.app);
  // The app's own table, not a hand-written list: workloads, nodes, tokens, failover routes mounted later...
  expect(routes.length).toBeGreaterThan(15);
  expect(routes.map((r) => `${r.method} ${r.route}`)).toContain("POST /api/v1/nodes/{id}/drain");
  // What a refused request must not change (last use aside: the viewer did use its token).
  const state = async () => ({
    tokens: (
      (await (await call(core.app, ADMIN, "GET", "/api/v1/tokens")).json()) as {
        tokens: { last_used_at?: number | null }[];
      }
    ).tokens.map(({ last_used_at: _, ...t }) => t),
    workloads: await (await call(core.app, ADMIN, "GET", "/api/v1/workloads")).json(),
    join: await (await call(core.app, ADMIN, "GET", "/api/v1/join-tokens")).json(),
  });
  const before = await state();
  for (const r of routes) {
    const res = await call(core.app, viewer.token, r.method, r.url, { name: "evil", role: "admin" });
    expect({ route: `${r.method} ${r.route}`, status: res.status }).toEqual({
      route: `${r.method} ${r.route}`,
      status: 403,
    });
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("forbidden");
    expect(body.error.message).toContain("needs role");
  }
  expect(await state()).toEqual(before);
  // Reading is what a viewer is for.
  expect((await call(core.app, viewer.token, "GET", "/api/v1/nodes")).status).toBe(200);
  expect(await (await call(core.app, viewer.token, "GET", "/api/v1/whoami")).json()).toEqual({
    actor: "token:viewer",
    role: "viewer",
  });
});

test("roles: an operator changes workloads but cannot mint or revoke tokens, mint join tokens or reset node keys", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const operator = await mint(core.app, "operator");
  const viewer = await mint(core.app, "viewer");
  for (const role of ["viewer", "operator", "admin"]) {
    const res = await call(core.app, operator.token, "POST", "/api/v1/tokens", {
      name: `by-op-${role}`,
      role,
    });
    expect(res.status).toBe(403);
  }
  expect((await call(core.app, operator.token, "DELETE", `/api/v1/tokens/${viewer.id}`)).status).toBe(403);
  expect((await call(core.app, operator.token, "POST", "/api/v1/join-tokens", {})).status).toBe(403);
  expect((await call(core.app, operator.token, "POST", "/api/v1/nodes/n1/reset-key", {})).status).toBe(403);
  // The viewer's token still works: the refused revocation did nothing.
  expect((await call(core.app, viewer.token, "GET", "/api/v1/whoami")).status).toBe(200);
  const created = await call(core.app, operator.token, "POST", "/api/v1/workloads", {
    name: "web",
    driver: "exec",
    command: "/bin/true",
    nodes: ["n1"],
  });
  expect(created.status).toBe(201);
  // Past the role check, a route answers as it always did (404 for a node that does not exist).
  expect((await call(core.app, operator.token, "POST", "/api/v1/nodes/nope/undrain")).status).toBe(404);
});

test("tokens: unknown, forged, expired and revoked tokens get 401; the secret is stored only as a digest", async () => {
  using dir = tempDir();
  const clock = new FakeClock();
  using core = await openHubCore(dir.path, { clock });
  const short = await mint(core.app, "viewer", "short", { expires_in: "1h" });
  expect(short.expires_at).toBe(clock.now() + 3_600_000);
  expect((await call(core.app, short.token, "GET", "/api/v1/nodes")).status).toBe(200);
  await clock.advance(3_600_000);
  const expired = await call(core.app, short.token, "GET", "/api/v1/nodes");
  expect(expired.status).toBe(401);
  expect(((await expired.json()) as { error: { message: string } }).error.message).toContain("expired");
  for (const forged of ["", "nco_", `${short.token}x`, short.token.slice(0, -1), "admin2", "Bearer"]) {
    expect((await call(core.app, forged, "GET", "/api/v1/nodes")).status).toBe(401);
  }
  expect((await core.app.request("/api/v1/nodes")).status).toBe(401);
  // Nothing in the database holds the secret itself.
  const rows = await core.sql.all("SELECT * FROM operator_tokens");
  expect(JSON.stringify(rows)).not.toContain(short.token.slice(4));
  // Bad requests name the field.
  for (const [body, field] of [
    [{ name: "x", role: "root" }, "role"],
    [{ name: "", role: "viewer" }, "name"],
    [{ name: "x", role: "viewer", expires_in: "forever" }, "expires_in"],
    [{ role: "viewer" }, "name"],
  ] as const) {
    const res = await call(core.app, ADMIN, "POST", "/api/v1/tokens", body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { field: string } }).error.field).toBe(field);
  }
  await mint(core.app, "viewer", "twice");
  expect(
    (await call(core.app, ADMIN, "POST", "/api/v1/tokens", { name: "twice", role: "viewer" })).status,
  ).toBe(409);
});

test("tokens against a real hub: a revoked token stops working on the very next request; --metrics-auth guards /metrics", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub"), args: ["--metrics-auth"] });
  const minted = await hub.api<{ id: string; token: string }>("/api/v1/tokens", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "ci", role: "operator" }),
  });
  expect(minted.status).toBe(201);
  const as = (token: string, path: string, init: RequestInit = {}) =>
    fetch(`${hub.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}` } });
  expect((await as(minted.body.token, "/api/v1/whoami")).status).toBe(200);
  const listed = await hub.api<{ tokens: { id: string; last_used_at: number | null }[] }>("/api/v1/tokens");
  expect(listed.body.tokens.find((t) => t.id === minted.body.id)?.last_used_at).toBeNumber();
  expect(JSON.stringify(listed.body)).not.toContain(minted.body.token);
  const revoked = await hub.api<{ id: string; revoked_at: number }>(`/api/v1/tokens/${minted.body.id}`, {
    method: "DELETE",
  });
  expect(revoked.status).toBe(200);
  expect(revoked.body.revoked_at).toBeNumber();
  const after = await as(minted.body.token, "/api/v1/whoami");
  expect(after.status).toBe(401);
  expect(((await after.json()) as { error: { message: string } }).error.message).toContain("revoked");
  // /metrics: no token, a revoked one → 401; a good one → the text.
  expect((await fetch(`${hub.url}/metrics`)).status).toBe(401);
  expect((await as(minted.body.token, "/metrics")).status).toBe(401);
  const scrape = await as(hub.adminToken, "/metrics");
  expect(scrape.status).toBe(200);
  expect(await scrape.text()).toContain("# TYPE novacron_hub_nodes gauge");
});
