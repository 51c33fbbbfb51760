// Wire cost of points pushed at sub-second times (timed series, metrics format 2) beside 1 s host sampling.
//
//   bun bench/wire-points.ts [--recording bench/out/wire-recording.json] [--series 4] [--hz 10] [--seed 1]
//
// Replays an hour of this machine's recorded host samples (bench/wire.ts --record writes the
// recording) through a real AgentStore + MetricBuffer, as bench/wire.ts does, with the agent's default
// batch interval, and frames each batch as the link sends it (sealed). Scenarios, in one run:
//   host            the host's 1 s samples alone (every batch must stay format 1, as before timed series)
//   + pushed, timed an application pushing --series series at --hz, each point at its own millisecond
//                   time (100 ms apart plus 0-9 ms of jitter, as a real sender's clock gives)
//   + pushed, exact the same with times exactly 100 ms apart
//   + collapsed     what agents before timed series stored: one value per series and second on the grid
//                   (9 of 10 points lost), for scale
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { agentFields } from "../agent/config/index.ts";
import type { TimedPoint } from "../agent/store/index.ts";
import { parseDuration } from "../shared/config/index.ts";
import { type BatchFrame, mulberry32, simulateHour, wsHeader } from "./_agent-hour.ts";
import { loadRecording, synthesizeTicks } from "./_host-recording.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    recording: { type: "string", default: "bench/out/wire-recording.json" },
    series: { type: "string", default: "4" },
    hz: { type: "string", default: "10" },
    seed: { type: "string", default: "1" },
  },
});
const SERIES = Number(opts.series);
const HZ = Number(opts.hz);
const seed = Number(opts.seed);
const recording = loadRecording(resolve(opts.recording));
if (!recording) {
  console.error(`no recording at ${opts.recording}: run bun bench/wire.ts --record 120 first`);
  process.exit(2);
}
const BATCH_MS = parseDuration(String(agentFields.find((f) => f.key === "batch_interval")?.default))!;
const ticks = synthesizeTicks(recording, 3600);
const t0 = Math.floor(Date.now() / 3_600_000) * 3_600_000;
const base = { nodeId: "edge-node-01", seqStart: 10_000, seed };

/** An application's series: vibration (2 decimals, noisy), a counter, a slow temperature, a rate. */
function pusher(jitter: boolean): (ts: number) => TimedPoint[] {
  const rand = mulberry32(seed + 3);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  let counter = 0;
  let temp = 40;
  return (ts) => {
    const out: TimedPoint[] = [];
    for (let k = 0; k < HZ; k++) {
      const t = ts + Math.floor((k * 1000) / HZ) + (jitter ? Math.floor(rand() * 10) : 0);
      counter += Math.floor(rand() * 5);
      temp += gauss() * 0.02;
      const values = [
        Math.round(gauss() * 150) / 100,
        counter,
        Math.round(temp * 10) / 10,
        Math.round(200 + gauss() * 20),
      ];
      for (let s = 0; s < SERIES; s++)
        out.push({ series: `app.s${s}`, t: t + s, value: values[s % values.length]! + Math.floor(s / 4) });
    }
    return out;
  };
}

/** The same pushes as agents before timed series stored them: the last value of each second, on the grid. */
function collapsed(): Record<string, number>[] {
  const push = pusher(true);
  return ticks.map((tick, i) => {
    const merged = { ...tick };
    for (const p of push(t0 + i * 1000)) merged[p.series] = p.value;
    return merged;
  });
}

function row(name: string, frames: BatchFrame[], only?: (f: BatchFrame) => boolean) {
  const picked = only ? frames.filter(only) : frames;
  const samples = picked.reduce((n, f) => n + f.samples, 0);
  const app = picked.reduce((n, f) => n + f.frame, 0);
  const ws = picked.reduce((n, f) => n + f.frame + wsHeader(f.frame, true), 0);
  return [name, picked.length, samples, app, (app / samples).toFixed(3), (ws / samples).toFixed(3)];
}

const timed = (f: BatchFrame) => f.decoded.series.some((c) => c.times !== undefined);
const host = simulateHour(ticks, BATCH_MS, t0, base).frames;
if (host.some(timed)) throw new Error("a host-only batch carries timed series: format 1 would not hold");
const jittered = simulateHour(ticks, BATCH_MS, t0, { ...base, pushed: pusher(true) }).frames;
const exact = simulateHour(ticks, BATCH_MS, t0, { ...base, pushed: pusher(false) }).frames;
const old = simulateHour(collapsed(), BATCH_MS, t0, base).frames;

printMachine(machineInfo());
console.log(
  `\nOne agent-hour, batch interval ${BATCH_MS / 1000} s, ${SERIES} pushed series at ${HZ} Hz (sealed frames; ws = + WebSocket header)\n`,
);
console.log(
  table([
    ["scenario", "batches", "samples", "app bytes", "B/sample app", "B/sample ws"],
    row("host alone (format 1)", host),
    row("host batches, with pushes", jittered, (f) => !timed(f)),
    row("pushed, timed, 0-9 ms jitter", jittered, timed),
    row("pushed, timed, exact 100 ms", exact, timed),
    row("all, jittered pushes", jittered),
    row("collapsed to 1/s (before)", old),
  ]),
);
