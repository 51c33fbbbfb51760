// novacron-hub: the hub's command line. The hub itself is assembled in server.ts.
import { parseCli } from "../shared/cli.ts";
import { createLogger, type LogLevel } from "../shared/log.ts";
import { type HubConfig, hubHelp, loadHubConfig } from "./config/index.ts";
import { startHub } from "./server.ts";

const config = parseCli<HubConfig>(process.argv.slice(2), {
  program: "novacron-hub",
  subcommand: "serve",
  help: hubHelp,
  load: (argv) => {
    const l = loadHubConfig(argv, process.env);
    return l.action === "run" ? { action: "run", value: l.config } : l;
  },
});

const log = createLogger("hub", { level: config.log_level as LogLevel });
const hub = await startHub(config, log).catch((err: Error) => {
  log.error("could not start", { error: err.message });
  process.exit(1);
});

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info("stopping", { signal });
  await hub.stop();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
