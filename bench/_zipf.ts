// Zipf(s) over ranks 0..n-1 by inverse CDF, shared by the cache benchmarks.

/** A sampler of ranks (0 is the most popular) and each rank's probability. */
export function zipfSampler(
  n: number,
  s: number,
  rand: () => number,
): { next: () => number; weight: Float64Array } {
  const weight = new Float64Array(n);
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    weight[k] = 1 / (k + 1) ** s;
    sum += weight[k]!;
    cdf[k] = sum;
  }
  for (let k = 0; k < n; k++) {
    cdf[k]! /= sum;
    weight[k]! /= sum;
  }
  return {
    weight,
    next: () => {
      const u = rand();
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cdf[mid]! < u) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    },
  };
}
