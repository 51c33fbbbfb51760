// One-line, journald-friendly logger: `LEVEL component message key=value ...` on stderr.

export type LogLevel = "debug" | "info" | "warn" | "error";
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
// sd-daemon priority prefixes, so journald files each line under the right level.
const SD_PREFIX: Record<LogLevel, string> = { debug: "<7>", info: "<6>", warn: "<4>", error: "<3>" };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
  setLevel(level: LogLevel): void;
}

function formatValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === "string") return /^[\w./:@-]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? "undefined";
}

/** Creates a logger writing to stderr (or `write`), with a shared, changeable level. */
export function createLogger(
  component: string,
  opts: { level?: LogLevel; write?: (line: string) => void; journald?: boolean } = {},
): Logger {
  const state = { level: opts.level ?? "info" };
  const journald = opts.journald ?? process.env.JOURNAL_STREAM !== undefined;
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const make = (name: string): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
      if (RANK[level] < RANK[state.level]) return;
      let line = journald
        ? `${SD_PREFIX[level]}${name}: ${msg}`
        : `${new Date().toISOString()} ${level.toUpperCase()} ${name}: ${msg}`;
      if (fields)
        for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${formatValue(v)}`;
      write(line);
    };
    return {
      debug: (m, f) => emit("debug", m, f),
      info: (m, f) => emit("info", m, f),
      warn: (m, f) => emit("warn", m, f),
      error: (m, f) => emit("error", m, f),
      child: (c) => make(`${name}.${c}`),
      setLevel: (l) => {
        state.level = l;
      },
    };
  };
  return make(component);
}

/**
 * Rate-limits repeated log lines: each key logs at once the first time, then at most once per
 * interval, and that line says how many like it were held back since the last one (`held_back`,
 * `since_s`). A loop that fails forever costs one line a minute, not one per attempt.
 */
export class LogLimiter {
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #last = new Map<string, { at: number; held: number }>();

  constructor(log: Logger, opts: { intervalMs?: number; now?: () => number; maxKeys?: number } = {}) {
    this.#log = log;
    this.#intervalMs = opts.intervalMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
    this.#maxKeys = opts.maxKeys ?? 10_000;
  }

  info(key: string, msg: string, fields?: Record<string, unknown>): void {
    this.#emit("info", key, msg, fields);
  }
  warn(key: string, msg: string, fields?: Record<string, unknown>): void {
    this.#emit("warn", key, msg, fields);
  }
  error(key: string, msg: string, fields?: Record<string, unknown>): void {
    this.#emit("error", key, msg, fields);
  }

  #emit(level: "info" | "warn" | "error", key: string, msg: string, fields?: Record<string, unknown>): void {
    const now = this.#now();
    const last = this.#last.get(key);
    if (last && now - last.at < this.#intervalMs) {
      last.held += 1;
      return;
    }
    const summary = last?.held
      ? { ...fields, held_back: last.held, since_s: Math.round((now - last.at) / 1000) }
      : fields;
    this.#log[level](msg, summary);
    this.#last.delete(key); // re-inserted last: the map's first key is the one logged longest ago
    this.#last.set(key, { at: now, held: 0 });
    if (this.#last.size > this.#maxKeys) this.#last.delete(this.#last.keys().next().value!);
  }
}
