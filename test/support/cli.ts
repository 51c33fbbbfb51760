// Runs the `novacron` CLI as a child process, the way an operator or a script does.
import { resolve } from "node:path";
import { tempDir } from "./processes.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** What one run printed and how it exited. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws with the output when it is not). */
  json<T = Record<string, unknown>>(): T;
}

/** Options of one run. */
export interface CliRunOptions {
  /** Hub URL and token, given as NOVACRON_HUB / NOVACRON_TOKEN (leave out to test other sources). */
  hub?: string;
  token?: string;
  /** More environment; HOME is a fresh empty directory unless set here. */
  env?: Record<string, string>;
  /** Text on stdin (otherwise stdin is empty). */
  stdin?: string;
  /** The program: `bun cli/main.ts` by default, or a compiled binary. */
  command?: string[];
}

/** Runs `novacron ARGS` with a clean environment (no NOVACRON_* from the caller, an empty HOME). */
export async function runCli(args: string[], opts: CliRunOptions = {}): Promise<CliResult> {
  using home = tempDir("novacron-cli-home-");
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("NOVACRON_") && k !== "XDG_CONFIG_HOME") env[k] = v;
  }
  env.HOME = home.path;
  if (opts.hub !== undefined) env.NOVACRON_HUB = opts.hub;
  if (opts.token !== undefined) env.NOVACRON_TOKEN = opts.token;
  Object.assign(env, opts.env ?? {});
  const proc = Bun.spawn([...(opts.command ?? [process.execPath, "cli/main.ts"]), ...args], {
    cwd: ROOT,
    env,
    stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return {
    code,
    stdout,
    stderr,
    json<T>() {
      try {
        return JSON.parse(stdout) as T;
      } catch {
        throw new Error(`not JSON (exit ${code}):\n${stdout}\nstderr:\n${stderr}`);
      }
    },
  };
}
