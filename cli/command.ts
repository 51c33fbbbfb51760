// What a command is: its words, arguments, flags and one run function; and what it gets to run with.
import type { HubClient } from "./client.ts";
import { UsageError } from "./errors.ts";

/** One flag of a command: a switch, or a flag that takes a value (`value` is its placeholder). */
export interface FlagSpec {
  readonly name: `--${string}`;
  readonly short?: `-${string}`;
  readonly value?: string;
  readonly help: string;
  /** Values a shell may complete (roles, states). */
  readonly choices?: readonly string[];
  /** The value is a file path (the shell completes file names). */
  readonly file?: boolean;
}

/** A positional argument; `optional` ones may be left out. */
export interface ArgSpec {
  readonly name: string;
  readonly optional?: boolean;
  /** What a shell completes it with, asked of the hub: node ids or workload names. */
  readonly complete?: "nodes" | "workloads";
}

/** What the command line said, after the command's words. */
export interface Parsed {
  readonly args: Readonly<Record<string, string | undefined>>;
  readonly flags: Readonly<Record<string, string | undefined>>;
  readonly switches: ReadonlySet<string>;
}

/** Where a command writes, what it talks to and how it asks. */
export interface Ctx {
  readonly client: HubClient;
  readonly json: boolean;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Both stdin and stdout are a terminal (a person is there to answer a prompt). */
  readonly interactive: boolean;
  /** Asks a yes/no question on the terminal; resolves true only for "y" or "yes". */
  readonly confirm: (question: string) => Promise<boolean>;
  readonly now: () => number;
  readonly stdin: NodeJS.ReadStream;
  readonly stdout: NodeJS.WriteStream;
}

/** One command, e.g. `node drain ID`. */
export interface Command {
  /** Its words: ["node", "drain"]. */
  readonly words: readonly string[];
  readonly summary: string;
  /** More lines for `--help`. */
  readonly description?: string;
  readonly args: readonly ArgSpec[];
  /** The usage line after `novacron`, when the default (words, args, [flags]) says too little. */
  readonly usage?: string;
  readonly flags: readonly FlagSpec[];
  /** Runs it; throws a CliError to fail with its exit code. */
  run(ctx: Ctx, parsed: Parsed): Promise<void>;
}

/** Declares a command (keeps literal types readable at the call site). */
export function defineCommand(c: Command): Command {
  return c;
}

/** The value of a flag, or a UsageError naming it when it is absent. */
export function requiredFlag(parsed: Parsed, flag: string, what: string): string {
  const v = parsed.flags[flag];
  if (v === undefined || v === "") throw new UsageError(`${flag} is required: ${what}`, flag);
  return v;
}

/** A positional argument the command declared as required. */
export function arg(parsed: Parsed, name: string): string {
  const v = parsed.args[name];
  if (v === undefined) throw new UsageError(`missing ${name}`, name);
  return v;
}

/** A whole number flag within bounds, or undefined when absent. */
export function intFlag(parsed: Parsed, flag: string, min: number, max: number): number | undefined {
  const v = parsed.flags[flag];
  if (v === undefined) return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `${flag} must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`,
      flag,
    );
  }
  return n;
}
