// The store module: opens the agent's SQLite file and the metric buffer, maintains both (free space, budget, freed pages), closes both.
import type { TimerHandle } from "../../shared/clock.ts";
import type { Logger } from "../../shared/log.ts";
import { isDiskFull, isIoError } from "../../shared/disk-full.ts";
import type { AgentConfig } from "../config/index.ts";
import type { Module, ModuleContext } from "../module.ts";
import { AgentStore } from "./agent-store.ts";
import { MetricBuffer } from "./metric-buffer.ts";

/** How often free space, checkpoints, freed pages and the byte budget are seen to (never throws on a full disk). */
const MAINTAIN_MS = 1000;
/** How often a store that cannot open on a full disk is tried again. */
const REOPEN_MS = 2000;

/**
 * The store's byte budget: store_bytes, or (0) twice buffer_bytes (a downsampling pass's WAL can be as
 * large as the outbox) + cache_bytes + 16 MiB for the rest, so that buffer_bytes keeps its meaning.
 */
export function storeBudget(c: AgentConfig): number {
  return c.store_bytes > 0 ? c.store_bytes : 2 * c.buffer_bytes + c.cache_bytes + 16 * 1024 * 1024;
}

/** What the store module reads from the link (which starts after it). */
export interface StoreModuleDeps {
  /** The highest sequence the hub acknowledged (undefined before the link starts). */
  lastAcked: () => number | undefined;
  /** The outbox has something new (the disk-full alert and its clear go out at once). */
  notify: () => void;
}

// Set here, apart from the store's own PRAGMAs: the file is never memory-mapped (mmap_size 0 is
// SQLite's default; said here so that a build with another default does not map a 100 MB outbox).
// The page cache keeps SQLite's default of 2,000 KiB: bounding it to 512 KiB saved 2.9 MiB after a
// day's catch-up but made the catch-up 50% slower (BENCHMARKS.md, "Agent memory: cuts").
function boundMemory(store: AgentStore): void {
  store.db.run("PRAGMA mmap_size = 0");
}

/** The agent's one SQLite file (outbox, staged ticks, state) and the buffer that stages each tick. */
export class StoreModule implements Module {
  readonly name = "store";
  readonly #ctx: ModuleContext;
  #store: AgentStore | undefined;
  #buffer: MetricBuffer | undefined;
  readonly #d: StoreModuleDeps;
  #maintainTimer: TimerHandle | undefined;

  constructor(ctx: ModuleContext, deps: StoreModuleDeps) {
    this.#ctx = ctx;
    this.#d = deps;
  }

  /** The open store (after start). */
  get store(): AgentStore | undefined {
    return this.#store;
  }

  get buffer(): MetricBuffer | undefined {
    return this.#buffer;
  }

  async start(signal?: AbortSignal): Promise<void> {
    this.#store = await this.#openWhenRoom(signal);
    const cfg = this.#ctx.config();
    const clock = this.#ctx.clock;
    boundMemory(this.#store);
    // Free space, checkpoints, freed pages and the byte budget, every second (never throws on a full disk).
    this.#maintainTimer = clock.setInterval(() => this.#store?.maintain(this.#d.lastAcked()), MAINTAIN_MS);
    this.#buffer = new MetricBuffer(this.#store, cfg.sample_interval);
    // Ticks staged before a crash are packed now, so they leave with the first flush.
    this.#buffer.flush(clock.now());
  }

  // Opens the store. A disk with no room at all (killed while it was full, by a program that is still
  // filling it) cannot even recover SQLite's WAL: the agent waits for room instead of exiting, so a
  // supervisor does not restart it in a loop. Any other error is thrown.
  async #openWhenRoom(signal: AbortSignal | undefined): Promise<AgentStore> {
    for (let tries = 1; ; tries++) {
      try {
        // The store's own "disk full" line, once and then with every summary, not every 2 s.
        return this.#open(tries === 1 || tries % 30 === 0 ? this.#ctx.log.child("store") : undefined);
      } catch (err) {
        if (!(isDiskFull(err) || isIoError(err)) || signal?.aborted) throw err;
        if (tries === 1 || tries % 30 === 0)
          this.#ctx.log.error(
            "the local store cannot open: its disk is full; trying again until there is room",
            {
              error: (err as Error).message,
              tries,
            },
          );
        await Bun.sleep(REOPEN_MS);
        if (signal?.aborted) throw err;
      }
    }
  }

  #open(log: Logger | undefined): AgentStore {
    const cfg = this.#ctx.config();
    const clock = this.#ctx.clock;
    // Room for the envelope: a batch must fit in one frame the hub accepts.
    const maxBodyBytes = Math.floor(cfg.max_frame_bytes * 0.9);
    return new AgentStore(cfg.data, {
      bufferBytes: cfg.buffer_bytes,
      storeBytes: storeBudget(cfg),
      reserveBytes: cfg.disk_reserve,
      maxBodyBytes,
      now: () => clock.now(),
      ...(log ? { log } : {}),
      // The store reports the state to the hub as an alert (and its clear); send it now.
      onDiskFull: () => this.#d.notify(),
    });
  }

  /** Packs what is staged into the outbox and closes the file; safe after a start that failed. */
  async stop(): Promise<void> {
    this.#ctx.clock.clearInterval(this.#maintainTimer);
    this.#maintainTimer = undefined;
    try {
      this.#buffer?.flush(this.#ctx.clock.now());
    } finally {
      this.#store?.close();
      this.#store = undefined;
      this.#buffer = undefined;
    }
  }

  configChanged(next: AgentConfig, changed: readonly string[]): void {
    if (changed.some((k) => ["buffer_bytes", "store_bytes", "cache_bytes", "disk_reserve"].includes(k)))
      this.#store?.setBudgets(next.buffer_bytes, storeBudget(next), next.disk_reserve);
  }
}
