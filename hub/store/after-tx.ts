// Work a write starts beyond the database (a cache relay, a webhook round, verdicts to a node, a
// failover pass) runs after the transaction that made the write has ended: never inside it, where
// another transaction's body could interleave, and, when it carries what the write stored, only once
// that write has committed.
import { AsyncLocalStorage } from "node:async_hooks";
import { insideTx } from "./sql/types.ts";

/** The effects of the transaction the calling chain is inside, if that transaction collects them. */
const open = new AsyncLocalStorage<TxEffects>();

/**
 * Runs `effect` once the collecting transaction the caller is inside has ended, committed or not: for
 * work that reads the store again (a pass, a round, a kick), which a rollback leaves right. Outside
 * one, on the next turn of the event loop (never inside an async SQLite transaction's body, which
 * spans microtasks only). Called from synchronous code.
 */
export function afterTx(effect: () => void): void {
  add(effect, false);
}

/**
 * Runs `effect` once the collecting transaction the caller is inside has committed, and never if it
 * (or the savepoint or attempt the caller is in) rolls back: for work that carries what the
 * transaction wrote (a relayed value, a verdict). Outside one, as `afterTx`.
 */
export function afterCommit(effect: () => void): void {
  add(effect, true);
}

function add(effect: () => void, commitOnly: boolean): void {
  const effects = openEffects();
  if (effects) effects.push(effect, commitOnly);
  else setImmediate(() => insideTx.exit(effect));
}

/** The effects being collected by the transaction the caller is inside, if any. */
export function openEffects(): TxEffects | undefined {
  const effects = open.getStore();
  return effects && !effects.done ? effects : undefined;
}

/**
 * The effects one transaction collects (every HubSql transaction does), run in order once it has
 * ended, outside its scope. A rolled-back savepoint or attempt drops what it asked to run only after a
 * commit (`rollbackTo`); the rest runs after a rollback too: each such producer keeps its own pending
 * state (a queued pass), which a rollback does not undo, so a dropped effect would leave it waiting.
 */
export class TxEffects {
  #effects: { fn: () => void; commitOnly: boolean }[] = [];
  #done = false;

  /** True once run: work that outlived the transaction (a timer it started) no longer waits for it. */
  get done(): boolean {
    return this.#done;
  }

  /** Runs `fn` (the transaction) with this collecting; inside another collecting one, that one collects. */
  collect<T>(fn: () => T): T {
    if (openEffects()) return fn();
    return open.run(this, fn);
  }

  push(fn: () => void, commitOnly: boolean): void {
    this.#effects.push({ fn, commitOnly });
  }

  /** Where a savepoint or an attempt starts. */
  mark(): number {
    return this.#effects.length;
  }

  /** The savepoint or attempt that started at `mark` rolled back: what it asked to run after a commit goes. */
  rollbackTo(mark: number): void {
    this.#effects = [
      ...this.#effects.slice(0, mark),
      ...this.#effects.slice(mark).filter((e) => !e.commitOnly),
    ];
  }

  /**
   * Each effect in the order asked (after a rollback, those not bound to a commit), outside the
   * transaction's scope; one that throws is reported and the rest still run.
   */
  run(committed: boolean, onError: (err: unknown) => void): void {
    this.#done = true;
    const effects = this.#effects;
    this.#effects = [];
    for (const e of effects) {
      if (e.commitOnly && !committed) continue;
      try {
        insideTx.exit(e.fn);
      } catch (err) {
        onError(err);
      }
    }
  }
}

/** Runs the HubSql transaction `body` with its effects collected, and the effects after it ends. */
export async function withEffects<T>(body: () => Promise<T>): Promise<T> {
  // A transaction inside another's collection (another store's, say): the outer one runs them.
  if (openEffects()) return body();
  const effects = new TxEffects();
  let committed = false;
  try {
    const out = await effects.collect(body);
    committed = true;
    return out;
  } finally {
    effects.run(committed, (err) =>
      console.error(
        JSON.stringify({
          level: "error",
          msg: "work started by a transaction failed",
          error: err instanceof Error ? err.message : String(err),
        }),
      ),
    );
  }
}
