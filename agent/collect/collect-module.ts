// The collect module: the per-second sampling loop, wired to the stream, the buffer, the rules and the link.
import type { AgentConfig } from "../config/index.ts";
import type { Module, ModuleContext } from "../module.ts";
import { type Sampling, startSampling } from "./sampling-loop.ts";

export interface CollectModuleDeps {
  /** One tick's values through the stream pipelines; returns extra series to store with it. */
  stream: (values: Record<string, number>, now: number) => Record<string, number>;
  /** Stages one tick in the buffer. */
  stage: (ts: number, values: Record<string, number>) => void;
  /** Packs staged ticks into the outbox; returns the batches written. */
  flush: (now: number) => number;
  /** The sampling interval changed: the buffer packs what it staged at the old one. */
  intervalChanged: (ms: number, now: number) => void;
  /** The newest pushed value of each series since the last tick (the rules see them with this one). */
  takePushed: () => Record<string, number> | undefined;
  /** Evaluates the offline rules against one tick. */
  evaluate: (values: Record<string, number>, now: number) => void;
  /** The outbox has something new for the link. */
  notify: () => void;
}

/** Host sampling on an aligned grid; a rule may ask for another interval for as long as it fires. */
export class CollectModule implements Module {
  readonly name = "collect";
  readonly #ctx: ModuleContext;
  readonly #d: CollectModuleDeps;
  #sampling: Sampling | undefined;
  /** Sampling interval a rule asked for, over the configured one. */
  #ruleInterval: number | undefined;
  #firstSampleAt: number | undefined;

  constructor(ctx: ModuleContext, deps: CollectModuleDeps) {
    this.#ctx = ctx;
    this.#d = deps;
  }

  /** When the first tick was taken (clock ms), for start-up timing in /v1/status. */
  get firstSampleAt(): number | undefined {
    return this.#firstSampleAt;
  }

  /** The interval in force: the one a rule asked for, or the configured one. */
  interval(): number {
    return this.#ruleInterval ?? this.#ctx.config().sample_interval;
  }

  /** A rule asks for another interval (undefined: back to the configured one). */
  setRuleInterval(ms: number | undefined): void {
    this.#ruleInterval = ms;
    this.#d.intervalChanged(this.interval(), this.#ctx.clock.now());
  }

  async start(): Promise<void> {
    const ctx = this.#ctx;
    const cfg = () => ctx.config();
    const host = cfg();
    this.#sampling = startSampling({
      log: ctx.log,
      clock: ctx.clock,
      host: { proc: host.host_proc, sys: host.host_sys, root: host.host_root },
      interval: () => this.interval(),
      diskInterval: () => cfg().disk_interval,
      batchInterval: () => cfg().batch_interval,
      probes: () => cfg().probes,
      probeInterval: () => cfg().probe_interval,
      onTick: (ts, values, now) => {
        Object.assign(values, this.#d.stream(values, now));
        this.#d.stage(ts, values);
        this.#firstSampleAt ??= now;
        const pushed = this.#d.takePushed();
        this.#d.evaluate(pushed ? { ...values, ...pushed } : values, now);
      },
      flush: this.#d.flush,
      notify: this.#d.notify,
    });
  }

  async stop(): Promise<void> {
    this.#sampling?.stop();
  }

  configChanged(_next: AgentConfig, changed: readonly string[]): void {
    if (changed.includes("sample_interval")) this.#d.intervalChanged(this.interval(), this.#ctx.clock.now());
    if (changed.includes("batch_interval")) this.#sampling?.batchIntervalChanged();
  }
}
