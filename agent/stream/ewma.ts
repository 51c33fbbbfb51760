// Exponentially weighted baseline of one series (level and spread), and the z-score of a new point against it.
//
// d = x - mean (the prediction error); z = d / sqrt(msd); then mean += a·d and
// msd = (1 - b)·msd + b·d², where msd is the mean squared prediction error. The spread moves
// slower than the level (b = alpha / 5 by default): with both at 0.1 the spread estimate is so
// noisy that steady Gaussian noise crosses |z| ≥ 4 about 10 times per 10,000 points; with the
// slower spread, 1.2 per 10,000 (|z| ≥ 5: about 1 per 1,000,000), against 0.63 per 10,000 for the
// true σ. While warming up, a and b are at least 1/n, so the first points give plain averages
// instead of a baseline biased towards the first value (or towards zero spread).
// z is taken before the point updates the baseline, so a spike is judged against the history that
// preceded it. Anomalous points do update it: a lasting level shift stops alerting after a while.

/** The running baseline of one series. */
export class Ewma {
  readonly #alpha: number;
  readonly #spreadAlpha: number;
  #n = 0;
  #mean = 0;
  #msd = 0;

  constructor(alpha: number, spreadAlpha = alpha / 5) {
    this.#alpha = alpha;
    this.#spreadAlpha = spreadAlpha;
  }

  /** Points seen so far. */
  get n(): number {
    return this.#n;
  }

  get mean(): number {
    return this.#mean;
  }

  /** Root mean squared prediction error: the spread a z-score divides by. */
  get spread(): number {
    return Math.sqrt(this.#msd);
  }

  /** The z-score of x against the baseline so far (0 for the first point), then folds x in. */
  observe(x: number): number {
    const n = this.#n++;
    if (n === 0) {
      this.#mean = x;
      return 0;
    }
    const d = x - this.#mean;
    // A flat history has no spread: any change is infinitely unusual, so floor the spread at a
    // tiny fraction of the level to keep z finite (and printable).
    const spread = Math.max(Math.sqrt(this.#msd), Math.abs(this.#mean) * 1e-9, 1e-12);
    const z = d / spread;
    this.#mean += Math.max(this.#alpha, 1 / (n + 1)) * d;
    const b = Math.max(this.#spreadAlpha, 1 / n);
    this.#msd = (1 - b) * this.#msd + b * d * d;
    return z;
  }
}
