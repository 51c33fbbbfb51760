// Footprint of the shipped agent binary next to `bun run`: start to first sample, RSS, sizes.
//
//   bun packaging/bench-compiled.ts [--dist dist] [--duration 60] [--starts 7]
//
// Needs `npm run build` first. Start-up: each variant is started --starts times, one at a time,
// against a real hub over WebSocket on loopback; the median is printed. Memory: both run at once
// for 20 s of warm-up plus --duration seconds with 1 s sampling; /proc/PID/status is read once a second.
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    dist: { type: "string", default: "dist" },
    duration: { type: "string", default: "60" },
    starts: { type: "string", default: "7" },
  },
});
const ROOT = resolve(import.meta.dir, "..");
const dist = resolve(ROOT, values.dist);
const durationS = Number(values.duration);
const starts = Number(values.starts);
const version = (await Bun.file(join(ROOT, "package.json")).json()).version as string;
const env = { ...process.env, NOVACRON_CONFIG: "" };

function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

function statusKiB(pid: number, key: string): number {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(text)?.[1] ?? Number.NaN);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const mib = (kib: number) => (kib / 1024).toFixed(1);

const work = mkdtempSync(join(tmpdir(), "novacron-bench-"));
const hubPort = freePort();
const hub = Bun.spawn(
  [
    process.execPath,
    "hub/main.ts",
    "serve",
    "--data",
    join(work, "hub"),
    "--listen",
    `127.0.0.1:${hubPort}`,
  ].concat(["--join-token", "bench", "--admin-token", "bench"]),
  { cwd: ROOT, stdout: "ignore", stderr: "ignore", env },
);
await Bun.sleep(1000);

const variants = [
  { name: "agent, `bun run`", cmd: [process.execPath, "agent/main.ts"] },
  { name: "agent, shipped binary (linux-x64)", cmd: [join(dist, "novacron-agent-linux-x64")] },
];

let runs = 0;
/** Starts one agent; resolves once it reports a first sample and a connection. */
async function startAgent(cmd: string[]) {
  const api = freePort();
  const id = `bench-${runs++}`;
  const spawnedMs = Date.now();
  const proc = Bun.spawn(
    [...cmd, "run", "--data", join(work, id), "--node-id", id, "--hub", `ws://127.0.0.1:${hubPort}`].concat([
      "--join-token",
      "bench",
      "--api",
      `127.0.0.1:${api}`,
    ]),
    { cwd: ROOT, stdout: "ignore", stderr: "ignore", env },
  );
  for (let i = 0; i < 600; i++) {
    try {
      const s = (await (await fetch(`http://127.0.0.1:${api}/v1/status`)).json()) as {
        started_ms: number;
        first_sample_ms: number | null;
      };
      if (s.first_sample_ms !== null) {
        return {
          proc,
          spawnToFirst: s.first_sample_ms - spawnedMs,
          startToFirst: s.first_sample_ms - s.started_ms,
        };
      }
    } catch {}
    await Bun.sleep(10);
  }
  throw new Error(`${cmd.join(" ")} took no first sample`);
}

const startup = new Map<string, { spawn: number[]; start: number[] }>();
for (const v of variants) startup.set(v.name, { spawn: [], start: [] });
for (let i = 0; i < starts; i++) {
  for (const v of variants) {
    const a = await startAgent(v.cmd);
    startup.get(v.name)!.spawn.push(a.spawnToFirst);
    startup.get(v.name)!.start.push(a.startToFirst);
    a.proc.kill("SIGTERM");
    await a.proc.exited;
  }
}

const running = await Promise.all(variants.map(async (v) => ({ v, a: await startAgent(v.cmd) })));
const mem = running.map(() => ({ rss: [] as number[], anon: [] as number[], file: [] as number[] }));
await Bun.sleep(20_000);
for (let t = 0; t < durationS; t++) {
  running.forEach(({ a }, i) => {
    mem[i]!.rss.push(statusKiB(a.proc.pid, "VmRSS"));
    mem[i]!.anon.push(statusKiB(a.proc.pid, "RssAnon"));
    mem[i]!.file.push(statusKiB(a.proc.pid, "RssFile") + statusKiB(a.proc.pid, "RssShmem"));
  });
  await Bun.sleep(1000);
}
for (const { a } of running) a.proc.kill("SIGTERM");
hub.kill("SIGTERM");
await Promise.all([...running.map(({ a }) => a.proc.exited), hub.exited]);
rmSync(work, { recursive: true, force: true });

const size = (name: string) => {
  try {
    return `${(statSync(join(dist, name)).size / 1e6).toFixed(1)} MB`;
  } catch {
    return "not built";
  }
};
console.log(
  `machine: ${navigator.hardwareConcurrency} CPUs; bun ${Bun.version}; ${new Date().toISOString()}`,
);
console.log(`start-up: median of ${starts} starts each; memory: ${durationS} s after 20 s of warm-up\n`);
console.log(
  "| agent | spawn → first sample | process start → first sample | RSS median (MiB) | RSS max | anon | file-backed |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- |");
running.forEach(({ v }, i) => {
  const s = startup.get(v.name)!;
  const m = mem[i]!;
  console.log(
    `| ${v.name} | ${median(s.spawn)} ms | ${median(s.start)} ms | ${mib(median(m.rss))} | ${mib(Math.max(...m.rss))} | ${mib(median(m.anon))} | ${mib(median(m.file))} |`,
  );
});
console.log("\n| artefact | size |\n| --- | --- |");
for (const name of [
  "novacron-agent-linux-x64",
  "novacron-agent-linux-arm64",
  "novacron-agent-linux-x64-musl",
  "novacron-hub-linux-x64",
  `novacron-agent-${version}-linux-x64.tar.xz`,
  `novacron-agent-${version}-linux-arm64.tar.xz`,
  `novacron-agent-${version}-linux-x64-musl.tar.xz`,
  `novacron-hub-${version}-linux-x64.tar.xz`,
  `novacron-agent_${version}_amd64.deb`,
  `novacron-agent_${version}_arm64.deb`,
  `novacron-hub_${version}_amd64.deb`,
]) {
  console.log(`| ${name} | ${size(name)} |`);
}
