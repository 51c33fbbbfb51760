// Runs the command blocks of a Markdown document the way a reader would, against real processes.
//
// What runs: every fenced block whose language is `sh`, `bash` or `shell`, in document order, each in
// its own `bash` from the checkout's root (`set -eo pipefail`). Other blocks (YAML, output) are prose.
// A block may be preceded by one directive, an HTML comment that Markdown renders as nothing:
//
//   <!-- readme-test: skip (reason) -->                 not run; counted and printed with its reason
//   <!-- readme-test: service ready=URL -->             started in the background (a hub, an agent) and
//   <!-- readme-test: service ready-log="TEXT" -->      waited on: URL answers 2xx, or TEXT is in its output;
//                                                        stopped (SIGTERM to its process group) at the end
//   <!-- readme-test: retry=30s (reason) -->            re-run until it succeeds, for at most that long
//                                                        (what a reader does with "wait until ...")
//   <!-- readme-test: agent-config -->                  before a `yaml` block: the block is an agent config
//                                                        file; it passes when `npx novacron-agent run --config
//                                                        FILE --data DIR` starts with it (then it is stopped)
//
// Substitutions, the only changes made to a block before it runs (placeholders a reader fills in):
//   `HUB`                  → 127.0.0.1 (the hub machine is this machine)
//   `0.0.0.0`              → 127.0.0.1 (nothing listens beyond loopback)
//   `:8091`                → the hub's free port (`:8091` is the hub's default port in the documents)
//   `/var/lib/`            → a fresh temporary directory per document
//   `127.0.0.1:8080`       → the local API address that the document's first agent logged (the agent
//                            picks 8080 or the next free port itself; no flag is added)
//   `JOIN_TOKEN`, `HUB_KEY`→ the hub's join.token and hub.pub, read when a block needs them ("the hub" is
//                            the one whose data directory is /var/lib/novacron-hub, as in the README)
//   `ID`                   → the id of a join token the hub lists (the one the document minted)
//   `ALLOC`                → the id of a running allocation of the workload `web`
//   `$TOKEN`               → exported to every block as the hub's admin token (the document sets it
//                            in one block; each block here is its own shell)
// `curl` runs as `curl -sS --fail-with-body`, so that an HTTP error fails the block as it should fail
// the reader. `bun` is taken off the PATH: the documents promise that Node.js and npm are enough.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { freePort } from "./ports.ts";

const ROOT = resolve(import.meta.dir, "../..");

export type Directive =
  | { kind: "run" }
  | { kind: "skip"; reason: string }
  | { kind: "service"; readyUrl?: string; readyLog?: string }
  | { kind: "retry"; ms: number }
  | { kind: "agent-config" };

export interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
  directive: Directive;
}

const DIRECTIVE = /^<!--\s*readme-test:\s*(.*?)\s*-->$/;

function parseDirective(text: string, where: string): Directive {
  const skip = /^skip\s*\((.+)\)$/s.exec(text);
  if (skip) return { kind: "skip", reason: skip[1]! };
  if (text === "agent-config") return { kind: "agent-config" };
  const retry = /^retry=(\d+)s\b/.exec(text);
  if (retry) return { kind: "retry", ms: Number(retry[1]) * 1000 };
  const service = /^service\s+(?:ready=(\S+)|ready-log="([^"]+)")$/.exec(text);
  if (service) {
    return service[1]
      ? { kind: "service", readyUrl: service[1] }
      : { kind: "service", readyLog: service[2]! };
  }
  throw new Error(
    `${where}: unknown readme-test directive "${text}" (skip (reason), service ready=URL, service ready-log="TEXT", retry=Ns, agent-config)`,
  );
}

/** The command blocks of a Markdown text, with the directive that precedes each. */
export function commandBlocks(text: string, file: string): Block[] {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  let pending: { directive: Directive; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const d = DIRECTIVE.exec(line.trim());
    if (d) {
      pending = { directive: parseDirective(d[1]!, `${file}:${i + 1}`), line: i + 1 };
      continue;
    }
    const fence = /^(```+)\s*([\w-]*)/.exec(line);
    if (fence) {
      const start = i;
      const body: string[] = [];
      for (i++; i < lines.length && !lines[i]!.startsWith(fence[1]!); i++) body.push(lines[i]!);
      const lang = fence[2]!.toLowerCase();
      const directive = pending?.directive;
      if (directive?.kind === "agent-config") {
        if (lang !== "yaml")
          throw new Error(`${file}:${pending!.line}: agent-config stands before a ${lang || "plain"} block`);
        blocks.push({ file, line: start + 1, lang, code: body.join("\n"), directive });
      } else if (["sh", "bash", "shell"].includes(lang)) {
        blocks.push({
          file,
          line: start + 1,
          lang,
          code: body.join("\n"),
          directive: pending?.directive ?? { kind: "run" },
        });
      } else if (pending) {
        throw new Error(
          `${file}:${pending.line}: a readme-test directive stands before a ${lang || "plain"} block`,
        );
      }
      pending = undefined;
      continue;
    }
    if (line.trim() !== "" && pending) {
      throw new Error(
        `${file}:${pending.line}: a readme-test directive must stand right before a command block`,
      );
    }
  }
  return blocks;
}

export interface BlockOutcome {
  block: Block;
  status: "passed" | "skipped" | "failed";
  ms: number;
  detail?: string;
}

interface Service {
  block: Block;
  proc: ReturnType<typeof Bun.spawn>;
  output: string;
}

/** Runs one document's command blocks; services it started are stopped by `stop()`. */
export class DocRun {
  readonly file: string;
  readonly tmp = mkdtempSync(join(tmpdir(), "novacron-doc-"));
  readonly hubPort = freePort();
  readonly outcomes: BlockOutcome[] = [];
  readonly #services: Service[] = [];
  #agentApi: string | undefined;
  /** The local API address each agent service logged, in start order. */
  readonly agentApis: string[] = [];

  constructor(file: string) {
    this.file = file;
  }

  get hubDir(): string {
    return join(this.tmp, "novacron-hub");
  }

  #read(name: string): string {
    const path = join(this.hubDir, name);
    if (!existsSync(path)) throw new Error(`${path} does not exist: no hub was started before this block`);
    return readFileSync(path, "utf8").trim();
  }

  async #api<T>(path: string): Promise<T> {
    const r = await fetch(`http://127.0.0.1:${this.hubPort}${path}`, {
      headers: { authorization: `Bearer ${this.#read("admin.token")}` },
    });
    if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  }

  async #placeholder(name: string): Promise<string> {
    switch (name) {
      case "JOIN_TOKEN":
        return this.#read("join.token");
      case "HUB_KEY":
        return this.#read("hub.pub");
      case "ID": {
        const { tokens } = await this.#api<{ tokens: { id: string; default?: boolean }[] }>(
          "/api/v1/join-tokens",
        );
        const minted = tokens.find((t) => !t.default && t.id !== "default");
        if (!minted)
          throw new Error(`no minted join token to stand for ID (listed: ${JSON.stringify(tokens)})`);
        return minted.id;
      }
      case "ALLOC": {
        const w = await this.#api<{ allocs: { id: string; status: string }[] }>("/api/v1/workloads/web");
        const running = w.allocs.find((a) => a.status === "running");
        if (!running)
          throw new Error(`workload web has no running allocation yet (${JSON.stringify(w.allocs)})`);
        return running.id;
      }
      default:
        throw new Error(`unknown placeholder ${name}`);
    }
  }

  /** The block's text with the placeholders filled in (see the rules at the top of this file). */
  async substitute(text: string): Promise<string> {
    let out = text;
    for (const name of ["JOIN_TOKEN", "HUB_KEY", "ALLOC", "ID"]) {
      const re = new RegExp(`\\b${name}\\b`, "g");
      if (re.test(out)) out = out.replace(re, await this.#placeholder(name));
    }
    if (out.includes("127.0.0.1:8080")) {
      if (!this.#agentApi)
        throw new Error("the block uses the agent's local API, but no agent was started before it");
      out = out.replaceAll("127.0.0.1:8080", this.#agentApi);
    }
    return out
      .replace(/\bHUB\b/g, "127.0.0.1")
      .replaceAll("0.0.0.0", "127.0.0.1")
      .replaceAll(":8091", `:${this.hubPort}`)
      .replaceAll("/var/lib/", `${this.tmp}/`);
  }

  #env(): Record<string, string> {
    const path = (process.env.PATH ?? "")
      .split(delimiter)
      .filter((p) => !p.includes("node_modules") && !p.endsWith(join(".bun", "bin")))
      .join(delimiter);
    const env: Record<string, string> = { ...(process.env as Record<string, string>), PATH: path };
    delete env.NOVACRON_CONFIG;
    // npx keeps a copy of the checkout's bin links per path in its cache, made the first time: a
    // command added to package.json since would be "not found". A cache of this run's own is fresh.
    env.npm_config_cache = join(this.tmp, "npm-cache");
    if (existsSync(join(this.hubDir, "admin.token"))) env.TOKEN = this.#read("admin.token");
    return env;
  }

  #script(code: string): string[] {
    const prelude = 'curl() { command curl -sS --fail-with-body --max-time 30 "$@"; }';
    return ["bash", "-c", `set -eo pipefail\n${prelude}\n${code}`];
  }

  /** Runs the next block; returns its outcome (also kept in `outcomes`). */
  async run(block: Block): Promise<BlockOutcome> {
    const t0 = performance.now();
    const done = (status: BlockOutcome["status"], detail?: string): BlockOutcome => {
      const o: BlockOutcome = { block, status, ms: Math.round(performance.now() - t0) };
      if (detail !== undefined) o.detail = detail;
      this.outcomes.push(o);
      return o;
    };
    const d = block.directive;
    if (d.kind === "skip") return done("skipped", d.reason);
    try {
      if (d.kind === "agent-config") {
        await this.#checkAgentConfig(block);
        return done("passed");
      }
      if (d.kind === "service") {
        await this.#startService(block, await this.substitute(block.code), d);
        return done("passed");
      }
      const deadline = Date.now() + (d.kind === "retry" ? d.ms : 0);
      for (;;) {
        let failure: string;
        try {
          const code = await this.substitute(block.code);
          const proc = Bun.spawn(this.#script(code), {
            cwd: ROOT,
            env: this.#env(),
            stdout: "pipe",
            stderr: "pipe",
          });
          const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
          const [out, err, exit] = await Promise.all([
            new Response(proc.stdout).text(),
            new Response(proc.stderr).text(),
            proc.exited,
          ]);
          clearTimeout(timer);
          if (exit === 0) return done("passed", out);
          failure = `exit code ${exit}\n--- the block as run:\n${code}\n--- stdout:\n${out}\n--- stderr:\n${err}`;
        } catch (err) {
          failure = (err as Error).message;
        }
        if (Date.now() >= deadline) return done("failed", failure);
        await Bun.sleep(500);
      }
    } catch (err) {
      return done("failed", (err as Error).message);
    }
  }

  async #startService(
    block: Block,
    code: string,
    d: Extract<Directive, { kind: "service" }>,
  ): Promise<Service> {
    // setsid: the block's whole process tree (bash, npx, the launcher, bun) is one group to stop.
    const proc = Bun.spawn(["setsid", ...this.#script(code)], {
      cwd: ROOT,
      env: this.#env(),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const service: Service = { block, proc, output: "" };
    this.#services.push(service);
    const decoder = new TextDecoder();
    for (const stream of [proc.stdout, proc.stderr] as ReadableStream<Uint8Array>[]) {
      void (async () => {
        for await (const chunk of stream) service.output += decoder.decode(chunk, { stream: true });
      })();
    }
    const readyUrl = d.readyUrl ? await this.substitute(d.readyUrl) : undefined;
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null)
        throw new Error(
          `the service exited with code ${proc.exitCode}\n--- the block as run:\n${code}\n--- output:\n${service.output}`,
        );
      if (readyUrl) {
        try {
          if ((await fetch(readyUrl)).ok) break;
        } catch {}
      } else if (d.readyLog && service.output.includes(d.readyLog)) break;
      if (Date.now() > deadline)
        throw new Error(
          `the service was not ready within 60 s (${readyUrl ?? `log "${d.readyLog}"`})\n--- the block as run:\n${code}\n--- output:\n${service.output}`,
        );
      await Bun.sleep(100);
    }
    const api = /local API listening url=http:\/\/(\S+)/.exec(service.output);
    if (api && !this.#agentApi) this.#agentApi = api[1]!;
    if (api && block.directive.kind === "service") this.agentApis.push(api[1]!);
    return service;
  }

  // Starts an agent with the block as its config file, as a reader would, and stops it once it runs.
  async #checkAgentConfig(block: Block): Promise<void> {
    const file = join(this.tmp, `agent-config-${block.line}.yaml`);
    writeFileSync(file, await this.substitute(block.code));
    const cmd = `npx novacron-agent run --config ${file} --data ${join(this.tmp, `agent-config-${block.line}`)}`;
    const service = await this.#startService(block, cmd, {
      kind: "service",
      readyLog: "local API listening",
    });
    await stopGroup(service.proc);
  }

  /** The output of the services started so far (for a failure report). */
  serviceLogs(): string {
    return this.#services
      .map((s) => `--- service at ${s.block.file}:${s.block.line}:\n${s.output.slice(-3000)}`)
      .join("\n");
  }

  /** Stops every service (SIGTERM to its process group, SIGKILL after 10 s) and removes the temp dir. */
  async stop(): Promise<void> {
    await Promise.all(this.#services.reverse().map((s) => stopGroup(s.proc)));
    if (!process.env.KEEP_TEST_DIRS) rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** SIGTERM to a service's process group, SIGKILL after 10 s; returns when the whole group is gone. */
async function stopGroup(proc: Service["proc"]): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-proc.pid, sig);
    } catch {}
  };
  signal("SIGTERM");
  const timer = setTimeout(() => signal("SIGKILL"), 10_000);
  await proc.exited;
  // The shell goes first; wait for the rest of its group (npx, the launcher, bun) to be gone too.
  for (let i = 0; i < 220 && groupAlive(proc.pid); i++) await Bun.sleep(50);
  clearTimeout(timer);
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs every command block of a document in order; stops its services at the end. */
export async function runDocument(
  file: string,
  text = readFileSync(resolve(ROOT, file), "utf8"),
): Promise<DocRun> {
  const run = new DocRun(file);
  try {
    for (const block of commandBlocks(text, file)) await run.run(block);
  } finally {
    await run.stop();
  }
  return run;
}
