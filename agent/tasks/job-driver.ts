// The `job` driver: a one-shot command whose exit code, duration and output tail are reported once, never re-run.
//
// Across agent restarts: a job whose process still runs is re-adopted; when it ends, its exit status
// is unknown (it is not our child), so the result has exit_code null and the status is `failed` with
// "exited while adopted; exit status unknown". A job whose process is gone when the agent starts is
// reported `failed`, "agent restarted while the job ran; exit status unknown". A job the agent stopped
// while starting, with no process of that start alive, is `failed` too and never started again: it
// may have run. The result is saved and handed to onResult in one SQLite transaction (onResult
// appends the task_result to the outbox in the same database), so a crash leaves either both or
// neither, and the result is never sent twice.
import type { ExitInfo, StartError } from "./proc.ts";
import { Task } from "./task.ts";
import type { TaskRow } from "./task-store.ts";
import type { TaskResultEvent } from "./types.ts";

/** How much of the combined output a result carries. */
export const OUTPUT_TAIL_BYTES = 4096;

export class JobTask extends Task {
  protected override beforeLaunch(): void {
    this.ring.reset();
  }

  protected override onExit(exit: ExitInfo, what: string): void {
    this.#finish(exit, what);
  }

  protected override onStartError(err: StartError): void {
    this.#finish({ code: null, signal: null, known: false }, err.message, err.message);
  }

  protected override retryDelay(): number {
    return 0; // jobs are never restarted
  }

  protected override removedStatus(): Partial<TaskRow> | undefined {
    return this.row.finished
      ? undefined
      : { status: "failed", message: "stopped before it finished: no longer assigned" };
  }

  protected override onRuleStop(exit: ExitInfo | undefined): void {
    // A running job stopped by a rule has run (partly): it ends, and the hub decides about a new one.
    this.#finish(exit ?? { code: null, signal: null, known: false }, "stopped by a local rule");
  }

  protected override onLostAtLaunch(): void {
    this.#finish(
      { code: null, signal: null, known: false },
      "the agent stopped while starting the job and no process of it runs: it may have run; exit status unknown",
    );
  }

  protected override onLostWhileDown(): void {
    // duration_ms is then an upper bound: the job ended at some moment while the agent was away.
    this.#finish(
      { code: null, signal: null, known: false },
      "agent restarted while the job ran; exit status unknown",
    );
  }

  override recover(alive: boolean): void {
    if (this.row.finished && !this.row.reported) this.#deliver();
    super.recover(alive);
  }

  /** Records the result and hands it over in one transaction; never re-runs the job. */
  #finish(exit: ExitInfo, message: string, tail?: string): void {
    const now = this.ctx.clock.now();
    const started = this.row.startedMs ?? now;
    const result: TaskResultEvent = {
      alloc: this.alloc,
      workload: this.row.spec.workload,
      exit_code: exit.code,
      ...(exit.signal ? { signal: exit.signal } : {}),
      duration_ms: Math.max(0, now - started),
      output_tail: tail ?? this.ring.tailBytes(OUTPUT_TAIL_BYTES),
      started_ms: started,
    };
    const ok = exit.known && exit.signal === null && exit.code === 0;
    this.#deliver({
      status: ok ? "complete" : "failed",
      message,
      pid: null,
      launchId: null,
      wantRun: false,
      finished: true,
      result,
      held: false,
    });
  }

  // Saves `patch` (which holds the result, or the row already does) marked reported, and hands the
  // result to onResult, in one transaction. If that fails, the result is saved unreported: the next
  // start hands it over again.
  #deliver(patch: Partial<TaskRow> = {}): void {
    const result = patch.result ?? this.row.result;
    if (!result || this.stopped) return;
    try {
      this.ctx.store.transaction(() => {
        this.save({ ...patch, reported: true });
        this.ctx.events.onResult(result);
      });
    } catch (err) {
      this.ctx.log.error("task result report failed", { alloc: this.alloc, error: err as Error });
      this.save({ ...patch, reported: false });
    }
    this.update({});
  }
}
