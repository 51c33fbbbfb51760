// The shipped agent for memory benches: the binary `npm run build` makes, run against a real hub.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort } from "../test/support/ports.ts";
import { Proc } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";

const ROOT = resolve(import.meta.dir, "..");

/**
 * Builds the x64 agent exactly as `npm run build` does (scripts/build.ts, the pinned runtime, no
 * archive or .deb) into `outDir`, unless `given` names a binary already built; returns its path.
 */
export function shippedAgent(outDir: string, given?: string): string {
  if (given) {
    if (!existsSync(given)) throw new Error(`--binary ${given}: no such file`);
    return resolve(given);
  }
  const cmd = [
    process.execPath,
    "scripts/build.ts",
    "--out",
    outDir,
    "--target",
    "linux-x64",
    "--component",
    "agent",
    "--skip",
    "archive,deb",
  ];
  const r = Bun.spawnSync(cmd, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr}${r.stdout}`);
  return join(outDir, "novacron-agent-linux-x64");
}

/** Proportional set size of a process in bytes (its share of pages it shares with others), or undefined. */
export function pssOf(pid: number): number | undefined {
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    return Number(/^Pss:\s+(\d+) kB/m.exec(t)?.[1] ?? Number.NaN) * 1024;
  } catch {
    return undefined;
  }
}

/** One running agent with its local API. */
export interface RunningAgent {
  proc: Proc;
  apiUrl: string;
  nodeId: string;
}

/** Starts `binary run` with 1 s sampling, connected to `hub` when given; waits until it is connected. */
export async function runAgent(o: {
  binary: string[];
  data: string;
  nodeId: string;
  hub?: { url: string; joinToken: string };
  env?: Record<string, string>;
  args?: string[];
}): Promise<RunningAgent> {
  const apiUrl = `http://127.0.0.1:${freePort()}`;
  const args = ["run", "--data", o.data, "--node-id", o.nodeId, "--sample-interval", "1s"];
  args.push("--api", apiUrl.slice("http://".length));
  if (o.hub) args.push("--hub", o.hub.url, "--join-token", o.hub.joinToken);
  const proc = new Proc(o.nodeId, [...o.binary, ...args, ...(o.args ?? [])], o.env ?? {});
  proc.start();
  await proc.waitForLine(/local API listening/, 60_000);
  if (o.hub) {
    await waitFor(
      async () => ((await (await fetch(`${apiUrl}/v1/status`)).json()) as { connected: boolean }).connected,
      { what: `${o.nodeId} connected`, timeoutMs: 60_000 },
    );
  }
  return { proc, apiUrl, nodeId: o.nodeId };
}

/** Least-squares slope of y over x (both arrays of the same length). */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}
