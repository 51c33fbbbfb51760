// Process plumbing for tasks: /proc identity (pid + start time + boot id), group signals, spawn and adoption.
import { accessSync, constants, readdirSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { Clock, TimerHandle } from "../../shared/clock.ts";
import type { AllocSpec } from "../../shared/workload/index.ts";

/** How a task's process ended; `known` is false for an adopted process (not our child: no wait status). */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
  known: boolean;
}

/** A task's process, started by us or re-adopted after an agent restart. */
export interface ProcessHandle {
  readonly pid: number;
  /** /proc/<pid>/stat field 22 (clock ticks since boot): with the boot id, what makes a pid unique. */
  readonly startTime: number;
  readonly adopted: boolean;
  /** Resolves once, when the process is gone. */
  readonly exited: Promise<ExitInfo>;
  /** Stops watching (agent shutdown): the process keeps running and the handle's exit is ignored. */
  detach(): void;
}

/** The fields of /proc/<pid>/stat that tasks need, or undefined if there is no such process. */
export function readProcStat(
  pid: number,
): { state: string; pgid: number; sid: number; startTime: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: the fields after it start after the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const state = rest[0];
  const pgid = Number(rest[2]);
  const sid = Number(rest[3]);
  const startTime = Number(rest[19]);
  if (!state || !Number.isFinite(startTime)) return undefined;
  return { state, pgid, sid, startTime };
}

/** The environment variable that carries a start's intent id into the task's process. */
export const LAUNCH_ENV = "NOVACRON_LAUNCH";

/**
 * The process a start with intent `launchId` created, if it is alive: a session leader (tasks start
 * in their own session; their children inherit the variable but not the leadership) whose
 * environment holds NOVACRON_LAUNCH=<launchId>. Its pid and start time are then its identity, as for
 * any task. Reads /proc only when an agent restarts after a crash within a start.
 */
export function findLaunched(launchId: string): { pid: number; startTime: number } | undefined {
  const needle = `${LAUNCH_ENV}=${launchId}`;
  let best: { pid: number; startTime: number } | undefined;
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return undefined;
  }
  for (const name of names) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    const st = readProcStat(pid);
    if (!st || st.sid !== pid || st.state === "Z" || st.state === "X") continue;
    let env: string;
    try {
      env = readFileSync(`/proc/${pid}/environ`, "latin1");
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    if (!env.split("\0").includes(needle)) continue;
    if (!best || st.startTime < best.startTime) best = { pid, startTime: st.startTime };
  }
  return best;
}

/** True if `pid` is a live (not zombie, not dead) process that started at `startTime`. */
export function isSameProcess(pid: number, startTime: number): boolean {
  const st = readProcStat(pid);
  return st !== undefined && st.startTime === startTime && st.state !== "Z" && st.state !== "X";
}

/** This boot's id: a pid and start time from an earlier boot must never match a process of this one. */
export function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "latin1").trim();
  } catch {
    return "unknown";
  }
}

/** Sends `signal` to the process group `pgid` (our tasks lead their own group); false if it is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!(pgid > 1)) return false; // never -1 or -0: that would signal everything we may signal
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGKILLs what is left of a task's process group after its leader `pgid` ended. Safe against pid
 * reuse: a number still in use as a group id is never handed to a new process, so while members
 * remain the group is ours; a live process that now holds the number is a stranger and is spared.
 */
export function killGroupRemains(pgid: number): void {
  const st = readProcStat(pgid);
  if (st && st.state !== "Z" && st.state !== "X") return;
  signalGroup(pgid, "SIGKILL");
}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * A task's environment: a minimal base (PATH, HOME, LANG from the agent, else defaults; never the
 * agent's whole environment), where the task is (NOVACRON_ALLOC, NOVACRON_WORKLOAD,
 * NOVACRON_TASK_DIR), then the spec's env over both.
 */
export function taskEnv(
  agentEnv: Record<string, string | undefined>,
  alloc: AllocSpec,
  taskDir: string,
): Record<string, string> {
  return {
    PATH: agentEnv.PATH || DEFAULT_PATH,
    HOME: agentEnv.HOME || "/",
    LANG: agentEnv.LANG || "C.UTF-8",
    NOVACRON_ALLOC: alloc.id,
    NOVACRON_WORKLOAD: alloc.workload,
    NOVACRON_TASK_DIR: taskDir,
    ...alloc.spec.env,
  };
}

/** Why a task could not start, worded for the hub: `cannot start "/no/such/bin": no such file or directory`. */
export class StartError extends Error {
  readonly code = "TASK_START";
  constructor(command: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot start ${JSON.stringify(command)}: ${reason}`, options);
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  ENOEXEC: "exec format error",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  E2BIG: "argument list too long",
  ENOMEM: "out of memory",
  EAGAIN: "resource temporarily unavailable",
};

/** The errno of `err` in words, else its message. */
export function errnoText(err: unknown): string {
  const code = (err as { code?: string } | null)?.code;
  return (code && ERRNO_TEXT[code]) || (err as Error)?.message || String(err);
}

/**
 * The absolute program path for `command`: a name is looked up on the task's PATH, a relative path
 * is taken from its cwd. Checks the cwd too, because posix_spawn blames the program for a bad cwd.
 */
export function resolveCommand(command: string, env: Record<string, string>, cwd: string): string {
  try {
    if (!statSync(cwd).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
  } catch (err) {
    throw new StartError(command, `working directory ${JSON.stringify(cwd)}: ${errnoText(err)}`, {
      cause: err,
    });
  }
  if (command.includes("/")) {
    const path = isAbsolute(command) ? command : resolve(cwd, command);
    try {
      accessSync(path, constants.X_OK);
    } catch (err) {
      throw new StartError(command, errnoText(err), { cause: err });
    }
    return path;
  }
  const found = Bun.which(command, { PATH: env.PATH ?? DEFAULT_PATH, cwd });
  if (!found) throw new StartError(command, "not found in PATH");
  return found;
}

/**
 * Starts `argv` in a new session (setsid: its own process group, so it survives the agent and is
 * signalled as a group), with stdout and stderr on `outputFd` (an append-mode log file the child
 * holds itself, so its output needs no agent). With `cgroup`, the child is born inside it.
 */
export function spawnDetached(opts: {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  outputFd: number;
  cgroup?: string;
}): ProcessHandle {
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn(opts.argv, {
      cwd: opts.cwd,
      env: opts.env,
      stdin: "ignore",
      stdout: opts.outputFd,
      stderr: opts.outputFd,
      detached: true,
      ...(opts.cgroup ? { cgroup: opts.cgroup } : {}),
    });
  } catch (err) {
    throw new StartError(opts.argv[0] ?? "", errnoText(err), { cause: err });
  }
  const child = proc;
  const pid = child.pid;
  return {
    pid,
    // Read at once: the child exists (at worst as our unreaped zombie) until its exit is collected.
    startTime: readProcStat(pid)?.startTime ?? 0,
    adopted: false,
    exited: child.exited.then(() => ({
      code: child.signalCode ? null : child.exitCode,
      signal: child.signalCode === null ? null : String(child.signalCode),
      known: true,
    })),
    detach: () => child.unref(),
  };
}

/** Watches a process that is not our child (left by an earlier agent) by polling /proc every `pollMs`. */
export function adoptProcess(pid: number, startTime: number, pollMs: number, clock: Clock): ProcessHandle {
  let timer: TimerHandle | undefined;
  const exited = new Promise<ExitInfo>((done) => {
    timer = clock.setInterval(() => {
      if (isSameProcess(pid, startTime)) return;
      clock.clearInterval(timer);
      done({ code: null, signal: null, known: false });
    }, pollMs);
  });
  return { pid, startTime, adopted: true, exited, detach: () => clock.clearInterval(timer) };
}

/** How an exit reads in a status message. */
export function describeExit(exit: ExitInfo): string {
  if (!exit.known) return "exited while adopted; exit status unknown";
  if (exit.signal) return `killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}

/** A file-system-safe directory name for an alloc id (ids come from the hub). */
export function allocDirName(alloc: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(alloc)) return alloc;
  return `x-${new Bun.CryptoHasher("sha256").update(alloc).digest("hex").slice(0, 32)}`;
}
