// One alloc's lifecycle, common to both drivers: converge what runs onto what is desired, and report every change.
//
// Every change of the desired state (reconcile, a rule, an exit, a back-off timer) calls kick(), which
// queues one converge() on this task's own chain: operations on one alloc never interleave, and a
// burst of kicks collapses into one pass. State is saved to SQLite before it is reported.
import { closeSync } from "node:fs";
import { join, resolve } from "node:path";
import type { TimerHandle } from "../../shared/clock.ts";
import type { AllocSpec } from "../../shared/workload/index.ts";
import { LogRing } from "./log-ring.ts";
import {
  adoptProcess,
  allocDirName,
  describeExit,
  type ExitInfo,
  errnoText,
  killGroupRemains,
  LAUNCH_ENV,
  type ProcessHandle,
  resolveCommand,
  StartError,
  signalGroup,
  taskEnv,
} from "./proc.ts";
import { spawnLimited, stopGroup } from "./process-control.ts";
import type { TaskContext } from "./task-context.ts";
import type { TaskRow } from "./task-store.ts";
import { statusEvent, taskView } from "./task-view.ts";
import type { TaskView } from "./types.ts";

const UNKNOWN_EXIT: ExitInfo = { code: null, signal: null, known: false };
/** After SIGKILL, how long to wait for the exit before treating the process as gone anyway. */
const KILL_WAIT_MS = 5000;

export abstract class Task {
  protected readonly ctx: TaskContext;
  protected row: TaskRow;
  readonly ring: LogRing;
  /** The alloc's directory and cgroup name. */
  readonly dirName: string;
  protected proc: ProcessHandle | undefined;
  protected healthy: boolean | null = null;
  /** Set by a failing health check: converge() restarts the process with back-off. */
  protected restartRequested = false;
  /** Message for the next launch's status (why it runs again). */
  protected launchNote: string | null = null;
  #stopping: ProcessHandle | undefined;
  #retryTimer: TimerHandle | undefined;
  #chain: Promise<void> = Promise.resolve();
  #queued = false;
  #detached = false;
  #lastReported = "";

  constructor(ctx: TaskContext, row: TaskRow) {
    this.ctx = ctx;
    this.row = row;
    this.dirName = allocDirName(row.alloc);
    // Rotation holds the running group still (never one the agent paused: it must stay stopped).
    this.ring = new LogRing(join(ctx.dataDir, "tasks", this.dirName), ctx.logMaxBytes, () =>
      this.proc && !this.row.paused ? this.proc.pid : undefined,
    );
  }

  /** The stored state (read-only for the manager). */
  get state(): Readonly<TaskRow> {
    return this.row;
  }

  get alloc(): string {
    return this.row.alloc;
  }

  get priority(): number {
    return this.row.spec.spec.priority;
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  view(): TaskView {
    return taskView(this.row, this.proc?.pid ?? null, this.healthy);
  }

  // ---- driver hooks -------------------------------------------------------------------------

  /** The process ended on its own (`what` says how, for the status message). */
  protected abstract onExit(exit: ExitInfo, what: string): void;
  /** The process could not be started. */
  protected abstract onStartError(err: StartError): void;
  /** Delay before the next start, advancing the back-off. */
  protected abstract retryDelay(): number;
  /** The final status when the alloc leaves the desired set, or undefined for none. */
  protected abstract removedStatus(): Partial<TaskRow> | undefined;
  /** A local rule stopped the process (exit undefined if it was not running). */
  protected abstract onRuleStop(exit: ExitInfo | undefined): void;
  /** A process runs (launched, adopted or resumed): start health checks. */
  protected onRunning(): void {}
  /** The process is gone or paused: stop health checks. */
  protected onStopped(): void {}
  protected beforeLaunch(): void {}
  /** The recorded process is gone after an agent restart (or was never ours: a recycled pid). */
  protected onLostWhileDown(): void {
    this.onExit(UNKNOWN_EXIT, "not running after the agent restarted; exit status unknown");
  }
  /** A new version was assigned. */
  protected onNewVersion(): void {}

  // ---- desired state (called by the manager) ------------------------------------------------

  /** Puts this alloc in the desired set (inside the manager's transaction: saves, does not act). */
  assign(spec: AllocSpec, generation: number): void {
    this.row.generation = generation;
    if (spec.version !== this.row.spec.version) {
      Object.assign(this.row, {
        spec,
        restarts: 0,
        startedMs: null,
        wantRun: true,
        finished: false,
        result: null,
        reported: false,
      });
      this.#cancelRetry();
      this.onNewVersion();
    } else if (!this.row.desired) {
      this.row.wantRun = !this.row.finished;
    }
    this.row.desired = true;
    this.ctx.store.save(this.row);
  }

  /** Takes this alloc out of the desired set (inside the manager's transaction). */
  unassign(generation: number): void {
    if (!this.row.desired) return;
    this.row.desired = false;
    this.row.generation = generation;
    this.ctx.store.save(this.row);
  }

  /** Reports the current state (a newly assigned alloc: pending). */
  announce(): void {
    this.#report();
  }

  /** After an agent restart: adopts the recorded process if `alive`, else handles its loss. */
  recover(alive: boolean): void {
    const { pid, pidStart } = this.row;
    if (pid !== null && pidStart !== null && alive) {
      this.#watch(adoptProcess(pid, pidStart, this.ctx.adoptPollMs, this.ctx.clock));
      this.update({ status: "running", message: `re-adopted after an agent restart (pid ${pid})` });
      if (!this.row.paused) this.onRunning();
    } else if (pid !== null) {
      if (this.row.bootId === this.ctx.bootId) killGroupRemains(pid);
      this.row.pid = null;
      this.row.paused = false;
      this.onLostWhileDown();
    }
    this.kick();
  }

  /**
   * After an agent restart, for a start whose intent was saved but whose pid was not (a crash within
   * the start): `found` is the process that start created (findLaunched), which is adopted; without
   * one, the start is treated as lost, and what follows is the driver's (exec: restart per policy;
   * job: failed, never run again).
   */
  recoverLaunch(found: { pid: number; startTime: number } | undefined): void {
    if (found) {
      Object.assign(this.row, { pid: found.pid, pidStart: found.startTime, launchId: null });
      this.ctx.store.save(this.row);
      this.ctx.log.info("found the process of a start the agent stopped within; adopting it", {
        alloc: this.alloc,
        pid: found.pid,
      });
      this.recover(true);
      return;
    }
    this.ctx.log.info("a start the agent stopped within left no running process", { alloc: this.alloc });
    this.row.launchId = null;
    this.onLostAtLaunch();
    this.kick();
  }

  /** A start was under way when the agent stopped, and no process of it runs. */
  protected onLostAtLaunch(): void {
    this.onLostWhileDown();
  }

  /** SIGSTOP to the group; false if not running or already paused. */
  pause(): boolean {
    if (!this.proc || this.row.paused) return false;
    signalGroup(this.proc.pid, "SIGSTOP");
    this.onStopped();
    this.update({ paused: true, message: "paused by a local rule" });
    return true;
  }

  /** SIGCONT to the group; false if not paused. */
  resume(): boolean {
    if (!this.row.paused) return false;
    if (this.proc) signalGroup(this.proc.pid, "SIGCONT");
    this.update({ paused: false, message: null });
    if (this.proc) this.onRunning();
    return true;
  }

  /** Stops the task until release() (a local rule); false if there is nothing to stop. */
  hold(): boolean {
    if (this.row.held || !this.row.desired || (!this.proc && !this.row.wantRun)) return false;
    this.row.held = true;
    if (this.proc) this.ctx.store.save(this.row);
    else this.update({ status: "pending", message: "held by a local rule" });
    this.#cancelRetry();
    this.kick();
    return true;
  }

  release(): boolean {
    if (!this.row.held) return false;
    this.row.held = false;
    this.ctx.store.save(this.row);
    this.kick();
    return true;
  }

  /** Agent shutdown: stops timers and watching; the process keeps running. */
  detach(): void {
    this.#detached = true;
    this.#cancelRetry();
    this.onStopped();
    this.proc?.detach();
    this.#stopping?.detach();
  }

  // ---- converging ---------------------------------------------------------------------------

  /** Queues one converge() pass (collapsing with one already queued). */
  kick(): void {
    if (this.#queued || this.#detached) return;
    this.#queued = true;
    this.#chain = this.#chain.then(async () => {
      this.#queued = false;
      if (this.#gone) return;
      try {
        await this.#converge();
      } catch (err) {
        this.ctx.log.error("task operation failed", { alloc: this.alloc, error: err as Error });
      }
    });
  }

  get #gone(): boolean {
    return this.ctx.signal.aborted || this.#detached;
  }

  /** The manager stopped or this task was detached: it neither acts nor writes any more. */
  protected get stopped(): boolean {
    return this.#gone;
  }

  async #converge(): Promise<void> {
    if (!this.row.desired) {
      this.#cancelRetry();
      if (this.proc) await this.terminate();
      if (this.#gone) return;
      if (this.row.desired) return this.kick(); // assigned again while it stopped
      const final = this.removedStatus();
      if (final) this.update({ ...final, pid: null });
      this.ctx.store.delete(this.alloc);
      this.ring.remove();
      this.ctx.cgroups.remove(this.dirName);
      this.ctx.forget(this);
      this.#detached = true;
      return;
    }
    if (this.row.held) {
      if (this.proc) {
        const exit = await this.terminate();
        if (!this.#gone) this.onRuleStop(exit);
      }
      return;
    }
    if (this.proc && this.row.runVersion !== this.row.spec.version) {
      await this.terminate();
      if (this.#gone) return;
      this.launchNote = `replaced by version ${this.row.spec.version}`;
    } else if (this.proc && this.restartRequested) {
      this.restartRequested = false;
      await this.terminate();
      if (this.#gone) return;
      const delay = this.retryDelay();
      this.#scheduleRetry(delay);
      this.update({ status: "failed", message: `stopped: unhealthy; restarting in ${delay} ms` });
      return;
    }
    if (!this.proc && this.row.wantRun && !this.#retryTimer) this.#launch();
  }

  #launch(): void {
    const spec = this.row.spec.spec;
    if (this.row.startedMs !== null) this.row.restarts++;
    this.row.startedMs = this.ctx.clock.now();
    this.restartRequested = false;
    // The intent, durable before the process exists: a crash between the spawn and the save of its pid
    // leaves it behind, and the next start finds the process by it instead of starting a second copy.
    const launchId = crypto.randomUUID();
    this.save({
      launchId,
      pid: null,
      pidStart: null,
      bootId: this.ctx.bootId,
      runVersion: this.row.spec.version,
    });
    if (this.#gone) return;
    let handle: ProcessHandle;
    try {
      this.beforeLaunch();
      const env = { ...this.taskEnv(), [LAUNCH_ENV]: launchId };
      const cwd = this.taskCwd();
      const fd = this.ring.openForWriter();
      try {
        const argv = [resolveCommand(spec.command, env, cwd), ...spec.args];
        handle = spawnLimited(this.ctx.cgroups, this.dirName, spec.resources, {
          argv,
          env,
          cwd,
          outputFd: fd,
        });
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      this.row.launchId = null;
      this.ctx.store.save(this.row);
      this.ctx.log.warn("task cannot start", { alloc: this.alloc, error: err as Error });
      this.onStartError(err instanceof StartError ? err : new StartError(spec.command, errnoText(err)));
      return;
    }
    this.healthy = null;
    this.#watch(handle);
    this.update({
      status: "running",
      message: this.launchNote,
      pid: handle.pid,
      pidStart: handle.startTime,
      bootId: this.ctx.bootId,
      runVersion: this.row.spec.version,
      launchId: null,
      paused: false,
    });
    this.launchNote = null;
    this.ctx.log.info("task started", { alloc: this.alloc, pid: handle.pid, restarts: this.row.restarts });
    if (this.priority < this.ctx.pauseThreshold()) this.pause();
    else this.onRunning();
  }

  #watch(handle: ProcessHandle): void {
    this.proc = handle;
    handle.exited.then(
      (exit) => {
        if (this.#gone || handle === this.#stopping || handle !== this.proc) return;
        this.proc = undefined;
        this.healthy = null;
        this.onStopped();
        killGroupRemains(handle.pid); // what the leader left behind in its group
        this.ring.rotateQuietly(this.ctx.log);
        this.row.paused = false;
        this.row.pid = null;
        this.ctx.log.info("task exited", { alloc: this.alloc, how: describeExit(exit) });
        this.onExit(exit, describeExit(exit));
      },
      (err) => this.ctx.log.error("task exit watch failed", { alloc: this.alloc, error: err as Error }),
    );
  }

  /** SIGTERM to the group, SIGKILL after stop_timeout_ms; resolves with the exit (unknown if adopted). */
  protected async terminate(): Promise<ExitInfo | undefined> {
    this.#cancelRetry();
    this.onStopped();
    const handle = this.proc;
    if (!handle) return undefined;
    this.#stopping = handle;
    const exit = await stopGroup(handle, {
      graceMs: this.row.spec.spec.stop_timeout_ms,
      killWaitMs: KILL_WAIT_MS + 2 * this.ctx.adoptPollMs,
      paused: this.row.paused,
      clock: this.ctx.clock,
      signal: this.ctx.signal,
      onKill: () =>
        this.ctx.log.info("task ignored SIGTERM; sending SIGKILL", { alloc: this.alloc, pid: handle.pid }),
    });
    if (this.#gone) return exit;
    // The leader is the task: once it has exited, what it left in its group goes with it.
    killGroupRemains(handle.pid);
    this.ring.rotateQuietly(this.ctx.log);
    this.#stopping = undefined;
    if (this.proc === handle) this.proc = undefined;
    this.healthy = null;
    Object.assign(this.row, { pid: null, pidStart: null, paused: false });
    this.ctx.store.save(this.row);
    return exit ?? UNKNOWN_EXIT;
  }

  protected scheduleRetry(ms: number): void {
    this.#scheduleRetry(ms);
  }

  #scheduleRetry(ms: number): void {
    this.#cancelRetry();
    this.#retryTimer = this.ctx.clock.setTimeout(() => {
      this.#retryTimer = undefined;
      this.kick();
    }, ms);
  }

  #cancelRetry(): void {
    this.ctx.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  // ---- state and reports --------------------------------------------------------------------

  protected taskEnv(): Record<string, string> {
    return taskEnv(this.ctx.agentEnv, this.row.spec, this.ring.dir);
  }

  /** The spec's cwd (a relative one from the alloc's directory), else the alloc's own directory. */
  protected taskCwd(): string {
    return resolve(this.ring.dir, this.row.spec.spec.cwd ?? ".");
  }

  /** Saves the row without reporting. */
  protected save(patch: Partial<TaskRow> = {}): void {
    if (this.#gone) return;
    Object.assign(this.row, patch);
    this.ctx.store.save(this.row);
  }

  /** Saves, then reports the change if the hub would see one (not one report per probe). */
  protected update(patch: Partial<TaskRow>): void {
    if (this.#gone) return;
    this.save(patch);
    this.#report();
  }

  #report(): void {
    const e = statusEvent(this.row, this.proc?.pid ?? null, this.healthy);
    // Generation alone is no news: every desired set carries one.
    const key = JSON.stringify({ ...e, generation: 0 });
    if (key === this.#lastReported) return;
    this.#lastReported = key;
    try {
      this.ctx.events.onStatus(e);
    } catch (err) {
      this.ctx.log.error("task status report failed", { alloc: this.row.alloc, error: err as Error });
    }
  }
}
