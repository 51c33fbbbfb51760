// Capped exponential back-off with full jitter, so thousands of agents never reconnect in step.

export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  random?: () => number;
}

/** Delay before reconnect attempt `attempt` (0 = first retry): uniform in [base/2, min(cap, base*2^attempt)]. */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const random = opts.random ?? Math.random;
  const ceiling = Math.min(opts.capMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  const floor = Math.min(opts.baseMs / 2, ceiling);
  return Math.round(floor + random() * (ceiling - floor));
}
