// The agent's sampling loop: one tick per interval on an aligned grid, plus the jittered flush into the outbox.
import type { Clock, TimerHandle } from "../../shared/clock.ts";
import type { Logger } from "../../shared/log.ts";
import { HostCollector } from "./host-collector.ts";
import { runProbes } from "./probes.ts";

export interface SamplingDeps {
  log: Logger;
  clock: Clock;
  /** Where the host's /proc, /sys and / are (they differ from ours inside a container). */
  host: { proc: string; sys: string; root: string };
  /** Current sampling interval (the configured one, or one a rule asked for). */
  interval: () => number;
  diskInterval: () => number;
  batchInterval: () => number;
  probes: () => Readonly<Record<string, string>>;
  probeInterval: () => number;
  /** One tick's values at its slot `ts`: stream, store, rules. */
  onTick: (ts: number, values: Record<string, number>, now: number) => void;
  /** Packs staged ticks into the outbox; returns the batches written. */
  flush: (now: number) => number;
  /** The outbox has something new. */
  notify: () => void;
}

/** A running sampling loop. */
export interface Sampling {
  stop(): void;
  /** The batch interval changed (hot config): a shorter one takes effect now, not after the old wait. */
  batchIntervalChanged(): void;
}

/** Starts sampling at once (the first tick runs synchronously). */
export function startSampling(d: SamplingDeps): Sampling {
  const inContainer = d.host.proc !== "/proc" || d.host.root !== "/";
  const collector = new HostCollector({
    procRoot: d.host.proc,
    sysRoot: d.host.sys,
    ...(inContainer ? { hostRoot: d.host.root } : {}),
  });
  const clock = d.clock;
  collector.prime(clock.now());
  let tickTimer: TimerHandle | undefined;
  let flushTimer: TimerHandle | undefined;
  let flushDue = 0;
  let lastDisk = 0;
  let lastTs = 0;
  let lastProbe = 0;
  let probing = false;
  // Probe results wait here for the next tick, so each one is sent once, at the time it was taken.
  let probed: Record<string, number> = {};
  const tick = () => {
    const interval = d.interval();
    const now = clock.now();
    // Ticks sit on a grid aligned to the interval, which keeps batches dense and cheap to encode;
    // a timer that fires a little early or late must not land two ticks in one slot.
    let ts = Math.round(now / interval) * interval;
    if (ts <= lastTs) ts = lastTs + interval;
    lastTs = ts;
    try {
      const values = collector.sample(now);
      if (now - lastDisk >= d.diskInterval()) {
        lastDisk = now;
        Object.assign(values, collector.sampleDisks());
      }
      Object.assign(values, probed);
      probed = {};
      const probes = d.probes();
      if (!probing && Object.keys(probes).length > 0 && now - lastProbe >= d.probeInterval()) {
        lastProbe = now;
        probing = true;
        void runProbes(probes)
          .then((r) => {
            probed = r;
          })
          .finally(() => {
            probing = false;
          });
      }
      d.onTick(ts, values, now);
    } catch (err) {
      d.log.warn("sampling failed", { error: (err as Error).message });
    }
    const every = d.interval();
    const next = every === interval ? ts + interval : Math.ceil(now / every) * every;
    tickTimer = clock.setTimeout(tick, Math.max(1, next - clock.now()));
  };
  const flush = () => {
    try {
      if (d.flush(clock.now()) > 0) d.notify();
    } catch (err) {
      d.log.error("could not pack samples into the outbox", { error: (err as Error).message });
    }
    // Jitter spreads the fleet's batches so that a hub never sees them all in the same second.
    scheduleFlush(d.batchInterval() * (0.9 + Math.random() * 0.2));
  };
  const scheduleFlush = (ms: number) => {
    clock.clearTimeout(flushTimer);
    flushDue = clock.now() + ms;
    flushTimer = clock.setTimeout(flush, ms);
  };
  tick();
  scheduleFlush(d.batchInterval());
  return {
    stop() {
      clock.clearTimeout(tickTimer);
      clock.clearTimeout(flushTimer);
    },
    batchIntervalChanged() {
      const wait = d.batchInterval() * (0.9 + Math.random() * 0.2);
      if (clock.now() + wait < flushDue) scheduleFlush(wait);
    },
  };
}
