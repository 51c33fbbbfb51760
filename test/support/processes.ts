// Real hub and agent processes for end-to-end tests, disposable with `await using`.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import type { TlsMaterial } from "../../shared/tls.ts";
import { freePort } from "./ports.ts";
import { waitFor } from "./wait.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** A temp directory removed on dispose. */
export function tempDir(prefix = "novacron-test-"): { path: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    [Symbol.dispose]() {
      if (!process.env.KEEP_TEST_DIRS) rmSync(path, { recursive: true, force: true });
    },
  };
}

/** A child process whose output is captured line by line. */
export class Proc {
  readonly name: string;
  readonly #cmd: string[];
  readonly #env: Record<string, string>;
  #proc: Subprocess<"ignore", "pipe", "pipe"> | undefined;
  lines: string[] = [];

  constructor(name: string, cmd: string[], env: Record<string, string> = {}) {
    this.name = name;
    this.#cmd = cmd;
    this.#env = env;
  }

  start(): void {
    const proc = Bun.spawn(this.#cmd, {
      cwd: ROOT,
      env: { ...process.env, NOVACRON_CONFIG: "", ...this.#env },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    this.#proc = proc;
    for (const stream of [proc.stdout, proc.stderr]) void this.#read(stream);
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of stream) {
      buf += decoder.decode(chunk, { stream: true });
      let i = buf.indexOf("\n");
      while (i >= 0) {
        const line = buf.slice(0, i);
        this.lines.push(line);
        if (process.env.SHOW_LOGS) console.error(`[${this.name}] ${line}`);
        buf = buf.slice(i + 1);
        i = buf.indexOf("\n");
      }
    }
    // A last line without its newline (a message printed just before exit) is a line too.
    if (buf !== "") {
      this.lines.push(buf);
      if (process.env.SHOW_LOGS) console.error(`[${this.name}] ${buf}`);
    }
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  get running(): boolean {
    return this.#proc !== undefined && this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  /** Waits for a log line matching `re` (seen since start or since `from`). */
  async waitForLine(re: RegExp, timeoutMs = 20_000, from = 0): Promise<RegExpExecArray> {
    return waitFor(
      () => {
        for (let i = from; i < this.lines.length; i++) {
          const m = re.exec(this.lines[i]!);
          if (m) return m;
        }
        return undefined;
      },
      { timeoutMs, what: `${this.name} to log ${re} (logs:\n${this.lines.slice(-15).join("\n")})` },
    );
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    const p = this.#proc;
    if (!p || !this.running) return p?.exitCode ?? null;
    p.kill(signal);
    return p.exited;
  }

  async exited(): Promise<number> {
    return this.#proc!.exited;
  }
}

const bun = process.execPath;

export interface HubHandle extends AsyncDisposable {
  proc: Proc;
  port: number;
  url: string;
  wsUrl: string;
  data: string;
  adminToken: string;
  joinToken: string;
  restart(): Promise<void>;
  api<T = unknown>(path: string, init?: RequestInit): Promise<{ status: number; body: T }>;
}

/**
 * Starts `novacron-hub serve` on a free port (kept across restarts). With `apiTls` the hub serves TLS
 * (its --tls-* flags go in `args`): the URLs are https:// and wss://, and api() verifies the hub with it.
 */
export async function startHub(opts: {
  data: string;
  mqtt?: string;
  args?: string[];
  port?: number;
  apiTls?: TlsMaterial;
}): Promise<HubHandle> {
  const port = opts.port ?? freePort();
  const adminToken = "test-admin-token";
  const joinToken = "test-join-token";
  const args = [
    "hub/main.ts",
    "serve",
    "--data",
    opts.data,
    "--listen",
    `127.0.0.1:${port}`,
    "--admin-token",
    adminToken,
    "--join-token",
    joinToken,
    ...(opts.mqtt ? ["--mqtt", opts.mqtt] : []),
    ...(opts.args ?? []),
  ];
  let proc = new Proc("hub", [bun, ...args]);
  const url = `${opts.apiTls ? "https" : "http"}://127.0.0.1:${port}`;
  const boot = async () => {
    proc.start();
    await proc.waitForLine(/hub listening/);
    if (opts.mqtt) await proc.waitForLine(/connected to MQTT broker/);
  };
  await boot();
  const handle: HubHandle = {
    get proc() {
      return proc;
    },
    port,
    url,
    wsUrl: `${opts.apiTls ? "wss" : "ws"}://127.0.0.1:${port}`,
    data: opts.data,
    adminToken,
    joinToken,
    async restart() {
      await proc.kill("SIGKILL");
      proc = new Proc("hub", [bun, ...args]);
      await boot();
    },
    async api<T>(path: string, init: RequestInit = {}) {
      const res = await fetch(`${url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${adminToken}`, ...(init.headers ?? {}) },
        ...(opts.apiTls ? { tls: opts.apiTls } : {}),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {}
      return { status: res.status, body: body as T };
    },
    async [Symbol.asyncDispose]() {
      await proc.kill("SIGTERM");
    },
  };
  return handle;
}

export interface AgentHandle extends AsyncDisposable {
  proc: Proc;
  nodeId: string;
  apiUrl: string;
  data: string;
  restart(): Promise<void>;
  status(): Promise<AgentStatusJson>;
}

export interface AgentStatusJson {
  node_id: string;
  connected: boolean;
  hub: string | null;
  outbox: { pending: number; oldest_ms: number | null; bytes: number };
  samples: {
    produced: number;
    dropped: number;
    downsampled: number;
    staged_ticks: number;
    folded?: number;
    staged_points?: number;
  };
  config: Record<string, unknown>;
  ingest_mqtt: { connected: boolean; messages: number; points: number; bad_payloads: number } | null;
  [k: string]: unknown;
}

/** Starts `novacron-agent run` with its local API on a free port. */
export async function startAgent(opts: {
  data: string;
  nodeId: string;
  hub?: string;
  joinToken?: string;
  args?: string[];
  env?: Record<string, string>;
}): Promise<AgentHandle> {
  const apiPort = freePort();
  const args = [
    "agent/main.ts",
    "run",
    "--data",
    opts.data,
    "--node-id",
    opts.nodeId,
    "--api",
    `127.0.0.1:${apiPort}`,
    ...(opts.hub ? ["--hub", opts.hub] : []),
    ...(opts.joinToken ? ["--join-token", opts.joinToken] : []),
    ...(opts.args ?? []),
  ];
  let proc = new Proc(`agent:${opts.nodeId}`, [bun, ...args], opts.env);
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const boot = async () => {
    proc.start();
    await proc.waitForLine(/local API listening/);
  };
  await boot();
  return {
    get proc() {
      return proc;
    },
    nodeId: opts.nodeId,
    apiUrl,
    data: opts.data,
    async restart() {
      await proc.kill("SIGKILL");
      proc = new Proc(`agent:${opts.nodeId}`, [bun, ...args], opts.env);
      await boot();
    },
    async status() {
      const res = await fetch(`${apiUrl}/v1/status`);
      return (await res.json()) as AgentStatusJson;
    },
    async [Symbol.asyncDispose]() {
      await proc.kill("SIGTERM");
    },
  };
}
