// Two hub replicas' view of each other through one private PostgreSQL: who leads and the fencing of a
// leader that lost its lease, the session directory and its notices, and work routed to the holder.
import { expect, test } from "bun:test";
import { systemClock } from "../../shared/clock.ts";
import { createLogger } from "../../shared/log.ts";
import { NotLeaderError, type ReplicaHandlers, Replicas } from "../../hub/replicas/index.ts";
import { type HubSql, migrate, openPostgres } from "../../hub/store/sql/index.ts";
import { describeOnPostgres } from "../support/postgres.ts";
import { waitFor } from "../support/wait.ts";

/** A replica's handlers that record what it was asked, for the nodes `local` says it holds. */
function recorder(local: Set<string>) {
  const asked: string[] = [];
  const handlers: ReplicaHandlers = {
    local: () => local,
    holds: (node) => local.has(node),
    deliver: (node, kind) => asked.push(`${kind} ${node}`),
    moved: (node, epoch) => {
      local.delete(node);
      asked.push(`moved ${node} ${epoch}`);
    },
    end: (node, reason) => asked.push(`end ${node}: ${reason}`),
    dropAll: (reason) => {
      for (const node of local) asked.push(`dropped ${node}: ${reason}`);
      local.clear();
    },
    relay: (w) => asked.push(`relay ${w.cache}/${w.key} from ${w.origin}`),
    request: async (node, kind, args) => {
      asked.push(`request ${kind} ${node}`);
      if (kind === "fail") throw new Error("the node said no");
      return { id: "r", ok: true, body: { node, kind, args } };
    },
  };
  return { asked, handlers };
}

describeOnPostgres("replicas", (pg) => {
  async function pair(): Promise<{ sql: HubSql; a: Replicas; b: Replicas; close(): Promise<void> }> {
    const sql = openPostgres(await pg().newDatabase());
    await migrate(sql);
    const log = createLogger("test", { level: "error" });
    const a = new Replicas({ sql, hubId: "hub", clock: systemClock, log });
    const b = new Replicas({ sql, hubId: "hub", clock: systemClock, log });
    return {
      sql,
      a,
      b,
      close: async () => {
        await a.stop();
        await b.stop();
        await sql.close();
      },
    };
  }

  test("one leads at a time; a leader whose lease another took is refused inside its own transaction, and its write is not kept", async () => {
    const { sql, a, b, close } = await pair();
    try {
      await a.start(recorder(new Set()).handlers);
      await waitFor(() => a.active(), { what: "a to lead" });
      await b.start(recorder(new Set()).handlers);
      await b.idle();
      expect(b.active()).toBe(false);
      await expect(sql.tx((tx) => b.fence(tx))).rejects.toBeInstanceOf(NotLeaderError);
      await sql.tx((tx) => a.fence(tx));

      // a stalls (its renewals stop reaching the store); its lease runs out and b takes it.
      await sql.run("UPDATE leases SET expires_at = 0 WHERE name = 'controller'");
      await waitFor(
        async () => {
          await b.refresh();
          return b.active();
        },
        { what: "b to lead", timeoutMs: 15_000 },
      );
      // a may still believe it leads until its next renewal: its fenced write is refused and rolled back.
      await sql.run("CREATE TABLE IF NOT EXISTS decided (what TEXT)");
      const write = sql.tx(async (tx) => {
        await tx.run("INSERT INTO decided (what) VALUES ('by a')");
        await a.fence(tx);
      });
      await expect(write).rejects.toBeInstanceOf(NotLeaderError);
      expect(await sql.all("SELECT what FROM decided")).toEqual([]);
      const row = await sql.get<{ holder: string; epoch: number }>(
        "SELECT holder, epoch FROM leases WHERE name = 'controller'",
      );
      expect(row).toEqual({ holder: b.id, epoch: 2 });
    } finally {
      await close();
    }
  }, 60_000);

  test("a claim is seen by the other replica at once; a newer claim elsewhere ends the older session, whose late release clears nothing", async () => {
    const { a, b, close } = await pair();
    const onA = recorder(new Set(["n1"]));
    const onB = recorder(new Set());
    try {
      await a.start(onA.handlers);
      await b.start(onB.handlers);
      const first = await a.claim("n1");
      await waitFor(() => b.elsewhere("n1") === a.id, { what: "b to see a's claim" });
      expect(a.elsewhere("n1")).toBeUndefined();

      // The agent moved to b before a noticed its connection had gone.
      const second = await b.claim("n1");
      expect(second).toBe(first + 1);
      await waitFor(() => onA.asked.includes(`moved n1 ${second}`), { what: "a told its session is stale" });
      await waitFor(() => a.elsewhere("n1") === b.id, { what: "a to see b's claim" });
      a.release("n1", first);
      await Bun.sleep(300);
      expect(await b.directory.holderOf("n1")).toMatchObject({ replica: b.id, epoch: second });
      expect(b.elsewhere("n1")).toBeUndefined();
    } finally {
      await close();
    }
  }, 60_000);

  test("work for a node goes to the replica holding its session, and to no other; a key reset ends the session where it is held", async () => {
    const { a, b, close } = await pair();
    const onA = recorder(new Set(["n1"]));
    const onB = recorder(new Set(["n2"]));
    try {
      await a.start(onA.handlers);
      await b.start(onB.handlers);
      await a.claim("n1");
      await b.claim("n2");
      await waitFor(() => a.elsewhere("n2") === b.id && b.elsewhere("n1") === a.id, {
        what: "each to see the other's claim",
      });
      expect(a.forward("n2", "allocs")).toBe(true);
      expect(b.forward("n1", "config")).toBe(true);
      // Nobody holds n3: not forwarded (it gets its state at its next hello).
      expect(a.forward("n3", "allocs")).toBe(false);
      a.endEverywhere("n2", "the node's key was reset by an operator");
      await waitFor(() => onB.asked.length === 2 && onA.asked.length === 1, { what: "the notices" }).catch(
        (err) => {
          throw new Error(`${err.message}: a ${JSON.stringify(onA.asked)}, b ${JSON.stringify(onB.asked)}`);
        },
      );
      expect(onB.asked).toEqual(["allocs n2", "end n2: the node's key was reset by an operator"]);
      expect(onA.asked).toEqual(["config n1"]);
    } finally {
      await close();
    }
  }, 60_000);

  test("a replica whose membership ran out (it died) no longer holds anyone's session in the others' eyes", async () => {
    const { sql, a, b, close } = await pair();
    try {
      await a.start(recorder(new Set(["n1"])).handlers);
      await b.start(recorder(new Set()).handlers);
      await a.claim("n1");
      await waitFor(() => b.elsewhere("n1") === a.id, { what: "b to see a's claim" });
      expect(b.members()).toEqual([a.id, b.id].sort());
      // a is SIGKILLed: it renews nothing more (stopped here without its clean leave).
      await sql.run("UPDATE leases SET expires_at = 0 WHERE name = ?", [`replica/${a.id}`]);
      await b.refresh();
      expect(b.elsewhere("n1")).toBeUndefined();
      expect(b.members()).toEqual([b.id]);
    } finally {
      await close();
    }
  }, 60_000);

  test("a release names its claim: an older claim of the same node, here or elsewhere, never clears a newer one", async () => {
    const { a, close } = await pair();
    try {
      await a.start(recorder(new Set(["n1"])).handlers);
      const older = await a.claim("n1");
      const newer = await a.claim("n1");
      expect(await a.directory.release("n1", a.id, older)).toBe(false);
      a.release("n1", older);
      await Bun.sleep(200);
      expect(await a.directory.holderOf("n1")).toMatchObject({ replica: a.id, epoch: newer });
      expect(await a.directory.release("n1", a.id, newer)).toBe(true);
      expect(await a.directory.holderOf("n1")).toBeUndefined();
    } finally {
      await close();
    }
  }, 60_000);

  test("a claim elsewhere whose notice was missed is found at the next read of the directory, and the stale session here ends", async () => {
    const { a, b, close } = await pair();
    const onA = recorder(new Set(["n1"]));
    try {
      await a.start(onA.handlers);
      await b.start(recorder(new Set()).handlers);
      const first = await a.claim("n1");
      // b's claim written without its notice (as if a's listening connection was reconnecting).
      const { epoch } = await b.directory.claim("n1", b.id, Date.now());
      expect(onA.asked).toEqual([]);
      await a.refresh();
      expect(onA.asked).toEqual([`moved n1 ${epoch}`]);
      expect(epoch).toBe(first + 1);
      expect(a.elsewhere("n1")).toBe(b.id);
    } finally {
      await close();
    }
  }, 60_000);

  test("a replica that loses its membership (cut off, or paused past its lease) ends every session it holds and takes none until it is a member again", async () => {
    const { sql, a, close } = await pair();
    const onA = recorder(new Set(["n1", "n2"]));
    try {
      await a.start(onA.handlers);
      await a.claim("n1");
      await a.claim("n2");
      await sql.run("UPDATE leases SET expires_at = 0 WHERE name = ?", [`replica/${a.id}`]);
      await waitFor(() => onA.asked.length === 2, { what: "a to drop its sessions", timeoutMs: 15_000 });
      expect(onA.asked.map((x) => x.split(":")[0])).toEqual(["dropped n1", "dropped n2"]);
      await expect(a.claim("n3")).rejects.toThrow(/not a member/);
      // It takes its membership again at its next round, and then sessions.
      await waitFor(async () => (await a.claim("n3").catch(() => undefined)) !== undefined, {
        what: "a to take sessions again",
        timeoutMs: 15_000,
      });
      // The sessions it ended at the loss are released in the directory; the one claimed since stays.
      await waitFor(async () => (await a.directory.heldBy(a.id)).join() === "n3", {
        what: "the stale rows released",
      });
    } finally {
      await close();
    }
  }, 60_000);

  test("a request for another replica's node is asked by the holder and its answer comes back through the store, which keeps nothing after", async () => {
    const { sql, a, b, close } = await pair();
    const onB = recorder(new Set(["n2"]));
    try {
      await a.start(recorder(new Set()).handlers);
      await b.start(onB.handlers);
      await b.claim("n2");
      await waitFor(() => a.elsewhere("n2") === b.id, { what: "a to see b's claim" });
      const reply = await a.request("n2", "logs", { alloc: "x", lines: 5 }, 2000);
      expect(reply).toEqual({
        id: "r",
        ok: true,
        body: { node: "n2", kind: "logs", args: { alloc: "x", lines: 5 } },
      });
      await expect(a.request("n2", "fail", {}, 2000)!).rejects.toThrow(/the node said no/);
      expect(onB.asked).toEqual(["request logs n2", "request fail n2"]);
      // Nobody holds n3: nothing to ask through.
      expect(a.request("n3", "logs", {}, 2000)).toBeUndefined();
      expect(await sql.all("SELECT id FROM node_replies")).toEqual([]);
    } finally {
      await close();
    }
  }, 60_000);
});
