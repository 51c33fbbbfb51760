// Command-line parsing against a field table: `--flag value`, `--flag=value`, repeatable flags, switches.
import { FlagError } from "../errors.ts";
import type { FieldTable } from "./fields.ts";
import { didYouMean } from "./internal/suggest.ts";

/** Flag text by field key: a string, or every occurrence for a repeatable flag. */
export type FlagValues = Readonly<Record<string, string | readonly string[]>>;

/** What the command line said. */
export interface ParsedArgs {
  /** Values by field key. */
  readonly values: FlagValues;
  /** Switches from `booleans` that were given, e.g. "--help". */
  readonly booleans: ReadonlySet<string>;
}

/** Parses `argv` (without the program and subcommand); throws FlagError naming an unknown or incomplete flag. */
export function parseArgs(
  argv: readonly string[],
  fields: FieldTable,
  opts: { booleans?: readonly string[] } = {},
): ParsedArgs {
  const switches = new Set(opts.booleans ?? []);
  const byFlag = new Map(fields.map((f) => [f.flag, f]));
  const values: Record<string, string | string[]> = {};
  const booleans = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (!arg.startsWith("--") || arg === "--") {
      throw new FlagError(
        arg.startsWith("-") ? `unknown flag ${arg}` : `unexpected argument ${JSON.stringify(arg)}`,
      );
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    if (switches.has(name)) {
      if (inline !== undefined) throw new FlagError(`flag ${name} takes no value`);
      booleans.add(name);
      continue;
    }
    const field = byFlag.get(name as `--${string}`);
    if (!field) {
      throw new FlagError(`unknown flag ${name}${didYouMean(name, [...byFlag.keys(), ...switches])}`);
    }
    let value = inline;
    if (value === undefined && field.kind === "bool") value = "true";
    if (value === undefined) {
      const next = argv[i + 1];
      // A following "--x" is another flag, not a value: `--level --hub ws://h` has forgotten the level.
      if (next === undefined || next.startsWith("--")) throw new FlagError(`flag ${name} needs a value`);
      value = next;
      i++;
    }
    const prev = values[field.key];
    if (field.repeatable) values[field.key] = [...(Array.isArray(prev) ? prev : []), value];
    else values[field.key] = value; // the last one wins, as with most CLIs, so wrappers can append overrides
  }
  return { values, booleans };
}
