// The `job` driver: a one-shot command whose exit code, duration and output tail are reported once, never re-run.
//
// Across agent restarts: a job whose process still runs is re-adopted; when it ends, its exit status
// is unknown (it is not our child), so the result has exit_code null and the status is `failed` with
// "exited while adopted; exit status unknown". A job whose process is gone when the agent starts is
// reported `failed`, "agent restarted while the job ran; exit status unknown". A job whose result was
// saved but not yet handed to onResult (a crash in between) has it handed over again on start.
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

  /** Saves the result first, then reports it: a crash in between re-delivers it and never re-runs the job. */
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
    this.save({
      status: ok ? "complete" : "failed",
      message,
      pid: null,
      wantRun: false,
      finished: true,
      result,
      reported: false,
      held: false,
    });
    this.#deliver();
  }

  #deliver(): void {
    const result = this.row.result;
    if (!result) return;
    try {
      this.ctx.events.onResult(result);
    } catch (err) {
      // Not marked reported: the next start hands it over again.
      this.ctx.log.error("task result report failed", { alloc: this.alloc, error: err as Error });
      this.update({});
      return;
    }
    this.update({ reported: true });
  }
}
