// Batch placement quality: on instances small enough to solve exactly, within 3% of the optimum's score
// and placing every replica whenever the optimum does.
import { expect, test } from "bun:test";
import { measureQuality } from "../../bench/placement-quality.ts";

test("placement quality: over 400 random tight instances, batch matches the optimum's count and is within 3% of its score", () => {
  const { batch, greedy } = measureQuality(400, 1);
  console.log(
    `placement quality, 400 instances: batch count = optimum in ${batch.sameCount}, score/optimum mean ${batch.meanRatio.toFixed(5)} min ${batch.minRatio.toFixed(4)}; ` +
      `greedy count = optimum in ${greedy.sameCount}, mean ${greedy.meanRatio.toFixed(4)} min ${greedy.minRatio.toFixed(4)}`,
  );
  expect(batch.aboveOptimum).toBe(0);
  expect(batch.sameCount).toBe(400);
  expect(batch.allPlacedWhenOptimumDoes).toBe(batch.optimumPlacesAll);
  expect(batch.minRatio).toBeGreaterThanOrEqual(0.97);
  expect(batch.below97).toBe(0);
  // The instances are tight enough that order matters: one-by-one greedy misses on some.
  expect(greedy.sameCount).toBeLessThan(400);
}, 60_000);
