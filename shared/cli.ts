// Shared command-line plumbing: subcommand, --help/--version, and exit codes (2 for bad usage).
import { ConfigError, FlagError } from "./errors.ts";
import { SOFTWARE_VERSION } from "./version.ts";

export interface CliSpec<T> {
  program: string;
  subcommand: string;
  help: () => string;
  load: (argv: readonly string[]) => { action: "help" | "version" } | { action: "run"; value: T };
}

/** Parses argv for `program subcommand [flags]`; prints help/version or an error and exits as needed. */
export function parseCli<T>(argv: readonly string[], spec: CliSpec<T>): T {
  const args = [...argv];
  if (args[0] === "--version" || args[0] === "-v") exit(0, `${spec.program} ${SOFTWARE_VERSION}`);
  if (args.length === 0 || args[0] === "--help" || args[0] === "-h" || args[0] === "help") {
    exit(0, spec.help());
  }
  if (args[0] !== spec.subcommand) {
    exit(
      2,
      `${spec.program}: unknown command "${args[0]}" (expected "${spec.subcommand}"; see --help)`,
      true,
    );
  }
  try {
    const loaded = spec.load(args.slice(1));
    if (loaded.action === "help") exit(0, spec.help());
    if (loaded.action === "version") exit(0, `${spec.program} ${SOFTWARE_VERSION}`);
    return (loaded as { value: T }).value;
  } catch (err) {
    if (err instanceof FlagError || err instanceof ConfigError)
      exit(2, `${spec.program}: ${err.message}`, true);
    throw err;
  }
}

function exit(code: number, text: string, toStderr = false): never {
  (toStderr ? process.stderr : process.stdout).write(`${text}\n`);
  process.exit(code);
}
