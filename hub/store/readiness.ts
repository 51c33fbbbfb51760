// Whether the hub's store takes writes now: what `/readyz` answers, so that a load balancer (a
// Kubernetes Service) stops sending new connections to a hub that could not store what they send.
import type { Clock, TimerHandle } from "../../shared/clock.ts";
import type { Logger } from "../../shared/log.ts";
import type { HubSql } from "./sql/index.ts";

export interface Readiness {
  ready: boolean;
  /** Since when (the hub's clock) it has been as it is. */
  since: number;
  /** Why it is not ready (the store's error), or null. */
  reason: string | null;
}

export interface StoreReadinessOptions {
  sql: HubSql;
  clock: Clock;
  log: Logger;
  /** How often the store is written to when nothing else told how it is (default 2 s). */
  intervalMs?: number;
  /** How long a probe may take before it counts as failed (default 2 s: a store that hangs is away too). */
  timeoutMs?: number;
  /**
   * After an ingest commit failed, how long only a commit (not the probe's small write) makes the hub
   * ready again (default 10 s): a disk with room for the probe but not for a group would flap.
   */
  holdMs?: number;
}

const PROBE = `INSERT INTO hub_counters (name, value) VALUES ('ready_probe', ?)
  ON CONFLICT(name) DO UPDATE SET value = excluded.value`;

/**
 * The store's state from two sources: every ingest commit (`report` with `commit`), and a small write
 * of its own every interval (a store that fails only on writes, a full disk, is not ready either). The
 * newest outcome wins, except that for `holdMs` after a commit failed only a commit makes it ready; a
 * change is logged once.
 */
export class StoreReadiness {
  readonly #o: Required<StoreReadinessOptions>;
  #state: Readiness;
  #timer: TimerHandle | undefined;
  #probing = false;
  #commitFailedAt = Number.NEGATIVE_INFINITY;

  constructor(o: StoreReadinessOptions) {
    this.#o = { intervalMs: 2000, timeoutMs: 2000, holdMs: 10_000, ...o };
    this.#state = { ready: true, since: o.clock.now(), reason: null };
  }

  get state(): Readiness {
    return this.#state;
  }

  start(): void {
    this.#timer ??= this.#o.clock.setInterval(() => void this.probe(), this.#o.intervalMs);
  }

  stop(): void {
    this.#o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One write to the store, with a deadline; its outcome is the state (one probe at a time). */
  async probe(): Promise<Readiness> {
    if (this.#probing) return this.#state;
    this.#probing = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${this.#o.timeoutMs} ms`)),
          this.#o.timeoutMs,
        );
      });
      await Promise.race([this.#o.sql.run(PROBE, [this.#o.clock.now()]), deadline]);
      // A small write that works says little while groups have just failed.
      if (this.#o.clock.now() - this.#commitFailedAt >= this.#o.holdMs) this.report(true);
    } catch (err) {
      this.report(false, err);
    } finally {
      clearTimeout(timer);
      this.#probing = false;
    }
    return this.#state;
  }

  /** The outcome of an ingest commit. */
  commit(ok: boolean, err?: unknown): void {
    if (!ok) this.#commitFailedAt = this.#o.clock.now();
    this.report(ok, err);
  }

  /** The outcome of a write the hub made (a probe, a commit). */
  report(ok: boolean, err?: unknown): void {
    const reason = ok ? null : err instanceof Error ? err.message : String(err);
    if (ok === this.#state.ready) {
      if (!ok) this.#state = { ...this.#state, reason };
      return;
    }
    this.#state = { ready: ok, since: this.#o.clock.now(), reason };
    if (ok) this.#o.log.info("the store takes writes again: ready", { store: this.#o.sql.store });
    else
      this.#o.log.error("the store does not take writes: not ready", {
        store: this.#o.sql.store,
        error: reason,
      });
  }
}
