// End to end, on a fresh copy of the checkout: `npm start` brings up a hub and a joined agent, its first
// screen's same-machine join command works as printed, Ctrl-C stops everything, and no tracked file changes.
import { expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { freePort } from "../support/ports.ts";
import { tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const ROOT = resolve(import.meta.dir, "../..");

function git(cwd: string, ...args: string[]): string {
  const r = Bun.spawnSync(["git", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/**
 * A fresh clone of the working tree as it is (tracked files, uncommitted changes included), committed in
 * a new repository. node_modules links to this checkout's (installing takes minutes and the network);
 * the link is excluded in .git/info/exclude, as a clone's own node_modules/ directory is by .gitignore.
 */
function freshClone(dir: string): string {
  const clone = join(dir, "clone");
  for (const file of git(ROOT, "ls-files", "-z").split("\0").filter(Boolean)) {
    const from = join(ROOT, file);
    if (!existsSync(from)) continue; // deleted in the working tree
    mkdirSync(dirname(join(clone, file)), { recursive: true });
    cpSync(from, join(clone, file));
  }
  git(clone, "init", "-q");
  git(clone, "add", "-A");
  git(clone, "-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-qm", "fresh");
  symlinkSync(join(ROOT, "node_modules"), join(clone, "node_modules"));
  writeFileSync(join(clone, ".git", "info", "exclude"), "node_modules\n");
  return clone;
}

/** The nodes the hub reports ready. */
async function readyNodes(hubPort: number, token: string): Promise<string[]> {
  const r = await fetch(`http://127.0.0.1:${hubPort}/api/v1/nodes`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const body = (await r.json()) as { nodes: { id: string; status: string }[] };
  return body.nodes.filter((n) => n.status === "ready").map((n) => n.id);
}

/** The environment of a reader with Node.js and npm only: no bun on the PATH. */
function readerEnv(extra: Record<string, string>): Record<string, string> {
  const PATH = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((p) => !p.includes("node_modules") && !p.endsWith(join(".bun", "bin")))
    .join(delimiter);
  const env: Record<string, string> = { ...(process.env as Record<string, string>), PATH, ...extra };
  delete env.NOVACRON_CONFIG;
  return env;
}

class Shell {
  readonly proc: ReturnType<typeof Bun.spawn>;
  out = "";
  constructor(cmd: string, cwd: string, env: Record<string, string>) {
    // setsid: the command's process tree is one group, as a terminal's foreground job is.
    this.proc = Bun.spawn(["setsid", "bash", "-c", cmd], {
      cwd,
      env,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const decoder = new TextDecoder();
    for (const s of [this.proc.stdout, this.proc.stderr] as ReadableStream<Uint8Array>[])
      void (async () => {
        for await (const chunk of s) this.out += decoder.decode(chunk, { stream: true });
      })();
  }
  /** What a terminal's Ctrl-C does: SIGINT to the whole foreground group. */
  signal(sig: NodeJS.Signals): void {
    try {
      process.kill(-this.proc.pid, sig);
    } catch {}
  }
}

test("npm start on a fresh clone: hub and agent joined, both printed join commands work as printed, Ctrl-C stops all, git status stays clean", async () => {
  using dir = tempDir();
  const clone = freshClone(dir.path);
  const hubPort = freePort();
  const env = readerEnv({ NOVACRON_START_HUB_PORT: String(hubPort) });
  const start = new Shell("npm start", clone, env);
  let second: Shell | undefined;
  let hub: Shell | undefined;
  let other: Shell | undefined;
  try {
    await waitFor(() => start.out.includes("Ctrl-C stops both.") || start.proc.exitCode !== null, {
      timeoutMs: 60_000,
      what: "npm start's first screen",
    });
    expect(start.out).toContain("NovaCron Edge is running");
    const token = /Admin token\s+(\S+)/.exec(start.out)![1]!;
    expect(start.out).toContain(`http://127.0.0.1:${hubPort}`);
    // The same-machine command, exactly as printed (a shell continuation joins its two lines).
    const printed = /Another agent on this machine.*\n\s+(npx novacron-agent run [^\n]*\\\n[^\n]*)/.exec(
      start.out,
    );
    expect(printed).not.toBeNull();
    second = new Shell(printed![1]!, clone, env);
    const nodes = await waitFor(
      async () => {
        const ready = await readyNodes(hubPort, token);
        return ready.length === 2 ? ready : undefined;
      },
      { timeoutMs: 30_000, what: `both agents ready at the hub (second agent's output:\n${second.out})` },
    );
    expect(nodes).toHaveLength(2);
    expect(second.out).toMatch(/local API listening url=http:\/\/127\.0\.0\.1:\d+/);
    second.signal("SIGINT");
    start.signal("SIGINT");
    // npm itself answers Ctrl-C with 130, as it does in a terminal; what matters is that both stopped.
    expect([0, 130]).toContain(await start.proc.exited);
    await second.proc.exited;
    expect(start.out).toMatch(/stopped; every sample is in the local store/);
    // Nothing tracked changed, and what npm start wrote (.novacron/) is ignored.
    expect(git(clone, "status", "--porcelain")).toBe("");
    // npm test's checks before the tests themselves (the whole suite is not run from inside it) leave
    // the tree as they found it too.
    const checks = Bun.spawnSync(
      ["bash", "-c", "npm run -s format:check && npm run -s lint && npm run -s typecheck"],
      {
        cwd: clone,
        env,
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    expect(checks.exitCode).toBe(0);
    expect(git(clone, "status", "--porcelain")).toBe("");

    // The other-machine instructions, as printed: the hub again on every interface, then an agent from
    // another checkout reaching it by this machine's address. The other machine's host name (the
    // default node id) is given as NOVACRON_NODE_ID, since here both run on one host.
    const lan = /--hub ws:\/\/(\d+\.\d+\.\d+\.\d+):/.exec(
      start.out.slice(start.out.indexOf("An agent on another machine")),
    );
    if (!lan) {
      console.warn(
        "npm start test: this machine has no non-loopback IPv4 address; the other-machine command was not run",
      );
      return;
    }
    const hubCmd =
      /start the\s+hub on every interface instead, from this checkout:\n\s+(npx novacron-hub serve [^\n]+)/.exec(
        start.out,
      );
    const otherCmd = /(npx novacron-agent run --data \.novacron\/agent [^\n]*\\\n[^\n]*)/.exec(start.out);
    expect(hubCmd).not.toBeNull();
    expect(otherCmd).not.toBeNull();
    hub = new Shell(hubCmd![1]!, clone, env);
    await waitFor(async () => (await fetch(`http://${lan[1]}:${hubPort}/healthz`)).ok, {
      timeoutMs: 30_000,
      what: "the hub on every interface",
    });
    const elsewhere = freshClone(join(dir.path, "other-machine"));
    other = new Shell(otherCmd![1]!, elsewhere, { ...env, NOVACRON_NODE_ID: "other-machine" });
    await waitFor(async () => (await readyNodes(hubPort, token)).includes("other-machine"), {
      timeoutMs: 30_000,
      what: `the other machine's agent ready at the hub (its output:\n${other.out})`,
    });
  } finally {
    for (const sh of [other, hub, second, start]) sh?.signal("SIGKILL");
  }
}, 120_000);
