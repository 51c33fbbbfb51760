// The `exec` driver: a supervised long-running process, restarted per policy with exponential back-off and health checks.
import type { ExitInfo, StartError } from "./proc.ts";
import { HealthMonitor } from "./health.ts";
import { Task } from "./task.ts";
import type { TaskRow } from "./task-store.ts";

/** Back-off delay before restart number `attempt` (0-based): initial · 2^attempt, capped at max. */
export function backoffDelay(backoff: { initial_ms: number; max_ms: number }, attempt: number): number {
  return Math.min(backoff.max_ms, backoff.initial_ms * 2 ** Math.min(attempt, 40));
}

/** Whether the restart policy restarts a process that ended this way (unknown counts as a failure). */
export function shouldRestart(policy: "always" | "on-failure" | "never", exit: ExitInfo): boolean {
  return policy === "always" || (policy === "on-failure" && isFailure(exit));
}

function isFailure(exit: ExitInfo): boolean {
  return !exit.known || exit.signal !== null || exit.code !== 0;
}

export class ExecTask extends Task {
  /** Consecutive restarts without a long enough run in between: the back-off exponent. */
  #attempt = 0;
  #health: HealthMonitor | undefined;

  protected override retryDelay(): number {
    const { backoff } = this.row.spec.spec;
    // A run of 10× the initial delay counts as a success: the back-off starts over.
    if (this.row.startedMs !== null && this.ctx.clock.now() - this.row.startedMs >= 10 * backoff.initial_ms)
      this.#attempt = 0;
    return backoffDelay(backoff, this.#attempt++);
  }

  protected override onExit(exit: ExitInfo, what: string): void {
    const { restart } = this.row.spec.spec;
    if (shouldRestart(restart, exit)) {
      const delay = this.retryDelay();
      this.scheduleRetry(delay);
      this.update({ status: "failed", message: `${what}; restarting in ${delay} ms`, pid: null });
      return;
    }
    this.update({
      status: isFailure(exit) ? "failed" : "complete",
      message: what,
      pid: null,
      wantRun: false,
    });
  }

  protected override onStartError(err: StartError): void {
    if (this.row.spec.spec.restart === "never") {
      this.update({ status: "failed", message: err.message, pid: null, wantRun: false });
      return;
    }
    // A command that may appear later (a package still installing) is retried, never in a tight loop.
    const delay = this.retryDelay();
    this.scheduleRetry(delay);
    this.update({ status: "failed", message: `${err.message}; retrying in ${delay} ms`, pid: null });
  }

  protected override removedStatus(): Partial<TaskRow> {
    return { status: "complete", message: "stopped: no longer assigned" };
  }

  protected override onRuleStop(): void {
    this.update({ status: "pending", message: "stopped by a local rule" });
  }

  protected override onNewVersion(): void {
    this.#attempt = 0;
  }

  protected override onRunning(): void {
    const check = this.row.spec.spec.health;
    if (!check || this.#health) return;
    this.#health = new HealthMonitor(
      check,
      { env: this.taskEnv(), cwd: this.taskCwd() },
      (ok, detail) => this.#onHealth(ok, detail),
      this.ctx.clock,
    );
    this.#health.start();
  }

  protected override onStopped(): void {
    this.#health?.stop();
    this.#health = undefined;
  }

  #onHealth(ok: boolean, detail: string): void {
    if (!this.proc) return;
    this.healthy = ok;
    if (ok) {
      this.update({ message: null });
      return;
    }
    this.ctx.log.warn("task unhealthy", { alloc: this.alloc, detail });
    if (this.row.spec.spec.restart === "never") {
      this.update({ message: `unhealthy: ${detail}` });
      return;
    }
    this.update({ message: `unhealthy: ${detail}; restarting` });
    this.restartRequested = true;
    this.kick();
  }
}
