// How long one `novacron` command takes, start to exit, from a checkout and as the compiled binary.
//
//   bun bench/cli.ts [--runs 15] [--no-binary]
//
// A real hub with two real agents and one running workload. Each command runs --runs times, one at a
// time, as a new process (the way an operator or a script runs it); wall time from spawn to exit.
import { statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startAgent, startHub, tempDir } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values } = parseArgs({
  options: { runs: { type: "string", default: "15" }, "no-binary": { type: "boolean", default: false } },
});
const runs = Number(values.runs);
printMachine(machineInfo());

using dir = tempDir("novacron-bench-cli-");
await using hub = await startHub({ data: join(dir.path, "hub") });
await using a = await startAgent({
  data: join(dir.path, "a"),
  nodeId: "gw-a",
  hub: hub.wsUrl,
  joinToken: hub.joinToken,
});
await using b = await startAgent({
  data: join(dir.path, "b"),
  nodeId: "gw-b",
  hub: hub.wsUrl,
  joinToken: hub.joinToken,
});
const spec = join(dir.path, "bench.yaml");
writeFileSync(spec, 'name: bench\ndriver: exec\ncommand: /bin/sleep\nargs: ["3600"]\nnodes: [gw-a]\n');
await hub.api("/api/v1/workloads", {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({
    name: "bench",
    driver: "exec",
    command: "/bin/sleep",
    args: ["3600"],
    nodes: ["gw-a"],
  }),
});
await waitFor(
  async () =>
    (await hub.api<{ allocs: { status: string }[] }>("/api/v1/workloads/bench")).body.allocs.some(
      (x) => x.status === "running",
    ),
  { timeoutMs: 60_000, what: "the workload to run" },
);
void a;
void b;

const runners: [string, string[]][] = [["bun cli/main.ts", [process.execPath, join(ROOT, "cli/main.ts")]]];
if (!values["no-binary"]) {
  const out = join(dir.path, "dist");
  const build = Bun.spawnSync(
    [process.execPath, "scripts/build.ts", "--out", out, "--target", "linux-x64", "--component", "cli"],
    { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
  );
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
  const bin = join(out, "novacron-linux-x64");
  console.log(`binary:  ${bin.replace(`${dir.path}/`, "")}, ${(statSync(bin).size / 1e6).toFixed(1)} MB`);
  runners.push(["novacron-linux-x64", [bin]]);
}

const commands: [string[], number][] = [
  [["--version"], 0],
  [["nodes", "--json"], 0],
  [["workload", "show", "bench"], 0],
  [["apply", "-f", spec.replace("bench.yaml", "other.yaml")], 5],
  [["top", "--once"], 0],
];
writeFileSync(join(dir.path, "other.yaml"), "name: other\ndriver: exec\ncommand: /bin/true\nreplicas: 2\n");

const env = { ...process.env, HOME: dir.path, NOVACRON_HUB: hub.url, NOVACRON_TOKEN: hub.adminToken };
const rows: (string | number)[][] = [["command", "runner", "runs", "p50 ms", "p90 ms", "max ms"]];
for (const [args, expected] of commands) {
  for (const [name, cmd] of runners) {
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const p = Bun.spawn([...cmd, ...args], { env, stdout: "ignore", stderr: "pipe" });
      const code = await p.exited;
      ms.push(performance.now() - t0);
      if (code !== expected)
        throw new Error(`${name} ${args.join(" ")} exited ${code}: ${await new Response(p.stderr).text()}`);
    }
    ms.sort((x, y) => x - y);
    rows.push([
      args.join(" ").replace(dir.path, "DIR"),
      name,
      runs,
      pct(ms, 0.5).toFixed(0),
      pct(ms, 0.9).toFixed(0),
      ms.at(-1)!.toFixed(0),
    ]);
  }
}
console.log(`\n${table(rows)}`);
