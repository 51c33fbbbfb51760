// The agent's configuration: its typed config object, start-up loading, hot reload and --help text.
import {
  type ConfigOf,
  ConfigWatcher,
  type ConfigWatcherOptions,
  type CrossCheck,
  type EnvVars,
  helpText,
  type LoadResult,
  loadConfig,
} from "../../shared/config/index.ts";
import { unpairedCertKey } from "../../shared/tls.ts";
import { agentFields } from "./fields.ts";

export { agentFields, DEFAULT_AGENT_CONFIG_PATH, DEFAULT_API } from "./fields.ts";

/** The agent's resolved settings; durations in ms, sizes in bytes. */
export type AgentConfig = ConfigOf<typeof agentFields>;

/** What start-up loading returns: `action` "help" or "version" for the caller to print, or the config. */
export type AgentLoad = LoadResult<typeof agentFields>;

// A client certificate without its key (or the reverse) fails at start, not at the first connect.
const checkTls: CrossCheck<typeof agentFields> = (c) =>
  unpairedCertKey({ field: "tls_cert", path: c.tls_cert }, { field: "tls_key", path: c.tls_key });

/** Loads the agent's config from argv (subcommand already removed), env and file; throws FlagError or ConfigError. */
export function loadAgentConfig(argv: readonly string[], env: EnvVars): AgentLoad {
  return loadConfig({ fields: agentFields, argv, env, check: checkTls });
}

/** Watches the config file (even a default one not yet created) and reports each change; undefined with no path. */
export function watchAgentConfig(
  loaded: Extract<AgentLoad, { action: "run" }>,
  opts: Omit<ConfigWatcherOptions<typeof agentFields>, "inputs" | "current" | "path">,
): ConfigWatcher<typeof agentFields> | undefined {
  if (!loaded.configPath) return undefined;
  return new ConfigWatcher({ ...opts, inputs: loaded.inputs, current: loaded.config });
}

/** The agent's --help text. */
export function agentHelp(): string {
  return helpText(agentFields, "novacron-agent run --data DIR --hub URL[,URL...] [flags]");
}
