// Specification of reconnect back-off: capped exponential growth with jitter that spreads a fleet out.
import { describe, expect, test } from "bun:test";
import { backoffDelay } from "../../shared/link/index.ts";

const opts = { baseMs: 200, capMs: 3000 };
const low = () => 0;
const high = () => 1 - Number.EPSILON;

describe("backoff", () => {
  test("the first retry waits between half the base and the base", () => {
    expect(backoffDelay(0, { ...opts, random: low })).toBe(100);
    expect(backoffDelay(0, { ...opts, random: high })).toBe(200);
  });

  test("the ceiling doubles with every attempt until it reaches the cap, and never passes it", () => {
    const ceilings = [0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, { ...opts, random: high }));
    expect(ceilings).toEqual([200, 400, 800, 1600, 3000, 3000, 3000]);
    for (let a = 0; a < 200; a++) {
      const lo = backoffDelay(a, { ...opts, random: low });
      const hi = backoffDelay(a, { ...opts, random: high });
      expect(lo).toBe(100);
      expect(hi).toBeLessThanOrEqual(3000);
    }
  });

  test("absurd attempt numbers stay finite and capped", () => {
    for (const a of [64, 1024, 1e6, Number.MAX_SAFE_INTEGER]) {
      const d = backoffDelay(a, { ...opts, random: high });
      expect(Number.isFinite(d)).toBe(true);
      expect(d).toBe(3000);
    }
  });

  test("never exceeds a cap that is below half the base", () => {
    for (let a = 0; a < 10; a++) {
      expect(backoffDelay(a, { baseMs: 1000, capMs: 300, random: low })).toBe(300);
      expect(backoffDelay(a, { baseMs: 1000, capMs: 300, random: high })).toBe(300);
    }
  });

  test("jitter spreads thousands of agents evenly over the whole range instead of in step", () => {
    const n = 10_000;
    const delays = Array.from({ length: n }, () => backoffDelay(8, opts));
    const min = Math.min(...delays);
    const max = Math.max(...delays);
    expect(min).toBeGreaterThanOrEqual(100);
    expect(max).toBeLessThanOrEqual(3000);
    expect(min).toBeLessThan(150);
    expect(max).toBeGreaterThan(2950);
    expect(new Set(delays).size).toBeGreaterThan(2000);
    // Ten equal buckets over [100, 3000] each hold about a tenth.
    const buckets = new Array<number>(10).fill(0);
    for (const d of delays) buckets[Math.min(9, Math.floor(((d - 100) / 2900) * 10))]! += 1;
    for (const b of buckets) {
      expect(b).toBeGreaterThan(n * 0.07);
      expect(b).toBeLessThan(n * 0.13);
    }
  });
});
