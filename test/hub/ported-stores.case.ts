// The hub stores already on HubSql, as one contract run on every back end (ported-stores.test.ts):
// what each promises on one hub, and what must hold when two replicas write at once.
import { describe, expect, test } from "bun:test";
import { AuditLog, OperatorTokens } from "../../hub/auth/index.ts";
import { type Intent, Intents } from "../../hub/federation/intents.ts";
import { CacheDistributor, CacheReplicator } from "../../hub/cache/index.ts";
import { AlertStore, type DecisionCheck, EventStore, WebhookStore } from "../../hub/events/index.ts";
import { RolloutApplier } from "../../hub/federation/rollout-applier.ts";
import { type NodeRecord, Registry } from "../../hub/registry/index.ts";
import { RuleSets } from "../../hub/rule-sets/index.ts";
import { DrainStore } from "../../hub/failover/index.ts";
import { FailoverStore } from "../../hub/failover/failover-store.ts";
import type { FleetNode } from "../../hub/placement/index.ts";
import { type AllocRecord, WorkloadController, WorkloadStore } from "../../hub/workloads/index.ts";
import { Ingest } from "../../hub/ingest/index.ts";
import { type HubSql, migrate } from "../../hub/store/sql/index.ts";
import { createLogger } from "../../shared/log.ts";
import { MetricsRegistry } from "../../shared/metrics.ts";
import { formatStamp } from "../../shared/cache/index.ts";
import {
  encodeKey,
  generateKeyPair,
  joinTokenKey,
  nodeTokenProof,
  parseJoinToken,
} from "../../shared/secure/index.ts";
import { type Body, decodeFrame, encodeFrame, envelope, type Message } from "../../shared/protocol/index.ts";
import { parseWorkloadSpec, type WorkloadSpec } from "../../shared/workload/index.ts";
import { metricsBatch } from "../support/metrics-batch.ts";

/** A fresh, migrated store, and a second connection to it (another replica). */
export interface OpenMigrated {
  sql: HubSql;
  again(): HubSql;
}

const T0 = 1_800_000_000_000;

function specOf(body: unknown): WorkloadSpec {
  const r = parseWorkloadSpec(body);
  if (!r.ok) throw new Error(`${r.field}: ${r.message}`);
  return r.spec;
}

export function runPortedStores(name: string, open: () => Promise<OpenMigrated>): void {
  // Each case opens its own store and closes what it opened.
  const withStores = async (fn: (a: HubSql, b: HubSql) => Promise<void>) => {
    const { sql, again } = await open();
    await migrate(sql);
    const other = again();
    try {
      await fn(sql, other);
    } finally {
      await other.close();
      await sql.close();
    }
  };

  describe(`${name}: stores on HubSql`, () => {
    test(`${name}: operator tokens: minted, checked, expired, revoked once (the first time stands), listed without secrets`, async () =>
      withStores(async (sql, replica) => {
        let now = T0;
        const tokens = new OperatorTokens(sql, () => now);
        const minted = await tokens.mint("ops", "operator", T0 + 60_000);
        expect(minted.token).toMatch(/^nco_/);
        expect(await tokens.check(minted.token)).toEqual({ id: minted.id, name: "ops", role: "operator" });
        expect((await tokens.get(minted.id))?.last_used_at).toBe(T0);
        expect(await tokens.check("nco_not-a-token")).toEqual({ refused: "unknown token" });
        expect((await tokens.activeNamed("ops"))?.id).toBe(minted.id);
        // Another replica sees the same tokens.
        const there = new OperatorTokens(replica, () => now);
        expect(await there.check(minted.token)).toMatchObject({ id: minted.id });
        now = T0 + 60_000;
        expect(await tokens.check(minted.token)).toEqual({ refused: "the token expired" });
        expect(await tokens.activeNamed("ops")).toBeUndefined();
        const second = await tokens.mint("ci", "viewer", null);
        now = T0 + 70_000;
        const [a, b] = await Promise.all([tokens.revoke(second.id), there.revoke(second.id)]);
        expect(a).toBe(T0 + 70_000);
        expect(b).toBe(T0 + 70_000);
        now = T0 + 80_000;
        expect(await there.revoke(second.id)).toBe(T0 + 70_000);
        expect(await tokens.revoke("no-such-id")).toBeUndefined();
        expect(await tokens.check(second.token)).toEqual({ refused: "the token was revoked" });
        const listed = await tokens.list();
        expect(listed.map((t) => t.name)).toEqual(["ops", "ci"]);
        for (const t of listed) expect(Object.keys(t)).not.toContain("token");
      }));

    test(`${name}: operator tokens: one name minted at once on two replicas gives one active token`, async () =>
      withStores(async (sql, replica) => {
        const now = () => T0;
        const answers = await Promise.all([
          new OperatorTokens(sql, now).mintUnique("deploy", "operator", null),
          new OperatorTokens(replica, now).mintUnique("deploy", "operator", null),
        ]);
        const minted = answers.filter((a) => "token" in a);
        const taken = answers.filter((a) => "taken" in a) as { taken: { id: string } }[];
        expect([minted.length, taken.length]).toEqual([1, 1]);
        expect(taken[0]!.taken.id).toBe((minted[0] as { id: string }).id);
        expect((await new OperatorTokens(sql, now).list()).map((t) => t.name)).toEqual(["deploy"]);
      }));

    test(`${name}: intents: put replaces by name, listed by name, the body kept whole`, async () =>
      withStores(async (sql, replica) => {
        const intents = new Intents(sql);
        const spec = specOf({ name: "cam", driver: "exec", command: "/bin/true" });
        const base = {
          hub: "metro-1",
          route: ["region-1", "metro-1"],
          replicas: 1,
          explanation: { candidates: [] } as never,
          created: T0,
          spec,
        };
        await intents.put({ name: "web", ...base });
        await intents.put({ name: "cam", ...base });
        await new Intents(replica).put({
          name: "cam",
          ...base,
          hub: "metro-2",
          moves: [{ from: "metro-1", to: "metro-2", at: T0 + 1, evidence: "lost" }],
        });
        expect((await intents.list()).map((i) => [i.name, i.hub])).toEqual([
          ["cam", "metro-2"],
          ["web", "metro-1"],
        ]);
        expect((await intents.get("cam"))?.moves?.[0]?.evidence).toBe("lost");
        expect((await intents.get("cam"))?.spec).toEqual(spec);
        expect(await intents.get("none")).toBeUndefined();
        // Two changes at once on two replicas both stand: each is given what the other stored.
        const move = (to: string) => (i: Intent) => ({
          ...i,
          moves: [...(i.moves ?? []), { from: i.hub, to, at: T0 + 2, evidence: `to ${to}` }],
        });
        await Promise.all([
          intents.update("web", move("metro-3")),
          new Intents(replica).update("web", move("metro-4")),
        ]);
        expect(((await intents.get("web"))?.moves ?? []).map((m) => m.to).sort()).toEqual([
          "metro-3",
          "metro-4",
        ]);
        expect(await intents.update("none", move("x"))).toBeUndefined();
      }));

    test(`${name}: staged rollouts: two starts of one workload at once on two replicas, one wins and the other is refused`, async () =>
      withStores(async (sql, replica) => {
        const applier = (on: HubSql) =>
          new RolloutApplier({
            sql: on,
            hubs: () => [
              { id: "metro-1", route: ["metro-1"], connected: true, groups: [] },
              { id: "metro-2", route: ["metro-2"], connected: true, groups: [] },
            ],
            placedSingly: async () => false,
            request: () => Promise.reject(new Error("no child hubs in this test")),
            now: () => T0,
          });
        const spec = specOf({ name: "web", driver: "exec", command: "/bin/true" });
        const req = { spec, hubs: ["metro-1", "metro-2"], max_parallel: 1, deadline_ms: 60_000 };
        const results = await Promise.allSettled([applier(sql).start(req), applier(replica).start(req)]);
        expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
        const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
        expect(refused.reason.message).toBe("a staged rollout of web is in progress (rolling)");
        const stored = await applier(replica).list();
        expect(stored.map((r) => [r.name, r.state, r.domains.map((d) => d.hub)])).toEqual([
          ["web", "rolling", ["metro-1", "metro-2"]],
        ]);
        await expect(applier(sql).start(req)).rejects.toThrow("a staged rollout of web is in progress");
        await expect(
          applier(sql).start({ ...req, spec: { ...spec, name: "db" }, hubs: ["metro-9"] }),
        ).rejects.toThrow("hubs[0]: metro-9 is not a hub below this one");
        expect((await applier(sql).list()).map((r) => r.name)).toEqual(["web"]);
      }));

    test(`${name}: the audit log: appends from two replicas at once form one unbroken chain`, async () =>
      withStores(async (sql, replica) => {
        let now = T0;
        const logs = [new AuditLog(sql, () => now++), new AuditLog(replica, () => now++)];
        expect(await logs[0]!.verify()).toEqual({ ok: true, entries: 0 });
        const appended = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            logs[i % 2]!.append({
              actor: `replica-${i % 2}`,
              action: "test.append",
              object: `things/${i}`,
              before: null,
              after: null,
            }),
          ),
        );
        expect(appended.map((e) => e.seq).sort((a, b) => a - b)).toEqual(
          Array.from({ length: 40 }, (_, i) => i + 1),
        );
        expect(await logs[1]!.verify()).toEqual({ ok: true, entries: 40 });
        // Verified while appends go on (here and on the other replica): what it walks is whole.
        const during = await Promise.all([
          logs[0]!.verify(),
          ...Array.from({ length: 10 }, (_, i) =>
            logs[i % 2]!.append({
              actor: "later",
              action: "test.append",
              object: `more/${i}`,
              before: null,
              after: null,
            }),
          ),
          logs[1]!.verify(),
        ]);
        for (const v of [during[0], during.at(-1)]) expect(v).toMatchObject({ ok: true });
        expect(await logs[0]!.verify()).toEqual({ ok: true, entries: 50 });
        const newest = await logs[0]!.query({ limit: 2 });
        expect(newest.map((e) => e.seq)).toEqual([50, 49]);
        expect(newest[0]!.prev_hash).toBe(newest[1]!.hash);
        expect(await logs[0]!.query({ actor: "replica-1", object: "things/1" })).toHaveLength(1);
        expect(await logs[0]!.query({ object: "things" })).toHaveLength(40);
      }));

    test(`${name}: ingest: two replicas offered the same messages store each once; a stale one stores and acks nothing`, async () =>
      withStores(async (sql, replica) => {
        await sql.run(
          "INSERT INTO nodes (id, level, first_seen, last_seen) VALUES ('n1', 1, ?, ?), ('n2', 1, ?, ?)",
          [T0, T0, T0, T0],
        );
        // n1 speaks from store epoch e1: its sequence is recorded against it too.
        await sql.run(
          "INSERT INTO node_epochs (node, epoch, first_seen, last_seen) VALUES ('n1', 'e1', ?, ?)",
          [T0, T0],
        );
        const acks: string[] = [];
        const applied: string[] = [];
        const hubs = [sql, replica].map(
          (store, i) =>
            new Ingest({
              sql: store,
              log: createLogger("test", { write: () => {} }),
              metrics: new MetricsRegistry(),
              acks: (node, upto) => acks.push(`${i}:${node}:${upto}`),
              epochOf: (node) => (node === "n1" ? "e1" : undefined),
              // Through the group's handle, as the hub's apply targets will write.
              apply: async (tx, node, msg) => {
                if (msg.t !== "event") return;
                await tx.run("UPDATE nodes SET labels = ? WHERE id = ?", [msg.b.message, node]);
                applied.push(`${i}:${node}:${msg.b.message}`);
              },
            }),
        );
        const [a, b] = hubs as [Ingest, Ingest];
        const event = (node: string, q: number, message: string): Message =>
          decodeFrame(encodeFrame(envelope("event", node, { kind: "test", at: T0, message }, { q, ts: T0 })));
        for (const h of hubs) {
          await h.open("n1");
          await h.open("n2");
        }
        // Both replicas take batches 1-5 of n1 (a resend that reached both) and commit at once; n2 speaks to A only.
        for (const h of hubs)
          for (let q = 1; q <= 5; q++) expect(h.receive("n1", metricsBatch("n1", T0, q))).toBe("accepted");
        expect(a.receive("n2", event("n2", 1, "hello"))).toBe("accepted");
        await Promise.all([a.flush(), b.flush()]);
        const n1 = await sql.get<Record<string, number>>(
          "SELECT last_seq, samples, batches FROM nodes WHERE id = 'n1'",
        );
        expect(n1).toEqual({ last_seq: 5, samples: 15, batches: 5 });
        expect((await sql.get<{ n: number }>("SELECT count(*) AS n FROM batches"))?.n).toBe(5);
        // One replica stored and acked n1's five; the other found the row moved on and acked nothing.
        const n1Acks = acks.filter((x) => x.includes(":n1:"));
        expect(n1Acks).toHaveLength(1);
        expect(n1Acks[0]).toMatch(/^[01]:n1:5$/);
        expect(acks).toContain("0:n2:1");
        expect(applied).toEqual(["0:n2:hello"]);
        expect((await sql.get<{ labels: string }>("SELECT labels FROM nodes WHERE id = 'n2'"))?.labels).toBe(
          "hello",
        );
        // The agent now talks to the one that did not store: its resends are duplicates, acked at 5.
        const idle = n1Acks[0]!.startsWith("0") ? b : a;
        const busy = idle === a ? b : a;
        expect(idle.receive("n1", metricsBatch("n1", T0, 5))).toBe("duplicate");
        expect(idle.receive("n1", metricsBatch("n1", T0, 6))).toBe("accepted");
        await idle.flush();
        // The other, stale, is offered 6 too (a frame in flight on the old session): stored once.
        expect(busy.receive("n1", metricsBatch("n1", T0, 6))).toBe("accepted");
        await busy.flush();
        expect(await sql.get("SELECT last_seq, samples, batches FROM nodes WHERE id = 'n1'")).toEqual({
          last_seq: 6,
          samples: 18,
          batches: 6,
        });
        expect(busy.committed("n1")).toBe(6);
        expect(await sql.get("SELECT seq_high FROM node_epochs WHERE node = 'n1'")).toEqual({ seq_high: 6 });
        // Points read back through either replica.
        expect((await busy.query("n1", "cpu.util", T0, T0 + 60_000)).points).toHaveLength(18);
        expect(await idle.series("n1")).toEqual(["cpu.util"]);
      }));

    test(`${name}: events: alerts and decisions written in a transaction are stored with it or not at all, and read on another replica`, async () =>
      withStores(async (sql, replica) => {
        const events = new EventStore(sql, () => T0);
        const check: DecisionCheck = (_node, d) => ({
          verdict: d.action === "ok" ? "agree" : "disagree",
          reason: `action ${d.action}`,
        });
        const decision = (id: number | undefined, action: string) => ({
          rule: "hot",
          at: T0 - (id ?? 0),
          action,
          inputs: { "cpu.util": 90 },
          ...(id === undefined ? {} : { id, rule_set: "plant", rule_set_rev: 2, condition: "cpu.util > 80" }),
        });
        const verdicts = await sql.tx(async (tx) => {
          await events.onEvent(tx, "n1", {
            kind: "alert",
            at: T0,
            message: "hot",
            fields: { severity: "critical" },
          });
          await events.onEvent(tx, "n1", { kind: "started", at: T0, message: "not an alert" });
          await events.onEvent(tx, "n1", { kind: "alert_clear", at: T0 + 1, message: "cool" });
          return [
            await events.onDecision(tx, "n1", decision(7, "ok"), check),
            await events.onDecision(tx, "n1", decision(8, "bad"), check),
          ];
        });
        expect(verdicts).toEqual([
          { id: 7, rule: "hot", at: T0 - 7, verdict: "agree", reason: "action ok" },
          { id: 8, rule: "hot", at: T0 - 8, verdict: "disagree", reason: "action bad" },
        ]);
        // Rolled back with its transaction: nothing of it stays.
        await expect(
          sql.tx(async (tx) => {
            await events.onEvent(tx, "n1", { kind: "alert", at: T0 + 2, message: "lost" });
            await events.onDecision(tx, "n1", decision(9, "ok"), check);
            throw new Error("the group failed");
          }),
        ).rejects.toThrow("the group failed");
        await sql.tx(async (tx) => {
          await events.onDecision(tx, "n2", decision(undefined, "ok"), check);
        });
        const there = new EventStore(replica, () => T0 + 1000);
        expect(
          (await there.alerts({ node: "n1" })).map((a) => [a.state, a.severity, a.message, a.fields]),
        ).toEqual([
          ["cleared", "warning", "cool", {}],
          ["raised", "critical", "hot", { severity: "critical" }],
        ]);
        expect(await there.alerts({ node: "n2" })).toEqual([]);
        expect(
          (await there.decisions("n1")).map((d) => [
            d.action,
            d.verdict,
            d.rule_set,
            d.rule_set_rev,
            d.inputs,
          ]),
        ).toEqual([
          ["bad", "disagree", "plant", 2, { "cpu.util": 90 }],
          ["ok", "agree", "plant", 2, { "cpu.util": 90 }],
        ]);
        // Only decisions that carried the node's id go back to it; newest first.
        expect((await there.recentVerdicts("n1")).map((v) => [v.id, v.verdict])).toEqual([
          [8, "disagree"],
          [7, "agree"],
        ]);
        expect(await there.recentVerdicts("n2")).toEqual([]);
        expect(await new EventStore(replica, () => T0 + 86_400_001).recentVerdicts("n1")).toEqual([]);
      }));

    test(`${name}: rule sets: puts on two replicas at once each get their own revision; a change on one is seen on the other; what nodes run is stored in a transaction`, async () =>
      withStores(async (sql, replica) => {
        const sent: string[] = [];
        const sets = [sql, replica].map(
          (store, i) =>
            new RuleSets(
              store,
              (node, body) => sent.push(`${i}:${node}:${body.rev}`) > 0,
              () => T0,
            ),
        ) as [RuleSets, RuleSets];
        const rule = (n: number) => ({ name: `r${n}`, when: `cpu.util > ${n}`, actions: [{ alert: "hot" }] });
        const node = { id: "n1", level: 1, labels: { site: "a" } } as unknown as NodeRecord;
        expect(await sets[1].list()).toEqual([]);
        const puts = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            sets[i % 2]!.put(
              i < 6 ? "plant" : `other${i}`,
              { rules: [rule(i)], target: {} },
              [node],
              () => true,
            ),
          ),
        );
        expect(
          puts
            .filter((p) => p.record.name === "plant")
            .map((p) => p.record.rev)
            .sort(),
        ).toEqual([1, 2, 3, 4, 5, 6]);
        expect(puts.filter((p) => p.created)).toHaveLength(5);
        expect(await sets[0].configRev()).toBe(10);
        // Each replica's cached list follows the other's changes.
        expect((await sets[0].list()).map((r) => [r.name, r.rev])).toEqual([
          ["other6", 1],
          ["other7", 1],
          ["other8", 1],
          ["other9", 1],
          ["plant", 6],
        ]);
        await sets[0].remove("other6", [node], () => true);
        expect((await sets[1].current()).rev).toBe(11);
        expect((await sets[1].list()).map((r) => r.name)).not.toContain("other6");
        await expect(sets[1].remove("other6", [node], () => true)).rejects.toThrow(
          "no rule set named other6",
        );
        expect(await sets[0].configRev()).toBe(11);
        expect(await sets[1].revisions("plant")).toEqual([1, 2, 3, 4, 5, 6]);
        expect((await sets[1].get("other6", 1))?.rules).toHaveLength(1);
        expect(await sets[1].get("other6")).toBeUndefined();
        // Compiled through the handle of the transaction the caller is in.
        const compiled = await replica.tx((tx) => sets[1].compiled("plant", 3, tx));
        expect(compiled?.rules.map((r) => r.name)).toHaveLength(1);
        expect(await sets[1].compiled("plant", 99)).toBeUndefined();
        await expect(
          sql.tx(async (tx) => {
            await sets[0].onApplied(tx, "n1", { config_rev: 9, rule_sets: [{ name: "plant", rev: 5 }] }, T0);
            throw new Error("the group failed");
          }),
        ).rejects.toThrow("the group failed");
        expect(await sets[1].applied()).toEqual([]);
        await sql.tx((tx) =>
          sets[0].onApplied(
            tx,
            "n1",
            { config_rev: 11, rule_sets: [{ name: "plant", rev: 6 }, { bad: 1 }] },
            T0,
          ),
        );
        expect(await sets[1].applied()).toEqual([
          { node: "n1", config_rev: 11, rule_sets: [{ name: "plant", rev: 6 }], at: T0 },
        ]);
        // The targeted node got the configs, each replica's never going back (a replica whose put
        // committed earlier but delivered later sends nothing older than what it sent), and the last
        // one it got is the newest: the remove's.
        for (const i of [0, 1]) {
          const revs = sent.filter((x) => x.startsWith(`${i}:`)).map((x) => Number(x.split(":")[2]));
          expect(revs).toEqual([...revs].sort((a, b) => a - b));
        }
        expect(sent.length).toBeGreaterThanOrEqual(6);
        expect(sent.at(-1)).toBe("0:n1:11");
      }));

    test(`${name}: named caches: the highest stamp wins whichever replica stores last; strings and bytes come back as written; a rolled-back write leaves nothing`, async () =>
      withStores(async (sql, replica) => {
        const sent: string[] = [];
        const nodes: NodeRecord[] = ["a", "b", "c"].map(
          (id) => ({ id, level: 1, labels: { site: "s1" } }) as unknown as NodeRecord,
        );
        const replicator = (store: HubSql, i: number) =>
          new CacheReplicator({
            sql: store,
            send: (node, kind, args) => sent.push(`${i}:${node}:${kind}:${String(args.value)}`) > 0,
            node: (id) => nodes.find((n) => n.id === id),
            connected: () => nodes,
            now: () => T0,
          });
        const caches = [replicator(sql, 0), replicator(replica, 1)] as const;
        const stamp = (wall: number, node: string) => formatStamp({ wall, counter: 0, node });
        const write = (i: 0 | 1, node: string, value: string | Uint8Array<ArrayBuffer>, wall: number) =>
          (i === 0 ? sql : replica).tx((tx) =>
            caches[i].onWrite(tx, node, {
              cache: "q",
              key: "k",
              value,
              hlc: stamp(wall, node),
              replicate: "site",
            }),
          );
        // Twenty writes of one key from two nodes through two replicas at once, stamps interleaved.
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            write((i % 2) as 0 | 1, i % 2 ? "b" : "a", `v${i}`, T0 - 1000 + ((i * 7) % 20)),
          ),
        );
        const read = (i: 0 | 1, node: string) =>
          caches[i].read(node, { id: "r", cache: "q", key: "k", replicate: "site" } as Body<"cache_read">);
        // (i * 7) % 20 is highest (19) at i = 17: node b's v17.
        expect(await read(0, "c")).toEqual({ value: "v17", hlc: stamp(T0 - 981, "b") });
        expect(await read(1, "a")).toEqual({ value: "v17", hlc: stamp(T0 - 981, "b") });
        const fig = (await caches[1].list()).find((f) => f.name === "q")!;
        expect(fig.writes).toBe(20);
        expect(fig.applied + fig.superseded).toBe(20);
        expect(fig.keys).toBe(1);
        // Bytes stay bytes; a later string is a string again.
        await write(0, "a", Uint8Array.from([0, 255, 7]), T0);
        expect(await read(1, "b")).toEqual({ value: Uint8Array.from([0, 255, 7]), hlc: stamp(T0, "a") });
        expect((await caches[1].entry("q", "k"))[0]?.value).toBe(Buffer.from([0, 255, 7]).toString("base64"));
        await write(1, "b", "text again", T0 + 1);
        expect(await read(0, "a")).toEqual({ value: "text again", hlc: stamp(T0 + 1, "b") });
        // Rolled back with the group that carried it: not stored, counted nowhere.
        await expect(
          sql.tx(async (tx) => {
            await caches[0].onWrite(tx, "a", {
              cache: "q",
              key: "k",
              value: "lost",
              hlc: stamp(T0 + 2, "a"),
              replicate: "site",
            });
            throw new Error("the group failed");
          }),
        ).rejects.toThrow("the group failed");
        expect(await read(1, "c")).toEqual({ value: "text again", hlc: stamp(T0 + 1, "b") });
        expect((await caches[0].list()).find((f) => f.name === "q")?.writes).toBe(22);
        // Hot keys summed over the nodes' latest reports, nodes listed.
        await sql.tx((tx) =>
          caches[0].onHotKeys(
            tx,
            "a",
            {
              cache: "q",
              keys: [
                ["k", 3],
                ["j", 1],
              ],
            },
            T0,
          ),
        );
        await replica.tx((tx) => caches[1].onHotKeys(tx, "b", { cache: "q", keys: [["k", 2]] }, T0));
        expect(await caches[0].hotKeys("q")).toEqual([
          { key: "k", count: 5, nodes: ["a", "b"] },
          { key: "j", count: 1, nodes: ["a"] },
        ]);
        // A node that says hello holding the cache is caught up from the store.
        sent.length = 0;
        await caches[1].onSession(nodes[2]!, [{ name: "q", replicate: "site" }]);
        expect(sent).toEqual(["1:c:cache_replica:text again"]);
      }));

    test(`${name}: alerts: one live alert per key whichever replica opens it; a change queues its webhooks in its own transaction; a refused ack changes nothing`, async () =>
      withStores(async (sql, replica) => {
        const stores = [new AlertStore(sql, () => T0), new AlertStore(replica, () => T0)] as const;
        const hooks = [new WebhookStore(sql), new WebhookStore(replica)] as const;
        for (const [i, store] of stores.entries())
          store.subscribe(async (tx, change) => {
            for (const hook of await hooks[i]!.list(tx)) await hooks[i]!.enqueue(tx, hook.id, change, T0);
          });
        const hook = await hooks[0].create({
          name: "rx",
          url: "http://127.0.0.1:9/",
          events: ["opened", "acknowledged", "resolved"],
          min_severity: "info",
          created_at: T0,
        });
        const opening = {
          key: "node-down:n1",
          rule: "node-down",
          node: "n1",
          severity: "critical" as const,
          message: "n1 is down",
        };
        // Both replicas see the node go down at once: one alert opens, one notification is queued.
        const opened = await Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            (i % 2 ? replica : sql).tx((tx) => stores[i % 2]!.open(tx, opening, "hub")),
          ),
        );
        expect(opened.filter((a) => a !== undefined)).toHaveLength(1);
        const alert = opened.find((a) => a !== undefined)!;
        expect(await hooks[1].pending(hook.id)).toBe(1);
        // Rolled back: neither the change nor its notification stays.
        await expect(
          sql.tx(async (tx) => {
            await stores[0].update(tx, alert.id, "still down");
            await stores[0].resolve(tx, alert.id, "back");
            throw new Error("the evaluation failed");
          }),
        ).rejects.toThrow("the evaluation failed");
        expect((await stores[1].get(alert.id))?.state).toBe("open");
        expect(await hooks[1].pending(hook.id)).toBe(1);
        // Acked on one replica; the second ack, on the other, is refused and changes nothing.
        expect((await stores[1].ack(alert.id, "ops", "looking")).state).toBe("acknowledged");
        await expect(stores[0].ack(alert.id, "dev", undefined)).rejects.toThrow(
          "acknowledged by ops already",
        );
        await expect(stores[0].ack(9999, "dev", undefined)).rejects.toThrow("no alert 9999");
        await replica.tx(async (tx) => {
          await stores[1].update(tx, alert.id, "still down");
          await stores[1].resolve(tx, alert.id, "back");
        });
        expect((await stores[0].history(alert.id)).map((h) => [h.event, h.actor])).toEqual([
          ["opened", "hub"],
          ["acknowledged", "ops"],
          ["updated", "hub"],
          ["resolved", "hub"],
        ]);
        expect(await hooks[0].pending(hook.id)).toBe(3);
        // Resolved, the key is free: the next outage opens a new alert.
        const again = await sql.tx((tx) => stores[0].open(tx, opening, "hub"));
        expect(again?.id).not.toBe(alert.id);
        await stores[0].refreshCounts();
        expect(stores[0].liveCounts()).toEqual([[{ severity: "critical", state: "open" }, 1]]);
        // Due notifications, settled on the other replica.
        const due = await hooks[1].due(hook.id, T0, 10);
        expect(due.map((n) => n.event)).toEqual(["opened", "acknowledged", "resolved", "opened"]);
        await hooks[1].settle(
          due,
          { webhook: hook.id, at: T0, status: 200, ok: true, error: null, duration_ms: 3 },
          () => 0,
        );
        expect(await hooks[0].pending(hook.id)).toBe(0);
        expect((await hooks[0].deliveries(hook.id, 10))[0]).toMatchObject({
          ok: true,
          notifications: due.map((n) => n.id),
        });
        // Operator rules, replaced by name.
        expect(await stores[0].putRule({ name: "r", kind: "node_down" } as never)).toBe(false);
        expect(await stores[1].putRule({ name: "r", kind: "node_down", for_ms: 5000 } as never)).toBe(true);
        expect(await stores[0].rules()).toEqual([{ name: "r", kind: "node_down", for_ms: 5000 } as never]);
        expect(await stores[1].deleteRule("r")).toBe(true);
      }));

    test(`${name}: pushed cache entries: of versions put on two replicas at once the highest stays; a version at or below a deletion is refused`, async () =>
      withStores(async (sql, replica) => {
        const sent: string[] = [];
        const sender = (i: number) => ({
          put: (node: string, e: { key: string; version: number }) =>
            sent.push(`${i}:${node}:put:${e.version}`) > 0,
          delete: (node: string, d: { key: string; version: number }) =>
            sent.push(`${i}:${node}:del:${d.version}`) > 0,
        });
        const hubs = [
          new CacheDistributor(sql, sender(0)),
          new CacheDistributor(replica, sender(1)),
        ] as const;
        const node = { id: "n1", level: 1, labels: {} } as unknown as NodeRecord;
        const put = (i: number, version: number) =>
          hubs[i % 2]!.put({ key: "geo", value: `v${version}`, version, target: {} }, [node]).then(
            () => "stored",
            (err: Error) => err.message,
          );
        // A fresh key: nothing to lock yet but its name.
        const outcomes = await Promise.all([3, 9, 1, 7, 5, 8].map((v, i) => put(i, v)));
        expect(outcomes.filter((o) => o === "stored").length).toBeGreaterThanOrEqual(1);
        for (const o of outcomes) if (o !== "stored") expect(o).toMatch(/is older than the stored version/);
        expect((await hubs[1].list()).map((e) => [e.key, e.version])).toEqual([["geo", 9]]);
        expect(await put(0, 4)).toBe("version 4 is older than the stored version 9");
        expect((await hubs[1].delete("geo", [node])).version).toBe(9);
        await expect(hubs[0].delete("geo", [node])).rejects.toThrow('no hub cache entry "geo"');
        expect(await put(1, 9)).toBe("version 9 is not above the deleted version 9");
        expect(await hubs[0].deletions()).toEqual([{ key: "geo", version: 9, target: {} }]);
        expect(await put(0, 10)).toBe("stored");
        expect(await hubs[1].deletions()).toEqual([]);
        // A node's session gets what targets it, as stored now.
        sent.length = 0;
        await hubs[1].onSession(node);
        expect(sent).toEqual(["1:n1:put:10"]);
      }));
    test(`${name}: workloads: two controllers on one store place a workload's replicas once, whichever asks; desired sets go out after the commit with rising generations`, async () =>
      withStores(async (sql, replica) => {
        const log = createLogger("test", { write: () => {} });
        const node = (id: string): FleetNode => ({
          id,
          level: 3,
          status: "ready",
          arch: "x64",
          capacity: { cpu_millis: 8000, mem_mb: 16_000, disk_mb: 100_000 },
          allocated: { cpu_millis: 0, mem_mb: 0, disk_mb: 0 },
          labels: {},
          capabilities: [],
          availability: 1,
        });
        let fleetUp = false;
        const sent: { hub: number; node: string; generation: number; allocs: string[] }[] = [];
        const decisions: string[] = [];
        const stores = [sql, replica].map((s) => new WorkloadStore(s, () => T0)) as [
          WorkloadStore,
          WorkloadStore,
        ];
        const controllers = stores.map(
          (store, hub) =>
            new WorkloadController({
              store,
              log,
              tickMs: 3_600_000,
              now: () => T0,
              sendAllocs: (n, body) =>
                sent.push({
                  hub,
                  node: n,
                  generation: body.generation,
                  allocs: body.allocs.map((a) => a.id),
                }) > 0,
              // Nothing fits until the fleet is up; then three nodes, with what the store holds on them.
              fleet: (active) => ({
                nodes: fleetUp ? ["n1", "n2", "n3"].map(node) : [],
                allocations: active.map((a) => ({ workload: a.workload, node: a.node })),
              }),
              onDecision: (action, object) => decisions.push(`${action} ${object}`),
            }),
        ) as [WorkloadController, WorkloadController];
        try {
          const spec = specOf({ name: "svc", driver: "exec", command: "/bin/true", replicas: 2 });
          // One name created on both at once: one workload, the other caller told it exists.
          const created = await Promise.allSettled([
            controllers[0].create(spec),
            controllers[1].create(spec),
          ]);
          expect(created.filter((c) => c.status === "fulfilled")).toHaveLength(1);
          const refused = created.find((c) => c.status === "rejected") as PromiseRejectedResult;
          expect(String(refused.reason)).toContain("workload svc already exists");
          expect(await stores[1].activeAllocs()).toEqual([]);
          // Both place what is missing at once, several times: two copies in all.
          fleetUp = true;
          await Promise.all([0, 1, 0, 1].map((i) => controllers[i]!.placePending()));
          const active = await stores[0].activeAllocs();
          expect(active).toHaveLength(2);
          expect(new Set(active.map((a) => a.node)).size).toBe(2);
          await new Promise((r) => setImmediate(r));
          expect(decisions.filter((d) => d.startsWith("placement.place"))).toHaveLength(1);
          // Each node was sent its set once, after the commit, with what the store holds.
          for (const a of active) {
            const to = sent.filter((x) => x.node === a.node);
            expect(to).toHaveLength(1);
            expect(to.at(-1)?.allocs).toEqual([a.id]);
            expect(to.at(-1)?.generation).toBe(await stores[1].generation(a.node));
          }
          // Reports through an ingest group's handle, with and without a health verdict: a report without
          // one keeps the last verdict; a job's result sets its status.
          const [first] = active as [AllocRecord, AllocRecord];
          const status = (b: Partial<Body<"alloc_status">>) =>
            replica.tx((tx) =>
              controllers[1].onAllocStatus(tx, first.node, {
                alloc: first.id,
                status: "running",
                ...b,
              } as Body<"alloc_status">),
            );
          await status({});
          expect(await stores[0].alloc(first.id)).toMatchObject({ status: "running", healthy: null });
          await status({ healthy: false, restarts: 2 });
          await status({ status: "failed", message: "exited 3" });
          expect(await stores[0].alloc(first.id)).toMatchObject({
            status: "failed",
            healthy: false,
            restarts: 2,
            message: "exited 3",
            running_since: null,
          });
          await replica.tx((tx) =>
            controllers[1].onTaskResult(tx, first.node, {
              alloc: first.id,
              exit_code: 0,
              duration_ms: 5,
              output_tail: "ok",
            } as Body<"task_result">),
          );
          expect(await stores[0].alloc(first.id)).toMatchObject({
            status: "complete",
            exit_code: 0,
            output_tail: "ok",
          });
          // A change through the other replica: stopped copies and a new version, generations rising.
          const before = new Map(
            active.map((a) => [a.node, sent.filter((x) => x.node === a.node).at(-1)!.generation]),
          );
          await controllers[1].update("svc", { ...spec, driver: "job", replicas: 2 } as WorkloadSpec);
          for (const [n, g] of before) {
            const last = sent.filter((x) => x.node === n).at(-1)!;
            expect(last.hub).toBe(1);
            expect(last.generation).toBeGreaterThan(g);
            expect(last.allocs).toEqual([]);
          }
          await controllers[0].remove("svc");
          await expect(controllers[1].remove("svc")).rejects.toThrow("no workload svc");
          expect(await stores[1].list()).toEqual([]);
        } finally {
          for (const c of controllers) {
            c.stop();
            await c.settled();
          }
        }
      }));

    test(`${name}: failover store: marks and log entries written on one replica are read on the other; a log entry in a rolled-back transaction is never heard; entries commit in id order`, async () =>
      withStores(async (sql, replica) => {
        const here = new FailoverStore(sql);
        const there = new FailoverStore(replica);
        const heard: string[] = [];
        there.subscribe((e) => heard.push(e.kind));
        here.subscribe((e) => heard.push(`here:${e.kind}`));
        const entry = (kind: string) => ({
          at: T0,
          kind,
          node: "n1",
          workload: null,
          alloc: null,
          change: null,
          reason: "why",
          evidence: ["a"],
        });
        await here.record(entry("node"));
        await expect(
          sql.tx(async (tx) => {
            await here.record(entry("rolled-back"), tx);
            throw new Error("no");
          }),
        ).rejects.toThrow("no");
        await there.record(entry("place"));
        await new Promise((r) => setImmediate(r));
        expect(heard.sort()).toEqual(["here:node", "place"]);
        const all = await there.after(0);
        expect(all.map((e) => [e.kind, e.evidence])).toEqual([
          ["node", ["a"]],
          ["place", ["a"]],
        ]);
        expect(await here.lastId()).toBe(all[1]!.id);
        expect((await here.events({ node: "n1", limit: 1 })).map((e) => e.kind)).toEqual(["place"]);
        // Ids commit in the order they are handed out: while one hub's entry is uncommitted, another's
        // waits, so a reader following id > cursor never passes an id that commits later.
        let release = () => {};
        const held = new Promise<void>((r) => {
          release = r;
        });
        let taken = () => {};
        const inside = new Promise<void>((r) => {
          taken = r;
        });
        const first = replica.tx(async (tx) => {
          await there.record(entry("first"), tx);
          taken();
          await held;
        });
        await inside;
        let secondDone = false;
        const second = here.record(entry("second")).then(() => {
          secondDone = true;
        });
        await Bun.sleep(300);
        expect(secondDone).toBe(false);
        release();
        await Promise.all([first, second]);
        const tail = (await here.after(all[1]!.id)).map((e) => e.kind);
        expect(tail).toEqual(["first", "second"]);
        await here.mark({ alloc: "x", at: T0, prev_status: "running", message: "lost: gone" });
        await there.mark({ alloc: "x", at: T0 + 1, prev_status: "pending", message: "lost: again" });
        expect([...(await here.marks()).values()]).toEqual([
          { alloc: "x", at: T0 + 1, prev_status: "pending", message: "lost: again" },
        ]);
        await there.unmark("x");
        expect((await here.marks()).size).toBe(0);
        const drains = [new DrainStore(sql), new DrainStore(replica)] as const;
        await drains[0].start({ node: "n1", started: T0, deadline: T0 + 10, max_parallel: 1 });
        await drains[1].addMove({ old: "a", new: "b", node: "n1", workload: "w", started: T0 });
        expect(await drains[1].drains()).toEqual([
          { node: "n1", started: T0, deadline: T0 + 10, max_parallel: 1, done: null },
        ]);
        expect(await drains[0].end("n1")).toBe(true);
        expect(await drains[1].moves()).toEqual([]);
        expect(await drains[1].end("n1")).toBe(false);
      }));
    test(`${name}: registry: two hubs admitting at once never take a token's last use twice, nor bind one new id to two keys`, async () =>
      withStores(async (sql, replica) => {
        const policy = {
          suspectAfterMs: 15_000,
          downAfterMs: 60_000,
          restartGraceMs: 30_000,
          keyLifetimeMs: 86_400_000,
        };
        const hubs = [new Registry(sql, policy, () => T0), new Registry(replica, policy, () => T0)] as const;
        const hash = new Uint8Array(32).fill(5);
        const hello = (node: string, token: string) => {
          const t = parseJoinToken(token);
          return {
            node_id: node,
            level: 2,
            labels: {},
            capabilities: [],
            resources: {},
            version: "test",
            boot_id: "b",
            last_acked: 0,
            join: { id: t.id, proof: nodeTokenProof(joinTokenKey(t.secret), hash) },
          };
        };
        for (let round = 0; round < 10; round++) {
          const { token } = await hubs[0].joinTokens.mint({ max_uses: 1 }, T0);
          const keys = [generateKeyPair(), generateKeyPair()] as const;
          // The token's one use, asked for two new ids on the two hubs at once.
          const uses = await Promise.all(
            hubs.map((r, i) =>
              r.admit(hello(`t${round}-${i}`, token), { key: keys[i]!.publicKey, hash }, "ws"),
            ),
          );
          expect(uses.filter((u) => u.ok)).toHaveLength(1);
          expect((await hubs[1].joinTokens.get(parseJoinToken(token).id, T0))?.uses).toBe(1);
          // One new id, two keys, on the two hubs at once (a token with room for both).
          const { token: roomy } = await hubs[1].joinTokens.mint({ max_uses: 5 }, T0);
          const claims = await Promise.all(
            hubs.map((r, i) =>
              r.admit(hello(`same-${round}`, roomy), { key: keys[i]!.publicKey, hash }, "ws"),
            ),
          );
          const won = claims.findIndex((c) => c.ok);
          expect(claims.filter((c) => c.ok)).toHaveLength(1);
          const stored = await hubs[1].fresh(`same-${round}`);
          expect(stored).toBeDefined();
          expect(hubs[1].keyInfo(`same-${round}`)?.public_key).toBe(encodeKey(keys[won]!.publicKey));
        }
      }));
  });
}
