// Where the CLI finds its hub and token: flags, then NOVACRON_* variables, then the config file, then defaults.
import { statSync } from "node:fs";
import { join } from "node:path";
import {
  type ConfigOf,
  configPathOf,
  defineFields,
  type EnvVars,
  type FlagValues,
  isUrl,
  readConfigFile,
  resolveConfig,
} from "../shared/config/index.ts";
import { ConfigError } from "../shared/errors.ts";
import { UsageError } from "./errors.ts";

/** The hub `npm start` runs, so that a checkout works with no settings at all. */
export const DEFAULT_HUB = "http://127.0.0.1:8091";

/** `$XDG_CONFIG_HOME/novacron/cli.yaml`, or `~/.config/novacron/cli.yaml`. */
export function defaultConfigPath(env: EnvVars): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || "", ".config");
  return join(base, "novacron", "cli.yaml");
}

/** The CLI's settings table (the same machinery as the hub's and the agent's). */
export function cliFields(env: EnvVars) {
  return defineFields([
    {
      key: "hub",
      flag: "--hub",
      env: "NOVACRON_HUB",
      kind: "string",
      metavar: "URL",
      default: DEFAULT_HUB,
      help: "the hub's HTTP address",
      validate: (v) => (isUrl(v, ["http:", "https:"]) ? undefined : "must be an http:// or https:// URL"),
    },
    {
      key: "token",
      flag: "--token",
      env: "NOVACRON_TOKEN",
      kind: "string",
      metavar: "TOKEN",
      default: "",
      secret: true,
      defaultHelp: "none",
      help: "bearer token for the hub's API",
    },
    {
      key: "ca",
      flag: "--ca",
      env: "NOVACRON_CA",
      kind: "string",
      metavar: "FILE",
      default: "",
      defaultHelp: "the system's CAs",
      help: "PEM file of the CA that signed the hub's certificate (https)",
    },
    {
      key: "timeout",
      flag: "--timeout",
      env: "NOVACRON_TIMEOUT",
      kind: "duration",
      default: "10s",
      min: "100ms",
      max: "10m",
      help: "how long to wait for each answer of the hub",
    },
    {
      key: "config",
      flag: "--config",
      env: "NOVACRON_CLI_CONFIG",
      kind: "string",
      metavar: "FILE",
      inFile: false,
      default: defaultConfigPath(env),
      defaultHelp: "~/.config/novacron/cli.yaml",
      help: "YAML file with hub, token, ca, timeout",
    },
  ]);
}

export type CliSettings = ConfigOf<ReturnType<typeof cliFields>> & {
  /** Where the token came from, for error messages ("--token", "NOVACRON_TOKEN", a file path). */
  readonly tokenFrom: string;
  /** A warning to print (a config file holding a token that others can read). */
  readonly warning: string | undefined;
};

/** Resolves the settings; throws UsageError naming the field and where its value came from. */
export function resolveSettings(flags: FlagValues, env: EnvVars): CliSettings {
  const fields = cliFields(env);
  const keep = Object.fromEntries(fields.map((f) => [f.env, env[f.env]]).filter(([, v]) => v !== undefined));
  const inputs = { fields, flags, env: keep };
  try {
    const where = configPathOf(inputs);
    const file = where ? readConfigFile(where) : undefined;
    const config = resolveConfig({ ...inputs, file });
    let tokenFrom = "the default";
    if (typeof flags.token === "string") tokenFrom = "--token";
    else if (env.NOVACRON_TOKEN) tokenFrom = "NOVACRON_TOKEN";
    else if (file && config.token !== "") tokenFrom = file.path;
    let warning: string | undefined;
    if (file && tokenFrom === file.path && (statSync(file.path).mode & 0o077) !== 0) {
      warning = `${file.path} holds a token and others can read it: chmod 600 ${file.path}`;
    }
    return { ...config, tokenFrom, warning };
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message, err.field);
    throw err;
  }
}
