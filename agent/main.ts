// novacron-agent: the edge agent's command line. Modules and their order live in agent.ts.
// First import: a compiled agent re-executes itself here with its JSC settings, before anything else runs.
import "./runtime-settings.ts";
import { parseCli } from "../shared/cli.ts";
import { redactUrl } from "../shared/config/index.ts";
import { createLogger, type LogLevel } from "../shared/log.ts";
import { Agent } from "./agent.ts";
import { type AgentConfig, agentHelp, loadAgentConfig, watchAgentConfig } from "./config/index.ts";

type Loaded = Extract<ReturnType<typeof loadAgentConfig>, { action: "run" }>;

const loaded = parseCli<Loaded>(process.argv.slice(2), {
  program: "novacron-agent",
  subcommand: "run",
  help: agentHelp,
  load: (argv) => {
    const l = loadAgentConfig(argv, process.env);
    return l.action === "run" ? { action: "run", value: l } : l;
  },
});

const config: AgentConfig = loaded.config;
const log = createLogger("agent", { level: config.log_level as LogLevel });
log.info("starting", {
  node: config.node_id,
  data: config.data,
  config: loaded.filePath ?? "none",
  hubs: config.hub.map(redactUrl).join(","),
});

const agent = new Agent(config, log);
try {
  await agent.start();
} catch (err) {
  log.error("could not start", { error: (err as Error).message });
  process.exit(1);
}

const watcher = watchAgentConfig(loaded, {
  onChange: (next, changed, restartKeys) => agent.applyConfig(next, changed, restartKeys),
  onError: (err) => agent.rejectConfig(err),
});

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info("stopping", { signal });
  watcher?.stop();
  await agent.stop();
  log.info("stopped; every sample is in the local store");
  process.exit(0);
}
// The last line of defence for issue 11: a write on a full disk that no path caught (a timer, a
// promise callback) makes the disk-full state instead of ending the agent. Anything else still does.
const onUncaught = (err: unknown) => {
  if (agent.diskFullError(err)) {
    log.error("a write failed on a full disk outside the store's paths; the agent carries on", {
      error: (err as Error).message,
      stack: (err as Error).stack?.split("\n").slice(1, 4).join(" | "),
    });
    return;
  }
  log.error("uncaught error", { error: (err as Error)?.stack ?? String(err) });
  process.exit(1);
};
process.on("uncaughtException", onUncaught);
process.on("unhandledRejection", onUncaught);
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
