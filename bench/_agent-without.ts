// The agent with some of its modules left out (AGENT_WITHOUT=tasks,cache,...) and the heap probe, for each module's share of memory.
//
//   AGENT_WITHOUT=stream bun bench/_agent-without.ts run --data ... --hub ...   (or compiled with bun build --compile)
//
// Same argv and config as agent/main.ts; the modules are built but the named ones never start. With
// no local API (AGENT_WITHOUT=api) it logs "agent started" once every other module is up.
// The shipped agent's JSC settings first, as agent/main.ts does.
import "../agent/runtime-settings.ts";
import { Agent } from "../agent/agent.ts";
import { loadAgentConfig } from "../agent/config/index.ts";
import { createLogger, type LogLevel } from "../shared/log.ts";
import { installHeapProbe } from "./_heap-probe.ts";

installHeapProbe();
const argv = process.argv.slice(2);
if (argv[0] === "run") argv.shift();
const loaded = loadAgentConfig(argv, process.env);
if (loaded.action !== "run") {
  console.error("_agent-without: give `run` and the agent's flags");
  process.exit(2);
}
const without = (process.env.AGENT_WITHOUT ?? "").split(",").filter(Boolean);
const log = createLogger("agent", { level: loaded.config.log_level as LogLevel });
const agent = new Agent(loaded.config, log, { without });
await agent.start();
log.info("agent started", { without: without.join(",") || "none" });
process.on("SIGTERM", () => void agent.stop().then(() => process.exit(0)));
