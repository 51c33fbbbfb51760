// What replicas share through the store, as a contract every back end keeps: leases, shard leases, the
// node-session directory and notifications. Run by sql-replicas.test.ts once per back end.
import { afterEach, describe, expect, test } from "bun:test";
import { RequestError, StoreError, TooLargeError } from "../../shared/errors.ts";
import { createLogger } from "../../shared/log.ts";
import {
  type HubSql,
  holds,
  LeaseKeeper,
  Leases,
  MAX_PAYLOAD_BYTES,
  migrate,
  openNotifier,
  SessionDirectory,
  ShardLeases,
} from "../../hub/store/sql/index.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { mulberry32 } from "../support/prng.ts";
import { waitFor } from "../support/wait.ts";
import type { OpenStore } from "./sql-contract.case.ts";

const T0 = 1_718_000_000_000;

/** A LeaseKeeper on a fake clock that records each transition with the clock's time. */
export function keeperOn(
  leases: Leases,
  clock: FakeClock,
  opts: { ttlMs: number; skewMs: number; holder?: string },
) {
  const events: { kind: "gained" | "lost"; at: number; epoch?: number }[] = [];
  const errors: unknown[] = [];
  const keeper = new LeaseKeeper({
    leases,
    name: "controller/placement",
    holder: opts.holder ?? "replica-a",
    ttlMs: opts.ttlMs,
    skewMs: opts.skewMs,
    clock,
    onGained: (epoch) => events.push({ kind: "gained", at: clock.now(), epoch }),
    onLost: () => events.push({ kind: "lost", at: clock.now() }),
    onError: (err) => errors.push(err),
  });
  const count = (kind: "gained" | "lost") => events.filter((e) => e.kind === kind).length;
  return { keeper, events, errors, count };
}

/** Asserts that no two holders hold the same shard, and returns how many each holds. */
function disjoint(held: number[][]): number[] {
  const all = held.flat();
  expect(new Set(all).size).toBe(all.length);
  return held.map((h) => h.length);
}

/** The cases, for a back end whose `open` gives a fresh, empty store per test. */
export function runReplicaContract(name: string, open: () => Promise<OpenStore>): void {
  describe(`hub sql, shared by replicas (${name})`, () => {
    const opened: HubSql[] = [];
    const fresh = async () => {
      const s = await open();
      opened.push(s.sql);
      await migrate(s.sql);
      return {
        sql: s.sql,
        again: () => {
          const other = s.again();
          opened.push(other);
          return other;
        },
      };
    };
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close().catch(() => {});
    });

    test("leases: acquire, renew, expiry and takeover follow the caller's clock; the epoch grows with each tenure", async () => {
      const { sql } = await fresh();
      const leases = new Leases(sql);
      expect(await leases.acquire("ctl", "a", 1000, T0)).toEqual({
        held: true,
        epoch: 1,
        expiresAt: T0 + 1000,
      });
      expect(await leases.acquire("ctl", "b", 1000, T0 + 500)).toEqual({
        held: false,
        holder: "a",
        expiresAt: T0 + 1000,
      });
      expect(await leases.renew("ctl", "a", 1, 1000, T0 + 900)).toBe(true);
      // Taken over only once expired: at expires_at it is still held.
      expect(await leases.acquire("ctl", "b", 1000, T0 + 1900)).toMatchObject({ held: false, holder: "a" });
      expect(await leases.acquire("ctl", "b", 1000, T0 + 1901)).toEqual({
        held: true,
        epoch: 2,
        expiresAt: T0 + 2901,
      });
      // The old holder's renew and release are refused; a renew with the wrong epoch too.
      expect(await leases.renew("ctl", "a", 1, 1000, T0 + 1901)).toBe(false);
      expect(await leases.release("ctl", "a", 1)).toBe(false);
      expect(await leases.renew("ctl", "b", 1, 1000, T0 + 1902)).toBe(false);
      // The holder acquiring again while live extends it, same epoch.
      expect(await leases.acquire("ctl", "b", 1000, T0 + 2000)).toEqual({
        held: true,
        epoch: 2,
        expiresAt: T0 + 3000,
      });
      expect(await leases.release("ctl", "b", 2)).toBe(true);
      expect(await leases.release("ctl", "b", 2)).toBe(false);
      // Released: free at once, and a new epoch even for the same holder.
      expect(await leases.acquire("ctl", "a", 1000, T0 + 2001)).toMatchObject({ held: true, epoch: 3 });
      // Expired and not taken: a renew is refused (the holder already stopped), a new acquire is a new tenure.
      expect(await leases.renew("ctl", "a", 3, 1000, T0 + 3002)).toBe(false);
      expect(await leases.acquire("ctl", "a", 1000, T0 + 3002)).toMatchObject({ held: true, epoch: 4 });
      expect((await leases.live("ctl", T0 + 3002)).map((l) => [l.name, l.holder, l.epoch])).toEqual([
        ["ctl", "a", 4],
      ]);
      expect(await leases.live("ctl", T0 + 4003)).toEqual([]);
    });

    test("leases: bad names, holders, ttls and times are refused naming the field", async () => {
      const { sql } = await fresh();
      const leases = new Leases(sql);
      const cases: [() => Promise<unknown>, string][] = [
        [() => leases.acquire("", "a", 1000, T0), "lease name"],
        [() => leases.acquire("has space", "a", 1000, T0), "lease name"],
        [() => leases.acquire("ctl", "", 1000, T0), "holder"],
        [() => leases.acquire("ctl", "a", 0, T0), "ttlMs"],
        [() => leases.acquire("ctl", "a", 1.5, T0), "ttlMs"],
        [() => leases.acquire("ctl", "a", 1000, -1), "now"],
        [() => leases.renew("ctl", "a", 0, 1000, T0), "epoch"],
      ];
      for (const [call, field] of cases) {
        const err = (await call().catch((e) => e)) as RequestError;
        expect(err).toBeInstanceOf(RequestError);
        expect(err.field).toBe(field);
        expect(err.message).toStartWith(field);
      }
      expect(await sql.all("SELECT name FROM leases")).toEqual([]);
    });

    test("leases: two holders racing acquire on one expired lease 200 times: exactly one wins each time, epochs strictly increase", async () => {
      const { sql, again } = await fresh();
      const a = new Leases(sql);
      const b = new Leases(again());
      const rand = mulberry32(18);
      let last = 0;
      const wins = { a: 0, b: 0 };
      for (let i = 0; i < 200; i++) {
        // Each round comes after the last round's lease (1 s) has expired.
        const now = T0 + i * 10_000;
        // Who sends first is random. Even rounds race the two (SQLite in one process serialises them,
        // PostgreSQL races them, and which pool wins there depends on the machine's load); odd
        // rounds send the second only once the first has its answer, so each side also wins by
        // arriving first, however loaded the machine is.
        const ask = (l: Leases, holder: string) => l.acquire("race", holder, 1000, now);
        const aFirst = rand() < 0.5;
        const raced = i % 2 === 0;
        let ra: Awaited<ReturnType<Leases["acquire"]>> | undefined;
        let rb: Awaited<ReturnType<Leases["acquire"]>> | undefined;
        if (raced)
          [ra, rb] = aFirst
            ? await Promise.all([ask(a, "a"), ask(b, "b")])
            : (await Promise.all([ask(b, "b"), ask(a, "a")])).reverse();
        else if (aFirst) {
          ra = await ask(a, "a");
          rb = await ask(b, "b");
        } else {
          rb = await ask(b, "b");
          ra = await ask(a, "a");
        }
        if (!ra || !rb) throw new Error("two answers expected");
        const winners = [ra, rb].filter((r) => r.held);
        expect(winners).toHaveLength(1);
        const won = winners[0] as { epoch: number };
        expect(won.epoch).toBeGreaterThan(last);
        last = won.epoch;
        const winner = ra.held ? "a" : "b";
        if (!raced) expect(winner).toBe(aFirst ? "a" : "b");
        wins[winner]++;
        // The loser is told who won, and until when.
        expect(ra.held ? rb : ra).toEqual({ held: false, holder: winner, expiresAt: now + 1000 });
      }
      expect(wins.a + wins.b).toBe(200);
      // Both sides won often.
      expect(Math.min(wins.a, wins.b)).toBeGreaterThan(10);
      expect((await a.get("race"))?.epoch).toBe(last);
      if (process.env.SHOW_LOGS) console.error(`race wins (${name})`, wins);
    }, 60_000);

    test("lease keeper: a holder whose renew is refused stops at once, and its fenced write is refused", async () => {
      const { sql, again } = await fresh();
      const clock = new FakeClock(T0);
      const { keeper, events, count } = keeperOn(new Leases(sql), clock, { ttlMs: 3000, skewMs: 0 });
      keeper.start();
      await waitFor(() => count("gained") === 1, { what: "the lease gained" });
      expect(events[0]).toEqual({ kind: "gained", at: T0, epoch: 1 });
      // Another replica whose clock runs 3.1 s ahead (beyond any allowed skew) takes it over.
      const other = new Leases(again());
      expect(await other.acquire("controller/placement", "replica-b", 3000, T0 + 3001)).toMatchObject({
        held: true,
        epoch: 2,
      });
      await clock.advance(1000);
      await waitFor(() => count("lost") === 1, { what: "the refused renew to end the tenure" });
      // At the renew, well before its own deadline (T0 + 3000).
      expect(events[1]).toEqual({ kind: "lost", at: T0 + 1000 });
      expect(keeper.epoch).toBeUndefined();
      const fenced = (holder: string, epoch: number) =>
        sql.tx((tx) => holds(tx, "controller/placement", holder, epoch, T0 + 1000));
      expect(await fenced("replica-a", 1)).toBe(false);
      expect(await fenced("replica-b", 2)).toBe(true);
      // It keeps trying, and wins again once the other's lease is over.
      for (let i = 0; i < 6; i++) {
        await clock.advance(1000);
        await keeper.idle();
      }
      await waitFor(() => count("gained") === 2, { what: "the lease gained again" });
      expect(events.map((e) => e.kind)).toEqual(["gained", "lost", "gained"]);
      expect(events[2]!.epoch).toBe(3);
      await keeper.stop();
      expect(events.map((e) => e.kind)).toEqual(["gained", "lost", "gained", "lost"]);
      // Stopped: released in the store, so the next holder need not wait for it to expire.
      expect(await other.acquire("controller/placement", "replica-b", 3000, clock.now())).toMatchObject({
        held: true,
        epoch: 4,
      });
    });

    test("lease keeper: renews every ttl/3; when the store fails it gives up at its own expiry minus skew, never later", async () => {
      const { sql, again } = await fresh();
      const clock = new FakeClock(T0);
      const mine = again();
      const { keeper, events, errors, count } = keeperOn(new Leases(mine), clock, {
        ttlMs: 3000,
        skewMs: 300,
      });
      keeper.start();
      await waitFor(() => count("gained") === 1, { what: "the lease gained" });
      await clock.advance(1000);
      await waitFor(() => keeper.expiresAt === T0 + 4000, { what: "the renew at ttl/3" });
      const row = await new Leases(sql).get("controller/placement");
      expect(row).toMatchObject({ holder: "replica-a", epoch: 1, expiresAt: T0 + 4000 });
      // The store goes away: every call fails from now on.
      await mine.close();
      await clock.advance(1000);
      await waitFor(() => errors.length >= 1, { what: "the failed renew" });
      expect(errors[0]).toBeInstanceOf(StoreError);
      // Its deadline is T0 + 4000 - 300; the renew at T0 + 3000 fails as well.
      await clock.advance(1699);
      await waitFor(() => errors.length >= 2, { what: "the second failed renew" });
      expect(count("lost")).toBe(0);
      await clock.advance(1);
      expect(events.at(-1)).toEqual({ kind: "lost", at: T0 + 4000 - 300 });
      expect(keeper.epoch).toBeUndefined();
      await clock.advance(5000);
      expect(events.map((e) => e.kind)).toEqual(["gained", "lost"]);
      await keeper.stop();
    });

    test("shard leases: 16 shards split 5/5/6 among 3 holders, never two on one shard; a dead holder's shards move after expiry", async () => {
      const { sql, again } = await fresh();
      const ttl = 3000;
      const holders = ["replica-a", "replica-b", "replica-c"].map(
        (holder, i) =>
          new ShardLeases({
            leases: new Leases(i === 0 ? sql : again()),
            prefix: "heartbeat",
            shards: 16,
            holder,
            ttlMs: ttl,
          }),
      );
      let now = T0;
      const rounds = async (who: ShardLeases[]) => {
        const held: number[][] = [];
        for (const h of who) {
          held.push((await h.round(now)).held);
          disjoint(held);
        }
        return held;
      };
      // Three rounds, ttl/3 apart: the first holder takes everything, then gives up its extras.
      let held: number[][] = [];
      for (let r = 0; r < 3; r++, now += ttl / 3) held = await rounds(holders);
      expect(disjoint(held).sort()).toEqual([5, 5, 6]);
      expect(held.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: 16 }, (_, i) => i));
      // Stable once fair: another round changes nothing.
      const again1 = await rounds(holders);
      expect(again1).toEqual(held);
      // C dies (stops renewing). Until its leases expire nobody takes its shards.
      const cShards = held[2]!;
      const epochsBefore = new Map(cShards.map((s) => [s, holders[2]!.epochOf(s)!]));
      const leases = new Leases(sql);
      const lastRenew = now;
      now += ttl / 3;
      let moved = false;
      for (let r = 0; r < 8; r++, now += ttl / 3) {
        const ab = await rounds(holders.slice(0, 2));
        const alive = now <= lastRenew + ttl;
        if (alive) expect(ab.flat().some((s) => cShards.includes(s))).toBe(false);
        if (ab.flat().length === 16) {
          moved = true;
          expect(ab.map((h) => h.length)).toEqual([8, 8]);
          break;
        }
      }
      expect(moved).toBe(true);
      for (const s of cShards) {
        const row = await leases.get(`heartbeat/shard/${s}`);
        expect(["replica-a", "replica-b"]).toContain(row!.holder);
        expect(row!.epoch).toBeGreaterThan(epochsBefore.get(s)!);
      }
    }, 60_000);

    test("sessions: a newer claim wins and names the stale holder; release is the holder's only; drop clears a dead replica's", async () => {
      const { sql } = await fresh();
      const dir = new SessionDirectory(sql);
      expect(await dir.claim("n1", "replica-a", T0)).toEqual({ epoch: 1, previous: undefined });
      expect(await dir.claim("n1", "replica-b", T0 + 5)).toEqual({ epoch: 2, previous: "replica-a" });
      expect(await dir.holderOf("n1")).toEqual({ replica: "replica-b", since: T0 + 5, epoch: 2 });
      // replica-a's stale session closing later does not clear replica-b's.
      expect(await dir.release("n1", "replica-a")).toBe(false);
      expect(await dir.release("n1", "replica-b")).toBe(true);
      expect(await dir.holderOf("n1")).toBeUndefined();
      // Released: the next claim has no previous holder, and the epoch keeps growing.
      expect(await dir.claim("n1", "replica-a", T0 + 9)).toEqual({ epoch: 3, previous: undefined });
      expect(await dir.claim("n1", "replica-a", T0 + 10)).toEqual({ epoch: 4, previous: undefined });
      for (const n of ["n2", "n3", "n\u00e9-\u6f22"]) await dir.claim(n, "replica-a", T0);
      await dir.claim("n4", "replica-b", T0);
      expect(await dir.drop("replica-a")).toEqual(["n1", "n2", "n3", "n\u00e9-\u6f22"].sort());
      expect(await dir.holderOf("n2")).toBeUndefined();
      expect(await dir.heldBy("replica-b")).toEqual(["n4"]);
      expect(await dir.drop("replica-a")).toEqual([]);
      const bad = await dir.claim("", "replica-a", T0).catch((e) => e);
      expect(bad).toBeInstanceOf(RequestError);
      expect(bad.field).toBe("node");
    });

    test("sessions: two replicas claiming 50 new nodes at once: per node one claim is first, the other names it", async () => {
      const { sql, again } = await fresh();
      const a = new SessionDirectory(sql);
      const b = new SessionDirectory(again());
      const nodes = Array.from({ length: 50 }, (_, i) => `node-${i}`);
      const answers = await Promise.all(
        nodes.map((n) => Promise.all([a.claim(n, "replica-a", T0), b.claim(n, "replica-b", T0)])),
      );
      for (const [i, [ra, rb]] of answers.entries()) {
        const [first, second] = ra.epoch === 1 ? [ra, rb] : [rb, ra];
        expect(first).toEqual({ epoch: 1, previous: undefined });
        expect(second.epoch).toBe(2);
        expect(second.previous).toBe(first === ra ? "replica-a" : "replica-b");
        const holder = await a.holderOf(nodes[i]!);
        expect(holder?.replica).toBe(first === ra ? "replica-b" : "replica-a");
      }
    }, 60_000);

    test("notify: a subscriber gets each payload in order, up to the bound; over it is refused naming the channel", async () => {
      const { sql, again } = await fresh();
      const lines: string[] = [];
      const log = createLogger("notify", { write: (l) => lines.push(l) });
      const pub = openNotifier(sql, log);
      // PostgreSQL: another replica's own store; SQLite: one hub, the same notifier.
      const sub = sql.dialect === "postgres" ? openNotifier(again(), log) : pub;
      const got: string[] = [];
      const other: string[] = [];
      const s1 = await sub.subscribe("replica.b", (p) => got.push(p));
      const s2 = await sub.subscribe("replica.b", () => {
        throw new Error("a broken subscriber");
      });
      const s3 = await sub.subscribe("replica.c", (p) => other.push(p));
      try {
        const atBound = `${"\u00e9".repeat((MAX_PAYLOAD_BYTES - 1) / 2)}x`;
        expect(new TextEncoder().encode(atBound).length).toBe(MAX_PAYLOAD_BYTES);
        const sent = ["command n1 42", '{"node":"n\u00e9"}', "", atBound];
        for (const p of sent) await pub.publish("replica.b", p);
        await waitFor(() => got.length === sent.length, { what: "the notifications", timeoutMs: 10_000 });
        expect(got).toEqual(sent);
        expect(other).toEqual([]);
        expect(lines.some((l) => l.includes("subscriber failed") && l.includes("replica.b"))).toBe(true);
        for (const over of ["x".repeat(MAX_PAYLOAD_BYTES + 1), "\u00e9".repeat(4000)]) {
          const err = await pub.publish("replica.b", over).catch((e) => e);
          expect(err).toBeInstanceOf(TooLargeError);
          expect(err.message).toContain('channel "replica.b"');
          expect(err.message).toContain(`is ${new TextEncoder().encode(over).length} bytes`);
        }
        for (const bad of ["", "c".repeat(64)]) {
          const err = await pub.publish(bad, "x").catch((e) => e);
          expect(err).toBeInstanceOf(RequestError);
          expect(err.field).toBe("channel");
        }
        // Unsubscribed: nothing more arrives (the later notification on another channel shows it was sent).
        await s1.unsubscribe();
        await pub.publish("replica.b", "after");
        await pub.publish("replica.c", "marker");
        await waitFor(() => other.length === 1, { what: "the marker", timeoutMs: 10_000 });
        expect(got).toEqual(sent);
      } finally {
        for (const s of [s1, s2, s3]) await s.unsubscribe();
      }
    }, 30_000);
  });
}
