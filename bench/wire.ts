// Wire-cost benchmark: bytes per sample of an hour of 1 s telemetry, and control bytes per agent-hour.
//
//   bun bench/wire.ts [--record 120] [--recording FILE] [--seq-start 10000] [--seed 1] [--out bench/out/wire.json]
//
// 1. Records --record seconds of real HostCollector samples of this machine at 1 s (really waiting),
//    or loads --recording FILE (written by an earlier run to bench/out/wire-recording.json).
// 2. Replays them ping-pong (forward, backward, ...) into 3600 ticks; no noise is added. A clearly
//    labelled sensitivity run swaps in synthetic, noisy net.rx_bps/net.tx_bps and a temp.cpu_c.
// 3. Feeds the ticks through a real AgentStore + MetricBuffer in a temp dir on a simulated clock:
//    add(ts, values) each second, flush(now) every batch interval with the agent's ±10% jitter.
// 4. Builds each outbox entry's frame as the link does (encodeFrameRawBody with {v,t,s,q,base,ts}),
//    checks it decodes, and counts application bytes, WebSocket framing (agent = client: masked)
//    and MQTT 3.1.1 PUBLISH QoS 1 + PUBACK on novacron/v1/up/<node>/metrics_batch.
// 5. Control traffic per agent-hour at the agent's default intervals, from real frames: a heartbeat
//    every heartbeat_interval, the hub's ack {upto, echo} to each, and one ack {upto} per metrics batch.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { agentFields } from "../agent/config/index.ts";
import { parseDuration } from "../shared/config/index.ts";
import { upTopic } from "../shared/link/index.ts";
import { encodeFrame, envelope } from "../shared/protocol/index.ts";
import {
  type BatchFrame,
  benchChannel,
  mqttPublish,
  mulberry32,
  PUBACK,
  seriesBreakdown,
  simulateHour,
  wsHeader,
} from "./_agent-hour.ts";
import {
  type HostRecording,
  loadRecording,
  recordHost,
  saveRecording,
  synthesizeTicks,
} from "./_host-recording.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    record: { type: "string", default: "120" },
    recording: { type: "string" },
    "seq-start": { type: "string", default: "10000" },
    seed: { type: "string", default: "1" },
    out: { type: "string", default: "bench/out/wire.json" },
  },
});
const recordSeconds = Number(opts.record);
const seqStart = Number(opts["seq-start"]);
const seed = Number(opts.seed);
if (!Number.isInteger(recordSeconds) || recordSeconds < 2 || recordSeconds > 3600) {
  console.error("--record must be an integer number of seconds in 2..3600");
  process.exit(2);
}
if (!Number.isInteger(seqStart) || seqStart < 1) {
  console.error("--seq-start must be a positive integer");
  process.exit(2);
}
const log = (msg: string) => console.error(`[wire ${new Date().toISOString().slice(11, 19)}] ${msg}`);

// docs/targets.md.
const TARGET_BYTES_PER_SAMPLE = 2;
// "≤ 112 KB per agent-hour", decimal kB (KubeEdge's 0.25 kbit/s is 112.5 kB an hour).
const TARGET_CONTROL_BYTES_PER_HOUR = 112_000;
const NODE_ID = "edge-node-01"; // 12 characters
const HUB_ID = "hub-core-001"; // 12 characters (the hub's default id is its host name)
const HOUR_TICKS = 3600;
// The agent's defaults come first: control traffic is computed for them.
const DEFAULT_BATCH_MS = parseDuration(String(agentFields.find((f) => f.key === "batch_interval")?.default))!;
const HEARTBEAT_MS = parseDuration(String(agentFields.find((f) => f.key === "heartbeat_interval")?.default))!;
const BATCH_INTERVALS_MS = [
  DEFAULT_BATCH_MS,
  ...[10_000, 30_000, 60_000].filter((ms) => ms !== DEFAULT_BATCH_MS),
];
// Ethernet MTU 1500 minus IPv4 (20), TCP (20) and the timestamp option (12).
const MSS = 1448;
const TCPIP_PER_SEGMENT = 52;

const topic = upTopic(NODE_ID, "metrics_batch");

interface WireRow {
  batch_interval_s: number;
  batches: number;
  samples: number;
  samples_per_batch: number;
  compressed_batches: number;
  bytes: {
    data: number;
    body: number;
    app: number;
    ws: number;
    mqtt: number;
    tcpip_ws: number;
    raw_app: number;
    raw_ws: number;
    raw_mqtt: number;
  };
  per_sample: {
    data: number;
    app: number;
    ws: number;
    mqtt: number;
    ws_plus_tcpip: number;
    raw_app: number;
    raw_ws: number;
    raw_mqtt: number;
  };
}

function summarize(batchMs: number, frames: BatchFrame[], produced: number): WireRow {
  const sum = (f: (b: BatchFrame) => number) => frames.reduce((a, b) => a + f(b), 0);
  const samples = sum((b) => b.samples);
  if (samples !== produced) throw new Error(`batches hold ${samples} samples but ${produced} were produced`);
  const ws = (n: number) => n + wsHeader(n, true);
  const mqtt = (n: number) => mqttPublish(topic, n, 1) + PUBACK;
  const bytes = {
    data: sum((b) => b.data),
    body: sum((b) => b.body),
    app: sum((b) => b.frame),
    ws: sum((b) => ws(b.frame)),
    mqtt: sum((b) => mqtt(b.frame)),
    tcpip_ws: sum((b) => Math.ceil(ws(b.frame) / MSS) * TCPIP_PER_SEGMENT),
    raw_app: sum((b) => b.rawFrame),
    raw_ws: sum((b) => ws(b.rawFrame)),
    raw_mqtt: sum((b) => mqtt(b.rawFrame)),
  };
  const per = (n: number) => n / samples;
  return {
    batch_interval_s: batchMs / 1000,
    batches: frames.length,
    samples,
    samples_per_batch: samples / frames.length,
    compressed_batches: frames.filter((b) => b.z === 1).length,
    bytes,
    per_sample: {
      data: per(bytes.data),
      app: per(bytes.app),
      ws: per(bytes.ws),
      mqtt: per(bytes.mqtt),
      ws_plus_tcpip: per(bytes.ws + bytes.tcpip_ws),
      raw_app: per(bytes.raw_app),
      raw_ws: per(bytes.raw_ws),
      raw_mqtt: per(bytes.raw_mqtt),
    },
  };
}

/** Synthetic busy-node variant: noisy NIC rates and a CPU temperature this VM does not have. */
function busyVariant(ticks: Record<string, number>[]): Record<string, number>[] {
  const rand = mulberry32(seed + 7);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  let temp = 52;
  return ticks.map((t) => {
    temp = Math.min(85, Math.max(35, temp + gauss() * 0.3));
    return {
      ...t,
      "net.rx_bps": Math.round(20_000 * Math.exp(gauss() * 0.6)),
      "net.tx_bps": Math.round(5_000 * Math.exp(gauss() * 0.6)),
      "temp.cpu_c": Math.round(temp * 10) / 10,
    };
  });
}

const fmt = (n: number, d = 2) => n.toFixed(d);

async function main(): Promise<void> {
  const machine = machineInfo();
  let recording: HostRecording;
  let recordingPath: string;
  if (opts.recording) {
    recordingPath = resolve(opts.recording);
    const loaded = loadRecording(recordingPath);
    if (!loaded) throw new Error(`no recording at ${recordingPath}`);
    recording = loaded;
    log(`loaded ${recording.host.length} s recorded at ${recording.recorded_at} from ${recordingPath}`);
  } else {
    log(`recording ${recordSeconds} s of real HostCollector samples at 1 s (really waiting)`);
    recording = await recordHost(recordSeconds, log);
    recordingPath = join(ROOT, "bench/out/wire-recording.json");
    saveRecording(recordingPath, recording);
    log(`saved the recording to ${recordingPath}`);
  }
  const series = [...new Set(recording.host.flatMap((v) => Object.keys(v)))].sort();
  const diskSeries = [...new Set(recording.disk.flatMap((v) => Object.keys(v)))].sort();
  const constant = series.filter((name) => new Set(recording.host.map((v) => v[name])).size === 1);
  const ticks = synthesizeTicks(recording, HOUR_TICKS);
  const t0 = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  const hourOpts = { nodeId: NODE_ID, seqStart, seed };

  let breakdown: ReturnType<typeof seriesBreakdown> = [];
  const rows = BATCH_INTERVALS_MS.map((ms) => {
    const { frames, produced } = simulateHour(ticks, ms, t0, hourOpts);
    if (ms === BATCH_INTERVALS_MS[0]) breakdown = seriesBreakdown(frames);
    return summarize(ms, frames, produced);
  });
  const busyTicks = busyVariant(ticks);
  const busyRows = BATCH_INTERVALS_MS.map((ms) => {
    const { frames, produced } = simulateHour(busyTicks, ms, t0, hourOpts);
    return summarize(ms, frames, produced);
  });

  // ---- control traffic -----------------------------------------------------------------------
  const T = t0 + 1_234_567;
  // Sealed as every frame of a session is (kind, 8-byte counter, 16-byte tag around the envelope).
  const channel = benchChannel();
  const hb = channel.seal(encodeFrame(envelope("heartbeat", NODE_ID, { pending: 0, rtt: 38 }, { ts: T })));
  const hbAck = channel.seal(
    encodeFrame(envelope("ack", HUB_ID, { upto: seqStart + 4321, echo: T }, { ts: T + 21 })),
  );
  const batchAck = channel.seal(
    encodeFrame(envelope("ack", HUB_ID, { upto: seqStart + 4322 }, { ts: T + 4021 })),
  );
  const heartbeatsPerHour = (3600 * 1000) / HEARTBEAT_MS;
  const batchesPerHour = rows[0]!.batches;
  const downTopic = (type: string) => `novacron/v1/down/${NODE_ID}/${type}`;
  const control = [
    {
      what: "heartbeat (agent→hub)",
      count: heartbeatsPerHour,
      app: hb.byteLength,
      ws: hb.byteLength + wsHeader(hb.byteLength, true),
      // Heartbeats go at QoS 0 (mqtt-transport.ts): no packet id, no PUBACK.
      mqtt: mqttPublish(upTopic(NODE_ID, "heartbeat"), hb.byteLength, 0),
    },
    {
      what: "ack {upto,echo} (hub→agent)",
      count: heartbeatsPerHour,
      app: hbAck.byteLength,
      ws: hbAck.byteLength + wsHeader(hbAck.byteLength, false),
      // The hub publishes at QoS 1; the broker delivers at QoS 1 and the agent answers with a PUBACK.
      mqtt: mqttPublish(downTopic("ack"), hbAck.byteLength, 1) + PUBACK,
    },
    {
      what: "ack {upto} per batch (hub→agent)",
      count: batchesPerHour,
      app: batchAck.byteLength,
      ws: batchAck.byteLength + wsHeader(batchAck.byteLength, false),
      mqtt: mqttPublish(downTopic("ack"), batchAck.byteLength, 1) + PUBACK,
    },
  ].map((c) => ({
    ...c,
    app_per_hour: c.count * c.app,
    ws_per_hour: c.count * c.ws,
    tcpip_per_hour: c.count * TCPIP_PER_SEGMENT,
    mqtt_per_hour: c.count * c.mqtt,
  }));
  const controlWs = control.reduce((a, c) => a + c.ws_per_hour, 0);
  const controlApp = control.reduce((a, c) => a + c.app_per_hour, 0);
  const controlTcp = control.reduce((a, c) => a + c.tcpip_per_hour, 0);
  const controlMqtt = control.reduce((a, c) => a + c.mqtt_per_hour, 0);

  // ---- print ---------------------------------------------------------------------------------
  printMachine(machine);
  console.log(
    `\ndata: ${recording.host.length} s of real HostCollector samples recorded ${recording.recorded_at}, replayed ping-pong` +
      ` (forward then backward, no noise) into ${HOUR_TICKS} ticks at 1 s; disk sampled every 30 s as the agent does.`,
  );
  console.log(`series every tick (${series.length}): ${series.join(", ")}`);
  console.log(`series every 30 s (${diskSeries.length}): ${diskSeries.join(", ")}`);
  if (constant.length > 0) console.log(`constant over the whole recording (this VM): ${constant.join(", ")}`);
  console.log(
    `node id ${NODE_ID} (${NODE_ID.length} chars), seq numbers from ${seqStart}, AgentStore+MetricBuffer in a temp dir, ` +
      `flush jitter ±10% (seed ${seed}), frames built with encodeFrameRawBody and checked with decodeFrame.`,
  );

  const wireTable = (title: string, rs: WireRow[]) => {
    console.log(`\n${title}`);
    console.log(
      table([
        [
          "batch",
          "batches/h",
          "samples/h",
          "samples/batch",
          "zstd used",
          "data B/s",
          "app B/s",
          "WS B/s",
          "MQTT B/s",
          "WS÷target",
          "MQTT÷target",
          "raw app B/s",
          "raw WS B/s",
          "raw MQTT B/s",
          "WS+TCP/IP B/s",
        ],
        ...rs.map((r) => [
          `${r.batch_interval_s} s`,
          r.batches,
          r.samples,
          fmt(r.samples_per_batch, 1),
          `${r.compressed_batches}/${r.batches}`,
          fmt(r.per_sample.data, 3),
          fmt(r.per_sample.app, 3),
          fmt(r.per_sample.ws, 3),
          fmt(r.per_sample.mqtt, 3),
          fmt(r.per_sample.ws / TARGET_BYTES_PER_SAMPLE),
          fmt(r.per_sample.mqtt / TARGET_BYTES_PER_SAMPLE),
          fmt(r.per_sample.raw_app, 3),
          fmt(r.per_sample.raw_ws, 3),
          fmt(r.per_sample.raw_mqtt, 3),
          fmt(r.per_sample.ws_plus_tcpip, 3),
        ]),
      ]),
    );
  };
  wireTable("telemetry, bytes per sample (B/s = bytes/sample), recorded data, target ≤ 2 B/sample:", rows);
  console.log(
    "  data = metrics-codec blob as sent; app = whole CBOR frame; WS = app + client frame header with mask;\n" +
      "  MQTT = PUBLISH QoS 1 (fixed header, remaining length, topic, packet id) + 4-byte PUBACK;\n" +
      "  raw = the same batches re-encoded with compression off (z=0); TCP/IP = 52 B per 1448-B segment, informative.",
  );
  console.log("\nper batch, averaged (bytes):");
  console.log(
    table([
      ["batch", "data", "body − data", "frame − body", "WS header", "MQTT − frame", "frame"],
      ...rows.map((r) => [
        `${r.batch_interval_s} s`,
        fmt(r.bytes.data / r.batches, 1),
        fmt((r.bytes.body - r.bytes.data) / r.batches, 1),
        fmt((r.bytes.app - r.bytes.body) / r.batches, 1),
        fmt((r.bytes.ws - r.bytes.app) / r.batches, 1),
        fmt((r.bytes.mqtt - r.bytes.app) / r.batches, 1),
        fmt(r.bytes.app / r.batches, 1),
      ]),
    ]),
  );
  const r10 = rows[0]!;
  const overhead10 = (r10.bytes.ws - r10.bytes.data) / r10.batches;
  console.log(
    `\nat ${DEFAULT_BATCH_MS / 1000} s (default): ${fmt(r10.per_sample.ws, 3)} B/sample over WS = data ${fmt(r10.per_sample.data, 3)} + per-batch overhead ` +
      `${fmt(overhead10, 1)} B (body keys/scalars, envelope, WS header) ÷ ${fmt(r10.samples_per_batch, 1)} samples = ${fmt(overhead10 / r10.samples_per_batch, 3)}`,
  );
  console.log(
    `\nwhere the data bytes go at ${DEFAULT_BATCH_MS / 1000} s, per series, uncompressed (each series encoded alone):`,
  );
  console.log(
    table([
      [
        "series",
        "samples/h",
        "bytes/h",
        "B/sample of series",
        "fixed part (name, flags, gcd, first value)",
        "share of data",
      ],
      ...breakdown.map((e) => [
        e.name,
        e.samples,
        e.bytes,
        fmt(e.bytes / e.samples, 2),
        `${fmt((e.fixed / e.bytes) * 100, 0)}%`,
        `${fmt((e.bytes / breakdown.reduce((a, x) => a + x.bytes, 0)) * 100, 0)}%`,
      ]),
    ]),
  );
  wireTable(
    "sensitivity, NOT recorded: same ticks with synthetic noisy net.rx_bps/net.tx_bps (lognormal, ~20k/5k B/s) and a temp.cpu_c random walk:",
    busyRows,
  );

  console.log(
    `\ncontrol traffic per agent-hour at defaults (heartbeat ${HEARTBEAT_MS / 1000} s, batch ${DEFAULT_BATCH_MS / 1000} s), real frames:`,
  );
  console.log(
    table([
      ["message", "count/h", "app B", "WS B", "WS B/h", "TCP/IP B/h", "MQTT B", "MQTT B/h"],
      ...control.map((c) => [
        c.what,
        c.count,
        c.app,
        c.ws,
        c.ws_per_hour,
        c.tcpip_per_hour,
        c.mqtt,
        c.mqtt_per_hour,
      ]),
      ["total", "", "", "", controlWs, controlTcp, "", controlMqtt],
    ]),
  );
  console.log(
    `  WebSocket: ${fmt(controlWs / 1000, 1)} kB/h (app only ${fmt(controlApp / 1000, 1)} kB/h) vs target ${TARGET_CONTROL_BYTES_PER_HOUR / 1000} kB/h: ratio ${fmt(controlWs / TARGET_CONTROL_BYTES_PER_HOUR)}` +
      `\n  with TCP/IP headers (52 B a segment, one segment per frame; delayed ACKs not counted): ${fmt((controlWs + controlTcp) / 1000, 1)} kB/h, ratio ${fmt((controlWs + controlTcp) / TARGET_CONTROL_BYTES_PER_HOUR)}` +
      `\n  MQTT (agent↔broker, heartbeat QoS 0, acks QoS 1 + PUBACK): ${fmt(controlMqtt / 1000, 1)} kB/h, ratio ${fmt(controlMqtt / TARGET_CONTROL_BYTES_PER_HOUR)}`,
  );
  const hbShare = (control[0]!.ws_per_hour + control[1]!.ws_per_hour) / controlWs;
  console.log(
    `  heartbeat + its ack: ${fmt(hbShare * 100, 0)}% of control bytes; ` +
      `heartbeat frame ${hb.byteLength} B, ack reply ${hbAck.byteLength} B, batch ack ${batchAck.byteLength} B.`,
  );

  // What-ifs for the control budget, built with the same encoder (nothing in the source is changed).
  const hbWs = control[0]!.ws;
  const whatIfs = [
    ["as measured", controlWs],
    [
      "no separate ack per batch (the next heartbeat's ack carries upto)",
      heartbeatsPerHour * (hbWs + control[1]!.ws),
    ],
    [
      `heartbeat_interval ${(2 * HEARTBEAT_MS) / 1000} s (config only)`,
      (heartbeatsPerHour / 2) * (hbWs + control[1]!.ws) + control[2]!.ws_per_hour,
    ],
  ] as const;
  console.log("\nwhat-ifs for control bytes per agent-hour over WS (computed, not implemented):");
  console.log(
    table([
      ["change", "B/h", "÷ target"],
      ...whatIfs.map(([what, b]) => [what, Math.round(b), fmt(b / TARGET_CONTROL_BYTES_PER_HOUR)]),
    ]),
  );

  const result = {
    machine,
    recording: {
      path: recordingPath,
      seconds: recording.host.length,
      recorded_at: recording.recorded_at,
      series,
      disk_series: diskSeries,
      constant,
    },
    method: {
      node_id: NODE_ID,
      hub_id: HUB_ID,
      seq_start: seqStart,
      seed,
      synthesis: "ping-pong replay of the recording, no noise; disk every 30 ticks",
      flush_jitter:
        "batch_interval × (0.9 + 0.2 × rand), first flush after one interval, final flush at hour end",
    },
    targets: {
      bytes_per_sample: TARGET_BYTES_PER_SAMPLE,
      control_bytes_per_hour: TARGET_CONTROL_BYTES_PER_HOUR,
    },
    telemetry: rows,
    telemetry_series_10s: breakdown,
    telemetry_busy_synthetic: busyRows,
    control: {
      frames: { heartbeat: hb.byteLength, heartbeat_ack: hbAck.byteLength, batch_ack: batchAck.byteLength },
      rows: control,
      ws_per_hour: controlWs,
      app_per_hour: controlApp,
      tcpip_per_hour: controlTcp,
      mqtt_per_hour: controlMqtt,
      ws_ratio_to_target: controlWs / TARGET_CONTROL_BYTES_PER_HOUR,
      what_ifs: whatIfs.map(([change, bytes]) => ({ change, bytes })),
    },
  };
  const outPath = resolve(ROOT, opts.out);
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${outPath}`);
}

await main();
