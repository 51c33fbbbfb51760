// The hub's bulk lane: catch-up batches wait here and are processed in short slices, so heartbeats never queue behind them.

/** What the lane does with one queued item (ingest it); runs in the order items arrived per node. */
export type BulkHandler<T> = (node: string, item: T) => void;

export interface BulkLaneOptions {
  /** Longest stretch of bulk work before the event loop gets to read sockets (heartbeats) again. */
  sliceMs: number;
  /** Items taken from one node before moving to the next (fairness between catching-up nodes). */
  perNodeTurn: number;
  /** CPU time, not the hub's (injectable) clock: the budget is about how long the loop is blocked. */
  cpuNow?: () => number;
  /** How the next slice is scheduled (default setImmediate: the event loop polls I/O in between). */
  defer?: (fn: () => void) => void;
}

/**
 * Per-node FIFO queues served round robin, a slice at a time. Within a node the order is kept
 * (sequence numbers must arrive in order); across nodes each gets `perNodeTurn` items per round.
 * Nothing here drops: the agents' windows (they wait for acks, and acks follow processing) bound
 * what can be waiting.
 */
export class BulkLane<T> {
  readonly #o: Required<BulkLaneOptions>;
  readonly #handle: BulkHandler<T>;
  readonly #queues = new Map<string, T[]>();
  // Nodes with work, in round-robin order; a node is in it exactly when its queue is non-empty.
  #ring: string[] = [];
  #size = 0;
  #peak = 0;
  #scheduled = false;
  #slices = 0;

  constructor(handle: BulkHandler<T>, o: BulkLaneOptions) {
    this.#handle = handle;
    this.#o = {
      sliceMs: o.sliceMs,
      perNodeTurn: o.perNodeTurn,
      cpuNow: o.cpuNow ?? (() => performance.now()),
      defer: o.defer ?? ((fn) => setImmediate(fn)),
    };
  }

  /** Items waiting, hub-wide. */
  get size(): number {
    return this.#size;
  }

  /** Most items ever waiting at once. */
  get peak(): number {
    return this.#peak;
  }

  /** Slices run so far. */
  get slices(): number {
    return this.#slices;
  }

  /** Whether a node has items waiting (later items of that node must queue behind them). */
  has(node: string): boolean {
    return this.#queues.has(node);
  }

  push(node: string, item: T): void {
    let q = this.#queues.get(node);
    if (!q) {
      q = [];
      this.#queues.set(node, q);
      this.#ring.push(node);
    }
    q.push(item);
    this.#size += 1;
    if (this.#size > this.#peak) this.#peak = this.#size;
    this.#schedule();
  }

  /** Runs everything queued now (tests, shutdown). */
  drainAll(): void {
    while (this.#size > 0) this.#slice(Number.POSITIVE_INFINITY);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#o.defer(() => {
      this.#scheduled = false;
      this.#slice(this.#o.sliceMs);
      if (this.#size > 0) this.#schedule();
    });
  }

  #slice(budgetMs: number): void {
    this.#slices += 1;
    const start = this.#o.cpuNow();
    const ring = this.#ring;
    const served: string[] = [];
    let i = 0;
    while (i < ring.length) {
      const node = ring[i]!;
      i += 1;
      const q = this.#queues.get(node);
      if (!q) continue;
      const taken = q.splice(0, Math.min(this.#o.perNodeTurn, q.length));
      this.#size -= taken.length;
      if (q.length === 0) this.#queues.delete(node);
      else served.push(node);
      for (const item of taken) {
        try {
          this.#handle(node, item);
        } catch {
          // The handler answers its own errors; one bad item never stalls the lane.
        }
      }
      if (this.#o.cpuNow() - start >= budgetMs) break;
    }
    // Nodes not reached this slice go first next time; those served go to the back.
    this.#ring = ring.slice(i).concat(served);
  }
}
