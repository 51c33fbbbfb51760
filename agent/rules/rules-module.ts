// The rules module: the offline rules on every tick, with what their conditions read (link, buffer, tasks).
import type { AgentConfig } from "../config/index.ts";
import type { LocalCache } from "../cache/index.ts";
import type { Module, ModuleContext } from "../module.ts";
import type { AgentStore } from "../store/index.ts";
import type { TaskManager } from "../tasks/index.ts";
import { RulesRunner } from "./rules-runner.ts";

export interface RulesModuleDeps {
  store: () => AgentStore | undefined;
  tasks: () => TaskManager | undefined;
  cache: () => LocalCache | undefined;
  /** Whether a hub session is up. */
  connected: () => boolean;
  /** A rule asked for another sampling interval (undefined: back to the configured one). */
  setSampleInterval: (ms: number | undefined) => void;
}

/** Offline rules: evaluated on every tick, their decisions applied and logged. */
export class RulesModule implements Module {
  readonly name = "rules";
  readonly #ctx: ModuleContext;
  readonly #d: RulesModuleDeps;
  #runner: RulesRunner | undefined;
  #offlineSince: number | undefined;

  constructor(ctx: ModuleContext, deps: RulesModuleDeps) {
    this.#ctx = ctx;
    this.#d = deps;
  }

  async start(): Promise<void> {
    const store = this.#d.store();
    if (!store) throw new Error("the store is not open");
    const since = Number(store.getState("offline_since"));
    if (since > 0) this.#offlineSince = since;
    this.#runner = new RulesRunner(this.#ctx.config().rules, {
      db: store.db,
      log: this.#ctx.log.child("rules"),
      clock: this.#ctx.clock,
      tasks: this.#d.tasks,
      cache: this.#d.cache,
      buffer: {
        downsample: () => store.guard(() => store.downsampler.run(store.outbox, 0), 0),
        prune: (before) => store.guard(() => store.outbox.dropBulkBefore(before), 0),
      },
      report: (type, body) => this.#ctx.report(type, body),
      setSampleInterval: this.#d.setSampleInterval,
      source: this.#ctx.config().config,
    });
  }

  async stop(): Promise<void> {
    this.#runner = undefined;
  }

  /** The running rule runner (after start): hub rule sets and verdicts go to it. */
  get runner(): RulesRunner | undefined {
    return this.#runner;
  }

  /** What /v1/status shows about the rules (null before start). */
  status(): ReturnType<RulesRunner["status"]> | null {
    return this.#runner?.status() ?? null;
  }

  /** Evaluates every rule against one tick. */
  evaluate(values: Record<string, number>, now: number): void {
    this.#runner?.evaluate(values, this.#state(now), now);
  }

  /** The decision log, newest first. */
  decisions(limit: number): ReturnType<RulesRunner["list"]> {
    return this.#runner?.list(limit) ?? [];
  }

  configChanged(next: AgentConfig, changed: readonly string[]): void {
    if (!changed.includes("rules")) return;
    try {
      this.#runner?.replace(next.rules);
    } catch (err) {
      this.#ctx.log.error("rules refused; keeping the running ones", { error: (err as Error).message });
    }
  }

  // What rule conditions may read besides series: the link, the buffer, the tasks.
  #state(now: number) {
    const store = this.#d.store();
    const connected = this.#d.connected();
    // Kept in the store, so that a restart while offline does not start the count again.
    if (connected && this.#offlineSince !== undefined) {
      this.#offlineSince = undefined;
      store?.setState("offline_since", "");
    } else if (!connected && this.#offlineSince === undefined) {
      this.#offlineSince = now;
      store?.setState("offline_since", String(now));
    }
    const tasks = this.#d.tasks()?.counts();
    return {
      connected,
      offline_s: this.#offlineSince === undefined ? 0 : (now - this.#offlineSince) / 1000,
      buffer_fill: (store?.outbox.bytes ?? 0) / this.#ctx.config().buffer_bytes,
      tasks_running: tasks?.running ?? 0,
      tasks_paused: tasks?.paused ?? 0,
    };
  }
}
