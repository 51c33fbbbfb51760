// Health checks of a running task: HTTP GET (2xx/3xx), TCP connect, or a command exiting 0, every interval.
import type { Clock, TimerHandle } from "../../shared/clock.ts";
import type { HealthCheckSpec } from "../../shared/workload/index.ts";
import { errnoText } from "./proc.ts";

export interface ProbeResult {
  ok: boolean;
  detail: string;
}

/** Runs one probe, bounded by the check's timeout_ms; never throws. */
export async function probe(
  check: HealthCheckSpec,
  ctx: { env: Record<string, string>; cwd: string },
): Promise<ProbeResult> {
  try {
    switch (check.type) {
      case "http":
        return await probeHttp(check.url, check.timeout_ms);
      case "tcp":
        return await probeTcp(check.host, check.port, check.timeout_ms);
      case "command":
        return await probeCommand([check.command, ...check.args], check.timeout_ms, ctx);
      default: {
        const never: never = check;
        return { ok: false, detail: `unknown check ${JSON.stringify(never)}` };
      }
    }
  } catch (err) {
    return { ok: false, detail: errnoText(err) };
  }
}

async function probeHttp(url: string, timeoutMs: number): Promise<ProbeResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "manual" });
    await res.body?.cancel();
    return { ok: res.status >= 200 && res.status < 400, detail: `GET ${url}: HTTP ${res.status}` };
  } catch (err) {
    const name = (err as Error).name;
    const why =
      name === "TimeoutError" || name === "AbortError" ? `timed out after ${timeoutMs} ms` : errnoText(err);
    return { ok: false, detail: `GET ${url}: ${why}` };
  }
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  const what = `connect ${host}:${port}`;
  return new Promise((done) => {
    let settled = false;
    const finish = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      done(r);
    };
    const timer = setTimeout(
      () => finish({ ok: false, detail: `${what}: timed out after ${timeoutMs} ms` }),
      timeoutMs,
    );
    Bun.connect({
      hostname: host,
      port,
      socket: { data() {}, open() {}, error() {}, connectError() {} },
    }).then(
      (socket) => {
        socket.end();
        finish({ ok: true, detail: `${what}: connected` });
      },
      (err) => finish({ ok: false, detail: `${what}: ${errnoText(err)}` }),
    );
  });
}

async function probeCommand(
  argv: string[],
  timeoutMs: number,
  ctx: { env: Record<string, string>; cwd: string },
): Promise<ProbeResult> {
  const what = argv.join(" ");
  const proc = Bun.spawn(argv, {
    cwd: ctx.cwd,
    env: ctx.env,
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
  });
  const code = await proc.exited;
  if (proc.signalCode)
    return { ok: false, detail: `${what}: killed by ${proc.signalCode} (timeout ${timeoutMs} ms)` };
  return { ok: code === 0, detail: `${what}: exited with code ${code}` };
}

/**
 * Probes every interval_ms and tracks health: `threshold` consecutive failures make the task
 * unhealthy, one success makes it healthy. `onChange` fires only on a change, not on every probe.
 */
export class HealthMonitor {
  readonly #check: HealthCheckSpec;
  readonly #ctx: { env: Record<string, string>; cwd: string };
  readonly #onChange: (healthy: boolean, detail: string) => void;
  #healthy: boolean | null = null;
  #failures = 0;
  readonly #clock: Clock;
  #timer: TimerHandle | undefined;
  #running = false;

  constructor(
    check: HealthCheckSpec,
    ctx: { env: Record<string, string>; cwd: string },
    onChange: (healthy: boolean, detail: string) => void,
    clock: Clock,
  ) {
    this.#clock = clock;
    this.#check = check;
    this.#ctx = ctx;
    this.#onChange = onChange;
  }

  /** null until the first verdict. */
  get healthy(): boolean | null {
    return this.#healthy;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  /** Stops probing; a probe in flight is ignored when it returns. */
  stop(): void {
    this.#running = false;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = this.#clock.setTimeout(() => void this.#tick(), this.#check.interval_ms);
  }

  async #tick(): Promise<void> {
    const result = await probe(this.#check, this.#ctx);
    if (!this.#running) return;
    if (result.ok) {
      this.#failures = 0;
      if (this.#healthy !== true) {
        this.#healthy = true;
        this.#onChange(true, result.detail);
      }
    } else if (++this.#failures >= this.#check.threshold && this.#healthy !== false) {
      this.#healthy = false;
      this.#onChange(false, `${result.detail} (${this.#failures} consecutive failures)`);
    }
    if (this.#running) this.#schedule();
  }
}
