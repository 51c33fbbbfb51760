// The CLI's commands for the operator routes (tokens and roles, the audit log, alert acknowledgement;
// docs/stable-interfaces.md), against a real hub.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../support/cli.ts";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const dir = tempDir("novacron-cli-ops-");
const hub: HubHandle = await startHub({ data: join(dir.path, "hub") });

afterAll(async () => {
  await hub[Symbol.asyncDispose]();
  dir[Symbol.dispose]();
});

const admin = (args: string[]) => runCli(args, { hub: hub.url, token: hub.adminToken });
const as = (token: string, args: string[]) => runCli(args, { hub: hub.url, token });

interface Token {
  id: string;
  name: string;
  role: string;
  token?: string;
  expires_at: number | null;
  revoked_at?: number | null;
}

async function mint(name: string, role: string, extra: string[] = []): Promise<Token> {
  const r = await admin(["tokens", "create", name, "--role", role, ...extra, "--json"]);
  expect(r.code).toBe(0);
  return r.json<Token>();
}

describe("cli: tokens and roles", () => {
  test("tokens create prints the secret once; tokens list shows the token without it", async () => {
    const t = await mint("ci-reader", "viewer", ["--expires-in", "24h"]);
    expect(t.name).toBe("ci-reader");
    expect(t.role).toBe("viewer");
    expect(typeof t.token).toBe("string");
    expect(t.expires_at).toBeGreaterThan(Date.now() + 23 * 3_600_000);
    const plain = await admin(["tokens", "create", "people", "--role", "operator"]);
    expect(plain.code).toBe(0);
    expect(plain.stdout.trim()).toMatch(/^\S{16,}$/);
    expect(plain.stderr).toContain("shown only now");
    const list = (await admin(["tokens", "list", "--json"])).json<{ tokens: Token[] }>();
    const listed = list.tokens.find((x) => x.id === t.id);
    expect(listed?.role).toBe("viewer");
    expect(listed?.token).toBeUndefined();
    const table = await admin(["tokens", "list"]);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+ROLE\s+CREATED\s+EXPIRES\s+LAST USED\s+REVOKED$/m);
    expect(table.stdout).toContain("ci-reader");
    expect(table.stdout).not.toContain(t.token!);
  }, 60_000);

  test("a viewer reads but cannot change anything: exit 4 naming the 403; an operator cannot mint tokens", async () => {
    const viewer = (await mint("looker", "viewer")).token!;
    expect((await as(viewer, ["nodes", "--json"])).code).toBe(0);
    expect((await as(viewer, ["workloads", "--json"])).code).toBe(0);
    const file = join(dir.path, "viewer.yaml");
    writeFileSync(file, "name: by-viewer\ndriver: exec\ncommand: /bin/true\nreplicas: 0\n");
    const apply = await as(viewer, ["apply", "-f", file, "--yes"]);
    expect(apply.code).toBe(4);
    expect(apply.stderr).toContain("the token's role may not do this (403 forbidden");
    expect((await admin(["workload", "show", "by-viewer"])).code).toBe(1);
    expect((await as(viewer, ["node", "drain", "any-node"])).code).toBe(4);
    expect((await as(viewer, ["tokens", "create", "x", "--role", "admin"])).code).toBe(4);
    const operator = (await mint("hands", "operator")).token!;
    const minted = await as(operator, ["tokens", "create", "escalate", "--role", "admin"]);
    expect(minted.code).toBe(4);
    expect(minted.stderr).toContain("403");
  }, 60_000);

  test("tokens revoke: the token stops working at once (exit 4, 401)", async () => {
    const t = await mint("short-lived", "viewer");
    expect((await as(t.token!, ["nodes"])).code).toBe(0);
    const r = await admin(["tokens", "revoke", t.id]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`revoked token ${t.id}`);
    const after = await as(t.token!, ["nodes"]);
    expect(after.code).toBe(4);
    expect(after.stderr).toContain("refused the token from NOVACRON_TOKEN (401");
    const listed = (await admin(["tokens", "list", "--json"])).json<{ tokens: Token[] }>();
    expect(listed.tokens.find((x) => x.id === t.id)?.revoked_at).toBeGreaterThan(0);
  }, 60_000);
});

/** The SQLite file and table that hold the audit chain (found by its columns), if any. */
function auditTable(): { file: string; table: string } | undefined {
  const data = join(dir.path, "hub");
  for (const name of readdirSync(data).filter((f) => f.endsWith(".db") || f.endsWith(".sqlite"))) {
    const db = new Database(join(data, name), { readonly: true });
    try {
      const tables = db.query("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
        name: string;
      }[];
      for (const { name: table } of tables) {
        const cols = (db.query(`PRAGMA table_info("${table}")`).all() as { name: string }[]).map(
          (c) => c.name,
        );
        if (["seq", "hash", "prev_hash", "actor"].every((c) => cols.includes(c)))
          return { file: join(data, name), table };
      }
    } finally {
      db.close();
    }
  }
  return undefined;
}

describe("cli: audit", () => {
  test("audit lists each change with its actor and action, filters by actor and time, and verify passes", async () => {
    const file = join(dir.path, "audited.yaml");
    writeFileSync(file, "name: audited\ndriver: exec\ncommand: /bin/true\nreplicas: 0\n");
    expect((await admin(["apply", "-f", file, "--yes"])).code).toBe(0);
    const all = (await admin(["audit", "--since", "1h", "--json"])).json<{
      entries: { seq: number; actor: string; action: string; object: string }[];
    }>();
    const created = all.entries.find((e) => e.action === "POST /api/v1/workloads");
    expect(created?.actor).toBe("bootstrap");
    const mine = (await admin(["audit", "--actor", "bootstrap", "--json"])).json<{
      entries: { actor: string }[];
    }>();
    expect(mine.entries.length).toBeGreaterThan(0);
    expect(mine.entries.every((e) => e.actor === "bootstrap")).toBe(true);
    const none = (await admin(["audit", "--actor", "token:nobody", "--json"])).json<{ entries: unknown[] }>();
    expect(none.entries).toEqual([]);
    const future = (await admin(["audit", "--since", String(Date.now() + 3_600_000), "--json"])).json<{
      entries: unknown[];
    }>();
    expect(future.entries).toEqual([]);
    const table = await admin(["audit"]);
    expect(table.stdout).toMatch(/^SEQ\s+AT\s+ACTOR\s+ACTION\s+OBJECT$/m);
    expect(table.stdout).toContain("POST /api/v1/workloads");
    const ok = await admin(["audit", "verify"]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/audit log intact: \d+ entries verified/);
  }, 60_000);

  test("audit verify exits 1 and names the first bad entry after a row is edited in the database", async () => {
    const file = join(dir.path, "edited.yaml");
    writeFileSync(file, "name: edited\ndriver: exec\ncommand: /bin/true\nreplicas: 0\n");
    expect((await admin(["apply", "-f", file, "--yes"])).code).toBe(0);
    const where = auditTable();
    if (!where) {
      console.log(
        "audit verify tamper case: no table with seq, hash, prev_hash and actor found in the hub's data",
      );
      return;
    }
    const db = new Database(where.file);
    // An attacker with the file drops whatever guards the table first (append-only triggers).
    const triggers = db
      .query("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?")
      .all(where.table) as { name: string }[];
    for (const t of triggers) db.run(`DROP TRIGGER "${t.name}"`);
    const row = db.query(`SELECT seq FROM "${where.table}" ORDER BY seq LIMIT 1`).get() as { seq: number };
    db.run(`UPDATE "${where.table}" SET actor = 'someone-else' WHERE seq = ?`, [row.seq]);
    db.close();
    const r = await admin(["audit", "verify"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`first bad entry ${row.seq}`);
    const j = await admin(["audit", "verify", "--json"]);
    expect(j.code).toBe(1);
    expect(j.json<{ ok: boolean; first_bad: { seq: number } }>()).toMatchObject({
      ok: false,
      first_bad: { seq: row.seq },
    });
  }, 60_000);
});

describe("cli: alerts and ack", () => {
  let agent: AgentHandle;
  beforeAll(async () => {
    const config = join(dir.path, "agent.yaml");
    writeFileSync(
      config,
      `batch_interval: 1s\nheartbeat_interval: 1s\nrules:\n  - name: always\n    when: "mem.used_pct >= 0"\n    for: 1s\n    severity: warning\n    actions: [{alert: "memory is in use"}]\n`,
    );
    agent = await startAgent({
      data: join(dir.path, "agent"),
      nodeId: "alerting",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--config", config],
    });
  }, 60_000);
  afterAll(async () => {
    await agent?.[Symbol.asyncDispose]();
  });

  test("alerts lists the node's open alert; ack acknowledges it; a viewer cannot ack", async () => {
    interface Alert {
      id: string | number;
      node: string | null;
      state: string;
      acknowledged_by: string | null;
    }
    const open = await waitFor(
      async () => {
        const r = await admin(["alerts", "--state", "open", "--node", "alerting", "--json"]);
        return r.json<{ alerts: Alert[] }>().alerts.find((a) => a.node === "alerting");
      },
      { timeoutMs: 60_000, what: "the agent's alert to be open at the hub" },
    );
    const table = await admin(["alerts", "--state", "open"]);
    expect(table.stdout).toMatch(/^ID\s+STATE\s+SEVERITY\s+NODE\s+RULE\s+SINCE\s+MESSAGE$/m);
    expect(table.stdout).toContain("alerting");
    const viewer = (await mint("alert-viewer", "viewer")).token!;
    expect((await as(viewer, ["ack", String(open.id)])).code).toBe(4);
    const ack = await admin(["ack", String(open.id), "--comment", "looking into it", "--json"]);
    expect(ack.code).toBe(0);
    const acked = ack.json<{ alert: Alert }>().alert;
    expect(acked.state).toBe("acknowledged");
    // Who acknowledged: the actor of the bootstrap token.
    expect(acked.acknowledged_by).toBe("bootstrap");
    const listed = (await admin(["alerts", "--state", "acknowledged", "--json"])).json<{ alerts: Alert[] }>();
    expect(listed.alerts.map((a) => String(a.id))).toContain(String(open.id));
    const missing = await admin(["ack", "999999"]);
    expect(missing.code).toBe(1);
  }, 90_000);
});
