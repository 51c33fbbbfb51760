// Leases, shard leases, sessions and notifications on both back ends (one contract), and what only
// PostgreSQL can do: go away under a lease holder and come back.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { StoreError } from "../../shared/errors.ts";
import {
  fairShare,
  fnv1a,
  Leases,
  migrate,
  openPostgres,
  openSqlite,
  shardOf,
} from "../../hub/store/sql/index.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { describeOnPostgres } from "../support/postgres.ts";
import { tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";
import { keeperOn, runReplicaContract } from "./sql-replicas.case.ts";

const dir = tempDir("novacron-sql-replicas-");
let files = 0;
afterAll(() => dir[Symbol.dispose]());

describe("shard hashing", () => {
  test("shardOf: FNV-1a over the UTF-8 bytes (the published test vectors), spread evenly over the shards", () => {
    expect(fnv1a("")).toBe(0x811c9dc5);
    expect(fnv1a("a")).toBe(0xe40c292c);
    expect(fnv1a("foobar")).toBe(0xbf9cf968);
    // UTF-8, not UTF-16 code units: "é" is the two bytes c3 a9.
    expect(fnv1a("\u00e9")).toBe(
      Math.imul((Math.imul(0x811c9dc5 ^ 0xc3, 0x01000193) >>> 0) ^ 0xa9, 0x01000193) >>> 0,
    );
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[shardOf(`edge-${i}`, 16)]++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
    expect(() => shardOf("", 16)).toThrow(/node must be/);
    expect(() => shardOf("n", 0)).toThrow(/shards must be/);
    expect([0, 1, 2].map((i) => fairShare(16, 3, i))).toEqual([6, 5, 5]);
    expect([0, 1].map((i) => fairShare(16, 2, i))).toEqual([8, 8]);
  });
});

runReplicaContract("sqlite", async () => {
  const path = join(dir.path, `hub-${++files}.db`);
  return { sql: openSqlite(path), again: () => openSqlite(path) };
});

describeOnPostgres("postgres", (pg) => {
  runReplicaContract("postgres", async () => {
    const url = await pg().newDatabase();
    return { sql: openPostgres(url), again: () => openPostgres(url) };
  });

  test("lease keeper on postgres: the server stopped, it gives up by its own expiry; restarted, it holds again with a new epoch", async () => {
    const server = pg();
    const url = await server.newDatabase();
    const sql = openPostgres(url, { max: 2, connectTimeoutS: 2 });
    const clock = new FakeClock(1_718_000_000_000);
    const t0 = clock.now();
    const { keeper, events, errors, count } = keeperOn(new Leases(sql), clock, { ttlMs: 3000, skewMs: 300 });
    const step = async (ms: number) => {
      await clock.advance(ms);
      await keeper.idle();
    };
    try {
      await migrate(sql);
      keeper.start();
      await waitFor(() => count("gained") === 1, { what: "the lease gained" });
      await step(1000);
      expect(keeper.expiresAt).toBe(t0 + 4000);
      await server.stop();
      await step(1000);
      await step(1000);
      expect(errors.length).toBeGreaterThanOrEqual(2);
      for (const e of errors) {
        expect(e).toBeInstanceOf(StoreError);
        expect((e as StoreError).unavailable).toBe(true);
      }
      expect(count("lost")).toBe(0);
      await step(699);
      expect(count("lost")).toBe(0);
      await step(1);
      expect(events.at(-1)).toEqual({ kind: "lost", at: t0 + 4000 - 300 });
      // Still away a while longer: nothing changes.
      for (let i = 0; i < 3; i++) await step(1000);
      expect(events.map((e) => e.kind)).toEqual(["gained", "lost"]);
      await server.start();
      for (let i = 0; i < 30 && count("gained") < 2; i++) await step(1000);
      expect(events.map((e) => e.kind)).toEqual(["gained", "lost", "gained"]);
      // A new tenure after expiry: a higher epoch, so writes fenced with the old one are refused.
      expect(events[2]!.epoch).toBeGreaterThan(events[0]!.epoch!);
      expect(await new Leases(sql).get("controller/placement")).toMatchObject({
        holder: "replica-a",
        epoch: events[2]!.epoch,
      });
    } finally {
      await keeper.stop();
      await sql.close();
    }
  }, 120_000);
});
