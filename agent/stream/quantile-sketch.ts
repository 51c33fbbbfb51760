// A mergeable quantile sketch with a fixed relative error (DDSketch-style logarithmic buckets).
//
// Error bound: for any q, the answer is within ±1% (relative) of the exact nearest-rank quantile
// (the value of rank ceil(q·n) in sorted order), for |values| ≥ 1e-9; smaller magnitudes count as 0
// (absolute error < 1e-9). Memory: one Map entry per distinct bucket, at most MAX_BUCKETS per sign;
// 1% buckets cover 1e-9..1e12 in 2,418 buckets, so the cap is only reached by values spanning
// more than ~35 orders of magnitude, and then the buckets nearest zero merge (the low quantiles of
// that sign lose accuracy, the high ones keep it).

export const RELATIVE_ACCURACY = 0.01;
const GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY);
const LN_GAMMA = Math.log(GAMMA);
const MIN_MAGNITUDE = 1e-9;
export const MAX_BUCKETS = 4096;
const COLLAPSE_BATCH = 256;

/** Counts per logarithmic bucket; `quantile` answers within RELATIVE_ACCURACY of the exact value. */
export class QuantileSketch {
  readonly #pos = new Map<number, number>();
  readonly #neg = new Map<number, number>();
  #zero = 0;
  #count = 0;

  get count(): number {
    return this.#count;
  }

  add(value: number): void {
    this.#count++;
    const m = Math.abs(value);
    if (m < MIN_MAGNITUDE) {
      this.#zero++;
      return;
    }
    const store = value > 0 ? this.#pos : this.#neg;
    const i = Math.ceil(Math.log(m) / LN_GAMMA);
    store.set(i, (store.get(i) ?? 0) + 1);
    if (store.size > MAX_BUCKETS) collapseLowest(store);
  }

  /** Adds every count of `other` into this sketch. */
  merge(other: QuantileSketch): void {
    this.#count += other.#count;
    this.#zero += other.#zero;
    for (const [i, n] of other.#pos) this.#pos.set(i, (this.#pos.get(i) ?? 0) + n);
    for (const [i, n] of other.#neg) this.#neg.set(i, (this.#neg.get(i) ?? 0) + n);
    while (this.#pos.size > MAX_BUCKETS) collapseLowest(this.#pos);
    while (this.#neg.size > MAX_BUCKETS) collapseLowest(this.#neg);
  }

  clear(): void {
    this.#pos.clear();
    this.#neg.clear();
    this.#zero = 0;
    this.#count = 0;
  }

  /** The nearest-rank q-quantile (0 < q ≤ 1), within the relative error bound; NaN when empty. */
  quantile(q: number): number {
    if (this.#count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    // Negative values first, largest magnitude (most negative) first.
    const neg = [...this.#neg.keys()].sort((a, b) => b - a);
    for (const i of neg) {
      seen += this.#neg.get(i)!;
      if (seen >= rank) return -representative(i);
    }
    seen += this.#zero;
    if (seen >= rank) return 0;
    const pos = [...this.#pos.keys()].sort((a, b) => a - b);
    for (const i of pos) {
      seen += this.#pos.get(i)!;
      if (seen >= rank) return representative(i);
    }
    return representative(pos[pos.length - 1] ?? 0);
  }
}

/** The value that is within RELATIVE_ACCURACY of every magnitude in bucket i, (γ^(i-1), γ^i]. */
function representative(i: number): number {
  return (2 * GAMMA ** i) / (GAMMA + 1);
}

/** Folds the buckets nearest zero into the next one up, leaving the store well under MAX_BUCKETS. */
function collapseLowest(store: Map<number, number>): void {
  // Collapsing a batch at a time keeps the cost amortised: one sort per COLLAPSE_BATCH overflows.
  const keys = [...store.keys()].sort((a, b) => a - b);
  const fold = keys.length - (MAX_BUCKETS - COLLAPSE_BATCH);
  if (fold <= 0) return;
  const into = keys[fold]!;
  let n = 0;
  for (let k = 0; k < fold; k++) {
    n += store.get(keys[k]!)!;
    store.delete(keys[k]!);
  }
  store.set(into, (store.get(into) ?? 0) + n);
}
