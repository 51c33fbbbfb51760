// A fake Clock for tests: time moves only when the test advances it, timers fire in order.
import type { Clock, TimerHandle } from "../../shared/clock.ts";

interface Timer {
  at: number;
  fn: () => void;
  every: number | undefined;
}

/** Lets pending promise callbacks and immediates run (a few event-loop turns, no wall-clock wait). */
export async function settle(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Settles until `check` holds; fails naming `what` if it never does within `turns` event-loop turns
 * and 10 s (a store on PostgreSQL answers in milliseconds, not turns).
 */
export async function settleUntil(check: () => boolean, what: string, turns = 500): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (let i = 0; i < turns || Date.now() < deadline; i++) {
    if (check()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (!check()) throw new Error(`never happened: ${what}`);
}

/**
 * A clock whose time and timers move only through `advance`, until `goLive()`: from then on it runs at
 * wall-clock speed from where it stands, on real timers (so hours can pass in seconds, then a real
 * catch-up can be timed).
 */
export class FakeClock implements Clock {
  #now: number;
  #next = 1;
  readonly #timers = new Map<number, Timer>();
  /** Set once live: added to Date.now(). */
  #offset: number | undefined;
  readonly #real = new Map<number, ReturnType<typeof setTimeout>>();
  /**
   * Awaited after each timer `advance` fires: work a timer started that runs on over several turns (a
   * failover pass, the controller's changes) ends before time moves on, as it would on a real clock.
   */
  idle: (() => Promise<void>) | undefined;

  constructor(start = 1_718_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#offset === undefined ? this.#now : Date.now() + this.#offset;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.#add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.#add(fn, ms, Math.max(1, ms));
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    const id = handle as unknown as number;
    this.#timers.delete(id);
    clearTimeout(this.#real.get(id));
    this.#real.delete(id);
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.clearTimeout(handle);
  }

  /** From now on time follows the wall clock, starting where it stands; pending timers become real ones. */
  goLive(): void {
    if (this.#offset !== undefined) return;
    this.#offset = this.#now - Date.now();
    for (const [id, t] of this.#timers) this.#arm(id, t.fn, t.at - this.#now, t.every);
    this.#timers.clear();
  }

  #arm(id: number, fn: () => void, ms: number, every: number | undefined): void {
    this.#real.set(
      id,
      setTimeout(
        () => {
          if (every === undefined) this.#real.delete(id);
          else this.#real.set(id, setInterval(fn, every));
          fn();
        },
        Math.max(0, ms),
      ),
    );
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing every timer due on the way (in time order) and settling after each. */
  async advance(ms: number): Promise<void> {
    if (this.#offset !== undefined) throw new Error("a live clock cannot be advanced");
    const end = this.#now + ms;
    for (;;) {
      let due: [number, Timer] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      }
      if (!due) break;
      const [id, timer] = due;
      this.#now = Math.max(this.#now, timer.at);
      if (timer.every === undefined) this.#timers.delete(id);
      else timer.at += timer.every;
      timer.fn();
      await settle(3);
      await this.idle?.();
    }
    this.#now = end;
    await settle();
    await this.idle?.();
  }

  #add(fn: () => void, ms: number, every: number | undefined): TimerHandle {
    const id = this.#next++;
    if (this.#offset !== undefined) this.#arm(id, fn, ms, every);
    else this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn, every });
    return id as unknown as TimerHandle;
  }
}
