// Child processes of the chaos soak: logged to files, watched for lines, killed, frozen, and all cleaned up on exit.
import { closeSync, openSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import type { Subprocess } from "bun";

const ROOT = resolve(import.meta.dir, "..");

/** Every child still alive, so that any way out of the soak (Ctrl-C, an error) kills them. */
const live = new Set<ChaosProc>();

/** One long-lived child (hub, agent, broker) that may be started again after it dies. */
export class ChaosProc {
  readonly name: string;
  readonly #cmd: string[];
  readonly #env: Record<string, string>;
  readonly #logFd: number;
  #proc: Subprocess<"ignore", "pipe", "pipe"> | undefined;
  #watchers: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  /** The last lines written, kept for reports of unexpected exits. */
  recent: string[] = [];
  /** Set while the process is stopped with SIGSTOP. */
  frozen = false;
  /** How many times the process was started. */
  starts = 0;
  /** Called once per start when that process exits, with its exit code or the signal that ended it. */
  onExit: (code: number | null, signal: string | null, pid: number) => void = () => {};

  constructor(name: string, cmd: string[], logPath: string, env: Record<string, string> = {}) {
    this.name = name;
    this.#cmd = cmd;
    this.#env = env;
    this.#logFd = openSync(logPath, "a");
  }

  get pid(): number | undefined {
    return this.running ? this.#proc?.pid : undefined;
  }

  get running(): boolean {
    const p = this.#proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Starts the process; `ready` is a log line to wait for (rejects on timeout or an early exit). */
  async start(ready?: RegExp, timeoutMs = 30_000): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    this.frozen = false;
    this.recent = [];
    this.starts += 1;
    const proc = Bun.spawn(this.#cmd, {
      cwd: ROOT,
      env: { ...process.env, NOVACRON_CONFIG: "", ...this.#env },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    this.#proc = proc;
    live.add(this);
    this.#write(`=== ${new Date().toISOString()} start #${this.starts} pid ${proc.pid}\n`);
    const readers = [proc.stdout, proc.stderr].map((s) => this.#read(s));
    void proc.exited.then(async () => {
      await Promise.allSettled(readers);
      if (this.#proc === proc) live.delete(this);
      const sig = proc.signalCode === null ? null : String(proc.signalCode);
      this.#write(
        `=== ${new Date().toISOString()} pid ${proc.pid} exited code=${proc.exitCode} signal=${sig}\n`,
      );
      this.onExit(proc.exitCode, sig, proc.pid);
    });
    if (!ready) return;
    const seen = new Promise<void>((res) => this.#watchers.push({ re: ready, resolve: () => res() }));
    const died = proc.exited.then(() => {
      throw new Error(`${this.name} exited (code ${proc.exitCode}) before logging ${ready}`);
    });
    let timer: Timer | undefined;
    const late = new Promise<never>((_, rej) => {
      timer = setTimeout(
        () => rej(new Error(`${this.name} did not log ${ready} in ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([seen, died, late]);
    } finally {
      clearTimeout(timer);
      this.#watchers = this.#watchers.filter((w) => w.re !== ready);
    }
  }

  /** Waits for a line matching `re` written from now on. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<boolean> {
    return new Promise((res) => {
      const timer = setTimeout(() => {
        this.#watchers = this.#watchers.filter((w) => w !== watcher);
        res(false);
      }, timeoutMs);
      const watcher = {
        re,
        resolve: () => {
          clearTimeout(timer);
          res(true);
        },
      };
      this.#watchers.push(watcher);
    });
  }

  /** Sends a signal to the running process (false when it is not running). */
  signal(sig: NodeJS.Signals): boolean {
    const p = this.#proc;
    if (!p || !this.running) return false;
    try {
      process.kill(p.pid, sig);
    } catch {
      return false;
    }
    if (sig === "SIGSTOP") this.frozen = true;
    if (sig === "SIGCONT") this.frozen = false;
    return true;
  }

  /** Kills with `sig` and waits for the exit (a stopped process is continued first for SIGTERM). */
  async stop(sig: NodeJS.Signals = "SIGKILL", timeoutMs = 10_000): Promise<void> {
    const p = this.#proc;
    if (!p || !this.running) return;
    if (this.frozen && sig !== "SIGKILL") this.signal("SIGCONT");
    this.signal(sig);
    const ok = await Promise.race([p.exited.then(() => true), Bun.sleep(timeoutMs).then(() => false)]);
    if (!ok) {
      this.signal("SIGKILL");
      await p.exited;
    }
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of stream) {
      writeSync(this.#logFd, chunk);
      buf += decoder.decode(chunk, { stream: true });
      let i = buf.indexOf("\n");
      while (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.recent.push(line);
        if (this.recent.length > 60) this.recent.splice(0, this.recent.length - 60);
        for (const w of this.#watchers) {
          const m = w.re.exec(line);
          if (m) w.resolve(m);
        }
        i = buf.indexOf("\n");
      }
    }
  }

  #write(text: string): void {
    try {
      writeSync(this.#logFd, text);
    } catch {}
  }

  /** Closes the log file (after the process is gone). */
  close(): void {
    try {
      closeSync(this.#logFd);
    } catch {}
  }
}

/** Kills every child still alive, at once (SIGKILL also ends a stopped process); safe in an exit handler. */
export function killAllSync(): number {
  let n = 0;
  for (const p of live) {
    if (p.signal("SIGKILL")) n += 1;
  }
  live.clear();
  return n;
}
