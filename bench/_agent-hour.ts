// One simulated agent-hour on the real agent store, and the transport framing arithmetic, for bench/wire.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentStore, MetricBuffer, type TimedPoint } from "../agent/store/index.ts";
import {
  decodeCbor,
  decodeFrame,
  encodeCbor,
  encodeFrameRawBody,
  type MetricsBatchBody,
  PROTOCOL_VERSION,
} from "../shared/protocol/index.ts";
import { decodeMetrics, encodeMetrics, type MetricsFrame } from "../shared/protocol/metrics-codec.ts";
import { generateKeyPair, SecureChannel } from "../shared/secure/index.ts";

export { mulberry32 } from "../test/support/prng.ts";

import { mulberry32 } from "../test/support/prng.ts";

const TICK_MS = 1000;

/** A session's channel, to seal frames the way the link sends them (kind, 8-byte counter, tag). */
export function benchChannel(): SecureChannel {
  const key = () => crypto.getRandomValues(new Uint8Array(32));
  return new SecureChannel({
    send: key(),
    recv: key(),
    hash: key(),
    remoteStatic: generateKeyPair().publicKey,
  });
}

/** WebSocket frame header: 2/4/10 bytes by payload length, plus a 4-byte mask from a client. */
export function wsHeader(payload: number, masked: boolean): number {
  return (payload <= 125 ? 2 : payload <= 65535 ? 4 : 10) + (masked ? 4 : 0);
}

function varintLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** MQTT 3.1.1 PUBLISH packet size: fixed header, remaining length, topic, packet id (QoS > 0), payload. */
export function mqttPublish(topic: string, payload: number, qos: 0 | 1): number {
  const remaining = 2 + Buffer.byteLength(topic) + (qos > 0 ? 2 : 0) + payload;
  return 1 + varintLength(remaining) + remaining;
}
/** MQTT 3.1.1 PUBACK: fixed header, remaining length 2, packet id. */
export const PUBACK = 4;

/** One metrics_batch as sent, and the same batch re-encoded without compression. */
export interface BatchFrame {
  seq: number;
  ticks: number;
  samples: number;
  z: number;
  data: number;
  body: number;
  frame: number;
  rawData: number;
  rawFrame: number;
  decoded: MetricsFrame;
}

/** One simulated agent-hour: ticks through a real store and buffer, frames built as the link builds them. */
export function simulateHour(
  ticks: Record<string, number>[],
  batchMs: number,
  t0: number,
  o: {
    nodeId: string;
    seqStart: number;
    seed: number;
    /** Points a local application pushes during the second starting at `ts` (stored at their own times). */
    pushed?: (ts: number) => TimedPoint[];
  },
): {
  frames: BatchFrame[];
  produced: number;
} {
  const dir = mkdtempSync(join(tmpdir(), "novacron-wire-"));
  const rand = mulberry32(o.seed);
  const frames: BatchFrame[] = [];
  const channel = benchChannel();
  try {
    const store = new AgentStore(dir, { bufferBytes: 1 << 30 });
    const buffer = new MetricBuffer(store, TICK_MS);
    store.outbox.ensureSeqAbove(o.seqStart - 1);
    // Sends everything new as the link's pump does, then acks it (a connected hub acks each batch).
    const send = () => {
      for (const e of store.outbox.take(0, 10_000)) {
        const base = store.outbox.lowest();
        const head = { v: PROTOCOL_VERSION, t: e.type, s: o.nodeId, q: e.seq, base, ts: e.created };
        const bytes = encodeFrameRawBody(head, e.body);
        const msg = decodeFrame(bytes);
        if (msg.t !== "metrics_batch" || msg.q !== e.seq) throw new Error(`frame ${e.seq} does not decode`);
        const b = decodeCbor(e.body) as MetricsBatchBody;
        const decoded = decodeMetrics(b);
        const raw = encodeMetrics(decoded, { compressAbove: Number.POSITIVE_INFINITY });
        const rawBody = encodeCbor({ ...b, data: raw.data, z: raw.z });
        frames.push({
          seq: e.seq,
          ticks: b.ticks,
          samples: b.samples,
          z: b.z ?? 0,
          data: b.data.byteLength,
          body: e.body.byteLength,
          frame: channel.seal(bytes).byteLength,
          rawData: raw.data.byteLength,
          rawFrame: channel.seal(encodeFrameRawBody(head, rawBody)).byteLength,
          decoded,
        });
        store.outbox.ackUpTo(e.seq);
      }
    };
    const end = t0 + ticks.length * TICK_MS;
    // The agent's flush timer: first after one interval, then every interval × (0.9 .. 1.1).
    let nextFlush = t0 + batchMs;
    const flushDue = (before: number) => {
      while (nextFlush < before) {
        buffer.flush(nextFlush);
        send();
        nextFlush = Math.round(nextFlush + batchMs * (0.9 + rand() * 0.2));
      }
    };
    for (let i = 0; i < ticks.length; i++) {
      const ts = t0 + i * TICK_MS;
      flushDue(ts);
      buffer.add(ts, ticks[i]!);
      if (o.pushed) buffer.addPoints(o.pushed(ts));
    }
    flushDue(end);
    // What is still staged at the end of the hour leaves with the next hour's first batch; packing it
    // here keeps every produced sample in this hour's count.
    buffer.flush(end);
    send();
    const produced = buffer.produced();
    store.close();
    return { frames, produced };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Where the uncompressed data bytes go, per series: each series encoded alone, split into its fixed part
 * (name index, flags, gcd and the absolute first value, which every batch repeats) and its deltas.
 */
export function seriesBreakdown(frames: BatchFrame[]) {
  const raw = (f: MetricsFrame) =>
    encodeMetrics(f, { compressAbove: Number.POSITIVE_INFINITY }).data.byteLength;
  const by = new Map<string, { samples: number; bytes: number; fixed: number }>();
  for (const { decoded: f } of frames) {
    const empty = raw({ ...f, series: [] });
    for (const col of f.series) {
      const present = col.values.filter((v) => v !== null) as number[];
      if (present.length === 0) continue;
      const all = raw({ ...f, series: [col] }) - empty;
      const one = {
        start: f.start,
        interval: f.interval,
        ticks: 1,
        series: [{ name: col.name, values: [present[0]!] }],
      };
      const fixed = raw(one) - raw({ ...one, series: [] });
      const e = by.get(col.name) ?? { samples: 0, bytes: 0, fixed: 0 };
      e.samples += present.length;
      e.bytes += all;
      e.fixed += fixed;
      by.set(col.name, e);
    }
  }
  const total = [...by.values()].reduce((a, e) => a + e.samples, 0);
  return [...by]
    .map(([name, e]) => ({ name, ...e, per_sample_of_all: e.bytes / total }))
    .sort((a, b) => b.bytes - a.bytes);
}
