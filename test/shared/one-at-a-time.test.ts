// Specification of oneAtATime: never two runs at once, and an ask during a run is answered by one more run.
import { expect, test } from "bun:test";
import { oneAtATime } from "../../shared/one-at-a-time.ts";

test("one run at a time; asks during a run make exactly one more run, which begins after them; a failure is reported and the next ask runs", async () => {
  let running = 0;
  let most = 0;
  let runs = 0;
  let release: (() => void) | undefined;
  const errors: unknown[] = [];
  let fail = false;
  const ask = oneAtATime(
    async () => {
      running++;
      most = Math.max(most, running);
      runs++;
      await new Promise<void>((r) => {
        release = r;
      });
      running--;
      if (fail) throw new Error("store away");
    },
    (err) => errors.push(err),
  );
  ask();
  ask();
  ask();
  expect(runs).toBe(1);
  release!();
  await Bun.sleep(0);
  // The three asks during the first run: one more run, not three.
  expect(runs).toBe(2);
  release!();
  await Bun.sleep(0);
  expect(runs).toBe(2);
  expect(most).toBe(1);
  fail = true;
  ask();
  release!();
  await Bun.sleep(0);
  expect(errors.map((e) => (e as Error).message)).toEqual(["store away"]);
  fail = false;
  ask();
  expect(runs).toBe(4);
  release!();
  await Bun.sleep(0);
  expect(running).toBe(0);
});
