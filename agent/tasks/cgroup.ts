// Resource limits through cgroup v2: one child cgroup per alloc under <agent's cgroup>/novacron, where the agent may write.
//
// Layout: <root>/novacron/<alloc> with memory.max and cpu.max. cgroup v2's "no internal processes"
// rule means <root> can hand cpu and memory to its children only while no process sits in <root>
// itself; if enabling them fails with EBUSY, the agent moves itself into the leaf <root>/agent and
// tries again (it never moves processes that are not its own). Under systemd that wants `Delegate=yes`;
// with `DelegateSubgroup=agent` the agent already starts in that leaf and <root> is its parent.
// Whatever fails, tasks run without limits: `enforced` says which, `reason` says why, logged once.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Logger } from "../../shared/log.ts";
import { errnoText } from "./proc.ts";

const LEAF = "agent";
const NEEDED = ["cpu", "memory"];

export interface Resources {
  cpu_millis: number;
  mem_mb: number;
}

/** The agent's cgroup v2 directory: its /proc/self/cgroup "0::" path under the cgroup2 mount. */
export function ownCgroupDir(): string | undefined {
  let mount: string | undefined;
  try {
    for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
      // "... mount-point options - fstype source ..."; the fields after " - " start with the type.
      const [left, right] = line.split(" - ");
      if (right?.startsWith("cgroup2 ")) mount = left?.split(" ")[4];
    }
    const own = readFileSync("/proc/self/cgroup", "utf8")
      .split("\n")
      .find((l) => l.startsWith("0::"));
    if (!mount || own === undefined) return undefined;
    const dir = join(mount, own.slice(3).trim()).replace(/(.)\/$/, "$1");
    return basename(dir) === LEAF ? dirname(dir) : dir;
  } catch {
    return undefined;
  }
}

/** Per-alloc cgroups, probed once; never throws. */
export class Cgroups {
  readonly #log: Logger;
  readonly #root: string | undefined;
  #probed = false;
  #enforced = false;
  #reason = "not probed yet";
  /** clone3(CLONE_INTO_CGROUP) works here; cleared after it fails once (old kernel, no cgroupfs). */
  #bornInside = true;

  constructor(opts: { root?: string; log: Logger }) {
    this.#log = opts.log;
    this.#root = opts.root ?? ownCgroupDir();
  }

  get enforced(): boolean {
    return this.#enforced;
  }

  get reason(): string {
    return this.#reason;
  }

  /** Whether spawns should pass the cgroup to clone3 (else the pid is moved in after the spawn). */
  get bornInside(): boolean {
    return this.#bornInside;
  }

  /** Decides once whether limits can be enforced, preparing <root>/novacron on the way. */
  probe(): boolean {
    if (this.#probed) return this.#enforced;
    this.#probed = true;
    const root = this.#root;
    try {
      if (!root) throw new Error("no cgroup v2 hierarchy is mounted (or /proc/self/cgroup has no v2 entry)");
      const controllers = readWords(join(root, "cgroup.controllers"));
      const missing = NEEDED.filter((c) => !controllers.includes(c));
      if (missing.length > 0)
        throw new Error(
          `${root} offers no ${missing.join("/")} controller (controllers: "${controllers.join(" ")}")`,
        );
      this.#enableForChildren(root, true);
      const base = join(root, "novacron");
      mkdirSync(base, { recursive: true });
      this.#enableForChildren(base, false);
      this.#enforced = true;
      this.#reason = `cgroup v2 limits under ${base}`;
      this.#log.info("task resource limits enforced", { cgroup: base });
    } catch (err) {
      this.#enforced = false;
      this.#reason = (err as Error).message;
      this.#log.warn("task resource limits not enforced; tasks run without them", { reason: this.#reason });
    }
    return this.#enforced;
  }

  #enableForChildren(dir: string, mayMoveSelf: boolean): void {
    const file = join(dir, "cgroup.subtree_control");
    if (NEEDED.every((c) => readWords(file).includes(c))) return;
    try {
      writeFileSync(file, NEEDED.map((c) => `+${c}`).join(" "));
    } catch (err) {
      if ((err as { code?: string }).code !== "EBUSY" || !mayMoveSelf)
        throw new Error(`cannot enable cpu and memory in ${file}: ${errnoText(err)}`);
      // No internal processes: the agent moves itself into a leaf. Other processes in its cgroup are
      // not ours to move; if there are any, the retry fails and tasks run without limits.
      const leaf = join(dir, LEAF);
      try {
        mkdirSync(leaf, { recursive: true });
        writeFileSync(join(leaf, "cgroup.procs"), String(process.pid));
      } catch (err2) {
        throw new Error(`cannot move the agent into ${leaf}: ${errnoText(err2)}`);
      }
      try {
        writeFileSync(file, NEEDED.map((c) => `+${c}`).join(" "));
      } catch (err2) {
        throw new Error(
          `cannot enable cpu and memory in ${file} after moving into ${leaf}: ${errnoText(err2)}`,
        );
      }
      this.#log.info("agent moved into a leaf cgroup so that tasks can have limits", { cgroup: leaf });
    }
  }

  /** The path of the alloc's cgroup with its limits written, or undefined when limits are off. */
  prepare(name: string, res: Resources): string | undefined {
    if (!this.probe()) return undefined;
    const dir = join(this.#root!, "novacron", name);
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "memory.max"), res.mem_mb > 0 ? String(res.mem_mb * 1024 * 1024) : "max");
      writeFileSync(
        join(dir, "cpu.max"),
        res.cpu_millis > 0 ? `${res.cpu_millis * 100} 100000` : "max 100000",
      );
      return dir;
    } catch (err) {
      this.#disable(`cannot write limits in ${dir}: ${errnoText(err)}`);
      return undefined;
    }
  }

  /** After clone3 into `dir` failed: remembers it, so later spawns move the pid in instead. */
  cloneIntoFailed(dir: string, err: unknown): void {
    if (!this.#bornInside) return;
    this.#bornInside = false;
    this.#log.info("cannot start tasks inside their cgroup; moving them in after the start", {
      cgroup: dir,
      error: errnoText(err),
    });
  }

  /** Moves a started process into the alloc's cgroup; false (and limits off, logged once) if it cannot. */
  attach(dir: string, pid: number): boolean {
    try {
      writeFileSync(join(dir, "cgroup.procs"), String(pid));
      return true;
    } catch (err) {
      this.#disable(`cannot move pid ${pid} into ${dir}: ${errnoText(err)}`);
      return false;
    }
  }

  /** Removes the alloc's cgroup (it must be empty; a busy one stays and is retried next time). */
  remove(name: string): void {
    if (!this.#enforced || !this.#root) return;
    const dir = join(this.#root, "novacron", name);
    try {
      if (existsSync(dir)) rmdirSync(dir);
    } catch {
      // Still has a process (a zombie not yet reaped); harmless, and reused if the alloc comes back.
    }
  }

  #disable(reason: string): void {
    if (!this.#enforced) return;
    this.#enforced = false;
    this.#reason = reason;
    this.#log.warn("task resource limits no longer enforced; tasks run without them", { reason });
  }
}

function readWords(path: string): string[] {
  try {
    return readFileSync(path, "utf8").split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}
