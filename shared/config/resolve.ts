// One parse-and-validate step: flags beat environment, which beats the file, which beats the defaults.
import { ConfigError } from "../errors.ts";
import type { FlagValues } from "./args.ts";
import type { ConfigOf, Field, FieldTable } from "./fields.ts";
import { coerce } from "./internal/coerce.ts";
import { didYouMean } from "./internal/suggest.ts";
import { parseYamlDocument } from "./internal/yaml-document.ts";

/** Environment variables, e.g. `process.env`. */
export type EnvVars = Readonly<Record<string, string | undefined>>;

/** A rule across fields, run on the otherwise valid config; returns the field to blame and why, or undefined. */
export type CrossCheck<T extends FieldTable> = (
  config: ConfigOf<T>,
) => { readonly field: string; readonly message: string } | undefined;

/** Everything that decides a config apart from the file's text; a watcher re-resolves with the same inputs. */
export interface ConfigInputs<T extends FieldTable> {
  readonly fields: T;
  readonly flags?: FlagValues;
  readonly env?: EnvVars;
  readonly check?: CrossCheck<T>;
}

/** The config file, already read. */
export interface ConfigFile {
  readonly path: string;
  readonly text: string;
}

/** Where one field's raw value comes from, and the name an error gives that source. */
function pick(
  field: Field,
  flags: FlagValues,
  env: EnvVars,
  file: Record<string, unknown>,
  path: string,
): { raw: unknown; from: string } {
  const flag = flags[field.key];
  // Repeated flags join with commas, so `--label a=1 --label b=2` reads exactly like NOVACRON_LABELS=a=1,b=2.
  if (flag !== undefined) return { raw: typeof flag === "string" ? flag : flag.join(","), from: field.flag };
  const fromEnv = env[field.env];
  // An empty variable counts as unset: unit files and compose files often declare variables left blank.
  if (fromEnv !== undefined && fromEnv !== "") return { raw: fromEnv, from: field.env };
  // A key left blank in the file (`level:`) means "use the default", as in a template.
  const fromFile = file[field.key];
  if (fromFile !== undefined && fromFile !== null) return { raw: fromFile, from: path };
  const def = field.default;
  return { raw: typeof def === "function" ? def() : def, from: "the default" };
}

/** Builds the typed config of `fields`; throws ConfigError naming the field, the value and its source. */
export function resolveConfig<const T extends FieldTable>(
  inputs: ConfigInputs<T> & { file?: ConfigFile },
): ConfigOf<T> {
  const { fields, flags = {}, env = {}, file } = inputs;
  const doc = file ? parseYamlDocument(file.path, file.text) : {};
  const inFile = fields.filter((f) => f.inFile !== false).map((f) => f.key);
  for (const key of Object.keys(doc)) {
    if (inFile.includes(key)) continue;
    const field = fields.find((f) => f.key === key);
    // A typo in a file must not pass silently: the setting would quietly keep its default.
    throw new ConfigError(
      key,
      field
        ? `cannot be set inside ${file?.path}; use ${field.flag} or ${field.env}`
        : `unknown key in ${file?.path}${didYouMean(key, inFile)}`,
    );
  }
  const config: Record<string, unknown> = {};
  for (const field of fields) {
    const { raw, from } = pick(field, flags, env, doc, file?.path ?? "");
    config[field.key] = coerce(field, raw, from);
  }
  // Sound because each property was built by `coerce` from its field's kind; frozen because modules share it.
  const typed = Object.freeze(config) as ConfigOf<T>;
  const problem = inputs.check?.(typed);
  if (problem) throw new ConfigError(problem.field, problem.message);
  return typed;
}
