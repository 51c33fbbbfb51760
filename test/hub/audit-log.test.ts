// Specification of the audit log: one entry per change through the API, the hub's own decisions, a chain that shows tampering.
import { expect, test } from "bun:test";
import { call, mutatingRoutes } from "../support/api-routes.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { ADMIN, joinNode, openHubCore } from "../support/hub-core.ts";
import { type HubSql, openPostgres, openSqlite } from "../../hub/store/sql/index.ts";
import type { TestStore } from "../support/hub-store.ts";
import { tempDir } from "../support/processes.ts";

// Another connection to the hub's store (the file, or the database), outside the hub.
function rawStore(store: TestStore): HubSql {
  return store.db ? openSqlite(store.where) : openPostgres(store.where, { max: 1 });
}

// Removing a guard as someone with access to the store would.
const dropTrigger = (store: TestStore, name: string) =>
  store.db ? `DROP TRIGGER ${name}` : `DROP TRIGGER ${name} ON audit_log`;

interface Entry {
  seq: number;
  at: number;
  actor: string;
  action: string;
  object: string;
  before: string | null;
  after: string | null;
  status: number | null;
  hash: string;
  prev_hash: string;
}

const entries = async (app: Parameters<typeof call>[0], query = "") =>
  ((await (await call(app, ADMIN, "GET", `/api/v1/audit${query}`)).json()) as { entries: Entry[] }).entries;

test("audit: every mutating route of the app leaves exactly one entry naming the caller, the route and the object", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const minted = (await (
    await call(core.app, ADMIN, "POST", "/api/v1/tokens", { name: "ops", role: "admin" })
  ).json()) as { token: string };
  const routes = mutatingRoutes(core.app);
  expect(routes.length).toBeGreaterThan(15);
  for (const r of routes) {
    const last = (await entries(core.app, "?limit=1"))[0]?.seq ?? 0;
    const res = await call(core.app, minted.token, r.method, r.url, {});
    const added = (await entries(core.app, "?limit=50")).filter(
      (e) => e.seq > last && e.actor === "token:ops",
    );
    expect({ route: `${r.method} ${r.route}`, entries: added.length }).toEqual({
      route: `${r.method} ${r.route}`,
      entries: 1,
    });
    const e = added[0]!;
    expect(e.action).toBe(`${r.method} ${r.route.replace(/\{([^}]+)\}/g, ":$1")}`);
    expect(e.object.startsWith(r.url.slice("/api/v1/".length))).toBe(true);
    expect(e.status).toBe(res.status);
  }
  // Reads leave nothing.
  const last = (await entries(core.app, "?limit=1"))[0]!.seq;
  await call(core.app, minted.token, "GET", "/api/v1/nodes");
  await call(core.app, minted.token, "GET", "/api/v1/workloads");
  expect((await entries(core.app, "?limit=1"))[0]!.seq).toBe(last);
});

test("audit: a change records digests of the object before and after; queries by actor, object and time", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  const spec = { name: "web", driver: "exec", command: "/bin/sleep", args: ["60"], nodes: ["n1"] };
  expect((await call(core.app, ADMIN, "POST", "/api/v1/workloads", spec)).status).toBe(201);
  const put = await call(core.app, ADMIN, "PUT", "/api/v1/workloads/web", { ...spec, args: ["61"] });
  expect(put.status).toBe(200);
  const [change, create] = await entries(core.app, "?object=workloads/web");
  expect(create!.object).toBe("workloads/web");
  expect(create!.before).toBeNull();
  expect(create!.after).toMatch(/^[0-9a-f]{64}$/);
  expect(change!.action).toBe("PUT /api/v1/workloads/:name");
  // The state before the change is the state the creation left.
  expect(change!.before).toBe(create!.after);
  expect(change!.after).not.toBe(change!.before);
  expect(change!.prev_hash).toBe(create!.hash);
  expect(await entries(core.app, "?actor=bootstrap&object=workloads")).toHaveLength(2);
  expect(await entries(core.app, "?actor=token:nobody")).toHaveLength(0);
  expect(await entries(core.app, "?object=workloads/we")).toHaveLength(0);
  expect(await entries(core.app, `?since=${change!.at + 1}`)).toHaveLength(0);
  expect(await entries(core.app, `?until=${create!.at}`)).toContainEqual(create!);
  const bad = await call(core.app, ADMIN, "GET", "/api/v1/audit?limit=0");
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { error: { field: string } }).error.field).toBe("limit");
});

test("audit: the hub's own placement decisions are entries of actor hub", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  await joinNode(core, "n1", {
    resources: { cpu_cores: 4, mem_bytes: 4 * 2 ** 30, disk_bytes: 10 * 2 ** 30 },
  });
  const res = await call(core.app, ADMIN, "POST", "/api/v1/workloads", {
    name: "placed",
    driver: "exec",
    command: "/bin/sleep",
    replicas: 1,
  });
  expect(res.status).toBe(201);
  const hub = await entries(core.app, "?actor=hub&object=workloads/placed");
  expect(hub.map((e) => e.action)).toContain("placement.place");
});

test("audit verify: editing or deleting a row in the SQLite file is found, naming the first bad entry", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  for (let i = 0; i < 5; i++) await call(core.app, ADMIN, "POST", "/api/v1/join-tokens", { note: `t${i}` });
  const verify = async () =>
    (await (await call(core.app, ADMIN, "GET", "/api/v1/audit/verify")).json()) as {
      ok: boolean;
      entries: number;
      first_bad?: { seq: number; reason: string };
    };
  expect(await verify()).toEqual({ ok: true, entries: 5 });
  // The database refuses changes to the log: an attacker has to remove the guard first.
  await expect(core.sql.run("UPDATE audit_log SET actor = 'x' WHERE seq = 1")).rejects.toThrow("append-only");
  // A second connection to the same store, as someone with access to the disk or the database would open it.
  const raw = rawStore(core.store);
  await raw.run(dropTrigger(core.store, "audit_log_no_update"));
  await raw.run(dropTrigger(core.store, "audit_log_no_delete"));
  await raw.run("UPDATE audit_log SET actor = 'token:someone-else' WHERE seq = 3");
  const edited = await verify();
  expect(edited.ok).toBe(false);
  expect(edited.first_bad?.seq).toBe(3);
  expect(edited.first_bad?.reason).toContain("edited");
  await raw.run("DELETE FROM audit_log WHERE seq = 2");
  const removed = await verify();
  expect(removed.first_bad?.seq).toBe(2);
  expect(removed.first_bad?.reason).toContain("missing");
  await raw.close();
});

test("audit verify: removing the newest entry is found too", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path);
  for (let i = 0; i < 3; i++) await call(core.app, ADMIN, "POST", "/api/v1/join-tokens", { note: `t${i}` });
  const raw = rawStore(core.store);
  await raw.run(dropTrigger(core.store, "audit_log_no_delete"));
  await raw.run("DELETE FROM audit_log WHERE seq = 3");
  await raw.close();
  const res = (await (await call(core.app, ADMIN, "GET", "/api/v1/audit/verify")).json()) as {
    ok: boolean;
    first_bad?: { seq: number; reason: string };
  };
  expect(res.ok).toBe(false);
  expect(res.first_bad?.seq).toBe(3);
});

test("audit: failover decisions are entries of actor hub, each with its reason; the chain stays whole", async () => {
  using dir = tempDir();
  const clock = new FakeClock();
  using core = await openHubCore(dir.path, {
    clock,
    statusPolicy: {
      suspectAfterMs: 10_000,
      downAfterMs: 60_000,
      restartGraceMs: 30_000,
      keyLifetimeMs: 86_400_000,
    },
  });
  const resources = { cpu_cores: 4, mem_bytes: 4 * 2 ** 30, disk_bytes: 10 * 2 ** 30 };
  const a = await joinNode(core, "a", { resources, level: 2 });
  const b = await joinNode(core, "b", { resources, level: 2 });
  const created = await call(core.app, ADMIN, "POST", "/api/v1/workloads", {
    name: "svc",
    driver: "exec",
    command: "/bin/true",
  });
  expect(created.status).toBe(201);
  const first = (await core.workloads.allocsOf("svc"))[0]!;
  core.gateway.onClosed((first.node === "a" ? a : b).peer);
  // Disconnected after about 2 s, lost after the workload's lost_after: then replaced.
  for (let t = 0; t < 10_000; t += 250) await clock.advance(250);
  expect((await core.workloads.alloc(first.id))?.status).toBe("lost");
  const hub = await entries(core.app, "?actor=hub");
  const lost = hub.find((e) => e.action === "failover.mark_lost");
  expect(lost?.object).toBe(`allocs/${first.id}`);
  expect(hub.map((e) => e.action)).toContain("failover.place");
  const raw = (await core.sql.get<{ detail: string }>(
    "SELECT detail FROM audit_log WHERE action = 'failover.mark_lost'",
  ))!;
  expect(raw.detail.length).toBeGreaterThan(0);
  const verify = (await (await call(core.app, ADMIN, "GET", "/api/v1/audit/verify")).json()) as {
    ok: boolean;
  };
  expect(verify.ok).toBe(true);
});
