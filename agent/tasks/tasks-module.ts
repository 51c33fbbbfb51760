// The tasks module: the workload runner over the agent's store, started before the link so workloads resume with no hub.
import type { Module, ModuleContext } from "../module.ts";
import type { AgentStore } from "../store/index.ts";
import { Fencing } from "./fencing.ts";
import { TaskManager } from "./task-manager.ts";

export interface TasksModuleDeps {
  store: () => AgentStore | undefined;
  /** The hub link's state, read by edge-side fencing (the link starts after this module). */
  link: () => { connected: boolean; lastRxMs: number } | undefined;
}

/**
 * Supervised workloads: re-adopted from the store at start; their processes outlive a stop by design.
 * Edge-side fencing stops allocs the hub may have moved elsewhere while this node was cut off.
 */
export class TasksModule implements Module {
  readonly name = "tasks";
  readonly #ctx: ModuleContext;
  readonly #d: TasksModuleDeps;
  #tasks: TaskManager | undefined;
  #fencing: Fencing | undefined;

  constructor(ctx: ModuleContext, deps: TasksModuleDeps) {
    this.#ctx = ctx;
    this.#d = deps;
  }

  /** The running task manager (after start). */
  get manager(): TaskManager | undefined {
    return this.#tasks;
  }

  /** Edge-side fencing (after start). */
  get fencing(): Fencing | undefined {
    return this.#fencing;
  }

  async start(): Promise<void> {
    const store = this.#d.store();
    if (!store) throw new Error("the store is not open");
    this.#tasks = new TaskManager({
      db: store.db,
      dataDir: this.#ctx.config().data,
      log: this.#ctx.log.child("tasks"),
      clock: this.#ctx.clock,
      events: {
        onStatus: (e) => this.#ctx.report("alloc_status", e),
        onResult: (e) => this.#ctx.report("task_result", e),
      },
    });
    await this.#tasks.start();
    const ctx = this.#ctx;
    this.#fencing = new Fencing({
      db: store.db,
      tasks: this.#tasks,
      clock: ctx.clock,
      log: ctx.log.child("fencing"),
      link: () => this.#d.link() ?? { connected: false, lastRxMs: 0 },
      heartbeatMs: ctx.config().heartbeat_interval,
      report: (e) =>
        ctx.report("event", {
          kind: "fenced",
          at: ctx.clock.now(),
          message: e.message,
          fields: { alloc: e.alloc, workload: e.workload, offline_ms: e.offline_ms },
        }),
    });
    this.#fencing.start();
  }

  async stop(): Promise<void> {
    this.#fencing?.stop();
    // Supervised processes keep running; the next start re-adopts them.
    await this.#tasks?.stop();
  }
}
