#!/usr/bin/env node
// Runs the hub, the agent or the CLI from a checkout with the project's own Bun (node_modules), so that a
// machine with only Node.js and npm can use `npx novacron-hub ...`, `npx novacron-agent ...`,
// `npx novacron ...` or `npm run hub -- ...`.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ENTRIES = { hub: "hub/main.ts", agent: "agent/main.ts", cli: "cli/main.ts" };
const PROGRAMS = { hub: "novacron-hub", agent: "novacron-agent", cli: "novacron" };

/** Starts `bun <entry> ...args`, passes signals on, and exits with the child's code. */
export function launch(role, args) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const entry = ENTRIES[role];
  if (!entry) {
    console.error(`novacron: unknown role "${role}"; use hub, agent or cli`);
    process.exit(2);
  }
  const bun = [
    join(root, "node_modules", "bun", "bin", "bun.exe"),
    join(root, "node_modules", ".bin", "bun"),
  ].find((p) => existsSync(p));
  if (!bun) {
    console.error(
      `${PROGRAMS[role]}: Bun is not installed in ${join(root, "node_modules")}; run \`npm install\` in ${root} first`,
    );
    process.exit(1);
  }
  const child = spawn(bun, [join(root, entry), ...args], { stdio: "inherit" });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("error", (err) => {
    console.error(`${PROGRAMS[role]}: could not start ${bun}: ${err.message}`);
    process.exit(1);
  });
  child.on("exit", (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  launch(process.argv[2], process.argv.slice(3));
