// Holds one lease for as long as it can: acquires it, renews it every ttl/3, and says when it is gained or lost.
import type { Clock, TimerHandle } from "../../../shared/clock.ts";
import { RequestError } from "../../../shared/errors.ts";
import { checkName, type Leases } from "./leases.ts";

export interface LeaseKeeperOptions {
  leases: Leases;
  name: string;
  /** Unique per process incarnation (a restarted replica is a new holder). */
  holder: string;
  ttlMs: number;
  clock: Clock;
  /**
   * How far replicas' clocks may disagree (default 500 ms, at most ttl/10 when ttl is short). The keeper
   * stops acting as holder this long before its lease expires by its own clock, so a replica whose clock
   * runs ahead by up to this much cannot take the lease over while this one still acts. Under ttl/3.
   */
  skewMs?: number;
  /** Now the holder, with the epoch to write with. */
  onGained(epoch: number): void;
  /** No longer the holder: stop at once. */
  onLost(): void;
  /** A store call that failed, or a callback that threw. The keeper carries on. */
  onError?(err: unknown): void;
}

/**
 * Keeps a lease. A renew the store refuses ends the tenure at once; a renew that fails (the store is
 * unreachable) does not extend it, so the keeper gives up by its own deadline (expiry minus skew) and
 * never later, as Nomad's and Open Horizon's lease holders do. onGained and onLost alternate, once per
 * transition.
 */
export class LeaseKeeper {
  readonly #o: LeaseKeeperOptions;
  readonly #skew: number;
  #held: { epoch: number; expiresAt: number } | undefined;
  #every: TimerHandle | undefined;
  #deadline: TimerHandle | undefined;
  #inflight: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: LeaseKeeperOptions) {
    checkName("lease name", opts.name);
    checkName("holder", opts.holder);
    if (!Number.isSafeInteger(opts.ttlMs) || opts.ttlMs < 3)
      throw new RequestError(`ttlMs must be an integer >= 3, not ${opts.ttlMs}`, "ttlMs");
    const skew = opts.skewMs ?? Math.min(500, Math.floor(opts.ttlMs / 10));
    if (!Number.isSafeInteger(skew) || skew < 0 || skew >= opts.ttlMs / 3)
      throw new RequestError(
        `skewMs must be an integer from 0 to under ttlMs/3 (${opts.ttlMs / 3}), not ${skew}`,
        "skewMs",
      );
    this.#o = opts;
    this.#skew = skew;
  }

  /** The epoch to write with while held. */
  get epoch(): number | undefined {
    return this.#held?.epoch;
  }

  /** When the held lease expires in the store (the keeper gives up skewMs before). */
  get expiresAt(): number | undefined {
    return this.#held?.expiresAt;
  }

  /** Resolves once no store call is out (a test stepping a fake clock waits on it). */
  async idle(): Promise<void> {
    await this.#inflight;
  }

  /** Tries at once, then every ttl/3. */
  start(): void {
    if (this.#stopped || this.#every !== undefined) return;
    this.#every = this.#o.clock.setInterval(() => this.#tick(), Math.max(1, Math.floor(this.#o.ttlMs / 3)));
    this.#tick();
  }

  /** Stops trying; a held lease is given up (onLost, then released in the store). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#o.clock.clearInterval(this.#every);
    const had = this.#held;
    if (had) this.#lose();
    await this.#inflight;
    if (had)
      await this.#o.leases.release(this.#o.name, this.#o.holder, had.epoch).catch((err) => this.#report(err));
  }

  #tick(): void {
    if (this.#inflight || this.#stopped) return;
    this.#inflight = this.#attempt().finally(() => {
      this.#inflight = undefined;
    });
  }

  async #attempt(): Promise<void> {
    const { leases, name, holder, ttlMs, clock } = this.#o;
    const now = clock.now();
    try {
      const had = this.#held;
      if (had) {
        const ok = await leases.renew(name, holder, had.epoch, ttlMs, now);
        // Lost by its deadline, or stopped, while the call was out: that tenure is over already.
        if (this.#held !== had) return;
        if (ok) this.#arm(now + ttlMs);
        else this.#lose();
        return;
      }
      const got = await leases.acquire(name, holder, ttlMs, now);
      if (!got.held) return;
      if (this.#stopped) {
        await leases.release(name, holder, got.epoch);
        return;
      }
      // An answer that came back after its own deadline gives nothing to act on.
      if (got.expiresAt - this.#skew <= clock.now()) return;
      this.#held = { epoch: got.epoch, expiresAt: got.expiresAt };
      this.#arm(got.expiresAt);
      this.#o.onGained(got.epoch);
    } catch (err) {
      this.#report(err);
    }
  }

  // (Re)sets the deadline from the expiry the store now has; lost at once when that is past already.
  #arm(expiresAt: number): void {
    const { clock } = this.#o;
    clock.clearTimeout(this.#deadline);
    const held = this.#held!;
    held.expiresAt = expiresAt;
    const left = expiresAt - this.#skew - clock.now();
    if (left <= 0) {
      this.#lose();
      return;
    }
    this.#deadline = clock.setTimeout(() => {
      if (this.#held === held) this.#lose();
    }, left);
  }

  #lose(): void {
    this.#o.clock.clearTimeout(this.#deadline);
    this.#deadline = undefined;
    const had = this.#held;
    this.#held = undefined;
    if (!had) return;
    try {
      this.#o.onLost();
    } catch (err) {
      this.#report(err);
    }
  }

  #report(err: unknown): void {
    this.#o.onError?.(err);
  }
}
