// Work a write starts beyond the database (a cache relay, a webhook round, verdicts to a node, a
// failover pass) runs after the synchronous transaction that made the write has ended: never inside
// it, where an async transaction's body could interleave and a rollback would take it back.

/** The effects of the synchronous transaction in progress, if one collects them. */
let open: TxEffects | undefined;

/**
 * Runs `effect` once the collecting transaction in progress has ended; with none in progress, soon
 * (a microtask, after the caller's synchronous write). Called from synchronous code only.
 */
export function afterTx(effect: () => void): void {
  if (open) open.push(effect);
  else queueMicrotask(effect);
}

/**
 * The effects one synchronous transaction collects, run in order once it has ended. They run after a
 * rollback too: each producer keeps its own pending state (a queued pass, a relay list), which a
 * rollback does not undo, so a dropped effect would leave it waiting for good.
 */
export class TxEffects {
  #effects: (() => void)[] = [];

  /** Runs `fn` (the transaction) with this collecting what `afterTx` is given. */
  collect<T>(fn: () => T): T {
    // Inside another collecting transaction this one is its savepoint: the outer end is the one that counts.
    if (open) return fn();
    open = this;
    try {
      return fn();
    } finally {
      open = undefined;
    }
  }

  push(effect: () => void): void {
    this.#effects.push(effect);
  }

  /** Each effect in the order asked; one that throws is reported and the rest still run. */
  run(onError: (err: unknown) => void): void {
    const effects = this.#effects;
    this.#effects = [];
    for (const effect of effects) {
      try {
        effect();
      } catch (err) {
        onError(err);
      }
    }
  }
}
