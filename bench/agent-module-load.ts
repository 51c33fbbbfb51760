// What loading each agent module costs in the compiled binary, before it starts: would loading it only when configured save memory?
//
//   bun bench/agent-module-load.ts [--settle 10] [--jit]
//
// Compiles one small program per row, as the shipped agent is compiled (bun build --compile
// --minify), each importing the agent's always-needed parts (config, store, link, API) and then one
// module more, or the whole agent/agent.ts; none starts anything. Runs them at once, with the JIT
// off as the shipped agent runs (--jit: on), and after --settle seconds reads each one's RSS and its
// anonymous and file-backed parts. A module imported only when configured would save its row's Δ.
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Proc, tempDir } from "../test/support/processes.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";
import { memoryOf, mib } from "./_proc-stats.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: { settle: { type: "string", default: "10" }, jit: { type: "boolean", default: false } },
});

const BASE = ["config", "store", "link", "api"];
const ROWS: [string, string[]][] = [
  ["config, store, link, api (always loaded)", BASE],
  ["+ tasks", [...BASE, "tasks"]],
  ["+ stream (pipelines, MQTT ingest)", [...BASE, "stream"]],
  ["+ cache", [...BASE, "cache"]],
  ["+ rules", [...BASE, "rules"]],
  ["+ collect", [...BASE, "collect"]],
  ["the whole agent/agent.ts", ["agent.ts"]],
];

printMachine(machineInfo());
using dir = tempDir("novacron-module-load-");
const procs: Proc[] = [];
try {
  for (const [i, [name, folders]] of ROWS.entries()) {
    const imports = folders.map((f, j) => {
      const path = join(ROOT, "agent", f.endsWith(".ts") ? f : `${f}/index.ts`);
      return `import * as m${j} from ${JSON.stringify(path)};`;
    });
    // Keeping the namespaces reachable stops the bundler from dropping imports it sees no use of.
    const src = `${imports.join("\n")}\n(globalThis as any).keep = [${folders.map((_, j) => `m${j}`).join(", ")}];\nsetInterval(() => {}, 1000);\n`;
    const entry = join(dir.path, `row${i}.ts`);
    await Bun.write(entry, src);
    const out = join(dir.path, `row${i}`);
    const r = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", entry, "--outfile", out], {
      stdout: "pipe",
      stderr: "pipe",
    });
    if (r.exitCode !== 0) throw new Error(`${name}: ${r.stderr}`);
    const p = new Proc(name, [out], opts.jit ? {} : { BUN_JSC_useJIT: "false" });
    p.start();
    procs.push(p);
  }
  await Bun.sleep(Number(opts.settle) * 1000);
  const rows = procs.map((p) => ({ name: p.name, m: memoryOf(p.pid!) }));
  const base = rows[0]!.m!;
  const f = (b: number) => mib(b).toFixed(2);
  const d = (b: number) => `${b >= 0 ? "+" : ""}${mib(b).toFixed(2)}`;
  console.log(`\ncompiled, not started, JIT ${opts.jit ? "on" : "off"}; read after ${opts.settle} s (MiB)`);
  console.log(
    table([
      ["loaded", "RSS", "Δ RSS", "anon", "Δ anon", "file", "Δ file"],
      ...rows.map(({ name, m }) =>
        m
          ? [
              name,
              f(m.rss),
              d(m.rss - base.rss),
              f(m.anon),
              d(m.anon - base.anon),
              f(m.file),
              d(m.file - base.file),
            ]
          : [`${name} (exited)`, "-", "-", "-", "-", "-", "-"],
      ),
    ]),
  );
} finally {
  for (const p of procs) await p.kill("SIGKILL");
}
