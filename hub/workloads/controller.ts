// Applies workload changes: allocations per node, desired sets with rising generations, rollouts.
import { RequestError } from "../../shared/errors.ts";
import { LogLimiter, type Logger } from "../../shared/log.ts";
import { oneAtATime } from "../../shared/one-at-a-time.ts";
import type { Body } from "../../shared/protocol/index.ts";
import type { WorkloadSpec } from "../../shared/workload/index.ts";
import { type FleetState, place, validatePlacementRequest } from "../placement/index.ts";
import { afterCommit } from "../store/after-tx.ts";
import type { HubSql } from "../store/sql/index.ts";
import { type Leadership, soleLeader } from "../replicas/leadership.ts";
import { nextStep } from "./rollout.ts";
import type { AllocRecord, RolloutState, WorkloadRecord, WorkloadStore } from "./workload-store.ts";

export interface ControllerOptions {
  store: WorkloadStore;
  log: Logger;
  /** Sends a node its desired set; false when it has no session (it gets the set on its next hello). */
  sendAllocs: (node: string, body: Body<"allocs">) => boolean;
  now?: () => number;
  tickMs?: number;
  /** The fleet as placement sees it now, with `active` the allocations wanted running (read in the deciding transaction). */
  fleet?: (active: readonly AllocRecord[]) => FleetState;
  /** Records the controller's own decisions (placement, rollback) in the audit log. */
  onDecision?: (action: string, object: string, detail: string, state?: unknown) => void;
  /**
   * Whether this hub runs the timed work (rollout steps, pending placement, pruning) and fences its
   * writes (hub/replicas); one hub alone always does. Changes asked through the API run on any hub.
   */
  leader?: Leadership;
}

/** The nodes a change touched: each gets its whole desired set under a new generation, in the same transaction. */
type Touched = Set<string>;

/**
 * The hub's workload controller: every change ends in each touched node getting its whole desired set.
 * Each change is one transaction that reads what it decides from (the workload's row locked first), so
 * two callers, or two hubs on one store, never both place what one workload lacks. Within this hub the
 * changes also run one at a time, in the order asked.
 */
export class WorkloadController {
  readonly #store: WorkloadStore;
  readonly #log: Logger;
  /** Failures that repeat every tick while the store is away: logged once per 10 s each. */
  readonly #failures: LogLimiter;
  readonly #send: ControllerOptions["sendAllocs"];
  readonly #now: () => number;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #fleet: ControllerOptions["fleet"];
  readonly #record: NonNullable<ControllerOptions["onDecision"]>;
  readonly #leader: Leadership;
  #lastPendingPass = 0;
  #lastPrune = 0;
  #pendingScheduled = false;
  #tickQueued = false;
  #stopped = false;
  /** The changes asked of this hub, run one after another. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Asks for the store's view (synchronous readers) to be read again. */
  readonly refreshView: () => void;
  /**
   * Workloads whose replica count failover is settling (a copy lost or returning): the pending pass
   * neither adds nor scales them down meanwhile (hub/failover decides, by each one's disconnect policy).
   */
  heldByFailover: (workload: string) => boolean = () => false;

  constructor(opts: ControllerOptions) {
    this.#store = opts.store;
    this.#log = opts.log;
    this.#failures = new LogLimiter(opts.log, { intervalMs: 10_000 });
    this.#send = opts.sendAllocs;
    this.#now = opts.now ?? Date.now;
    this.#fleet = opts.fleet;
    this.#record = opts.onDecision ?? (() => {});
    this.#leader = opts.leader ?? soleLeader;
    this.refreshView = oneAtATime(
      () => this.#store.refreshView(),
      (err) => this.#failures.warn("view", "workloads could not be read", { error: (err as Error).message }),
    );
    this.#timer = setInterval(() => {
      if (this.#tickQueued || this.#stopped) return;
      this.#tickQueued = true;
      void this.tick()
        .catch((err: unknown) =>
          this.#failures.error("tick", "workload tick failed", { error: (err as Error).message }),
        )
        .finally(() => {
          this.#tickQueued = false;
        });
    }, opts.tickMs ?? 250);
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  /** Resolves once the changes asked so far have ended. */
  async settled(): Promise<void> {
    await this.#queue.catch(() => {});
  }

  // Runs `fn` after every change asked before it has ended.
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  // One transaction; every node touched gets its desired set under a new generation stamped in it, sent
  // once it has committed. A refusal the body returns is thrown after the transaction (it rolls back
  // nobody's write). A leader's change (`fenced`) first checks in the same transaction that this hub
  // still leads.
  async #change<T>(
    fn: (tx: HubSql, touched: Touched) => Promise<T | RequestError>,
    fenced = false,
  ): Promise<T> {
    const out = await this.#store.sql.tx(async (tx) => {
      if (fenced) await this.#leader.fence(tx);
      const touched: Touched = new Set();
      const r = await fn(tx, touched);
      if (r instanceof RequestError) return r;
      // In one order on every hub: two changes touching the same nodes never wait on each other in a circle.
      for (const node of [...touched].sort()) {
        const generation = await this.#store.bumpGeneration(tx, node);
        const allocs = await this.#store.desiredOn(node, tx);
        afterCommit(() => this.#send(node, { generation, allocs }));
      }
      return r;
    });
    this.refreshView();
    if (out instanceof RequestError) throw out;
    return out;
  }

  /** Creates a workload and its allocations (placed at once when it names no nodes). */
  create(spec: WorkloadSpec): Promise<WorkloadRecord> {
    return this.#serial(async () => {
      const w = await this.#change(async (tx, touched) => {
        if (!(await this.#store.insert(tx, spec)))
          return new RequestError(`workload ${spec.name} already exists; use PUT to change it`, "name");
        for (const node of spec.nodes ?? []) {
          await this.#store.createAlloc(tx, spec.name, node, 1, spec);
          touched.add(node);
        }
        const w = (await this.#store.get(spec.name, tx))!;
        if (!spec.nodes?.length) await this.#placeMissing(tx, touched, w);
        return w;
      });
      this.#log.info("workload created", { workload: spec.name, nodes: (spec.nodes ?? []).join(",") });
      return w;
    });
  }

  /** Changes a workload: a new version, rolled out by its strategy (jobs and node changes apply at once). */
  update(name: string, spec: WorkloadSpec): Promise<WorkloadRecord> {
    return this.#serial(() => this.#update(name, spec));
  }

  async #update(name: string, spec: WorkloadSpec): Promise<WorkloadRecord> {
    const changed = await this.#change(async (tx, touched) => {
      const current = await this.#store.lock(tx, name);
      if (!current) return new RequestError(`no workload ${name}`, "name");
      if (spec.name !== name)
        return new RequestError(`name ${spec.name} does not match the workload ${name}`, "name");
      if (JSON.stringify(current.spec) === JSON.stringify(spec)) return undefined;
      // Versions only rise: after a rollback to v1 from v2, the next change is v3, never a second v2.
      const version = Math.max(current.version, "to" in current.rollout ? current.rollout.to : 0) + 1;
      const samePlaces = JSON.stringify(current.spec.nodes ?? []) === JSON.stringify(spec.nodes ?? []);
      if (spec.driver === "job" || !samePlaces) {
        // Nothing to roll: stop every old copy, start the new ones where they now belong.
        for (const a of await this.#active(tx, name)) {
          await this.#store.setDesired(tx, a.id, "stop");
          touched.add(a.node);
        }
        for (const node of spec.nodes ?? []) {
          await this.#store.createAlloc(tx, name, node, version, spec);
          touched.add(node);
        }
        await this.#store.update(tx, name, spec, version, current.spec, { state: "idle" });
        return version;
      }
      const state = spec.rollout.strategy === "rolling" ? "rolling" : spec.rollout.strategy;
      const rollout: RolloutState = { state, from: current.version, to: version, step_started: this.#now() };
      await this.#store.update(tx, name, spec, version, current.spec, rollout);
      return version;
    });
    if (changed !== undefined) {
      this.#log.info("workload changed", {
        workload: name,
        version: changed,
        strategy: spec.rollout.strategy,
      });
      await this.#tick();
    }
    return (await this.#store.get(name))!;
  }

  /** Deletes a workload; every node stops its copies. */
  remove(name: string): Promise<void> {
    return this.#serial(async () => {
      await this.#change(async (tx, touched) => {
        if (!(await this.#store.lock(tx, name))) return new RequestError(`no workload ${name}`, "name");
        for (const a of await this.#active(tx, name)) {
          await this.#store.setDesired(tx, a.id, "stop");
          touched.add(a.node);
        }
        await this.#store.delete(tx, name);
      });
      this.#log.info("workload deleted", { workload: name });
    });
  }

  /** Canary: lets the rest of the replicas move to the new version. */
  promote(name: string): Promise<WorkloadRecord> {
    return this.#serial(async () => {
      await this.#change(async (tx) => {
        const w = await this.#store.lock(tx, name);
        if (!w) return new RequestError(`no workload ${name}`, "name");
        if (w.rollout.state !== "awaiting-promotion") {
          return new RequestError(
            `workload ${name} has no canary waiting for promotion (rollout is ${w.rollout.state})`,
            "rollout",
          );
        }
        await this.#store.setRollout(tx, name, { ...w.rollout, state: "rolling", step_started: this.#now() });
      });
      await this.#tick();
      return (await this.#store.get(name))!;
    });
  }

  /**
   * Returns every replica to the previous version: during a rollout at once; after a finished one by
   * rolling the previous spec out again as a new version (what an operator expects of "rollback").
   */
  rollback(name: string, reason = "rolled back by an operator"): Promise<WorkloadRecord> {
    return this.#serial(async () => {
      const w = await this.#store.get(name);
      if (!w) throw new RequestError(`no workload ${name}`, "name");
      if (w.rollout.state === "idle" && w.previous_spec) return this.#update(name, w.previous_spec);
      await this.#rollback(name, reason);
      return (await this.#store.get(name))!;
    });
  }

  /** An agent's report, applied through the ingest transaction `tx` that stores it. */
  async onAllocStatus(tx: HubSql, node: string, s: Body<"alloc_status">): Promise<void> {
    const a = await this.#store.alloc(s.alloc, tx);
    if (!a || a.node !== node) return;
    const r: Parameters<WorkloadStore["report"]>[2] = { status: s.status };
    if (s.message !== undefined) r.message = s.message;
    if (s.pid !== undefined) r.pid = s.pid;
    if (s.restarts !== undefined) r.restarts = s.restarts;
    if (s.healthy !== undefined) r.healthy = s.healthy;
    await this.#store.report(tx, s.alloc, r);
  }

  /** A job's result, applied through the ingest transaction `tx` that stores it. */
  async onTaskResult(tx: HubSql, node: string, r: Body<"task_result">): Promise<void> {
    const a = await this.#store.alloc(r.alloc, tx);
    if (!a || a.node !== node) return;
    const result: Parameters<WorkloadStore["result"]>[2] = {
      exit_code: r.exit_code,
      duration_ms: r.duration_ms,
      output_tail: r.output_tail,
    };
    if (r.signal !== undefined) result.signal = r.signal;
    await this.#store.result(tx, r.alloc, result);
    await this.#store.report(tx, r.alloc, {
      status: r.exit_code === 0 ? "complete" : "failed",
      message: r.exit_code === 0 ? "exited 0" : r.signal ? `killed by ${r.signal}` : `exited ${r.exit_code}`,
    });
  }

  /** A node (re)joined: it gets its whole desired set, and pending workloads may now fit. */
  onSession(node: string, agentGeneration?: number): Promise<void> {
    const sent = this.#serial(async () => {
      // One read: the set as of the generation read (a bump another hub began commits first).
      const { generation, allocs } = await this.#store.sql.tx(async (tx) => ({
        generation: await this.#store.generation(node, tx, true),
        allocs: await this.#store.desiredOn(node, tx),
      }));
      if (agentGeneration !== undefined && agentGeneration >= generation) {
        // The node has applied this generation or a later one (from this hub before it lost its data,
        // or from another hub): only a higher number makes it take what this hub holds.
        await this.#change(async (tx, touched) => {
          await this.#store.setGeneration(tx, node, agentGeneration);
          touched.add(node);
        });
      } else this.#send(node, { generation, allocs });
    });
    // After the node's hello is processed, so the fleet view already holds it; a burst of hellos
    // (a hub restart) shares one pass.
    if (!this.#pendingScheduled) {
      this.#pendingScheduled = true;
      setTimeout(() => {
        void this.placePending().catch((err: unknown) =>
          this.#log.error("pending workloads could not be placed", { error: (err as Error).message }),
        );
      }, 0);
    }
    return sent;
  }

  /** Sends a node its whole desired set as the store holds it now (asked by another replica). */
  sendSet(node: string): Promise<void> {
    return this.#serial(async () => {
      const { generation, allocs } = await this.#store.sql.tx(async (tx) => ({
        generation: await this.#store.generation(node, tx, true),
        allocs: await this.#store.desiredOn(node, tx),
      }));
      this.#send(node, { generation, allocs });
    });
  }

  /** Places the replicas that placed (not pinned) workloads still lack. */
  placePending(): Promise<void> {
    this.#pendingScheduled = false;
    return this.#serial(() => this.#placePending());
  }

  async #placePending(): Promise<void> {
    if (this.#stopped || !this.#leader.active()) return;
    this.#lastPendingPass = this.#now();
    for (const listed of await this.#store.list()) {
      if ((listed.spec.nodes ?? []).length > 0 || "step_started" in listed.rollout) continue;
      if (this.heldByFailover(listed.name)) continue;
      await this.#change(async (tx, touched) => {
        // Decided again under the row's lock: what another caller placed meanwhile counts.
        const w = await this.#store.lock(tx, listed.name);
        if (!w || (w.spec.nodes ?? []).length > 0 || "step_started" in w.rollout) return;
        const active = await this.#active(tx, w.name);
        if (active.length < w.spec.replicas) await this.#placeMissing(tx, touched, w, undefined, active);
        else if (active.length > w.spec.replicas) await this.#scaleDown(tx, touched, w, active);
      }, true);
    }
  }

  // Stops the replicas beyond the wanted count: the last placed go first (node order breaks ties).
  async #scaleDown(tx: HubSql, touched: Touched, w: WorkloadRecord, active: AllocRecord[]): Promise<void> {
    const surplus = [...active]
      .sort((a, b) => b.created - a.created || b.node.localeCompare(a.node))
      .slice(0, active.length - w.spec.replicas);
    for (const a of surplus) {
      await this.#store.setDesired(tx, a.id, "stop");
      touched.add(a.node);
    }
    afterCommit(() => this.#log.info("workload scaled down", { workload: w.name, stopped: surplus.length }));
  }

  /**
   * Failover's applier: places `count` replacements of a workload (its lost copies still count as
   * active, so the count is given) and returns where, with each new allocation. `fenced`: decided by
   * the leader's pass, so refused once it no longer leads (it does not count the copies again).
   */
  placeReplacements(
    name: string,
    count: number,
    exclude: readonly string[] = [],
    fenced = false,
  ): Promise<{ node: string; alloc: string }[]> {
    return this.#serial(() =>
      this.#change(async (tx, touched) => {
        const w = await this.#store.lock(tx, name);
        if (!w || count <= 0 || !this.#fleet) return [];
        let fleet = this.#fleet(await this.#store.activeAllocs(tx));
        if (exclude.length > 0)
          fleet = { ...fleet, nodes: fleet.nodes.filter((n) => !exclude.includes(n.id)) };
        return this.#placeMissing(tx, touched, w, fleet, undefined, count);
      }, fenced),
    );
  }

  /**
   * Failover's applier: stops these allocations and starts fresh copies where `start` says, in one step.
   * `fenced`: decided by the leader's pass (refused once it no longer leads); an operator's move is not.
   */
  applyFailover(
    stop: readonly string[],
    start: readonly { workload: string; node: string }[],
    fenced = false,
  ): Promise<string[]> {
    return this.#serial(() =>
      this.#change(async (tx, touched) => {
        const started: string[] = [];
        for (const id of stop) {
          const a = await this.#store.alloc(id, tx);
          if (!a || a.desired === "stop") continue;
          await this.#store.setDesired(tx, id, "stop");
          touched.add(a.node);
        }
        for (const s of [...start].sort((a, b) =>
          a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : 0,
        )) {
          const w = await this.#store.lock(tx, s.workload);
          if (!w) continue;
          started.push(await this.#store.createAlloc(tx, w.name, s.node, w.version, w.spec));
          touched.add(s.node);
        }
        return started;
      }, fenced),
    );
  }

  // Runs the placement engine for the replicas a workload lacks (read through `tx`, whose caller holds
  // the workload's row) and keeps its explanation. Returns the placements made.
  async #placeMissing(
    tx: HubSql,
    touched: Touched,
    w: WorkloadRecord,
    fleetGiven?: FleetState,
    activeGiven?: AllocRecord[],
    count?: number,
  ): Promise<{ node: string; alloc: string }[]> {
    if (!this.#fleet) return [];
    const missing = count ?? w.spec.replicas - (activeGiven ?? (await this.#active(tx, w.name))).length;
    if (missing <= 0) return [];
    const fleet = fleetGiven ?? this.#fleet(await this.#store.activeAllocs(tx));
    const request = validatePlacementRequest({
      name: w.name,
      resources: w.spec.resources,
      replicas: missing,
      placement: w.spec.placement,
    });
    const plan = place(fleet, request);
    const placed: { node: string; alloc: string }[] = [];
    for (const p of plan.placements) {
      placed.push({
        node: p.node,
        alloc: await this.#store.createAlloc(tx, w.name, p.node, w.version, w.spec),
      });
      touched.add(p.node);
    }
    await this.#store.setPlacement(tx, w.name, { at: this.#now(), ...plan });
    if (plan.placements.length > 0) {
      const nodes = plan.placements.map((p) => p.node);
      afterCommit(() => {
        this.#record(
          "placement.place",
          `workloads/${w.name}`,
          `placed on ${nodes.join(", ")}`,
          plan.placements,
        );
        this.#log.info("workload placed", { workload: w.name, nodes: nodes.join(",") });
      });
    }
    if (!plan.complete) {
      const reason = plan.reason;
      afterCommit(() => this.#log.info("workload waits for a node that fits", { workload: w.name, reason }));
    }
    return placed;
  }

  /** Advances every rollout in progress (and, every few seconds, places what is pending). */
  tick(): Promise<void> {
    return this.#serial(() => this.#tick());
  }

  async #tick(): Promise<void> {
    if (this.#stopped || !this.#leader.active()) return;
    const now = this.#now();
    if (now - this.#lastPendingPass > 5000) await this.#placePending();
    if (now - this.#lastPrune > 60_000) {
      // Stopped allocations stay visible for an hour (GET .../allocs history), then go.
      this.#lastPrune = now;
      await this.#store.sql.tx((tx) => this.#store.pruneStopped(tx, 3_600_000));
    }
    for (const listed of await this.#store.list()) {
      if (!("step_started" in listed.rollout)) continue;
      await this.#step(listed.name, now);
    }
  }

  // One step of a workload's rollout, decided under its row's lock.
  async #step(name: string, now: number): Promise<void> {
    await this.#change(async (tx, touched) => {
      const w = await this.#store.lock(tx, name);
      if (!w) return;
      const r = w.rollout;
      if (!("step_started" in r)) return;
      const active = await this.#active(tx, w.name);
      const step = nextStep(r, w.spec, active, now, await this.#store.allocsOf(w.name, tx));
      const stop = async (ids: readonly string[]) => {
        for (const id of ids) {
          const a = (await this.#store.alloc(id, tx))!;
          await this.#store.setDesired(tx, id, "stop");
          touched.add(a.node);
        }
      };
      const start = async (nodes: readonly string[]) => {
        for (const node of nodes) {
          await this.#store.createAlloc(tx, w.name, node, r.to, w.spec);
          touched.add(node);
        }
      };
      switch (step.kind) {
        case "wait":
          break;
        case "await-promotion":
          if (r.state !== "awaiting-promotion") {
            await this.#store.setRollout(tx, w.name, {
              ...r,
              state: "awaiting-promotion",
              message: "canary healthy; promote or roll back",
            });
            afterCommit(() =>
              this.#log.info("canary healthy, waiting for promotion", { workload: w.name, version: r.to }),
            );
          }
          break;
        case "stop-first": {
          // Old copies go first; their nodes get the new version once each has stopped (handoff-start).
          const handoff = step.stop.map((id, i) => ({ node: step.startOn[i]!, stopped: id }));
          await stop(step.stop);
          await this.#store.setRollout(tx, w.name, { ...r, step_started: now, handoff } as RolloutState);
          break;
        }
        case "handoff-start": {
          await start(step.startOn);
          const { handoff: _, ...rest } = r as typeof r & { handoff?: unknown };
          await this.#store.setRollout(tx, w.name, { ...rest, step_started: now } as RolloutState);
          break;
        }
        case "replace":
        case "start":
        case "stop": {
          if (step.kind !== "start") await stop(step.stop);
          if (step.kind !== "stop") await start(step.startOn);
          if (step.kind === "stop") await this.#store.setRollout(tx, w.name, { state: "idle" });
          else await this.#store.setRollout(tx, w.name, { ...r, step_started: now });
          break;
        }
        case "done":
          await this.#store.setRollout(tx, w.name, { state: "idle" });
          afterCommit(() => this.#log.info("rollout complete", { workload: w.name, version: r.to }));
          break;
        case "rollback":
          if (w.spec.rollout.auto_rollback) {
            const reason = step.reason;
            const done = await this.#rollbackIn(tx, touched, w, reason);
            // An operator's rollback is in the log as their request; this one is the hub's.
            if (done)
              afterCommit(() => {
                this.#record("rollout.rollback", `workloads/${w.name}`, reason, done);
                this.#log.warn("rollout rolled back", { workload: w.name, to: done.to, reason });
              });
          } else {
            await this.#store.setRollout(tx, w.name, {
              state: "failed",
              from: r.from,
              to: r.to,
              message: step.reason,
            });
            const reason = step.reason;
            afterCommit(() =>
              this.#log.warn("rollout failed; auto_rollback is off", { workload: w.name, reason }),
            );
          }
          break;
        default: {
          const never: never = step;
          void never;
        }
      }
    }, true);
  }

  // An operator's rollback, in one transaction under the workload's lock (their request is in the
  // audit log already).
  async #rollback(name: string, reason: string): Promise<void> {
    const done = await this.#change(async (tx, touched) => {
      const w = await this.#store.lock(tx, name);
      if (!w) return new RequestError(`no workload ${name}`, "name");
      return (
        (await this.#rollbackIn(tx, touched, w, reason)) ??
        new RequestError(`workload ${name} has no rollout to roll back`, "rollout")
      );
    });
    this.#log.warn("rollout rolled back", { workload: name, to: done.to, reason });
  }

  // Rolls `w`'s rollout back through `tx` (whose caller holds its row); undefined when it has none.
  async #rollbackIn(
    tx: HubSql,
    touched: Touched,
    w: WorkloadRecord,
    reason: string,
  ): Promise<{ from: number; to: number } | undefined> {
    if (!("to" in w.rollout) || w.rollout.state === "rolled-back" || !w.previous_spec) return undefined;
    const r = w.rollout;
    const previous = w.previous_spec;
    // Everything not at the version rolled back to goes, including copies of an older rollout
    // that this one interrupted; every place the workload had gets a copy of that version.
    const active = await this.#active(tx, w.name);
    const places =
      (previous.nodes ?? []).length > 0 ? [...previous.nodes!] : [...new Set(active.map((a) => a.node))];
    for (const a of active.filter((x) => x.version !== r.from)) {
      await this.#store.setDesired(tx, a.id, "stop");
      touched.add(a.node);
    }
    const keep = new Set(active.filter((x) => x.version === r.from).map((x) => x.node));
    for (const node of places.slice(0, Math.max(previous.replicas, (previous.nodes ?? []).length))) {
      if (keep.has(node)) continue;
      await this.#store.createAlloc(tx, w.name, node, r.from, previous);
      touched.add(node);
    }
    await this.#store.update(tx, w.name, previous, r.from, null, {
      state: "rolled-back",
      from: r.from,
      to: r.to,
      message: reason,
    });
    return { from: r.to, to: r.from };
  }

  async #active(tx: HubSql, name: string): Promise<AllocRecord[]> {
    return (await this.#store.allocsOf(name, tx)).filter((a) => a.desired === "run");
  }
}
