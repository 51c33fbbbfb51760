// `--help` texts: the program's (commands, global flags, exit codes) and each command's.
import { GLOBAL_FLAGS, usageLine } from "./argv.ts";
import type { Command, FlagSpec } from "./command.ts";
import { DEFAULT_HUB } from "./settings.ts";

function flagLines(flags: readonly FlagSpec[]): string[] {
  const heads = flags.map(
    (f) => `  ${f.short ? `${f.short}, ` : ""}${f.name}${f.value ? ` ${f.value}` : ""}`,
  );
  const width = Math.max(...heads.map((h) => h.length)) + 2;
  return flags.map((f, i) => `${heads[i]!.padEnd(width)}${f.help}`);
}

export const EXIT_CODES_TEXT = `Exit codes:
  0  done
  1  the hub refused the request or failed (not found, invalid spec, 5xx), or a check failed (audit verify)
  2  usage: a bad flag or argument, an unreadable or invalid file, a bad setting, no token
  3  the hub cannot be reached (connection refused, DNS, TLS, timeout)
  4  not authorized: the hub answered 401 (unknown, expired or revoked token) or 403 (role too low)
  5  apply or workload delete showed what it would do and changed nothing (no --yes, or not answered y)`;

/** `novacron --help`. */
export function programHelp(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => usageLine(c).length)) + 2;
  return [
    "Usage: novacron COMMAND [ARGS] [flags]",
    "",
    "Operate a NovaCron hub and its fleet from a terminal or a script.",
    "",
    "Commands:",
    ...commands.map((c) => `  ${usageLine(c).padEnd(width)}${c.summary}`),
    `  ${"completion bash|zsh".padEnd(width)}print a shell completion script`,
    "",
    "Global flags:",
    ...flagLines([...GLOBAL_FLAGS, { name: "--version", help: "print the version and exit" }]),
    "",
    "Settings: a flag beats its environment variable, which beats the config file",
    `(~/.config/novacron/cli.yaml, keys hub, token, ca, timeout). Default hub: ${DEFAULT_HUB}.`,
    "",
    EXIT_CODES_TEXT,
    "",
    "`novacron COMMAND --help` describes one command.",
    "",
  ].join("\n");
}

/** `novacron COMMAND --help`. */
export function commandHelp(c: Command): string {
  return [
    `Usage: novacron ${usageLine(c)}`,
    "",
    c.summary.charAt(0).toUpperCase() + c.summary.slice(1),
    ...(c.description ? ["", c.description] : []),
    ...(c.flags.length > 0 ? ["", "Flags:", ...flagLines(c.flags)] : []),
    "",
    "Global flags:",
    ...flagLines(GLOBAL_FLAGS),
    "",
    EXIT_CODES_TEXT,
    "",
  ].join("\n");
}
