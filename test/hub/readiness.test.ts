// Specification of GET /readyz: 503 while the hub's store does not take writes, ready again after,
// with the process up throughout (a full disk under SQLite; PostgreSQL stopped and started again).
import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { StoreReadiness } from "../../hub/store/readiness.ts";
import { openHubDb } from "../../hub/store/db.ts";
import { migrate, openPostgres, wrapSqlite } from "../../hub/store/sql/index.ts";
import { systemClock } from "../../shared/clock.ts";
import { createLogger } from "../../shared/log.ts";
import { envelope } from "../../shared/protocol/index.ts";
import { hubCoreOn, joinNode } from "../support/hub-core.ts";
import { sqliteTest } from "../support/hub-store.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { describeOnPostgres } from "../support/postgres.ts";
import { tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";
import { mountTmpfs } from "../support/tmpfs.ts";

const quiet = createLogger("test", { write: () => {} });
const KiB = 1024;

// SQLite's own file on a full disk; the same on PostgreSQL is the server stopped (below).
sqliteTest(
  "readyz: a hub whose disk fills answers 503 naming the store's error, acks nothing it could not store, and is ready again once there is room",
  async () => {
    using fs = mountTmpfs(4096 * KiB);
    const core = await hubCoreOn(await openHubDb(join(fs.path, "hub")));
    using _core = core;
    // The test takes the probes itself, at the moments it looks.
    core.readiness.stop();
    const readyz = async () => {
      const res = await core.app.request("/readyz");
      return { status: res.status, body: (await res.json()) as { status: string; reason?: string } };
    };
    expect(await readyz()).toMatchObject({ status: 200, body: { status: "ready" } });
    const n = await joinNode(core, "n1");
    const acks = () => n.received.filter((m) => m.t === "ack").map((m) => (m.b as { upto: number }).upto);
    let q = 0;
    const event = () =>
      n.send(
        envelope("event", "n1", { kind: "note", at: Date.now(), message: "x".repeat(8000) }, { q: ++q }),
      );
    event();
    await core.ingest.flush();
    expect(acks().at(-1)).toBe(1);
    // Another program takes the disk: the next groups cannot be stored.
    fs.fill("other-program");
    for (let i = 0; i < 50 && core.readiness.state.ready; i++) {
      event();
      await core.ingest.flush();
    }
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body.status).toBe("not_ready");
    expect(down.body.reason).toMatch(/^the store does not take writes: .*(full|disk)/i);
    const ackedWhileFull = acks().at(-1)!;
    expect(core.ingest.committed("n1")).toBe(ackedWhileFull);
    // The liveness check still says the process is up.
    expect((await core.app.request("/healthz")).status).toBe(200);
    // The probe's small write may still fit: right after a group failed it does not make the hub ready.
    await core.readiness.probe();
    expect((await readyz()).status).toBe(503);
    // Room again: the resent message is stored and acked, and the hub is ready.
    rmSync(join(fs.path, "other-program"));
    q = ackedWhileFull;
    event();
    await core.ingest.flush();
    expect(await readyz()).toMatchObject({ status: 200, body: { status: "ready" } });
    expect(acks().at(-1)).toBe(ackedWhileFull + 1);
    expect(core.ingest.committed("n1")).toBe(ackedWhileFull + 1);
  },
);

test("readiness: after a commit failed, only a commit makes it ready for 10 s; after that a probe that works does too", async () => {
  using dir = tempDir();
  const db = await openHubDb(dir.path);
  try {
    const clock = new FakeClock();
    const r = new StoreReadiness({ sql: wrapSqlite(db), clock, log: quiet });
    expect((await r.probe()).ready).toBe(true);
    r.commit(false, new Error("database or disk is full"));
    expect(r.state).toMatchObject({ ready: false, reason: "database or disk is full" });
    await clock.advance(9_000);
    expect((await r.probe()).ready).toBe(false);
    await clock.advance(1_000);
    expect((await r.probe()).ready).toBe(true);
    r.commit(false, new Error("again"));
    r.commit(true);
    expect(r.state).toMatchObject({ ready: true, reason: null });
  } finally {
    db.close();
  }
});

describeOnPostgres("postgres", (pg) => {
  const stores: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const s of stores) await s.close();
  });

  test("readiness on PostgreSQL: not ready while the server is stopped (the probe fails or times out), ready when it is back", async () => {
    const sql = openPostgres(await pg().newDatabase());
    stores.push(sql);
    await migrate(sql);
    const r = new StoreReadiness({ sql, clock: systemClock, log: quiet, timeoutMs: 1500 });
    expect((await r.probe()).ready).toBe(true);
    await pg().stop();
    try {
      const down = await r.probe();
      expect(down.ready).toBe(false);
      expect(down.reason).toBeTruthy();
      // A commit that worked is news only once the store is back: the newest outcome wins.
      r.report(false, new Error("a group failed"));
      expect(r.state).toMatchObject({ ready: false, reason: "a group failed" });
    } finally {
      await pg().start();
    }
    await waitFor(async () => (await r.probe()).ready, {
      what: "ready after the restart",
      timeoutMs: 20_000,
    });
    expect(r.state.reason).toBeNull();
  });
});
