// The hub's live feed: one look at the hub per tick while anyone listens, the changes fanned out to each listener.
import type { Clock, TimerHandle } from "../../shared/clock.ts";
import {
  type AllocView,
  alertKey,
  diffSnapshots,
  emptySnapshot,
  type NodeView,
  type Snapshot,
  type StreamEvent,
} from "./snapshot-diff.ts";

/** What the feed reads: narrow views of the registry, the heartbeat monitor, workloads and alerts. */
export interface LiveSources {
  nodes(): Iterable<NodeView>;
  allocs(): Iterable<AllocView> | Promise<Iterable<AllocView>>;
  /** Newest first, at most `limit`. */
  failoverEvents(
    limit: number,
  ): ({ id: number } & Record<string, unknown>)[] | Promise<({ id: number } & Record<string, unknown>)[]>;
  /** Newest first, at most `limit`. */
  alerts(limit: number): Record<string, unknown>[] | Promise<Record<string, unknown>[]>;
}

export type Listener = (e: StreamEvent) => void;

/** Events and alerts read per tick: more than this many new ones in one tick are not all sent. */
const RECENT = 200;

/**
 * Looks at the hub every `tickMs` while it has listeners (nothing when nobody listens), and sends
 * each listener what changed since the last look. A listener that joins gets changes from then on;
 * it reads the current state through the ordinary routes.
 */
export class LiveFeed {
  readonly #src: LiveSources;
  readonly #clock: Clock;
  readonly #tickMs: number;
  readonly #listeners = new Set<Listener>();
  #last: Snapshot = emptySnapshot();
  /** The look in progress (the first one of a subscription sets the baseline). */
  #looking: Promise<void> | undefined;
  #timer: TimerHandle | undefined;

  constructor(o: { sources: LiveSources; clock: Clock; tickMs?: number }) {
    this.#src = o.sources;
    this.#clock = o.clock;
    this.#tickMs = o.tickMs ?? 500;
  }

  get listeners(): number {
    return this.#listeners.size;
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(fn: Listener): () => void {
    if (this.#listeners.size === 0) {
      // What is there now is the baseline: only changes after it are sent.
      // A look that fails leaves the baseline empty: the first tick then sends what is there.
      this.#looking = this.#look().then(
        ({ snapshot }) => {
          this.#last = snapshot;
        },
        () => {},
      );
      this.#timer = this.#clock.setInterval(() => void this.tick(), this.#tickMs);
    }
    this.#listeners.add(fn);
    return () => {
      this.#listeners.delete(fn);
      if (this.#listeners.size === 0) this.stop();
    };
  }

  /** One look: sends what changed since the last one (a look still running is waited for, not doubled). */
  async tick(): Promise<void> {
    const before = this.#looking;
    if (before) await before.catch(() => {});
    if (this.#looking !== before) return this.#looking;
    this.#looking = this.#look().then(
      ({ snapshot, fresh }) => this.#send(snapshot, fresh),
      () => {},
    );
    const mine = this.#looking;
    await mine;
    if (this.#looking === mine) this.#looking = undefined;
  }

  #send(snapshot: Snapshot, fresh: Parameters<typeof diffSnapshots>[2]): void {
    const events = diffSnapshots(this.#last, snapshot, fresh);
    this.#last = snapshot;
    for (const e of events) {
      for (const fn of this.#listeners) {
        try {
          fn(e);
        } catch {
          // A listener whose connection broke is removed by its own route; the others go on.
        }
      }
    }
  }

  stop(): void {
    this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #look(): Promise<{ snapshot: Snapshot; fresh: Parameters<typeof diffSnapshots>[2] }> {
    const nodes = new Map<string, NodeView>();
    for (const n of this.#src.nodes()) nodes.set(n.id, n);
    const allocs = new Map<string, AllocView>();
    for (const a of await this.#src.allocs()) allocs.set(a.id, a);
    const failover = await this.#src.failoverEvents(RECENT);
    const alertList = await this.#src.alerts(RECENT);
    const alerts = new Map<string, string>();
    for (const a of alertList) alerts.set(String(a.id), alertKey(a));
    return {
      snapshot: { nodes, allocs, failoverId: Math.max(this.#last.failoverId, failover[0]?.id ?? 0), alerts },
      fresh: { failover, alerts: alertList },
    };
  }
}
