// `top`: a live view of the fleet in the terminal, refreshed every second until q or Ctrl-C.
import type { NodeSummary, WorkloadView } from "../api-types.ts";
import type { HubClient } from "../client.ts";
import { defineCommand } from "../command.ts";
import { parseDurationFlag } from "../durations.ts";
import { CliError, EXIT, UsageError } from "../errors.ts";
import { fleetValues } from "../prom-text.ts";
import { jsonText } from "../render.ts";
import { type FleetSnapshot, topFrame } from "../top-frame.ts";

/** Fetches one snapshot: nodes, workloads (for allocations) and /metrics (the newest values). */
export async function snapshot(client: HubClient, now: () => number): Promise<FleetSnapshot> {
  const [{ nodes }, { workloads }, metrics] = await Promise.all([
    client.get<{ nodes: NodeSummary[] }>("/api/v1/nodes"),
    client.get<{ workloads: WorkloadView[] }>("/api/v1/workloads"),
    // /metrics may be switched off or refused: the view then shows the registry without the values.
    client.text("/metrics").catch(() => ""),
  ]);
  return { hub: client.base, at: now(), nodes, workloads, values: fleetValues(metrics) };
}

const CLEAR = "\x1b[H\x1b[2J";
/** The terminal's alternate screen with the cursor hidden, as `top` does; left on exit. */
const ENTER = "\x1b[?1049h\x1b[?25l";
const LEAVE = "\x1b[?25h\x1b[?1049l";

export const topCommand = defineCommand({
  words: ["top"],
  summary: "live fleet view: status, CPU, memory, disk and allocations per node (q or Ctrl-C quits)",
  args: [],
  flags: [
    { name: "--once", help: "print one frame and exit" },
    { name: "--interval", value: "DURATION", help: "time between refreshes (default 1s)" },
  ],
  async run(ctx, p) {
    const interval = parseDurationFlag(p.flags["--interval"], "--interval") ?? 1000;
    if (interval < 100) throw new UsageError("--interval must be at least 100ms", "--interval");
    if (p.switches.has("--once")) {
      const s = await snapshot(ctx.client, ctx.now);
      if (ctx.json) {
        return ctx.out(
          jsonText({
            ...s,
            values: Object.fromEntries([...s.values].map(([k, v]) => [k, Object.fromEntries(v)])),
          }),
        );
      }
      return ctx.out(topFrame(s));
    }
    if (ctx.json) throw new UsageError("--json needs --once (a live view is for a terminal)", "--json");
    await live(ctx, interval);
  },
});

async function live(ctx: Parameters<typeof topCommand.run>[0], interval: number): Promise<void> {
  const { stdin, stdout } = ctx;
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  const onKey = (chunk: Buffer | string) => {
    const text = chunk.toString();
    if (text.includes("q") || text.includes("Q") || text.includes("\x03")) stop();
  };
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  stdin.on("data", onKey);
  stdin.resume();
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  let last: FleetSnapshot | undefined;
  if (stdout.isTTY) stdout.write(ENTER);
  try {
    while (!stopped) {
      try {
        last = await snapshot(ctx.client, ctx.now);
      } catch (err) {
        // Refused tokens end the view; an unreachable hub is shown and retried (it may be restarting).
        if (!(err instanceof CliError) || err.exit !== EXIT.unreachable) throw err;
        last = {
          ...(last ?? { hub: ctx.client.base, nodes: [], workloads: [], values: new Map() }),
          at: ctx.now(),
          error: `${err.message}; retrying`,
        };
      }
      const frame = topFrame(last, {
        live: true,
        ...(stdout.isTTY ? { width: stdout.columns, height: stdout.rows } : {}),
      });
      stdout.write(stdout.isTTY ? `${CLEAR}${frame}\n` : `${frame}\n\n`);
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, interval);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    if (stdout.isTTY) stdout.write(LEAVE);
    stdin.off("data", onKey);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}
