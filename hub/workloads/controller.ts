// Applies workload changes: allocations per node, desired sets with rising generations, rollouts.
import { RequestError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { Body } from "../../shared/protocol/index.ts";
import type { WorkloadSpec } from "../../shared/workload/index.ts";
import { type FleetState, type Plan, place, validatePlacementRequest } from "../placement/index.ts";
import { nextStep } from "./rollout.ts";
import type { AllocRecord, RolloutState, WorkloadRecord, WorkloadStore } from "./workload-store.ts";

export interface ControllerOptions {
  store: WorkloadStore;
  log: Logger;
  /** Sends a node its desired set; false when it has no session (it gets the set on its next hello). */
  sendAllocs: (node: string, body: Body<"allocs">) => boolean;
  now?: () => number;
  tickMs?: number;
  /** The fleet as placement sees it, now. */
  fleet?: () => FleetState;
  /** Records the controller's own decisions (placement, rollback) in the audit log. */
  onDecision?: (action: string, object: string, detail: string, state?: unknown) => void;
}

/** The hub's workload controller: every change ends in each touched node getting its whole desired set. */
export class WorkloadController {
  readonly #store: WorkloadStore;
  readonly #log: Logger;
  readonly #send: ControllerOptions["sendAllocs"];
  readonly #now: () => number;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #fleet: (() => FleetState) | undefined;
  readonly #record: NonNullable<ControllerOptions["onDecision"]>;
  #lastPendingPass = 0;
  #lastPrune = 0;
  #pendingScheduled = false;
  #stopped = false;
  /**
   * Workloads whose replica count failover is settling (a copy lost or returning): the pending pass
   * neither adds nor scales them down meanwhile (hub/failover decides, by each one's disconnect policy).
   */
  heldByFailover: (workload: string) => boolean = () => false;

  constructor(opts: ControllerOptions) {
    this.#store = opts.store;
    this.#log = opts.log;
    this.#send = opts.sendAllocs;
    this.#now = opts.now ?? Date.now;
    this.#fleet = opts.fleet;
    this.#record = opts.onDecision ?? (() => {});
    this.#timer = setInterval(() => this.tick(), opts.tickMs ?? 250);
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  /** Creates a workload and its allocations. */
  create(spec: WorkloadSpec): WorkloadRecord {
    if (this.#store.get(spec.name))
      throw new RequestError(`workload ${spec.name} already exists; use PUT to change it`, "name");
    const touched = new Set<string>();
    this.#tx(() => {
      this.#store.insert(spec);
      for (const node of spec.nodes ?? []) {
        this.#store.createAlloc(spec.name, node, 1, spec);
        touched.add(node);
      }
    });
    this.#sync(touched);
    this.#log.info("workload created", { workload: spec.name, nodes: (spec.nodes ?? []).join(",") });
    if (!spec.nodes?.length) this.#placeMissing(this.#store.get(spec.name)!);
    return this.#store.get(spec.name)!;
  }

  /** Changes a workload: a new version, rolled out by its strategy (jobs and node changes apply at once). */
  update(name: string, spec: WorkloadSpec): WorkloadRecord {
    const current = this.#require(name);
    if (spec.name !== name)
      throw new RequestError(`name ${spec.name} does not match the workload ${name}`, "name");
    if (JSON.stringify(current.spec) === JSON.stringify(spec)) return current;
    // Versions only rise: after a rollback to v1 from v2, the next change is v3, never a second v2.
    const version = Math.max(current.version, "to" in current.rollout ? current.rollout.to : 0) + 1;
    const touched = new Set<string>();
    const samePlaces = JSON.stringify(current.spec.nodes ?? []) === JSON.stringify(spec.nodes ?? []);
    this.#tx(() => {
      if (spec.driver === "job" || !samePlaces) {
        // Nothing to roll: stop every old copy, start the new ones where they now belong.
        for (const a of this.#active(name)) {
          this.#store.setDesired(a.id, "stop");
          touched.add(a.node);
        }
        for (const node of spec.nodes ?? []) {
          this.#store.createAlloc(name, node, version, spec);
          touched.add(node);
        }
        this.#store.update(name, spec, version, current.spec, { state: "idle" });
        return;
      }
      const state = spec.rollout.strategy === "rolling" ? "rolling" : spec.rollout.strategy;
      const rollout: RolloutState = { state, from: current.version, to: version, step_started: this.#now() };
      this.#store.update(name, spec, version, current.spec, rollout);
    });
    this.#sync(touched);
    this.#log.info("workload changed", { workload: name, version, strategy: spec.rollout.strategy });
    this.tick();
    return this.#store.get(name)!;
  }

  /** Deletes a workload; every node stops its copies. */
  remove(name: string): void {
    this.#require(name);
    const touched = new Set<string>();
    this.#tx(() => {
      for (const a of this.#active(name)) {
        this.#store.setDesired(a.id, "stop");
        touched.add(a.node);
      }
      this.#store.delete(name);
    });
    this.#sync(touched);
    this.#log.info("workload deleted", { workload: name });
  }

  /** Canary: lets the rest of the replicas move to the new version. */
  promote(name: string): WorkloadRecord {
    const w = this.#require(name);
    if (w.rollout.state !== "awaiting-promotion") {
      throw new RequestError(
        `workload ${name} has no canary waiting for promotion (rollout is ${w.rollout.state})`,
        "rollout",
      );
    }
    this.#store.setRollout(name, { ...w.rollout, state: "rolling", step_started: this.#now() });
    this.tick();
    return this.#store.get(name)!;
  }

  /**
   * Returns every replica to the previous version: during a rollout at once; after a finished one by
   * rolling the previous spec out again as a new version (what an operator expects of "rollback").
   */
  rollback(name: string, reason = "rolled back by an operator"): WorkloadRecord {
    const w = this.#require(name);
    if (w.rollout.state === "idle" && w.previous_spec) return this.update(name, w.previous_spec);
    if (!("to" in w.rollout) || w.rollout.state === "rolled-back" || !w.previous_spec) {
      throw new RequestError(`workload ${name} has no rollout to roll back`, "rollout");
    }
    this.#rollback(w, reason);
    return this.#store.get(name)!;
  }

  /** An agent's report, applied inside the ingest transaction that stores it. */
  onAllocStatus(node: string, s: Body<"alloc_status">): void {
    const a = this.#store.alloc(s.alloc);
    if (!a || a.node !== node) return;
    const r: Parameters<WorkloadStore["report"]>[1] = { status: s.status };
    if (s.message !== undefined) r.message = s.message;
    if (s.pid !== undefined) r.pid = s.pid;
    if (s.restarts !== undefined) r.restarts = s.restarts;
    if (s.healthy !== undefined) r.healthy = s.healthy;
    this.#store.report(s.alloc, r);
  }

  /** A job's result, applied inside the ingest transaction that stores it. */
  onTaskResult(node: string, r: Body<"task_result">): void {
    const a = this.#store.alloc(r.alloc);
    if (!a || a.node !== node) return;
    const result: Parameters<WorkloadStore["result"]>[1] = {
      exit_code: r.exit_code,
      duration_ms: r.duration_ms,
      output_tail: r.output_tail,
    };
    if (r.signal !== undefined) result.signal = r.signal;
    this.#store.result(r.alloc, result);
    this.#store.report(r.alloc, {
      status: r.exit_code === 0 ? "complete" : "failed",
      message: r.exit_code === 0 ? "exited 0" : r.signal ? `killed by ${r.signal}` : `exited ${r.exit_code}`,
    });
  }

  /** A node (re)joined: it gets its whole desired set, and pending workloads may now fit. */
  onSession(node: string, agentGeneration?: number): void {
    if (agentGeneration !== undefined && agentGeneration >= this.#store.generation(node)) {
      // The node has applied this generation or a later one (from this hub before it lost its data,
      // or from another hub): only a higher number makes it take what this hub holds.
      this.#store.setGeneration(node, agentGeneration);
      this.#sync(new Set([node]));
    } else {
      this.#send(node, { generation: this.#store.generation(node), allocs: this.#store.desiredOn(node) });
    }
    // After the node's hello is processed, so the fleet view already holds it; a burst of hellos
    // (a hub restart) shares one pass.
    if (!this.#pendingScheduled) {
      this.#pendingScheduled = true;
      setTimeout(() => this.placePending(), 0);
    }
  }

  /** Places the replicas that placed (not pinned) workloads still lack. */
  placePending(): void {
    this.#pendingScheduled = false;
    if (this.#stopped) return;
    this.#lastPendingPass = this.#now();
    // One fleet view for the pass, built again only after a placement changed it.
    let fleet: FleetState | undefined;
    for (const w of this.#store.list()) {
      if ((w.spec.nodes ?? []).length > 0 || "step_started" in w.rollout) continue;
      if (this.heldByFailover(w.name)) continue;
      const active = this.#active(w.name);
      if (active.length < w.spec.replicas) {
        fleet ??= this.#fleet?.();
        if ((this.#placeMissing(w, fleet) ?? []).length > 0) fleet = undefined;
      } else if (active.length > w.spec.replicas) this.#scaleDown(w, active);
    }
  }

  // Stops the replicas beyond the wanted count: the last placed go first (node order breaks ties).
  #scaleDown(w: WorkloadRecord, active: AllocRecord[]): void {
    const surplus = [...active]
      .sort((a, b) => b.created - a.created || b.node.localeCompare(a.node))
      .slice(0, active.length - w.spec.replicas);
    const touched = new Set<string>();
    this.#tx(() => {
      for (const a of surplus) {
        this.#store.setDesired(a.id, "stop");
        touched.add(a.node);
      }
    });
    this.#sync(touched);
    this.#log.info("workload scaled down", { workload: w.name, stopped: surplus.length });
  }

  /**
   * Failover's applier: places `count` replacements of a workload (its lost copies still count as
   * active, so the count is given) and returns the nodes chosen.
   */
  placeReplacements(name: string, count: number, exclude: readonly string[] = []): string[] {
    const w = this.#store.get(name);
    if (!w || count <= 0) return [];
    let fleet = this.#fleet?.();
    if (fleet && exclude.length > 0)
      fleet = { ...fleet, nodes: fleet.nodes.filter((n) => !exclude.includes(n.id)) };
    return (this.#placeMissing(w, fleet, count) ?? []).map((p) => p.node);
  }

  /** Failover's applier: stops these allocations and starts fresh copies where `start` says, in one step. */
  applyFailover(stop: readonly string[], start: readonly { workload: string; node: string }[]): string[] {
    const touched = new Set<string>();
    const started: string[] = [];
    this.#tx(() => {
      for (const id of stop) {
        const a = this.#store.alloc(id);
        if (!a || a.desired === "stop") continue;
        this.#store.setDesired(id, "stop");
        touched.add(a.node);
      }
      for (const s of start) {
        const w = this.#store.get(s.workload);
        if (!w) continue;
        started.push(this.#store.createAlloc(w.name, s.node, w.version, w.spec).id);
        touched.add(s.node);
      }
    });
    this.#sync(touched);
    return started;
  }

  // Runs the placement engine for the replicas a workload lacks and keeps its explanation.
  // Returns the placements made.
  #placeMissing(w: WorkloadRecord, fleet = this.#fleet?.(), count?: number): Plan["placements"] | undefined {
    if (!fleet) return undefined;
    const missing = count ?? w.spec.replicas - this.#active(w.name).length;
    if (missing <= 0) return undefined;
    const request = validatePlacementRequest({
      name: w.name,
      resources: w.spec.resources,
      replicas: missing,
      placement: w.spec.placement,
    });
    const plan = place(fleet, request);
    const touched = new Set<string>();
    this.#tx(() => {
      for (const p of plan.placements) {
        this.#store.createAlloc(w.name, p.node, w.version, w.spec);
        touched.add(p.node);
      }
      this.#store.setPlacement(w.name, { at: this.#now(), ...plan });
    });
    this.#sync(touched);
    if (plan.placements.length > 0) {
      this.#record(
        "placement.place",
        `workloads/${w.name}`,
        `placed on ${plan.placements.map((p) => p.node).join(", ")}`,
        plan.placements,
      );
      this.#log.info("workload placed", {
        workload: w.name,
        nodes: plan.placements.map((p) => p.node).join(","),
      });
    }
    if (!plan.complete)
      this.#log.info("workload waits for a node that fits", { workload: w.name, reason: plan.reason });
    return plan.placements;
  }

  /** Advances every rollout in progress (and, every few seconds, places what is pending). */
  tick(): void {
    const now = this.#now();
    if (now - this.#lastPendingPass > 5000) this.placePending();
    if (now - this.#lastPrune > 60_000) {
      // Stopped allocations stay visible for an hour (GET .../allocs history), then go.
      this.#lastPrune = now;
      this.#store.pruneStopped(3_600_000);
    }
    for (const w of this.#store.list()) {
      const r = w.rollout;
      if (!("step_started" in r)) continue;
      const step = nextStep(r, w.spec, this.#active(w.name), now, this.#store.allocsOf(w.name));
      switch (step.kind) {
        case "wait":
          break;
        case "await-promotion":
          if (r.state !== "awaiting-promotion") {
            this.#store.setRollout(w.name, {
              ...r,
              state: "awaiting-promotion",
              message: "canary healthy; promote or roll back",
            });
            this.#log.info("canary healthy, waiting for promotion", { workload: w.name, version: r.to });
          }
          break;
        case "stop-first": {
          // Old copies go first; their nodes get the new version once each has stopped (handoff-start).
          const touched = new Set<string>();
          this.#tx(() => {
            const handoff = step.stop.map((id, i) => ({ node: step.startOn[i]!, stopped: id }));
            for (const id of step.stop) {
              this.#store.setDesired(id, "stop");
              touched.add(this.#store.alloc(id)!.node);
            }
            this.#store.setRollout(w.name, { ...r, step_started: now, handoff } as RolloutState);
          });
          this.#sync(touched);
          break;
        }
        case "handoff-start": {
          const touched = new Set<string>();
          this.#tx(() => {
            for (const node of step.startOn) {
              this.#store.createAlloc(w.name, node, r.to, w.spec);
              touched.add(node);
            }
            const { handoff: _, ...rest } = r as typeof r & { handoff?: unknown };
            this.#store.setRollout(w.name, { ...rest, step_started: now } as RolloutState);
          });
          this.#sync(touched);
          break;
        }
        case "replace":
        case "start":
        case "stop": {
          const touched = new Set<string>();
          this.#tx(() => {
            if (step.kind !== "start") {
              for (const id of step.stop) {
                const a = this.#store.alloc(id)!;
                this.#store.setDesired(id, "stop");
                touched.add(a.node);
              }
            }
            if (step.kind !== "stop") {
              for (const node of step.startOn) {
                this.#store.createAlloc(w.name, node, r.to, w.spec);
                touched.add(node);
              }
            }
            if (step.kind === "stop") this.#store.setRollout(w.name, { state: "idle" });
            else this.#store.setRollout(w.name, { ...r, step_started: now });
          });
          this.#sync(touched);
          break;
        }
        case "done":
          this.#store.setRollout(w.name, { state: "idle" });
          this.#log.info("rollout complete", { workload: w.name, version: r.to });
          break;
        case "rollback":
          if (w.spec.rollout.auto_rollback) {
            this.#rollback(w, step.reason);
            // An operator's rollback is in the log as their request; this one is the hub's.
            this.#record("rollout.rollback", `workloads/${w.name}`, step.reason, { from: r.to, to: r.from });
          } else {
            this.#store.setRollout(w.name, { state: "failed", from: r.from, to: r.to, message: step.reason });
            this.#log.warn("rollout failed; auto_rollback is off", { workload: w.name, reason: step.reason });
          }
          break;
        default: {
          const never: never = step;
          void never;
        }
      }
    }
  }

  #rollback(w: WorkloadRecord, reason: string): void {
    const r = w.rollout as Extract<RolloutState, { to: number }>;
    const previous = w.previous_spec!;
    const touched = new Set<string>();
    this.#tx(() => {
      // Everything not at the version rolled back to goes, including copies of an older rollout
      // that this one interrupted; every place the workload had gets a copy of that version.
      const active = this.#active(w.name);
      const places =
        (previous.nodes ?? []).length > 0 ? [...previous.nodes!] : [...new Set(active.map((a) => a.node))];
      for (const a of active.filter((x) => x.version !== r.from)) {
        this.#store.setDesired(a.id, "stop");
        touched.add(a.node);
      }
      const keep = new Set(active.filter((x) => x.version === r.from).map((x) => x.node));
      for (const node of places.slice(0, Math.max(previous.replicas, (previous.nodes ?? []).length))) {
        if (keep.has(node)) continue;
        this.#store.createAlloc(w.name, node, r.from, previous);
        touched.add(node);
      }
      this.#store.update(w.name, previous, r.from, null, {
        state: "rolled-back",
        from: r.from,
        to: r.to,
        message: reason,
      });
    });
    this.#sync(touched);
    this.#log.warn("rollout rolled back", { workload: w.name, to: r.from, reason });
  }

  #active(name: string): AllocRecord[] {
    return this.#store.allocsOf(name).filter((a) => a.desired === "run");
  }

  #require(name: string): WorkloadRecord {
    const w = this.#store.get(name);
    if (!w) throw new RequestError(`no workload ${name}`, "name");
    return w;
  }

  #tx(fn: () => void): void {
    this.#store.db.transaction(fn)();
  }

  // Every touched node gets its whole desired set under a new generation.
  #sync(nodes: Set<string>): void {
    for (const node of nodes) {
      const generation = this.#store.bumpGeneration(node);
      this.#send(node, { generation, allocs: this.#store.desiredOn(node) });
    }
  }
}
