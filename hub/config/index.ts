// The hub's configuration: its typed config object, start-up loading, hot reload and --help text.
import {
  type ConfigOf,
  type CrossCheck,
  type EnvVars,
  formatDuration,
  helpText,
  type LoadResult,
  loadConfig,
} from "../../shared/config/index.ts";
import { unpairedCertKey } from "../../shared/tls.ts";
import { hubFields } from "./fields.ts";

export { DEFAULT_HUB_CONFIG_PATH, hubFields } from "./fields.ts";

/** The hub's resolved settings; durations in ms, sizes in bytes. */
export type HubConfig = ConfigOf<typeof hubFields>;

/** What start-up loading returns: `action` "help" or "version" for the caller to print, or the config. */
export type HubLoad = LoadResult<typeof hubFields>;

// Failure detection only works in this order: a node must miss a heartbeat before it is suspect,
// and be suspect before it is down.
const checkTimings: CrossCheck<typeof hubFields> = (c) => {
  const longer = (key: string, mine: number, other: string, theirs: number) => ({
    field: key,
    message: `must be longer than ${other} (got ${formatDuration(mine)}, ${other} is ${formatDuration(theirs)})`,
  });
  if (c.suspect_after <= c.heartbeat_interval) {
    return longer("suspect_after", c.suspect_after, "heartbeat_interval", c.heartbeat_interval);
  }
  if (c.down_after <= c.suspect_after)
    return longer("down_after", c.down_after, "suspect_after", c.suspect_after);
  if (c.webhook_retry_max < c.webhook_retry_base)
    return {
      field: "webhook_retry_max",
      message: `must be at least webhook_retry_base (got ${formatDuration(c.webhook_retry_max)}, webhook_retry_base is ${formatDuration(c.webhook_retry_base)})`,
    };
  return undefined;
};

// TLS settings that only make sense together, so a half-given one fails at start instead of serving plain.
const checkTls: CrossCheck<typeof hubFields> = (c) => {
  const served = unpairedCertKey(
    { field: "tls_cert", path: c.tls_cert },
    { field: "tls_key", path: c.tls_key },
  );
  if (served) return served;
  if (c.tls_client_ca && !c.tls_cert)
    return {
      field: "tls_client_ca",
      message: "needs tls_cert and tls_key: mutual TLS runs on the hub's own TLS",
    };
  const broker = unpairedCertKey(
    { field: "mqtt_cert", path: c.mqtt_cert },
    { field: "mqtt_key", path: c.mqtt_key },
  );
  if (broker) return broker;
  for (const key of ["mqtt_ca", "mqtt_cert"] as const) {
    if (c[key] && !c.mqtt.startsWith("mqtts:"))
      return {
        field: key,
        message: `needs an mqtts:// broker in mqtt (got ${c.mqtt ? "a plain one" : "none"})`,
      };
  }
  return undefined;
};

/** Loads the hub's config from argv (subcommand already removed), env and file; throws FlagError or ConfigError. */
export function loadHubConfig(argv: readonly string[], env: EnvVars): HubLoad {
  return loadConfig({ fields: hubFields, argv, env, check: (c) => checkTimings(c) ?? checkTls(c) });
}

/** The hub's --help text. */
export function hubHelp(): string {
  // The hub reads its config once, at start: no setting of it reloads live (yet).
  return helpText(hubFields, "novacron-hub serve --data DIR --listen HOST:PORT [flags]", { watches: false });
}
