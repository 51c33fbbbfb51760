// Failover wired up: the monitor's transitions are recorded, then a reconcile pass decides and a thin applier acts.
import type { Clock, TimerHandle } from "../../shared/clock.ts";
import { LogLimiter, type Logger } from "../../shared/log.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import { type FleetState, place } from "../placement/index.ts";
import type { NodeStatus, Registry } from "../registry/index.ts";
import type { AllocRecord, WorkloadController, WorkloadStore } from "../workloads/index.ts";
import type { DrainRecord, DrainStore } from "./drain.ts";
import { type FailoverEvent, FailoverStore } from "./failover-store.ts";
import { type NodeSignals, TriggerWatch } from "./migration-triggers.ts";
import { Mover } from "./mover.ts";
import { applyDecisions, type DecisionRecorder } from "./applier.ts";
import {
  HeartbeatMonitor,
  type MonitorPolicy,
  type NodeHealth,
  type Transition,
} from "./heartbeat-monitor.ts";
import { type Decisions, type ReconcileNode, type ReconcileWorkload, reconcile } from "./reconcile.ts";
import { askWitnesses, chooseWitnesses, type WitnessCandidate } from "./witnesses.ts";
import { type Leadership, soleLeader } from "../replicas/leadership.ts";
import { afterTx } from "../store/after-tx.ts";
import type { HubSql } from "../store/sql/index.ts";
import { type OneAtATime, oneAtATime } from "../../shared/one-at-a-time.ts";

export interface FailoverOptions {
  sql: HubSql;
  registry: Registry;
  workloads: WorkloadStore;
  controller: WorkloadController;
  /** The fleet as placement sees it, with `active` the allocations wanted running. */
  fleet: (active: readonly AllocRecord[]) => FleetState;
  clock: Clock;
  log: Logger;
  metrics: MetricsRegistry;
  /** Records each applied decision in the audit log (action, object, why, the decision). */
  onDecision?: DecisionRecorder;
  policy: MonitorPolicy;
  /** How often the reconcile pass runs besides after each transition (default 500 ms). */
  passMs?: number;
  /** A returning node's copies are judged after it has been back this long (default 2 s). */
  settleMs?: number;
  /** Replaced lost copies on nodes still out this long are collected (default 24 h). */
  lostGcAfterMs?: number;
  /**
   * Asks `peer` whether it reaches `target` (host:port) now: true, false, or undefined when it did not
   * answer. Without it no witnesses are asked.
   */
  ask?: (peer: string, target: string) => Promise<boolean | undefined>;
  /** How often witnesses are asked again about a node still out of contact (default 10 s). */
  witnessEveryMs?: number;
  /**
   * Node signals for migration triggers (utilisation, heat, link, maintenance window), read every 5 s;
   * without it nothing moves on its own.
   */
  signals?: () => NodeSignals[];
  /**
   * Whether this hub runs the passes and writes liveness transitions (hub/replicas); one hub alone
   * always does. Every replica's monitor follows the fleet, so a new leader starts from what it saw.
   */
  leader?: Leadership;
}

// The stable API status (DESIGN section 11) of each liveness state.
const API_STATUS: Record<NodeHealth, NodeStatus> = {
  ready: "ready",
  suspect: "suspect",
  disconnected: "down",
  lost: "down",
};

/**
 * The hub's failover: owns node liveness, and moves or reconciles workloads by their disconnect policy.
 * Passes, drains and moves run one at a time, in the order asked.
 */
export class Failover {
  readonly monitor: HeartbeatMonitor;
  readonly store: FailoverStore;
  readonly mover: Mover;
  readonly #o: FailoverOptions;
  readonly #leader: Leadership;
  readonly #transitions: (by?: number, labels?: Record<string, string>) => void;
  readonly #actions: (by?: number, labels?: Record<string, string>) => void;
  #timer: TimerHandle | undefined;
  #stopped = false;
  /**
   * Workloads with a lost mark or a move in flight, after the last pass (the controller's pending pass
   * leaves them alone); until first read from the store, every workload is held.
   */
  #held: Set<string> | undefined;
  /** Passes, drains and moves, run one after another. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Entries of the log written from synchronous code (transitions, witnesses), in order. */
  #writes: Promise<void> = Promise.resolve();
  /** Asks for a pass soon: one runs at a time, and one asked meanwhile runs once after it. */
  readonly #passSoon: OneAtATime;
  /** The last "nothing fits" per workload, so a replacement that waits for a node is recorded once. */
  readonly #waiting = new Map<string, string>();
  /** When witnesses were last asked about each node out of contact (a round in flight counts). */
  readonly #witnessed = new Map<string, number>();
  #fleetCache: { at: number; nodes: WitnessCandidate[] } | undefined;
  readonly #triggers = new TriggerWatch();
  #lastTriggerCheck = 0;

  constructor(o: FailoverOptions) {
    this.#o = o;
    this.#leader = o.leader ?? soleLeader;
    this.store = new FailoverStore(o.sql);
    // Failures that repeat every pass while the store is away: logged once per 10 s.
    const failures = new LogLimiter(o.log, { intervalMs: 10_000 });
    this.#passSoon = oneAtATime(
      async () => {
        await this.pass();
      },
      (err) => failures.error("pass", "failover pass failed", { error: (err as Error).message }),
    );
    this.mover = new Mover({
      sql: o.sql,
      registry: o.registry,
      workloads: o.workloads,
      controller: o.controller,
      clock: o.clock,
      isReady: (node) => this.monitor.get(node)?.health === "ready" && !o.registry.get(node)?.draining,
      record: (kind, x) => this.#record(kind, x),
      hold: (w) => this.#held?.add(w),
      kick: () => this.#passSoon(),
    });
    this.#transitions = o.metrics.counter(
      "novacron_hub_node_transitions_total",
      "Node liveness transitions written by the heartbeat monitor, by new state",
    );
    this.#actions = o.metrics.counter(
      "novacron_hub_failover_actions_total",
      "Failover actions applied (mark_lost, place, stop, keep, restart)",
    );
    this.monitor = new HeartbeatMonitor({
      source: o.registry,
      policy: o.policy,
      clock: o.clock,
      onTransition: (t) => this.#onTransition(t),
    });
    o.metrics.gauge("novacron_hub_node_liveness", "Nodes by liveness state (heartbeat monitor)", () =>
      Object.entries(this.monitor.counts()).map(([state, n]) => [{ state }, n]),
    );
    o.registry.onLiveness = (id, connected) =>
      this.monitor.onLiveness(id, connected, connected ? (o.registry.get(id)?.labels ?? {}) : {});
    o.registry.statusSource = (id) => {
      const l = this.monitor.get(id);
      return l ? API_STATUS[l.health] : undefined;
    };
    o.controller.heldByFailover = (w) => this.#held?.has(w) ?? true;
    // A replica that begins to lead records liveness from its own judgement, made again from here.
    this.#leader.onGained(() => {
      this.monitor.rebase("this hub began to lead failover");
      this.monitor.evaluate();
    });
    void this.#serial(async () => {
      this.#held = await this.#heldNow();
    }).catch((err: unknown) =>
      o.log.error("failover's held workloads could not be read", { error: (err as Error).message }),
    );
  }

  start(): void {
    this.#stopped = false;
    this.monitor.start();
    this.#timer ??= this.#o.clock.setInterval(() => this.#passSoon(), this.#o.passMs ?? 500);
  }

  /** Resolves once the passes, drains, moves and log entries asked for so far have ended. */
  async settled(): Promise<void> {
    await this.#passSoon.idle();
    await this.#queue.catch(() => {});
    await this.#writes;
  }

  // Runs `fn` after everything asked before it has ended.
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  // Writes an entry of the log from synchronous code, after the ones before it.
  #write(e: Omit<FailoverEvent, "id">): void {
    this.#writes = this.#writes
      .then(() => this.store.record(e))
      .catch((err: unknown) =>
        this.#o.log.error("a failover log entry was not written", {
          kind: e.kind,
          error: (err as Error).message,
        }),
      );
  }

  stop(): void {
    this.#stopped = true;
    this.monitor.stop();
    this.#o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Drains a node (see Mover.drain). */
  drain(node: string, deadlineMs: number, maxParallel: number): Promise<DrainRecord | undefined> {
    return this.#serial(() => this.mover.drain(node, deadlineMs, maxParallel));
  }

  /** Moves one copy make-before-break (see Mover.move). */
  move(
    alloc: string,
    reason: string,
    to?: string,
  ): Promise<{ twin: string; node: string } | { error: string }> {
    return this.#serial(() => this.mover.move(alloc, reason, to));
  }

  /** The allocation `id` of workload `name`, wanted running; undefined otherwise. */
  allocOf(name: string, id: string): Promise<string | undefined> {
    return this.mover.allocOf(name, id);
  }

  /** A node's rule asked to move its work away (`request_migration`). */
  onMigrationRequest(node: string, reason: string): Promise<void> {
    return this.#serial(() => this.mover.onMigrationRequest(node, reason));
  }

  /** Ends a drain. */
  undrain(node: string): Promise<boolean> {
    return this.#serial(() => this.mover.undrain(node));
  }

  /** Drains in progress or done, and the moves in flight. */
  get drains(): DrainStore {
    return this.mover.store;
  }

  async #record(
    kind: string,
    x: { node?: string; workload?: string; alloc?: string; reason: string },
  ): Promise<void> {
    await this.store.record({
      at: this.#o.clock.now(),
      kind,
      node: x.node ?? null,
      workload: x.workload ?? null,
      alloc: x.alloc ?? null,
      change: null,
      reason: x.reason,
      evidence: [],
    });
    this.#o.log.info(`failover ${kind}`, { ...x });
  }

  /** The failover log, newest first. */
  events(opts: { node?: string; workload?: string; limit?: number } = {}): Promise<FailoverEvent[]> {
    return this.store.events(opts);
  }

  /**
   * A node reports it stopped a copy for want of its hub (`stop_on_agent_after`). The copy may never
   * have been marked lost (the node came back before `lost_after`): it is marked now, so the next pass
   * settles it by the policy (a fresh copy there, or none when a replacement runs).
   */
  async onFenced(tx: HubSql, node: string, alloc: string, at: number, message: string): Promise<void> {
    const a = await this.#o.workloads.alloc(alloc, tx);
    if (!a || a.node !== node || a.desired !== "run") return;
    if (!(await this.store.marks(tx)).has(alloc))
      await this.store.mark({ alloc, at, prev_status: "complete", message }, tx);
    await this.store.record(
      {
        at: this.#o.clock.now(),
        kind: "fenced",
        node,
        workload: a.workload,
        alloc,
        change: null,
        reason: message,
        evidence: [],
      },
      tx,
    );
    this.#held?.add(a.workload);
  }

  /** Told of every liveness transition after it is recorded (federation reports them to a parent hub). */
  readonly transitionListeners: ((t: Transition) => void)[] = [];

  #onTransition(t: Transition): void {
    // Another replica leads: it writes the transition from its own monitor, which follows the same fleet.
    if (!this.#leader.active()) return;
    this.#write({
      at: t.at,
      kind: "node",
      node: t.node,
      workload: null,
      alloc: null,
      change: `${t.from} -> ${t.to}`,
      reason: t.reason,
      evidence: t.evidence,
    });
    this.#transitions(1, { to: t.to });
    if (t.to === "ready") this.#witnessed.delete(t.node);
    else if (t.from === "ready") this.#witness(t.node);
    const log = t.to === "ready" ? this.#o.log.info : this.#o.log.warn;
    log.call(this.#o.log, `node ${t.to}`, {
      node: t.node,
      from: t.from,
      reason: t.reason,
      ...(t.evidence.length ? { evidence: t.evidence.join("; ") } : {}),
    });
    for (const listen of this.transitionListeners) listen(t);
    afterTx(this.#passSoon);
  }

  // Asks the node's neighbours whether they reach it; their answer becomes evidence on its liveness.
  #witness(node: string): void {
    const o = this.#o;
    if (!o.ask) return;
    const now = o.clock.now();
    this.#witnessed.set(node, now);
    const rec = o.registry.get(node);
    if (!rec?.labels.witness) return;
    // One fleet snapshot serves every round within a second (a site going out asks many at once).
    if (!this.#fleetCache || now - this.#fleetCache.at > 1000) {
      const liveness = this.monitor.all();
      this.#fleetCache = {
        at: now,
        nodes: o.registry
          .list()
          .map((n) => ({ id: n.id, labels: n.labels, ready: liveness.get(n.id)?.health === "ready" })),
      };
    }
    const choice = chooseWitnesses({ id: node, labels: rec.labels, ready: false }, this.#fleetCache.nodes);
    if (!choice) return;
    if (choice.peers.length > 0) this.monitor.witnessAsked(node);
    void askWitnesses(node, choice, o.ask, () => o.clock.now()).then(
      (report) => {
        // Answers that come back after the hub stopped (its store is closed) are dropped.
        if (this.#timer === undefined || this.monitor.get(node)?.health === "ready") return;
        this.#write({
          at: report.at,
          kind: "witness",
          node,
          workload: null,
          alloc: null,
          change: null,
          reason: report.note,
          evidence: choice.peers,
        });
        this.#o.log.info("witnesses asked", { node, asked: report.asked, reached: report.reached });
        this.monitor.setWitness(report);
        this.#passSoon();
      },
      (err: unknown) => o.log.warn("witnesses could not be asked", { node, error: (err as Error).message }),
    );
  }

  // Workloads with a copy marked lost (marks of copies no longer wanted are dropped) or a move in flight.
  async #heldNow(): Promise<Set<string>> {
    const held = new Set((await this.mover.store.moves()).map((m) => m.workload));
    const marks = await this.store.marks();
    for (const id of marks.keys()) {
      const a = await this.#o.workloads.alloc(id);
      if (a && a.desired === "run") held.add(a.workload);
      else await this.store.unmark(id);
    }
    return held;
  }

  /** One reconcile pass: decide over the nodes out of contact and the copies marked lost, then apply. */
  pass(): Promise<Decisions | undefined> {
    return this.#serial(() => this.#pass());
  }

  async #pass(): Promise<Decisions | undefined> {
    // A pass queued (a transition, a witness's answer) before stop() finds the database closed.
    if (this.#stopped || !this.#leader.active()) return undefined;
    const o = this.#o;
    const now = o.clock.now();
    const liveness = this.monitor.all();
    const marks = await this.store.marks();
    const troubled = new Set<string>();
    for (const [id, l] of liveness) if (l.health !== "ready") troubled.add(id);
    // Witnesses are asked again while a node stays out: a partition can become a crash.
    for (const id of troubled) {
      const last = this.#witnessed.get(id);
      if (last === undefined || now - last >= (o.witnessEveryMs ?? 10_000)) this.#witness(id);
    }
    if (o.signals && now - this.#lastTriggerCheck >= 5000) {
      this.#lastTriggerCheck = now;
      for (const t of this.#triggers.check(now, o.signals())) {
        if (t.drainBy === undefined) await this.mover.onMigrationRequest(t.node, t.reason, true);
        else {
          await this.#record("migration_request", { node: t.node, reason: t.reason });
          await this.mover.drain(t.node, Math.max(0, t.drainBy - now), 1);
        }
      }
    }
    await this.mover.step(now);
    if (troubled.size === 0 && marks.size === 0) {
      this.#held = new Set((await this.mover.store.moves()).map((m) => m.workload));
      return undefined;
    }
    // Only workloads with a copy on a node out of contact, or a copy marked lost, need a decision.
    const active = await o.workloads.activeAllocs();
    const byWorkload = new Map<string, AllocRecord[]>();
    for (const a of active) {
      const list = byWorkload.get(a.workload) ?? [];
      list.push(a);
      byWorkload.set(a.workload, list);
    }
    const workloads: ReconcileWorkload[] = [];
    const nodes = new Map<string, ReconcileNode>();
    for (const [name, allocs] of byWorkload) {
      if (!allocs.some((a) => troubled.has(a.node) || marks.has(a.id))) continue;
      const w = await o.workloads.get(name);
      if (!w) continue;
      workloads.push({
        name,
        spec: w.spec,
        rolling: "step_started" in w.rollout,
        allocs: allocs.map((a) => {
          const m = marks.get(a.id);
          return {
            id: a.id,
            workload: a.workload,
            node: a.node,
            status: a.status,
            healthy: a.healthy,
            running_since: a.running_since,
            created: a.created,
            ...(m
              ? {
                  lost: {
                    at: m.at,
                    prev_status: m.prev_status,
                    reported_since: !(a.status === "lost" && a.message === m.message),
                  },
                }
              : {}),
          };
        }),
      });
      for (const a of allocs) {
        if (nodes.has(a.node)) continue;
        const l = liveness.get(a.node);
        const rec = o.registry.get(a.node);
        nodes.set(a.node, {
          state: l && l.health !== "ready" ? l.health : rec?.draining ? "draining" : (l?.health ?? "suspect"),
          level: rec?.level ?? 3,
          troubleSince: l?.troubleSince ?? now,
          since: l?.since ?? now,
          evidence: l?.evidence ?? [],
          partitioned: l?.partitioned ?? false,
        });
      }
    }
    let fleet: FleetState | undefined;
    const decisions = reconcile({
      now,
      nodes,
      workloads,
      settleMs: o.settleMs ?? 2000,
      gcAfterMs: o.lostGcAfterMs ?? 86_400_000,
      score: (workload, node) => {
        fleet ??= o.fleet(active);
        const w = workloads.find((x) => x.name === workload)!;
        const others = {
          ...fleet,
          allocations: (fleet.allocations ?? []).filter((a) => a.workload !== workload),
        };
        const plan = place(others, {
          resources: w.spec.resources,
          replicas: fleet.nodes.length,
          placement: w.spec.placement,
        });
        return plan.candidates.find((c) => c.node === node)?.score;
      },
    });
    await applyDecisions(decisions, marks, now, {
      store: this.store,
      workloads: o.workloads,
      controller: o.controller,
      log: o.log,
      count: this.#actions,
      waiting: this.#waiting,
      fence: (tx) => this.#leader.fence(tx),
      ...(o.onDecision ? { record: o.onDecision } : {}),
    });
    this.#held = await this.#heldNow();
    return decisions;
  }
}
