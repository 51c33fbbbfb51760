// npm start: a hub on 127.0.0.1:8091 and one local agent joined to it, data under .novacron/.
import type { Subprocess } from "bun";
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const data = process.env.NOVACRON_START_DATA ?? join(root, ".novacron");
const hubPort = Number(process.env.NOVACRON_START_HUB_PORT ?? 8091);
const agentApi = process.env.NOVACRON_START_AGENT_API ?? "127.0.0.1:8080";
const bun = process.execPath;

function spawn(name: string, args: string[]): Subprocess<"ignore", "inherit", "pipe"> {
  const proc = Bun.spawn([bun, ...args], { cwd: root, stdin: "ignore", stdout: "inherit", stderr: "pipe" });
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr)
      process.stderr.write(`${name} | ${decoder.decode(chunk)}`.replace(/\n(?=.)/g, `\n${name} | `));
  })();
  return proc;
}

async function waitHttp(url: string, proc: Subprocess, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null)
      throw new Error(`${what} exited with code ${proc.exitCode} (see its log above)`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await Bun.sleep(100);
  }
  throw new Error(`${what} did not answer at ${url} within 10 s`);
}

const hub = spawn("hub  ", [
  "hub/main.ts",
  "serve",
  "--data",
  join(data, "hub"),
  "--listen",
  `127.0.0.1:${hubPort}`,
]);
let agent: Subprocess | undefined;
const stopAll = async (code: number) => {
  agent?.kill("SIGTERM");
  hub.kill("SIGTERM");
  await Promise.all([agent?.exited, hub.exited]);
  process.exit(code);
};
process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

try {
  await waitHttp(`http://127.0.0.1:${hubPort}/healthz`, hub, "the hub");
  const token = (name: string) => {
    const path = join(data, "hub", `${name}.token`);
    return existsSync(path) ? readFileSync(path, "utf8").trim() : "";
  };
  const joinToken = token("join");
  const adminToken = token("admin");
  const hubKeyPath = join(data, "hub", "hub.pub");
  const hubKey = existsSync(hubKeyPath) ? readFileSync(hubKeyPath, "utf8").trim() : "";
  agent = spawn("agent", [
    "agent/main.ts",
    "run",
    "--data",
    join(data, "agent"),
    "--hub",
    `ws://127.0.0.1:${hubPort}`,
    "--join-token",
    joinToken,
    ...(hubKey ? ["--hub-key", hubKey] : []),
    "--api",
    agentApi,
    "--node-id",
    hostname().replace(/[^A-Za-z0-9._-]/g, "-") || "local",
  ]);
  await waitHttp(`http://${agentApi}/healthz`, agent, "the agent");
  const hubUrl = `http://127.0.0.1:${hubPort}`;
  process.stdout.write(`
  NovaCron Edge is running.

  Hub            ${hubUrl}   (agents connect to ws://127.0.0.1:${hubPort}/v1/agent)
  Dashboard      ${hubUrl}/  (the operator API for now; the browser dashboard is not built yet)
  Admin token    ${adminToken}
  Hub key        ${hubKey}   (agents pin it with --hub-key)
  Local agent    http://${agentApi}/v1/status
  Data           ${data}

  Try:
    curl -H "Authorization: Bearer ${adminToken}" ${hubUrl}/api/v1/nodes

  Add an agent on another machine (the hub must listen on an address it can reach,
  e.g. bun hub/main.ts serve --listen 0.0.0.0:8091 --data ${join(data, "hub")}):
    novacron-agent run --data /var/lib/novacron --hub ws://<this-host>:${hubPort} \\
      --join-token ${joinToken} --hub-key ${hubKey}

  Ctrl-C stops both.
`);
  const first = await Promise.race([hub.exited.then(() => "hub"), agent.exited.then(() => "agent")]);
  console.error(`the ${first} exited; stopping`);
  await stopAll(1);
} catch (err) {
  console.error(`npm start: ${(err as Error).message}`);
  await stopAll(1);
}
