// Starting a task's process inside its cgroup, and stopping its process group: SIGTERM, grace, SIGKILL.
import type { Clock } from "../../shared/clock.ts";
import type { Cgroups, Resources } from "./cgroup.ts";
import { type ExitInfo, type ProcessHandle, signalGroup, spawnDetached } from "./proc.ts";

/**
 * Spawns (see spawnDetached) inside the alloc's cgroup when limits are on: born inside it through
 * clone3 where that works, else moved in right after the start. A cgroup problem never stops a task.
 */
export function spawnLimited(
  cgroups: Cgroups,
  name: string,
  resources: Resources,
  opts: { argv: string[]; env: Record<string, string>; cwd: string; outputFd: number },
): ProcessHandle {
  const cgroup = cgroups.prepare(name, resources);
  if (!cgroup) return spawnDetached(opts);
  if (cgroups.bornInside) {
    try {
      return spawnDetached({ ...opts, cgroup });
    } catch (err) {
      const handle = spawnDetached(opts); // throws if the command, not the cgroup, was the problem
      cgroups.cloneIntoFailed(cgroup, err);
      cgroups.attach(cgroup, handle.pid);
      return handle;
    }
  }
  const handle = spawnDetached(opts);
  cgroups.attach(cgroup, handle.pid);
  return handle;
}

/**
 * SIGTERM to the group (and SIGCONT if it is paused: a stopped process acts on TERM only once
 * continued), SIGKILL after `graceMs`. Resolves with the exit, or undefined if none was seen
 * (the process ignored even SIGKILL for `killWaitMs`, or `signal` aborted the wait).
 */
export async function stopGroup(
  handle: ProcessHandle,
  opts: {
    graceMs: number;
    killWaitMs: number;
    paused: boolean;
    clock: Clock;
    signal: AbortSignal;
    onKill?: () => void;
  },
): Promise<ExitInfo | undefined> {
  signalGroup(handle.pid, "SIGTERM");
  if (opts.paused) signalGroup(handle.pid, "SIGCONT");
  const exit = await waitExit(handle, opts.graceMs, opts.clock, opts.signal);
  if (exit || opts.signal.aborted) return exit;
  opts.onKill?.();
  signalGroup(handle.pid, "SIGKILL");
  return waitExit(handle, opts.killWaitMs, opts.clock, opts.signal);
}

/** The exit of `handle` if it comes within `ms` (and before `signal` aborts), else undefined. */
export function waitExit(
  handle: ProcessHandle,
  ms: number,
  clock: Clock,
  signal: AbortSignal,
): Promise<ExitInfo | undefined> {
  return new Promise((done) => {
    const finish = (e: ExitInfo | undefined) => {
      clock.clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      done(e);
    };
    const onAbort = () => finish(undefined);
    const timer = clock.setTimeout(() => finish(undefined), ms);
    signal.addEventListener("abort", onAbort);
    handle.exited.then(finish, () => finish(undefined));
  });
}
