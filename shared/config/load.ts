// Start-up loading: parse the command line, find and read the config file, resolve, or report --help/--version.
import { readFileSync } from "node:fs";
import { ConfigError } from "../errors.ts";
import { parseArgs } from "./args.ts";
import type { ConfigOf, FieldTable } from "./fields.ts";
import {
  type ConfigFile,
  type ConfigInputs,
  type CrossCheck,
  type EnvVars,
  resolveConfig,
} from "./resolve.ts";

/** The switches every process accepts; they print and exit, so the caller handles them. */
export const STANDARD_SWITCHES = ["--help", "--version"] as const;

/** The key of the field holding the config file's path. */
export const CONFIG_PATH_KEY = "config";

/** What start-up loading found: a switch for the caller to act on, or the config to run with. */
export type LoadResult<T extends FieldTable> =
  | { readonly action: "help" | "version" }
  | {
      readonly action: "run";
      readonly config: ConfigOf<T>;
      /** The file that was read; undefined when the default path does not exist. */
      readonly filePath: string | undefined;
      /** The file path in effect (read or not), which a watcher should watch. */
      readonly configPath: string | undefined;
      /** Whether the path was given by flag or environment rather than defaulted. */
      readonly configPathExplicit: boolean;
      /** The inputs to re-resolve with when the file changes. */
      readonly inputs: ConfigInputs<T>;
    };

/** Where the config file is and whether the operator named it; undefined if the table has no `config` field. */
export function configPathOf<T extends FieldTable>(
  inputs: ConfigInputs<T>,
): { path: string; explicit: boolean; from: string } | undefined {
  const field = inputs.fields.find((f) => f.key === CONFIG_PATH_KEY);
  if (!field) return undefined;
  const flag = inputs.flags?.[CONFIG_PATH_KEY];
  if (typeof flag === "string") return { path: flag, explicit: true, from: field.flag };
  const env = inputs.env?.[field.env];
  if (env !== undefined && env !== "") return { path: env, explicit: true, from: field.env };
  const def = field.default;
  const path = typeof def === "function" ? def() : def;
  return typeof path === "string" ? { path, explicit: false, from: "the default" } : undefined;
}

/**
 * Reads the config file; a missing file is no file when the path is the default (run on flags alone),
 * and a ConfigError naming `config` when the operator asked for it.
 */
export function readConfigFile(where: {
  path: string;
  explicit: boolean;
  from: string;
}): ConfigFile | undefined {
  if (where.path === "") return undefined;
  try {
    return { path: where.path, text: readFileSync(where.path, "utf8") };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ENOENT" && !where.explicit) return undefined;
    const why = code === "ENOENT" ? "file not found" : `cannot read file: ${(err as Error).message}`;
    throw new ConfigError(CONFIG_PATH_KEY, `${why}: ${where.path} (from ${where.from})`, { cause: err });
  }
}

/** Parses `argv`, reads the file, resolves and validates; throws FlagError or ConfigError. */
export function loadConfig<const T extends FieldTable>(opts: {
  fields: T;
  argv: readonly string[];
  env: EnvVars;
  check?: CrossCheck<T>;
}): LoadResult<T> {
  const args = parseArgs(opts.argv, opts.fields, { booleans: STANDARD_SWITCHES });
  // --help and --version must work even when the config is broken, so they return before resolving.
  if (args.booleans.has("--help")) return { action: "help" };
  if (args.booleans.has("--version")) return { action: "version" };
  // Only the table's own variables are kept: a reload must see the environment the process started with.
  const env = Object.fromEntries(
    opts.fields.map((f) => [f.env, opts.env[f.env]]).filter(([, v]) => v !== undefined),
  );
  const inputs: ConfigInputs<T> = { fields: opts.fields, flags: args.values, env, check: opts.check };
  const where = configPathOf(inputs);
  const file = where ? readConfigFile(where) : undefined;
  const config = resolveConfig({ ...inputs, file });
  return {
    action: "run",
    config,
    filePath: file?.path,
    configPath: where?.path,
    configPathExplicit: where?.explicit ?? false,
    inputs,
  };
}
