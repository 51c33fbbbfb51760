// Runs one command line: finds the command, resolves settings, runs it, and turns errors into exit codes.
import { createInterface } from "node:readline/promises";
import { didYouMean, type EnvVars } from "../shared/config/index.ts";
import { SOFTWARE_VERSION } from "../shared/version.ts";
import { parseCommandLine, settingFlags } from "./argv.ts";
import { HubClient } from "./client.ts";
import type { Command, Ctx } from "./command.ts";
import { COMMANDS } from "./commands/index.ts";
import { bashCompletion, zshCompletion } from "./completion.ts";
import { CliError, EXIT, HubError, UsageError } from "./errors.ts";
import { commandHelp, programHelp } from "./help.ts";
import { resolveSettings } from "./settings.ts";

/** The process around a run: environment and streams (main.ts passes the real ones). */
export interface RunIo {
  readonly env: EnvVars;
  readonly stdin: NodeJS.ReadStream;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly now?: () => number;
}

const GROUPS = new Map<string, Command[]>();
for (const c of COMMANDS) {
  if (c.words.length > 1) GROUPS.set(c.words[0]!, [...(GROUPS.get(c.words[0]!) ?? []), c]);
}

function completion(shell: string | undefined): string {
  if (shell === "bash") return bashCompletion(COMMANDS);
  if (shell === "zsh") return zshCompletion(COMMANDS);
  throw new UsageError(
    `completion needs a shell: bash or zsh${shell ? ` (got ${JSON.stringify(shell)})` : ""}`,
    "SHELL",
  );
}

function unknownCommand(words: readonly string[]): UsageError {
  const first = words[0];
  if (first === undefined) return new UsageError("no command given (see novacron --help)");
  const group = GROUPS.get(first);
  if (group) {
    const subs = group.map((c) => c.words[1]).join(", ");
    const sub = words[1];
    return new UsageError(
      sub === undefined
        ? `"${first}" needs one of: ${subs}`
        : `unknown command "${first} ${sub}" (one of: ${subs})${didYouMean(
            sub,
            group.map((c) => c.words[1]!),
          )}`,
      first,
    );
  }
  const known = [...new Set(COMMANDS.map((c) => c.words[0]!)), "completion", "help"];
  return new UsageError(`unknown command "${first}"${didYouMean(first, known)} (see novacron --help)`, first);
}

/** `novacron __complete nodes|workloads`: the names a shell completes, one a line (for the completion scripts). */
async function completeNames(
  argv: readonly string[],
  io: RunIo,
  out: (text: string) => void,
): Promise<number> {
  const line = parseCommandLine(argv.slice(1), COMMANDS);
  const s = resolveSettings(settingFlags(line.parsed), io.env);
  const client = new HubClient({
    hub: s.hub,
    token: s.token,
    ca: s.ca,
    timeoutMs: Math.min(s.timeout, 3000),
  });
  if (argv[0] === "nodes") {
    const { nodes } = await client.get<{ nodes: { id: string }[] }>("/api/v1/nodes");
    out(nodes.map((n) => n.id).join("\n"));
  } else if (argv[0] === "workloads") {
    const { workloads } = await client.get<{ workloads: { name: string }[] }>("/api/v1/workloads");
    out(workloads.map((w) => w.name).join("\n"));
  } else {
    throw new UsageError("__complete takes nodes or workloads");
  }
  return EXIT.ok;
}

/** Runs `novacron ARGV`; resolves to the exit code. */
export async function run(argv: readonly string[], io: RunIo): Promise<number> {
  const out = (text: string) => void io.stdout.write(`${text}\n`);
  const err = (text: string) => void io.stderr.write(`${text}\n`);
  const wantsJson = argv.includes("--json");
  try {
    if (argv[0] === "--version" || argv[0] === "-v") {
      out(`novacron ${SOFTWARE_VERSION}`);
      return EXIT.ok;
    }
    if (argv.length === 0) {
      err(programHelp(COMMANDS));
      return EXIT.usage;
    }
    if (argv[0] === "--help" || argv[0] === "-h") {
      out(programHelp(COMMANDS));
      return EXIT.ok;
    }
    if (argv[0] === "help") {
      if (argv.length === 1) {
        out(programHelp(COMMANDS));
        return EXIT.ok;
      }
      return run([...argv.slice(1), "--help"], io);
    }
    if (argv[0] === "completion") {
      if (argv.includes("--help") || argv.includes("-h")) {
        out(
          "Usage: novacron completion bash|zsh\n\nPrints a completion script: source <(novacron completion bash)\n",
        );
        return EXIT.ok;
      }
      if (argv.length > 2)
        throw new UsageError(`unexpected argument ${JSON.stringify(argv[2])} for "completion"`);
      out(completion(argv[1]));
      return EXIT.ok;
    }
    if (argv[0] === "__complete") return await completeNames(argv.slice(1), io, out);
    const line = parseCommandLine(argv, COMMANDS);
    const { command, parsed } = line;
    if (!command) {
      if (parsed.switches.has("--help") && line.unknown.length === 0) {
        out(programHelp(COMMANDS));
        return EXIT.ok;
      }
      const group = line.unknown[0] !== undefined ? GROUPS.get(line.unknown[0]) : undefined;
      if (group && parsed.switches.has("--help") && line.unknown.length === 1) {
        out(group.map((c) => commandHelp(c)).join("\n"));
        return EXIT.ok;
      }
      throw unknownCommand(line.unknown);
    }
    if (parsed.switches.has("--help")) {
      out(commandHelp(command));
      return EXIT.ok;
    }
    const settings = resolveSettings(settingFlags(parsed), io.env);
    if (settings.warning) err(`novacron: warning: ${settings.warning}`);
    const client = new HubClient({
      hub: settings.hub,
      token: settings.token,
      tokenFrom: settings.tokenFrom,
      ca: settings.ca,
      timeoutMs: settings.timeout,
    });
    const interactive = io.stdin.isTTY === true && io.stdout.isTTY === true;
    const ctx: Ctx = {
      client,
      json: parsed.switches.has("--json"),
      out,
      err,
      interactive,
      now: io.now ?? Date.now,
      stdin: io.stdin,
      stdout: io.stdout,
      async confirm(question) {
        const rl = createInterface({ input: io.stdin, output: io.stdout });
        try {
          const answer = (await rl.question(question)).trim().toLowerCase();
          return answer === "y" || answer === "yes";
        } finally {
          rl.close();
        }
      },
    };
    await command.run(ctx, parsed);
    return EXIT.ok;
  } catch (e) {
    if (!(e instanceof CliError)) {
      err(`novacron: unexpected error: ${(e as Error).stack ?? String(e)}`);
      return EXIT.refused;
    }
    if (wantsJson) {
      const field = e instanceof UsageError || e instanceof HubError ? e.field : undefined;
      const code = e instanceof HubError ? e.code : e.name;
      err(JSON.stringify({ error: { exit: e.exit, code, message: e.message, ...(field ? { field } : {}) } }));
    } else {
      err(`novacron: ${e.message}`);
    }
    return e.exit;
  }
}
