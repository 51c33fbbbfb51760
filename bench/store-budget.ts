// Peak size on disk of the agent's store against its byte budget (store_bytes), with and without the bound.
//
// Drives the real AgentStore and MetricBuffer on a temporary directory, as the agent does (a tick per
// sample interval, a flush every batch interval, maintain() every second), and samples the store's
// files (agent.db, -wal, -shm, store.reserve) after every operation. Two loads: host-like (30 series
// that change slowly, 1 s) and incompressible (200 random series every 100 ms). "buffer only" is the
// old behaviour: buffer_bytes set to the budget, no store_bytes.
//
//   bun bench/store-budget.ts
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentStore, MetricBuffer } from "../agent/store/index.ts";
import { mulberry32 } from "../test/support/prng.ts";

const MiB = 1024 * 1024;

interface Load {
  name: string;
  intervalMs: number;
  ticks: number;
  values: (i: number) => Record<string, number>;
}

function hostLike(): Load {
  const rand = mulberry32(7);
  const level = Array.from({ length: 30 }, () => rand() * 100);
  return {
    name: "host-like, 30 series at 1 s",
    intervalMs: 1000,
    ticks: 40_000,
    values: () => {
      const out: Record<string, number> = {};
      level.forEach((v, k) => {
        level[k] = Math.max(0, v + (rand() - 0.5) * 2);
        out[`host.s${k}`] = Math.round(level[k]! * 100) / 100;
      });
      return out;
    },
  };
}

function incompressible(): Load {
  const rand = mulberry32(11);
  return {
    name: "random, 200 series at 100 ms",
    intervalMs: 100,
    ticks: 6_000,
    values: () => Object.fromEntries(Array.from({ length: 200 }, (_, k) => [`load.s${k}`, rand()])),
  };
}

function run(
  load: Load,
  budget: number,
  bounded: boolean,
): { peak: number; dropped: number; folded: number } {
  const dir = mkdtempSync(join(tmpdir(), "novacron-bench-store-"));
  let now = 1_800_000_000_000;
  const store = new AgentStore(dir, {
    bufferBytes: bounded ? 100_000_000 : budget,
    ...(bounded ? { storeBytes: budget } : {}),
    reserveBytes: 0,
    now: () => now,
  });
  const buffer = new MetricBuffer(store, load.intervalMs);
  const perSecond = Math.max(1, Math.round(1000 / load.intervalMs));
  const perBatch = Math.max(1, Math.round(10_000 / load.intervalMs));
  let peak = 0;
  const sample = () => {
    peak = Math.max(peak, store.onDiskBytes());
  };
  for (let i = 0; i < load.ticks; i++) {
    now += load.intervalMs;
    buffer.add(now, load.values(i));
    sample();
    if (i % perBatch === perBatch - 1) {
      buffer.flush(now);
      sample();
    }
    if (i % perSecond === 0) {
      store.maintain();
      sample();
    }
  }
  const result = {
    peak,
    dropped: store.droppedBy().budget,
    folded: store.outbox.stats().downsampledSamples,
  };
  store.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

const mb = (n: number) => `${(n / MiB).toFixed(2)} MiB`;
console.log("| load | budget | bound | peak on disk | peak / budget | downsampled | dropped |");
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const make of [hostLike, incompressible]) {
  for (const budget of [1 * MiB, 4 * MiB, 16 * MiB]) {
    for (const bounded of [false, true]) {
      const load = make();
      const r = run(load, budget, bounded);
      console.log(
        `| ${load.name} | ${mb(budget)} | ${bounded ? "store_bytes" : "buffer_bytes only"} | ${mb(r.peak)} | ${(r.peak / budget).toFixed(2)} | ${r.folded} | ${r.dropped} |`,
      );
    }
  }
}
