// Packaging tests share one build (x64 and arm64, both programs, fast compression) per test run.
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
export const VERSION: string = (await Bun.file(join(ROOT, "package.json")).json()).version;

export interface Artefacts {
  dir: string;
  /** The build's console output, for failure messages. */
  log: string;
  path(name: string): string;
}

let pending: Promise<Artefacts> | undefined;

const DIST_PREFIX = "novacron-dist-";

/**
 * Removes the build directories of test runs that have ended. `bun test` runs no exit handler,
 * so each run's ~760 MB directory is named after its process and swept by the next run.
 */
function sweepEndedRuns(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(name.slice(DIST_PREFIX.length));
    if (!name.startsWith(DIST_PREFIX) || !Number.isInteger(pid) || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
}

/** Runs `bun scripts/build.ts` once into a temp dir; later calls share the result. */
export function artefacts(): Promise<Artefacts> {
  pending ??= (async () => {
    sweepEndedRuns();
    const dir = join(tmpdir(), `${DIST_PREFIX}${process.pid}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const log = await runBuild(["--out", dir, "--target", "linux-x64,linux-arm64", "--fast"]);
    return { dir, log, path: (name: string) => join(dir, name) };
  })();
  return pending;
}

/** Runs the build script with `args`; returns its output, or throws with it. */
export async function runBuild(args: string[], env: Record<string, string> = {}): Promise<string> {
  const proc = Bun.spawn([process.execPath, "scripts/build.ts", ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`build ${args.join(" ")} failed (${code}):\n${out}${err}`);
  return out + err;
}

/** Runs a command to completion; returns its exit code and output. */
export async function sh(
  cmd: string[],
  opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 120_000,
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, out, err };
}

/** Whether this process runs as root (nspawn, dpkg and lintian-as-root need it). */
export const isRoot = process.getuid?.() === 0;
