// npm start: a hub on 127.0.0.1:8091 and one local agent joined to it, data under .novacron/.
import type { Subprocess } from "bun";
import { existsSync, readFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const data = process.env.NOVACRON_START_DATA ?? join(root, ".novacron");
const hubPort = Number(process.env.NOVACRON_START_HUB_PORT ?? 8091);
// Without NOVACRON_START_AGENT_API the agent picks its local API port itself (8080, or the next free one).
const agentApiFlag = process.env.NOVACRON_START_AGENT_API;
const bun = process.execPath;

/** Starts a process whose log lines are prefixed with its name; `onLine` sees each line. */
function spawn(
  name: string,
  args: string[],
  onLine: (line: string) => void = () => {},
): Subprocess<"ignore", "inherit", "pipe"> {
  const proc = Bun.spawn([bun, ...args], { cwd: root, stdin: "ignore", stdout: "inherit", stderr: "pipe" });
  void (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stderr) {
      buf += decoder.decode(chunk, { stream: true });
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        process.stderr.write(`${name} | ${line}\n`);
        onLine(line);
      }
    }
  })();
  return proc;
}

/** This machine's first non-loopback IPv4 address: what another machine on the network likely reaches. */
function lanAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return undefined;
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
  const nodeId = hostname().replace(/[^A-Za-z0-9._-]/g, "-") || "local";
  let agentApi = agentApiFlag;
  const agentProc = spawn(
    "agent",
    [
      "agent/main.ts",
      "run",
      "--data",
      join(data, "agent"),
      "--hub",
      `ws://127.0.0.1:${hubPort}`,
      "--join-token",
      joinToken,
      ...(hubKey ? ["--hub-key", hubKey] : []),
      ...(agentApiFlag ? ["--api", agentApiFlag] : []),
      "--node-id",
      nodeId,
    ],
    (line) => {
      const m = /local API listening url=http:\/\/(\S+)/.exec(line);
      if (m && !agentApi) agentApi = m[1];
    },
  );
  agent = agentProc;
  for (let i = 0; i < 100 && !agentApi && agentProc.exitCode === null; i++) await Bun.sleep(100);
  if (!agentApi) throw new Error("the agent did not say where its local API listens (see its log above)");
  await waitHttp(`http://${agentApi}/healthz`, agentProc, "the agent");
  const hubUrl = `http://127.0.0.1:${hubPort}`;
  const keyFlag = hubKey ? ` --hub-key ${hubKey}` : "";
  const lan = lanAddress() ?? "<this-host>";
  process.stdout.write(`
  NovaCron Edge is running.

  Hub            ${hubUrl}   (agents connect to ws://127.0.0.1:${hubPort}/v1/agent)
  Dashboard      ${hubUrl}/ui/  (paste the admin token below to sign in)
  Operator API   ${hubUrl}/api/v1/  (bearer token below)
  Admin token    ${adminToken}
  Hub key        ${hubKey}   (agents pin it with --hub-key)
  Local agent    http://${agentApi}/v1/status
  Data           ${data}

  Try:
    curl -H "Authorization: Bearer ${adminToken}" ${hubUrl}/api/v1/nodes

  Another agent on this machine (run from this checkout; its local API takes the next free port):
    npx novacron-agent run --data ${join(data, "agent-2")} --node-id ${nodeId}-2 \\
      --hub ws://127.0.0.1:${hubPort} --join-token ${joinToken}${keyFlag}

  An agent on another machine: this hub listens on 127.0.0.1 only. Stop it (Ctrl-C) and start the
  hub on every interface instead, from this checkout:
    npx novacron-hub serve --data ${join(data, "hub")} --listen 0.0.0.0:${hubPort}
  then on the other machine, from a checkout after npm install (or with the novacron-agent binary
  from npm run build, without "npx"), with this machine's address as the other machine sees it:
    npx novacron-agent run --data .novacron/agent --hub ws://${lan}:${hubPort} \\
      --join-token ${joinToken}${keyFlag}

  Ctrl-C stops both.
`);
  const first = await Promise.race([hub.exited.then(() => "hub"), agentProc.exited.then(() => "agent")]);
  console.error(`the ${first} exited; stopping`);
  await stopAll(1);
} catch (err) {
  console.error(`npm start: ${(err as Error).message}`);
  await stopAll(1);
}
