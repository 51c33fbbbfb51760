// The kill -9 test of task starts and job results (test/agent/tasks-crash.test.ts), run longer.
//
//   bun bench/task-crash.ts [--iterations 1000] [--seed 11]
//
// Prints the test's own summary: kills, how many landed at a write, how many starts were found and
// adopted or lost within their start, and whether every invariant held.
import { resolve } from "node:path";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: { iterations: { type: "string", default: "1000" }, seed: { type: "string", default: "11" } },
});
const ROOT = resolve(import.meta.dir, "..");
const started = performance.now();
const proc = Bun.spawn([process.execPath, "test", "--timeout", "3600000", "test/agent/tasks-crash.test.ts"], {
  cwd: ROOT,
  env: { ...process.env, TASK_CRASH_ITERATIONS: opts.iterations, TASK_CRASH_SEED: opts.seed },
  stdout: "pipe",
  stderr: "pipe",
});
const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
const code = await proc.exited;
for (const line of `${out}\n${err}`.split("\n"))
  if (/kills|\(pass\)|\(fail\)|^error|Error:/.test(line)) console.log(line);
console.log(`seed ${opts.seed}, ${((performance.now() - started) / 1000).toFixed(1)} s, exit ${code}`);
process.exit(code);
