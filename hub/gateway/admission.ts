// Admission of new sessions: a burst of reconnecting agents is let in at a steady rate, the rest told when to come back.

/** What the gate says to one new handshake. */
export type AdmissionVerdict = { ok: true } | { ok: false; retryAfterMs: number };

export interface AdmissionOptions {
  /** New sessions admitted per second, on average. */
  perSecond: number;
  /** Admitted at once before the rate applies (a hub with nobody waiting lets a small fleet straight in). */
  burst: number;
  /** Longest wait ever asked of an agent. */
  maxRetryAfterMs: number;
  now?: () => number;
  random?: () => number;
}

/**
 * A token bucket that, instead of dropping what it cannot take, hands out a time to come back.
 * The times spread the refused agents over the backlog the gate has seen (refusals of the last
 * few seconds divided by the rate), so the retries arrive at about the rate the gate admits, not
 * all at once; each agent adds its own jitter on top.
 */
export class AdmissionGate {
  readonly #o: Required<Omit<AdmissionOptions, "now" | "random">>;
  readonly #now: () => number;
  readonly #random: () => number;
  #tokens: number;
  #at: number;
  // Refusals per second, decayed: how many agents are (about) waiting to come back.
  #waiting = 0;
  #waitingAt: number;

  constructor(o: AdmissionOptions) {
    this.#o = { perSecond: o.perSecond, burst: o.burst, maxRetryAfterMs: o.maxRetryAfterMs };
    this.#now = o.now ?? Date.now;
    this.#random = o.random ?? Math.random;
    this.#tokens = o.burst;
    this.#at = this.#now();
    this.#waitingAt = this.#at;
  }

  /** Agents the gate believes are waiting to come back. */
  get waiting(): number {
    this.#decay();
    return Math.round(this.#waiting);
  }

  /** One new handshake: admitted now, or told how long to wait. */
  take(): AdmissionVerdict {
    const now = this.#now();
    this.#tokens = Math.min(this.#o.burst, this.#tokens + ((now - this.#at) / 1000) * this.#o.perSecond);
    this.#at = now;
    this.#decay();
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      // An admitted agent that had been told to wait is no longer waiting.
      if (this.#waiting > 0) this.#waiting = Math.max(0, this.#waiting - 1);
      return { ok: true };
    }
    this.#waiting += 1;
    const backlogMs = (this.#waiting / this.#o.perSecond) * 1000;
    const spread = Math.max(1000 / this.#o.perSecond, backlogMs);
    const retryAfterMs = Math.min(this.#o.maxRetryAfterMs, Math.round(250 + this.#random() * spread));
    return { ok: false, retryAfterMs };
  }

  // Waiting agents that never came back (gone, or moved to another hub) fade out over ~10 s.
  #decay(): void {
    const now = this.#now();
    const dt = now - this.#waitingAt;
    if (dt <= 0) return;
    this.#waitingAt = now;
    this.#waiting *= Math.exp(-dt / 10_000);
  }
}
