// The agent's workload runner: applies the hub's desired allocs, supervises them, and re-adopts them after a restart.
import type { Database } from "bun:sqlite";
import { type Clock, systemClock, type TimerHandle } from "../../shared/clock.ts";
import type { Logger } from "../../shared/log.ts";
import { MAX_GENERATION } from "../../shared/protocol/index.ts";
import type { AllocSpec } from "../../shared/workload/index.ts";
import { Cgroups } from "./cgroup.ts";
import { ExecTask } from "./exec-driver.ts";
import { JobTask } from "./job-driver.ts";
import { bootId, findLaunched, isSameProcess } from "./proc.ts";
import type { Task } from "./task.ts";
import type { TaskContext } from "./task-context.ts";
import { newRow, type TaskRow, TaskStore } from "./task-store.ts";
import type { TaskEvents, TaskView } from "./types.ts";

export interface TaskManagerOptions {
  /** The agent's bun:sqlite database (WAL, open); the manager creates its own tables. */
  db: Database;
  /** Logs go under dataDir/tasks/<alloc>/. */
  dataDir: string;
  log: Logger;
  events: TaskEvents;
  /** Default: the agent's own cgroup v2 directory (from /proc/self/cgroup and the cgroup2 mount). */
  cgroupRoot?: string;
  /** Time and timers; default the system clock. */
  clock?: Clock;
  /** How often a re-adopted process (not our child) is checked in /proc; default 1000 ms. */
  adoptPollMs?: number;
  /** How often log sizes are checked for rotation; default 1000 ms. */
  logRotateMs?: number;
  /** Size of each of the two log files; default 256 KiB. */
  logMaxBytes?: number;
  /** Where PATH, HOME and LANG for tasks come from; default process.env. */
  env?: Record<string, string | undefined>;
}

const APPLIED = "applied_generation";
const PAUSE_BELOW = "pause_below";
const STOP_BELOW = "stop_below";

/** Runs the allocs the hub assigns to this node (design notes at the top of each file in agent/tasks/). */
export class TaskManager {
  readonly #log: Logger;
  readonly #store: TaskStore;
  readonly #cgroups: Cgroups;
  readonly #ctx: TaskContext;
  readonly #abort = new AbortController();
  readonly #tasks = new Map<string, Task>();
  readonly #rotateMs: number;
  readonly #clock: Clock;
  #rotateTimer: TimerHandle | undefined;
  #loaded = false;
  #started = false;

  constructor(opts: TaskManagerOptions) {
    this.#log = opts.log;
    this.#store = new TaskStore(opts.db);
    this.#cgroups = new Cgroups({ ...(opts.cgroupRoot ? { root: opts.cgroupRoot } : {}), log: opts.log });
    this.#rotateMs = opts.logRotateMs ?? 1000;
    this.#clock = opts.clock ?? systemClock;
    const store = this.#store;
    this.#ctx = {
      log: opts.log,
      store,
      cgroups: this.#cgroups,
      events: opts.events,
      dataDir: opts.dataDir,
      bootId: bootId(),
      adoptPollMs: opts.adoptPollMs ?? 1000,
      logMaxBytes: opts.logMaxBytes ?? 256 * 1024,
      agentEnv: opts.env ?? process.env,
      signal: this.#abort.signal,
      clock: this.#clock,
      pauseThreshold: () => store.getNumber(PAUSE_BELOW, 0),
      forget: (task) => {
        if (this.#tasks.get(task.alloc) === task) this.#tasks.delete(task.alloc);
      },
    };
  }

  /**
   * Starts from the stored state, with or without a hub: re-adopts each process that still runs
   * (same pid, same start time, same boot; or, for a start the last agent stopped within, the
   * process carrying its intent id), restarts per policy what should run but does not, and finishes
   * stopping what was being removed. Jobs: see job-driver.ts.
   */
  async start(): Promise<void> {
    if (this.#started || this.#abort.signal.aborted) return;
    this.#started = true;
    this.#cgroups.probe();
    this.#load();
    const boot = this.#ctx.bootId;
    for (const task of this.#tasks.values()) {
      const { pid, pidStart, bootId: rowBoot, launchId } = task.state;
      // A start the last agent stopped within: its process, if any, carries the intent's id.
      if (pid === null && launchId !== null)
        task.recoverLaunch(rowBoot === boot ? findLaunched(launchId) : undefined);
      else
        task.recover(pid !== null && pidStart !== null && rowBoot === boot && isSameProcess(pid, pidStart));
    }
    this.#rotateTimer = this.#clock.setInterval(() => this.#rotateLogs(), this.#rotateMs);
  }

  /**
   * Applies the hub's whole desired set. A generation at or below the last applied one is ignored.
   * The set is saved in one transaction before anything is started or stopped, so a crash mid-way
   * resumes on the next start.
   */
  reconcile(generation: number, allocs: AllocSpec[]): void {
    if (this.#abort.signal.aborted) return;
    this.#load();
    const applied = this.#applied(Number.NEGATIVE_INFINITY);
    if (generation <= applied) {
      this.#log.debug("desired set ignored: generation already applied", { generation, applied });
      return;
    }
    const wanted = new Map(allocs.map((a) => [a.id, a]));
    const stopBelow = this.#store.getNumber(STOP_BELOW, 0);
    const fresh: Task[] = [];
    this.#store.transaction(() => {
      this.#store.setNumber(APPLIED, generation);
      for (const spec of wanted.values()) {
        const task = this.#tasks.get(spec.id);
        if (task && task.state.spec.spec.driver !== spec.spec.driver) {
          // An alloc is one driver for life; the hub makes a new alloc for a new driver.
          this.#log.warn("alloc changed driver; keeping the old one", {
            alloc: spec.id,
            driver: spec.spec.driver,
          });
          task.assign({ ...spec, spec: task.state.spec.spec, version: task.state.spec.version }, generation);
          continue;
        }
        if (task) {
          task.assign(spec, generation);
          continue;
        }
        const row = newRow(spec, generation);
        if (spec.spec.priority < stopBelow)
          Object.assign(row, { held: true, message: "held by a local rule" });
        this.#store.save(row);
        fresh.push(this.#create(row));
      }
      for (const task of this.#tasks.values()) if (!wanted.has(task.alloc)) task.unassign(generation);
    });
    this.#log.info("desired set applied", { generation, allocs: wanted.size });
    if (!this.#started) return;
    for (const task of fresh) task.announce();
    for (const task of this.#tasks.values()) task.kick();
  }

  /** Generation of the desired set last applied (0 before any). */
  appliedGeneration(): number {
    return Math.max(0, this.#applied(0));
  }

  // A stored generation past any a hub hands out can only be a forgery that older builds took from an
  // open broker (it would lock the node out of workload control): it is set aside, not obeyed.
  #applied(none: number): number {
    const applied = this.#store.getNumber(APPLIED, none);
    if (applied <= MAX_GENERATION) return applied;
    this.#log.warn("stored desired-set generation is beyond any a hub issues; ignoring it", {
      generation: applied,
    });
    return none;
  }

  /** Every task this node has (including ones being stopped), by alloc. */
  list(): TaskView[] {
    return [...this.#tasks.values()].map((t) => t.view()).sort((a, b) => a.alloc.localeCompare(b.alloc));
  }

  /** Tasks in all, running (not paused), and paused: one pass, no views (the rules read it every tick). */
  counts(): { total: number; running: number; paused: number } {
    let running = 0;
    let paused = 0;
    for (const { state } of this.#tasks.values()) {
      if (state.paused) paused += 1;
      else if (state.status === "running") running += 1;
    }
    return { total: this.#tasks.size, running, paused };
  }

  /** The last `lines` lines of the alloc's combined stdout and stderr; undefined for an unknown alloc. */
  logs(alloc: string, lines = 100): string | undefined {
    return this.#tasks.get(alloc)?.ring.tail(lines);
  }

  /** Whether cgroup v2 limits are applied to tasks (known after start()). */
  limitsEnforced(): boolean {
    return this.#cgroups.enforced;
  }

  /** Why limits are or are not enforced, for the agent's status. */
  limitsReason(): string {
    return this.#cgroups.reason;
  }

  /** SIGSTOP the tasks with priority below `priority` (and tasks started while the rule holds); returns their allocs. */
  pauseBelow(priority: number): string[] {
    this.#store.setNumber(PAUSE_BELOW, priority);
    return this.#each((t) => t.priority < priority && t.pause());
  }

  /** SIGCONT every paused task and start every held one; clears the rules' thresholds. */
  resumeAll(): string[] {
    this.#store.setNumber(PAUSE_BELOW, 0);
    this.#store.setNumber(STOP_BELOW, 0);
    return this.#each((t) => {
      const resumed = t.resume();
      return t.release() || resumed;
    });
  }

  /** Stops the tasks with priority below `priority` until resumeAll(); returns their allocs. */
  stopBelow(priority: number): string[] {
    this.#store.setNumber(STOP_BELOW, priority);
    return this.#each((t) => t.priority < priority && t.hold());
  }

  /** Agent shutdown: timers and health checks stop; processes (exec and jobs) keep running for the next start. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#clock.clearInterval(this.#rotateTimer);
    for (const task of this.#tasks.values()) task.detach();
  }

  // ---- edge-side fencing (fencing.ts) ----

  /** Allocs assigned to this node, with their specs. */
  assigned(): AllocSpec[] {
    return [...this.#tasks.values()].filter((t) => t.state.desired).map((t) => t.state.spec);
  }

  /** Stops an alloc as if the hub had taken it away (fencing keeps it out of later desired sets). */
  fence(alloc: string): boolean {
    const task = this.#tasks.get(alloc);
    if (!task?.state.desired) return false;
    this.#store.transaction(() => task.unassign(task.state.generation));
    task.kick();
    return true;
  }

  #each(fn: (t: Task) => boolean): string[] {
    const out: string[] = [];
    for (const t of this.#tasks.values()) if (fn(t)) out.push(t.alloc);
    return out.sort();
  }

  #load(): void {
    if (this.#loaded) return;
    this.#loaded = true;
    for (const row of this.#store.all()) this.#create(row);
  }

  #create(row: TaskRow): Task {
    const task = row.spec.spec.driver === "job" ? new JobTask(this.#ctx, row) : new ExecTask(this.#ctx, row);
    this.#tasks.set(row.alloc, task);
    return task;
  }

  #rotateLogs(): void {
    for (const task of this.#tasks.values()) {
      if (task.running) task.ring.rotateQuietly(this.#log);
    }
  }
}
