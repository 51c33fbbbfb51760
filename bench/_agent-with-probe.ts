// The agent with a heap probe beside it (bench/_heap-probe.ts): same argv as agent/main.ts, no product code changed.
//
//   bun bench/_agent-with-probe.ts run --data ... --hub ...     (or compiled with bun build --compile)
import { installHeapProbe } from "./_heap-probe.ts";

installHeapProbe();
// agent/main.ts reads process.argv.slice(2): the wrapper takes the place of main.ts in argv.
await import("../agent/main.ts");
