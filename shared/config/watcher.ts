// Hot reload: watches the config file, re-resolves on change, and keeps the old config when the new one is bad.
import { type FSWatcher, statSync, watch } from "node:fs";
import { basename, dirname } from "node:path";
import { ConfigError } from "../errors.ts";
import type { ConfigOf, FieldTable } from "./fields.ts";
import { configPathOf, readConfigFile } from "./load.ts";
import { type ConfigInputs, resolveConfig } from "./resolve.ts";

/** The timer functions the watcher needs; inject fakes or short intervals in tests. */
export interface WatcherTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Options of a ConfigWatcher. */
export interface ConfigWatcherOptions<T extends FieldTable> {
  /** The same table, flags and environment the running config came from. */
  readonly inputs: ConfigInputs<T>;
  /** The config in force now. */
  readonly current: ConfigOf<T>;
  /** File to watch; by default the table's `config` field as resolved from flags, environment, default. */
  readonly path?: string;
  /**
   * A valid new config. `changedKeys` are the hot keys that changed and are now in `next`; `restartKeys`
   * changed in the file too but are not hot, so `next` keeps their running values until a restart.
   */
  readonly onChange: (next: ConfigOf<T>, changedKeys: string[], restartKeys: string[]) => void;
  /** An invalid new config; the current one stays in force. */
  readonly onError: (err: ConfigError) => void;
  /** Stat poll period, the fallback for missed fs.watch events (default 2000 ms). */
  readonly pollMs?: number;
  /** Quiet time after the last event before reloading, so a burst of writes reloads once (default 100 ms). */
  readonly debounceMs?: number;
  /** Use fs.watch as well as polling (default true). */
  readonly fsWatch?: boolean;
  readonly timers?: WatcherTimers;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(rb, k) && sameValue(ra[k], rb[k]));
}

/** Identity of the file's current content as far as stat can tell; inode catches editors' write-and-rename. */
function signature(path: string): string {
  const st = statSync(path, { throwIfNoEntry: false });
  return st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : "missing";
}

const unref = (handle: unknown) => (handle as { unref?: () => void } | undefined)?.unref?.();

/** Watches a config file and hands each valid change to `onChange`, each invalid one to `onError`. */
export class ConfigWatcher<T extends FieldTable> {
  #current: ConfigOf<T>;
  readonly #opts: ConfigWatcherOptions<T>;
  readonly #timers: WatcherTimers;
  readonly #where: { path: string; explicit: boolean; from: string };
  #signature: string;
  #fsWatcher: FSWatcher | undefined;
  #poll: unknown;
  #pending: unknown;
  #stopped = false;

  constructor(opts: ConfigWatcherOptions<T>) {
    this.#opts = opts;
    this.#current = opts.current;
    this.#timers = opts.timers ?? globalThis;
    const where =
      opts.path === undefined
        ? configPathOf(opts.inputs)
        : { path: opts.path, explicit: true, from: "the watched path" };
    if (!where || where.path === "") throw new Error("ConfigWatcher: no config file to watch");
    this.#where = where;
    this.#signature = signature(where.path);
    if (opts.fsWatch !== false) this.#watchDirectory();
    // Polling backs up fs.watch, which misses events on some filesystems (NFS, overlay, some editors' saves).
    this.#poll = this.#timers.setInterval(() => this.#check(), opts.pollMs ?? 2000);
    unref(this.#poll);
    // The file may have changed between the caller's read and this watch (the agent starts its
    // modules in between): one reload now compares it with what is in force, and is a no-op if equal.
    this.#schedule();
  }

  /** The config in force. */
  get current(): ConfigOf<T> {
    return this.#current;
  }

  /** Re-reads the file now, e.g. on SIGHUP. */
  reload(): void {
    if (this.#stopped) return;
    // Taken before the read, so a write that lands during the read is seen by the next poll.
    this.#signature = signature(this.#where.path);
    let next: ConfigOf<T>;
    try {
      // Same rule as at start-up: a vanished default file means no file, a vanished named file is an error.
      // The debounce spans the instant in which an editor's save leaves no file at all.
      next = resolveConfig({ ...this.#opts.inputs, file: readConfigFile(this.#where) });
    } catch (err) {
      this.#opts.onError(
        err instanceof ConfigError
          ? err
          : new ConfigError("config", `cannot reload: ${(err as Error).message}`, { cause: err }),
      );
      return;
    }
    const merged: Record<string, unknown> = { ...next };
    const changedKeys: string[] = [];
    const restartKeys: string[] = [];
    const current = this.#current as Record<string, unknown>;
    for (const field of this.#opts.inputs.fields) {
      if (sameValue(current[field.key], merged[field.key])) continue;
      if (field.hot) changedKeys.push(field.key);
      else {
        restartKeys.push(field.key);
        merged[field.key] = current[field.key];
      }
    }
    if (changedKeys.length === 0 && restartKeys.length === 0) return;
    this.#current = Object.freeze(merged) as ConfigOf<T>;
    this.#opts.onChange(this.#current, changedKeys, restartKeys);
  }

  /** Stops watching; safe to call more than once. */
  stop(): void {
    this.#stopped = true;
    this.#fsWatcher?.close();
    this.#fsWatcher = undefined;
    this.#timers.clearInterval(this.#poll);
    if (this.#pending !== undefined) this.#timers.clearTimeout(this.#pending);
    this.#pending = undefined;
  }

  #watchDirectory(): void {
    const name = basename(this.#where.path);
    try {
      // The directory, not the file: editors replace the file (write a temp, rename it over), and a watch on
      // the old inode would go quiet after the first save.
      this.#fsWatcher = watch(dirname(this.#where.path), { persistent: false }, (_event, filename) => {
        // Another name in the directory may be a symlink swap (Kubernetes ConfigMaps), so stat decides.
        if (filename === null || String(filename) === name) this.#schedule();
        else this.#check();
      });
      this.#fsWatcher.on("error", () => {
        this.#fsWatcher?.close();
        this.#fsWatcher = undefined;
      });
    } catch {
      // No directory yet, or no inotify: the poll alone still notices changes.
      this.#fsWatcher = undefined;
    }
  }

  #check(): void {
    if (!this.#stopped && signature(this.#where.path) !== this.#signature) this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#pending !== undefined) this.#timers.clearTimeout(this.#pending);
    this.#pending = this.#timers.setTimeout(() => {
      this.#pending = undefined;
      this.reload();
    }, this.#opts.debounceMs ?? 100);
  }
}
