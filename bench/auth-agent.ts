// Agent CPU with authenticated sessions against a build without them, side by side in one run.
//
//   git worktree add /tmp/nc-baseline 677ef5f && (cd /tmp/nc-baseline && npm install --no-audit --no-fund)
//   bun bench/auth-agent.ts --baseline /tmp/nc-baseline [--seconds 300]
//
// Starts two hubs and two agents at once, all real processes on loopback WebSockets: this checkout's
// (every frame sealed, a handshake per session) and the baseline's (the last build before sessions,
// frames in clear). Both agents sample every second with their default batch and heartbeat intervals.
// After a 20 s warm-up, each agent's CPU (utime+stime of the process and its waited children, from
// /proc) is read over --seconds; the figures are % of one core, and the ratio is this build's over the
// baseline's. Run it on an otherwise quiet machine: the two pairs share it equally.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../test/support/ports.ts";
import { machineInfo, printMachine } from "./_machine.ts";
import { CLK_TCK, cpuTicksOf, memoryOf } from "./_proc-stats.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: { baseline: { type: "string" }, seconds: { type: "string", default: "300" } },
});
if (!opts.baseline) throw new Error("--baseline DIR (a checkout of the build to compare with) is required");
const SECONDS = Number(opts.seconds);
const bun = process.execPath;

interface Pair {
  name: string;
  hub: ReturnType<typeof Bun.spawn>;
  agent: ReturnType<typeof Bun.spawn>;
  api: string;
}

async function start(name: string, root: string, dir: string): Promise<Pair> {
  const hubPort = freePort();
  const apiPort = freePort();
  const quiet = { stdout: "ignore", stderr: "ignore" } as const;
  const hub = Bun.spawn(
    [
      bun,
      "hub/main.ts",
      "serve",
      "--data",
      join(dir, "hub"),
      "--listen",
      `127.0.0.1:${hubPort}`,
      "--join-token",
      "bench-join",
    ],
    { cwd: root, ...quiet, env: { ...process.env, NOVACRON_CONFIG: "" } },
  );
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`http://127.0.0.1:${hubPort}/healthz`).catch(() => undefined))?.ok) break;
    await Bun.sleep(100);
  }
  const agent = Bun.spawn(
    [
      bun,
      "agent/main.ts",
      "run",
      "--data",
      join(dir, "agent"),
      "--hub",
      `ws://127.0.0.1:${hubPort}`,
      "--join-token",
      "bench-join",
      "--node-id",
      `bench-${name}`,
      "--api",
      `127.0.0.1:${apiPort}`,
    ],
    { cwd: root, ...quiet, env: { ...process.env, NOVACRON_CONFIG: "" } },
  );
  const api = `http://127.0.0.1:${apiPort}`;
  for (let i = 0; i < 200; i++) {
    const s = await fetch(`${api}/v1/status`)
      .then((r) => r.json() as Promise<{ connected: boolean }>)
      .catch(() => undefined);
    if (s?.connected) return { name, hub, agent, api };
    await Bun.sleep(100);
  }
  throw new Error(`${name}: the agent did not connect`);
}

const info = machineInfo();
printMachine(info);
const dir = mkdtempSync(join(tmpdir(), "novacron-auth-agent-"));
const pairs = [
  await start("sessions", resolve(import.meta.dir, ".."), join(dir, "new")),
  await start("baseline", resolve(opts.baseline), join(dir, "old")),
];
try {
  await Bun.sleep(20_000);
  const before = pairs.map((p) => cpuTicksOf(p.agent.pid)!);
  const t0 = performance.now();
  await Bun.sleep(SECONDS * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  const pct = pairs.map((p, i) => ((cpuTicksOf(p.agent.pid)! - before[i]!) / CLK_TCK / elapsed) * 100);
  for (const [i, p] of pairs.entries()) {
    const s = (await (await fetch(`${p.api}/v1/status`)).json()) as {
      connected: boolean;
      samples: { produced: number };
    };
    const rss = (memoryOf(p.agent.pid)?.rss ?? 0) / 1048576;
    console.log(
      `${p.name.padEnd(9)} agent CPU ${pct[i]!.toFixed(3)}% of a core over ${elapsed.toFixed(0)} s; RSS at the end ${rss.toFixed(1)} MiB; connected ${s.connected}, produced ${s.samples.produced}`,
    );
  }
  console.log(`ratio sessions/baseline: ${(pct[0]! / pct[1]!).toFixed(3)} (target <= 1.2)`);
} finally {
  for (const p of pairs) {
    p.agent.kill();
    p.hub.kill();
    await Promise.all([p.agent.exited, p.hub.exited]);
  }
  rmSync(dir, { recursive: true, force: true });
}
