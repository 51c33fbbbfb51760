// Make-before-break moves: operator drains, a copy moved by hand, a node's request to move its work.
import type { Clock } from "../../shared/clock.ts";
import type { HubSql } from "../store/sql/index.ts";
import type { Registry } from "../registry/index.ts";
import type { WorkloadController, WorkloadStore } from "../workloads/index.ts";
import { type DrainAlloc, type DrainRecord, DrainStore, decideDrain } from "./drain.ts";

export interface MoverOptions {
  sql: HubSql;
  registry: Registry;
  workloads: WorkloadStore;
  controller: WorkloadController;
  clock: Clock;
  /** Whether the heartbeat monitor has the node ready. */
  isReady: (node: string) => boolean;
  /** Writes one entry of the failover log. */
  record: (
    kind: string,
    x: { node?: string; workload?: string; alloc?: string; reason: string },
  ) => Promise<void>;
  /** A workload with a move in flight: the controller leaves its replica count alone meanwhile. */
  hold: (workload: string) => void;
  /** Something changed: run a failover pass soon. */
  kick: () => void;
}

/** Drains and moves; each copy's twin must be healthy elsewhere before the copy stops. The caller runs one call at a time. */
export class Mover {
  readonly store: DrainStore;
  readonly #o: MoverOptions;
  /** The last "nothing fits" per copy, so a move that waits for a node is recorded once. */
  readonly #waiting = new Map<string, string>();

  constructor(o: MoverOptions) {
    this.#o = o;
    this.store = new DrainStore(o.sql);
  }

  /**
   * Drains a node: placement leaves it alone, and each copy on it gets a healthy twin elsewhere before
   * it stops, `maxParallel` at a time; whatever is left at `deadlineMs` from now is stopped.
   */
  async drain(node: string, deadlineMs: number, maxParallel: number): Promise<DrainRecord | undefined> {
    const o = this.#o;
    if (!(await o.registry.setDraining(node, true))) return undefined;
    const now = o.clock.now();
    await this.store.start({ node, started: now, deadline: now + deadlineMs, max_parallel: maxParallel });
    await this.#o.record("drain", {
      node,
      reason: `drain: ${maxParallel} at a time, deadline in ${Math.round(deadlineMs / 1000)} s`,
    });
    this.#o.kick();
    return (await this.store.drains()).find((d) => d.node === node);
  }

  /**
   * Moves one copy make-before-break: a twin elsewhere (on `to`, or where placement puts it, never on
   * the copy's own node), and the old copy stops once the twin is healthy. Returns the twin, or why not.
   */
  async move(
    alloc: string,
    reason: string,
    to?: string,
    fenced = false,
  ): Promise<{ twin: string; node: string } | { error: string }> {
    const o = this.#o;
    const a = await o.workloads.alloc(alloc);
    if (a?.desired !== "run") return { error: `no running allocation ${alloc}` };
    if ((await this.store.moves()).some((m) => m.old === alloc))
      return { error: `${alloc} is already being moved` };
    if (a.spec.driver === "job") return { error: "a job runs to its end where it is; it is not moved" };
    let node: string | undefined;
    let twin: string | undefined;
    if (to !== undefined) {
      if (to === a.node) return { error: `${alloc} already runs on ${to}` };
      if (!this.#o.isReady(to) || o.registry.get(to)?.draining) return { error: `node ${to} is not ready` };
      [twin] = await o.controller.applyFailover([], [{ workload: a.workload, node: to }], fenced);
      node = to;
    } else
      ({ node, alloc: twin } =
        (await o.controller.placeReplacements(a.workload, 1, [a.node], fenced))[0] ?? {});
    if (!node || !twin) return { error: `no other node fits ${a.workload}` };
    await this.store.addMove({
      old: alloc,
      new: twin,
      node: a.node,
      workload: a.workload,
      started: o.clock.now(),
    });
    this.#o.hold(a.workload);
    await this.#o.record("move_start", {
      node: a.node,
      workload: a.workload,
      alloc,
      reason: `${reason}: moving to ${node} (${twin})`,
    });
    return { twin, node };
  }

  /** The allocation `id` of workload `name`, wanted running; undefined otherwise. */
  async allocOf(name: string, id: string): Promise<string | undefined> {
    const a = await this.#o.workloads.alloc(id);
    return a && a.workload === name && a.desired === "run" ? a.id : undefined;
  }

  /** A node's rule asked to move its work away (`request_migration`): each movable copy gets a twin elsewhere. */
  /** `fenced`: asked by the leader's pass (a migration trigger), so refused once it no longer leads. */
  async onMigrationRequest(node: string, reason: string, fenced = false): Promise<void> {
    const o = this.#o;
    await this.#o.record("migration_request", { node, reason });
    if ((await this.store.drains()).some((d) => d.node === node)) return;
    for (const a of await o.workloads.allocsOnNode(node)) {
      if (a.desired !== "run" || (a.spec.nodes ?? []).length > 0 || a.spec.driver === "job") continue;
      if ((await this.store.moves()).some((m) => m.old === a.id)) continue;
      const r = await this.move(a.id, `the node asked (${reason})`, undefined, fenced);
      if ("error" in r)
        await this.#o.record("move_wait", { node, workload: a.workload, alloc: a.id, reason: r.error });
    }
  }

  /** Ends a drain: the node takes work again; copies already moved stay where they are. */
  async undrain(node: string): Promise<boolean> {
    const o = this.#o;
    if (!(await o.registry.setDraining(node, false))) return false;
    await this.store.end(node);
    await this.#o.record("undrain", { node, reason: "undrained by an operator" });
    this.#o.kick();
    return true;
  }

  /** One step: decide over the draining nodes and the moves in flight, then apply. */
  async step(now: number): Promise<void> {
    const o = this.#o;
    const [drains, moves] = await Promise.all([this.store.drains(), this.store.moves()]);
    if (drains.length === 0 && moves.length === 0) return;
    const allocs = new Map<string, DrainAlloc>();
    for (const a of await o.workloads.activeAllocs()) {
      allocs.set(a.id, {
        id: a.id,
        workload: a.workload,
        node: a.node,
        active: true,
        status: a.status,
        healthy: a.healthy,
        spec: a.spec,
      });
    }
    const d = decideDrain({
      now,
      drains,
      moves,
      allocs,
      onNode: (node) => [...allocs.values()].filter((a) => a.node === node),
    });
    for (const r of d.retry) await this.store.dropMove(r.old);
    for (const f of d.finish) {
      await o.controller.applyFailover([f.old], [], true);
      await this.store.dropMove(f.old);
      await this.#o.record("move_done", {
        node: f.node,
        workload: f.workload,
        alloc: f.old,
        reason: `moved: ${f.new} is healthy on ${allocs.get(f.new)?.node}, ${f.old} stopped`,
      });
    }
    if (d.force.length > 0) {
      await o.controller.applyFailover(
        d.force.map((f) => f.old),
        [],
        true,
      );
      for (const f of d.force) {
        await this.store.dropMove(f.old);
        await this.#o.record("drain_deadline", {
          node: f.node,
          workload: f.workload,
          alloc: f.old,
          reason: "drain deadline passed: stopped",
        });
      }
    }
    for (const s of d.start) {
      const [placed] = await o.controller.placeReplacements(s.workload, 1, [], true);
      if (!placed) {
        const why = "no other node fits";
        if (this.#waiting.get(`drain:${s.old}`) !== why) {
          this.#waiting.set(`drain:${s.old}`, why);
          await this.#o.record("drain_wait", {
            node: s.node,
            workload: s.workload,
            alloc: s.old,
            reason: why,
          });
        }
        continue;
      }
      this.#waiting.delete(`drain:${s.old}`);
      await this.store.addMove({
        old: s.old,
        new: placed.alloc,
        node: s.node,
        workload: s.workload,
        started: now,
      });
      await this.#o.record("drain_start", {
        node: s.node,
        workload: s.workload,
        alloc: s.old,
        reason: `moving to ${placed.node} (${placed.alloc})`,
      });
    }
    for (const node of d.done) {
      await this.store.finish(node, now);
      await this.#o.record("drain_done", { node, reason: "nothing left on the node" });
    }
  }
}
