// Splits a command line into the command, its positional arguments, its flags and the global flags.
import { didYouMean } from "../shared/config/index.ts";
import type { ArgSpec, Command, FlagSpec, Parsed } from "./command.ts";
import { UsageError } from "./errors.ts";

/** Flags every command takes: the connection settings, and output switches. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { name: "--hub", value: "URL", help: "the hub's HTTP address (env NOVACRON_HUB)" },
  { name: "--token", value: "TOKEN", help: "bearer token (env NOVACRON_TOKEN)" },
  { name: "--config", value: "FILE", help: "config file (env NOVACRON_CLI_CONFIG)", file: true },
  { name: "--ca", value: "FILE", help: "CA of the hub's TLS certificate (env NOVACRON_CA)", file: true },
  { name: "--timeout", value: "DURATION", help: "wait this long for each answer (env NOVACRON_TIMEOUT)" },
  { name: "--json", help: "print JSON for scripts instead of tables" },
  { name: "--help", short: "-h", help: "print help for the command and exit" },
];

/** The command line, split: which command, and its inputs. */
export interface CommandLine {
  command: Command | undefined;
  /** Words that named no command (for the error message). */
  unknown: string[];
  parsed: Parsed;
}

const GLOBAL_SETTINGS = ["--hub", "--token", "--config", "--ca", "--timeout"];

/** The longest command whose words start the positional words of `argv`. */
function findCommand(words: readonly string[], commands: readonly Command[]): Command | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    if (c.words.every((w, i) => words[i] === w) && c.words.length > (best?.words.length ?? 0)) best = c;
  }
  return best;
}

/** Positional words of argv (skipping flags and their values), for finding the command. */
function leadingWords(argv: readonly string[], flags: readonly FlagSpec[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith("-") && a !== "-") {
      const spec = flags.find((f) => f.name === a || f.short === a);
      if (spec?.value && !a.includes("=")) i++;
      continue;
    }
    words.push(a);
  }
  return words;
}

/** Parses argv against the commands; throws UsageError naming a bad flag or argument. */
export function parseCommandLine(argv: readonly string[], commands: readonly Command[]): CommandLine {
  const allFlags = [...GLOBAL_FLAGS, ...commands.flatMap((c) => c.flags)];
  const words = leadingWords(argv, allFlags);
  const command = findCommand(words, commands);
  const flagSpecs = [...GLOBAL_FLAGS, ...(command?.flags ?? [])];
  const values: Record<string, string> = {};
  const switches = new Set<string>();
  const positionals: string[] = [];
  let skipWords = command?.words.length ?? 0;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      if (skipWords > 0) skipWords--;
      else positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq > 0 && a.startsWith("--") ? a.slice(0, eq) : a;
    const spec = flagSpecs.find((f) => f.name === name || f.short === name);
    if (!spec) {
      const known = flagSpecs.map((f) => f.name);
      const where = command ? ` for "${command.words.join(" ")}"` : "";
      throw new UsageError(`unknown flag ${name}${where}${didYouMean(name, known)}`, name);
    }
    if (!spec.value) {
      if (eq > 0 && a.startsWith("--")) throw new UsageError(`flag ${name} takes no value`, name);
      switches.add(spec.name);
      continue;
    }
    let value = eq > 0 && a.startsWith("--") ? a.slice(eq + 1) : undefined;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) {
        throw new UsageError(`flag ${name} needs a value (${spec.value})`, name);
      }
      value = next;
      i++;
    }
    if (spec.choices && !spec.choices.includes(value)) {
      throw new UsageError(
        `flag ${name} must be one of ${spec.choices.join(", ")} (got ${JSON.stringify(value)})`,
        name,
      );
    }
    values[spec.name] = value;
  }
  if (!command) return { command, unknown: words, parsed: { args: {}, flags: values, switches } };
  const args: Record<string, string | undefined> = {};
  if (!switches.has("--help")) assignArgs(command, positionals, args);
  return { command, unknown: [], parsed: { args, flags: values, switches } };
}

function assignArgs(command: Command, positionals: string[], into: Record<string, string | undefined>) {
  const specs: readonly ArgSpec[] = command.args;
  const name = command.words.join(" ");
  if (positionals.length > specs.length) {
    const extra = positionals[specs.length]!;
    throw new UsageError(`unexpected argument ${JSON.stringify(extra)} for "${name}"`, extra);
  }
  specs.forEach((s, i) => {
    const v = positionals[i];
    if (v === undefined && !s.optional) {
      throw new UsageError(`"${name}" needs ${s.name} (usage: novacron ${usageLine(command)})`, s.name);
    }
    into[s.name] = v;
  });
}

/** `node show ID [flags]`. */
export function usageLine(c: Command): string {
  if (c.usage) return c.usage;
  const args = c.args.map((a) => (a.optional ? `[${a.name}]` : a.name));
  return [...c.words, ...args, ...(c.flags.length > 0 ? ["[flags]"] : [])].join(" ");
}

/** The connection flags to resolve settings with (by field key). */
export function settingFlags(parsed: Parsed): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of GLOBAL_SETTINGS) {
    const v = parsed.flags[f];
    if (v !== undefined) out[f.slice(2)] = v;
  }
  return out;
}
