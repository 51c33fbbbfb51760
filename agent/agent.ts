// The agent: its modules listed once, started in order and stopped in reverse, and its state for the local API.
import { redactUrl } from "../shared/config/index.ts";
import { isDiskFull } from "../shared/disk-full.ts";
import type { ConfigError } from "../shared/errors.ts";
import type { LogLevel, Logger } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { encodeCbor, type MessageType } from "../shared/protocol/index.ts";
import { type Clock, systemClock } from "../shared/clock.ts";
import { SOFTWARE_VERSION } from "../shared/version.ts";
import { type AgentStatus, ApiModule } from "./api/index.ts";
import { CacheModule } from "./cache/index.ts";
import { CollectModule } from "./collect/index.ts";
import type { AgentConfig } from "./config/index.ts";
import { LinkModule } from "./link/index.ts";
import type { Module, ModuleContext } from "./module.ts";
import { RulesModule } from "./rules/index.ts";
import { type DropCounts, StoreModule, storeBudget } from "./store/index.ts";
import { StreamModule } from "./stream/index.ts";
import { TasksModule, type TaskManager } from "./tasks/index.ts";

export type { Module, ModuleContext } from "./module.ts";

/** A running agent: its modules, its state for the local API, and hot config. */
export class Agent {
  #config: AgentConfig;
  readonly #log: Logger;
  readonly metrics = new MetricsRegistry();
  readonly #abort = new AbortController();
  readonly #startedAt: number;
  #configRevision = 1;
  /** Time and timers for every module: the system clock, or a test's fake one. */
  readonly #clock: Clock;
  readonly #store: StoreModule;
  readonly #tasks: TasksModule;
  readonly #cache: CacheModule;
  readonly #stream: StreamModule;
  readonly #rules: RulesModule;
  readonly #collect: CollectModule;
  readonly #link: LinkModule;
  readonly #api: ApiModule;
  /** The modules, in start order. */
  readonly #modules: readonly Module[];
  /** Modules whose start() began, in that order: each of them gets stop(). */
  #started: Module[] = [];

  /**
   * `without` leaves the named modules out (never the store, which the others need): for benchmarks
   * that measure each module's share of memory, and for nothing else.
   */
  constructor(config: AgentConfig, log: Logger, opts: { clock?: Clock; without?: readonly string[] } = {}) {
    this.#config = config;
    this.#log = log;
    this.#clock = opts.clock ?? systemClock;
    this.#startedAt = this.#clock.now();
    const ctx: ModuleContext = {
      config: () => this.#config,
      log,
      clock: this.#clock,
      report: (type, body) => this.#report(type, body),
    };
    const store = () => this.#store.store;
    const tasks = () => this.#tasks.manager;
    const cache = () => this.#cache.cache;
    this.#store = new StoreModule(ctx, {
      lastAcked: () => this.#link.status()?.lastAcked,
      notify: () => this.#link.notify(),
    });
    // Before the link: workloads come back from the local store even with no hub at all.
    this.#tasks = new TasksModule(ctx, { store, link: () => this.#link.status() });
    this.#cache = new CacheModule(ctx, {
      store,
      connected: () => this.#link.status()?.connected ?? false,
      notify: () => this.#link.notify(),
      readHub: (cache, key, replicate) => this.#link.readCache(cache, key, replicate),
    });
    const named = () => this.#cache.named;
    this.#stream = new StreamModule(ctx, {
      stagePoints: (points, now) => {
        const buffer = this.#store.buffer;
        return buffer ? buffer.addPoints(points, now) !== null : undefined;
      },
      invalid: (points) => this.#store.store?.countDropped("invalid", points, true),
    });
    this.#rules = new RulesModule(ctx, {
      store,
      tasks,
      cache,
      connected: () => this.#link.status()?.connected ?? false,
      setSampleInterval: (ms) => this.#collect.setRuleInterval(ms),
    });
    this.#collect = new CollectModule(ctx, {
      stream: (values, now) => this.#stream.tick(values, now),
      stage: (ts, values) => this.#store.buffer!.add(ts, values),
      flush: (now) => this.#store.buffer!.flush(now),
      intervalChanged: (ms, now) => this.#store.buffer?.setInterval(ms, now),
      takePushed: () => this.#stream.takePushed(),
      evaluate: (values, now) => this.#rules.evaluate(values, now),
      notify: () => this.#link.notify(),
    });
    this.#link = new LinkModule(ctx, {
      store,
      tasks,
      cache,
      named,
      fencing: () => this.#tasks.fencing,
      rules: () => this.#rules.runner,
    });
    this.#api = new ApiModule(ctx, this.metrics, {
      status: () => this.status(),
      tasks: () => this.tasks(),
      logs: (alloc, lines) => this.#tasks.manager?.logs(alloc, lines),
      decisions: (limit) => this.decisions(limit),
      ingest: (points) => this.#stream.ingest(points),
      invalid: (points) => this.#stream.invalid(points),
      now: () => this.#clock.now(),
      cache,
      named,
      sources: {
        produced: () => this.#store.buffer?.produced() ?? 0,
        droppedBy: () => this.droppedBy(),
        diskFull: () => this.#store.store?.full ?? false,
        outbox: () => this.#store.store?.outbox,
        link: () => this.#link.status(),
        refused: () => this.#link.refused(),
        caches: () => {
          const local = this.#cache.cache?.stats();
          return {
            ...(local ? { default: local } : {}),
            ...(this.#cache.named?.stats() ?? {}),
          };
        },
        cacheQueue: () => this.#cache.named?.queue() ?? { depth: 0, oldest_ms: null },
      },
    });
    const all: Module[] = [
      this.#store,
      this.#tasks,
      this.#cache,
      this.#stream,
      this.#rules,
      this.#collect,
      this.#link,
      this.#api,
    ];
    const without = new Set(opts.without ?? []);
    without.delete("store");
    this.#modules = all.filter((m) => !without.has(m.name));
  }

  get config(): AgentConfig {
    return this.#config;
  }

  /** Address the local API listens on (after start). */
  get apiUrl(): string | undefined {
    return this.#api.url;
  }

  /**
   * Starts every module in order. On a failure, every module whose start began is stopped, the one
   * that failed included (it may hold a database handle or timers from before it failed), and the
   * error is rethrown.
   */
  async start(): Promise<void> {
    for (const m of this.#modules) {
      this.#started.push(m);
      try {
        await m.start(this.#abort.signal);
      } catch (err) {
        this.#log.error(`module ${m.name} failed to start`, { error: (err as Error).message });
        await this.stop();
        throw err;
      }
    }
  }

  /** Stops modules in reverse order; everything staged is packed into the outbox first. */
  async stop(): Promise<void> {
    this.#abort.abort();
    const started = this.#started;
    this.#started = [];
    for (const m of started.reverse()) {
      try {
        await m.stop();
      } catch (err) {
        this.#log.warn(`module ${m.name} did not stop cleanly`, { error: (err as Error).message });
      }
    }
  }

  // A must-deliver report: into the outbox (durable; held in memory while the disk is full), then out.
  #report(type: MessageType, body: object): void {
    const clean = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
    this.#store.store?.report(type, encodeCbor(clean), this.#clock.now());
    // After the caller's transaction (a job's result is appended inside the one that records it):
    // nothing may leave before it commits.
    queueMicrotask(() => this.#link.notify());
  }

  /** True if `err` is a full disk (SQLITE_FULL / ENOSPC); the store then enters its disk-full state. */
  diskFullError(err: unknown): boolean {
    return this.#store.store?.disk.hit(err) ?? isDiskFull(err);
  }

  /** Samples dropped, by reason (durable): for /v1/status, /metrics and the heartbeat. */
  droppedBy(): DropCounts {
    return this.#store.store?.droppedBy() ?? { budget: 0, disk: 0, invalid: 0, folded: 0 };
  }

  /** The decision log, newest first. */
  decisions(limit = 100) {
    return this.#rules.decisions(limit);
  }

  /** The local API's task list. */
  tasks(): ReturnType<TaskManager["list"]> {
    return this.#tasks.manager?.list() ?? [];
  }

  /** What /v1/status reports. */
  status(): AgentStatus {
    const link = this.#link.status();
    const ob = this.#store.store?.outbox.stats();
    const buffer = this.#store.buffer;
    const tasks = this.#tasks.manager;
    const droppedBy = this.droppedBy();
    return {
      node_id: this.#config.node_id,
      connected: link?.connected ?? false,
      hub: link?.endpoint ? redactUrl(link.endpoint) : null,
      outbox: { pending: ob?.pending ?? 0, oldest_ms: ob?.oldestMs ?? null, bytes: ob?.bytes ?? 0 },
      samples: {
        produced: buffer?.produced() ?? 0,
        dropped: droppedBy.budget + droppedBy.disk + droppedBy.invalid + droppedBy.folded,
        dropped_by: droppedBy,
        folded: droppedBy.folded,
        downsampled: ob?.downsampledSamples ?? 0,
        staged_ticks: buffer?.stagedTicks() ?? 0,
        staged_points: buffer?.stagedPoints() ?? 0,
      },
      link: {
        last_acked: link?.lastAcked ?? 0,
        rtt_ms: link?.rttMs ?? null,
        rtt_max_ms: link?.rttMaxMs ?? null,
        clock_offset_ms: link?.clockOffsetMs ?? null,
        sessions: link?.reconnects ?? 0,
        refused: this.#link.refused(),
      },
      config: {
        revision: this.#configRevision,
        level: this.#config.level,
        labels: this.#config.labels,
        sample_interval_ms: this.#config.sample_interval,
        batch_interval_ms: this.#config.batch_interval,
        heartbeat_interval_ms: this.#config.heartbeat_interval,
        buffer_bytes: this.#config.buffer_bytes,
        store_bytes: storeBudget(this.#config),
        log_level: this.#config.log_level,
      },
      disk: this.#store.store?.diskStatus() ?? null,
      ingest_mqtt: this.#stream.mqttIngestStats(),
      rules: this.#rules.status(),
      caches: this.cacheStatus(),
      tasks: {
        count: tasks?.counts().total ?? 0,
        limits_enforced: tasks?.limitsEnforced() ?? false,
        limits: tasks?.limitsReason() ?? "",
      },
      started_ms: this.#startedAt,
      first_sample_ms: this.#collect.firstSampleAt ?? null,
      version: SOFTWARE_VERSION,
    };
  }

  /** The named caches for /v1/status: each one's figures, and the queue of writes not yet at the hub. */
  cacheStatus(): { named: Record<string, unknown>; queue: { depth: number; oldest_ms: number | null } } {
    const named = this.#cache.named;
    return { named: named?.stats() ?? {}, queue: named?.queue() ?? { depth: 0, oldest_ms: null } };
  }

  /** Applies a new, already validated config; keys that need a restart are reported, not applied. */
  applyConfig(next: AgentConfig, changed: string[], restartKeys: string[]): void {
    this.#config = next;
    this.#configRevision += 1;
    for (const m of this.#modules) m.configChanged?.(next, changed);
    if (changed.includes("log_level")) this.#log.setLevel(next.log_level as LogLevel);
    this.#log.info("configuration reloaded", {
      changed: changed.join(",") || "none",
      revision: this.#configRevision,
    });
    if (restartKeys.length > 0)
      this.#log.warn("changed settings take effect after a restart", { keys: restartKeys.join(",") });
  }

  /** An invalid config file: the running config stays. */
  rejectConfig(err: ConfigError): void {
    this.#log.error("configuration refused; keeping the running one", { error: err.message });
  }
}
