// The buffer's overflow policy, first step: fine metrics nobody has seen yet become 1-minute rollups.
import type { Outbox, OutboxEntry } from "../../shared/link/index.ts";
import { decodeCbor, encodeCbor, type MetricsBatchBody } from "../../shared/protocol/index.ts";
import { decodeMetrics, encodeMetrics, type MetricsFrame } from "../../shared/protocol/metrics-codec.ts";
import { ROLLUP_INTERVAL_MS, rolledUpSamples, rollUp } from "../../shared/protocol/rollup.ts";

/** Room the budget keeps after a downsampling pass, so the next one is not due at the next batch. */
export const LOW_WATER = 0.8;
// One rollup covers at most this much fine data: an hour of 1 s samples, or this many batches.
const SPAN_MS = 3_600_000;
const MAX_ENTRIES = 512;

interface Fine {
  entry: OutboxEntry;
  frame: MetricsFrame;
}

/**
 * Rolls the oldest unsent fine metrics batches up into 1-minute rollups until the outbox holds at
 * most `target` bytes or nothing fine is left. Each rollup takes the place of the batches it folds
 * and stands for the same samples, so nothing is lost from the count: the samples are still
 * delivered, at minute resolution. Returns the fine samples folded.
 */
export class Downsampler {
  readonly #maxBodyBytes: number;
  /** Unsent entries with ids at or below this are known not to be fine (rollups, or coarse to begin with). */
  #coarseUpTo = 0;

  constructor(opts: { maxBodyBytes: number }) {
    this.#maxBodyBytes = opts.maxBodyBytes;
  }

  run(outbox: Outbox, target: number): number {
    let folded = 0;
    while (outbox.bytes > target) {
      const run = this.#oldestFine(outbox);
      if (run.length === 0) break;
      folded += this.#fold(outbox, run);
    }
    return folded;
  }

  // The oldest unsent fine batches, in send order, spanning at most SPAN_MS.
  #oldestFine(outbox: Outbox): Fine[] {
    const run: Fine[] = [];
    let after = this.#coarseUpTo;
    for (;;) {
      const entries = outbox.readUnsent("metrics_batch", after, 64);
      if (entries.length === 0) return run;
      for (const entry of entries) {
        after = entry.id;
        const frame = fineFrame(entry);
        if (!frame) {
          if (run.length === 0) this.#coarseUpTo = entry.id;
          continue;
        }
        if (run.length > 0 && frame.start + frame.ticks * frame.interval - run[0]!.frame.start > SPAN_MS)
          return run;
        run.push({ entry, frame });
        if (run.length >= MAX_ENTRIES) return run;
      }
    }
  }

  #fold(outbox: Outbox, run: Fine[]): number {
    const frame = rollUp(run.map((f) => f.frame));
    const enc = encodeMetrics(frame);
    const samples = rolledUpSamples(frame);
    const body = encodeCbor({
      start: frame.start,
      interval: frame.interval,
      ticks: frame.ticks,
      samples,
      data: enc.data,
      z: enc.z,
      rollup: 1,
      fold: run[0]!.entry.id,
    });
    // Too big for one frame: fold the earlier half now; the next pass reads the rest again.
    if (body.byteLength > this.#maxBodyBytes && run.length > 1)
      return this.#fold(outbox, run.slice(0, Math.ceil(run.length / 2)));
    // A delete and an insert: the rollup takes the id (the place in the send order) of the first batch.
    outbox.replace(
      run.map((f) => f.entry.id),
      [{ type: "metrics_batch", body, samples, created: run[0]!.entry.created }],
    );
    outbox.bump("samples_downsampled", samples);
    outbox.bump("rollups", 1);
    // Everything before the run was coarse already, and the rollup in its place is too.
    this.#coarseUpTo = run[0]!.entry.id;
    return samples;
  }
}

// The batch's frame when it holds fine samples; undefined for rollups, coarse batches and bodies that
// do not decode (those are left as they are, for the hub to refuse or the budget to drop).
function fineFrame(entry: OutboxEntry): MetricsFrame | undefined {
  try {
    const body = decodeCbor(entry.body) as MetricsBatchBody;
    if (body.rollup === 1 || body.interval >= ROLLUP_INTERVAL_MS) return undefined;
    return decodeMetrics(body);
  } catch {
    return undefined;
  }
}
