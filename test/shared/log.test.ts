// The logger's rate limiter: one line at once, then one summary per interval with how many were held back.
import { expect, test } from "bun:test";
import { createLogger, LogLimiter } from "../../shared/log.ts";

function setup(intervalMs = 60_000, maxKeys?: number) {
  const lines: string[] = [];
  let now = 1_000_000;
  const log = createLogger("t", { write: (l) => lines.push(l.replace(/^\S+ /, "")), journald: false });
  const limiter = new LogLimiter(log, { intervalMs, now: () => now, ...(maxKeys ? { maxKeys } : {}) });
  return { lines, limiter, advance: (ms: number) => (now += ms) };
}

test("log limiter: a line repeated every second is logged once, then once a minute with the count held back", () => {
  const { lines, limiter, advance } = setup();
  for (let i = 0; i < 150; i++) {
    limiter.error("k", "hub refused this node", { error: "auth_failed" });
    advance(1000);
  }
  expect(lines).toEqual([
    "ERROR t: hub refused this node error=auth_failed",
    "ERROR t: hub refused this node error=auth_failed held_back=59 since_s=60",
    "ERROR t: hub refused this node error=auth_failed held_back=59 since_s=60",
  ]);
});

test("log limiter: keys are limited apart, and a quiet key logs at once again", () => {
  const { lines, limiter, advance } = setup(10_000);
  limiter.warn("a", "one");
  limiter.warn("b", "two");
  limiter.warn("a", "one");
  advance(10_000);
  limiter.warn("a", "one");
  advance(20_000);
  limiter.warn("b", "two");
  expect(lines).toEqual(["WARN t: one", "WARN t: two", "WARN t: one held_back=1 since_s=10", "WARN t: two"]);
});

test("log limiter: the number of keys it remembers is bounded", () => {
  const { lines, limiter } = setup(60_000, 2);
  for (const k of ["a", "b", "c", "a"]) limiter.info(k, k);
  // "a" was forgotten when "c" came, so its second line is logged rather than held back.
  expect(lines).toEqual(["INFO t: a", "INFO t: b", "INFO t: c", "INFO t: a"]);
});
