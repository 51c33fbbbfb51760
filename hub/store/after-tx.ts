// Work a write starts beyond the database (a cache relay, a webhook round, verdicts to a node, a
// failover pass) runs after the transaction that made the write has ended: never inside it, where
// another transaction's body could interleave and a rollback would take it back.
import { AsyncLocalStorage } from "node:async_hooks";

/** The effects of the transaction the calling chain is inside, if that transaction collects them. */
const open = new AsyncLocalStorage<TxEffects>();

/**
 * Runs `effect` once the collecting transaction the caller is inside has ended; outside one, on the
 * next turn of the event loop (a macrotask: never inside an async SQLite transaction's body, which
 * spans microtasks only). Called from synchronous code.
 */
export function afterTx(effect: () => void): void {
  const effects = open.getStore();
  if (effects && !effects.done) effects.push(effect);
  else setImmediate(effect);
}

/**
 * The effects one transaction collects, run in order once it has ended. They run after a rollback
 * too: each producer keeps its own pending state (a queued pass, a relay list), which a rollback does
 * not undo, so a dropped effect would leave it waiting for good.
 */
export class TxEffects {
  #effects: (() => void)[] = [];
  #done = false;

  /** True once run: work that outlived the transaction (a timer it started) no longer waits for it. */
  get done(): boolean {
    return this.#done;
  }

  /** Runs `fn` (the transaction, synchronous or async) with this collecting what `afterTx` is given. */
  collect<T>(fn: () => T): T {
    // Inside another collecting transaction this one is its savepoint: the outer end is the one that counts.
    if (open.getStore() && !open.getStore()!.done) return fn();
    return open.run(this, fn);
  }

  push(effect: () => void): void {
    this.#effects.push(effect);
  }

  /** Each effect in the order asked; one that throws is reported and the rest still run. */
  run(onError: (err: unknown) => void): void {
    this.#done = true;
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
