// A heap probe for memory benchmarks: on SIGUSR2 the process prints its JSC heap and allocator figures on one stderr line.
import { heapStats, memoryUsage } from "bun:jsc";

/** Prefix of the probe's stderr line; the JSON object follows it. */
export const PROBE_PREFIX = "heap-probe ";

/** One reading of the probe (bytes and counts). */
export interface HeapReading {
  /** JSC GC heap: bytes in live cells, and bytes the heap holds (blocks, incl. free space). */
  heapSize: number;
  heapCapacity: number;
  /** Bytes outside the GC heap that JSC objects report owning (ArrayBuffers, strings' buffers...). */
  extraMemorySize: number;
  objectCount: number;
  protectedObjectCount: number;
  globalObjectCount: number;
  /** Bun's allocator (mimalloc): bytes in use by live allocations, and bytes it has committed. */
  mallocInUse: number;
  mallocCommitted: number;
  /** The ten most numerous object types (read only when asked: building the table allocates). */
  topTypes?: [string, number][];
}

function mimallocInUse(stats: unknown): number {
  // mimalloc's own counters: normal and huge allocations currently live.
  const m = stats as { malloc_normal?: { current?: number }; malloc_huge?: { current?: number } } | undefined;
  return (m?.malloc_normal?.current ?? Number.NaN) + (m?.malloc_huge?.current ?? 0);
}

/** Reads the figures now. `types` adds the most numerous object types. */
export function readHeap(types = false): HeapReading {
  const mem = memoryUsage();
  const h = heapStats();
  const reading: HeapReading = {
    heapSize: h.heapSize,
    heapCapacity: h.heapCapacity,
    extraMemorySize: h.extraMemorySize,
    objectCount: h.objectCount,
    protectedObjectCount: h.protectedObjectCount,
    globalObjectCount: h.globalObjectCount,
    mallocInUse: mimallocInUse((h as { mimalloc?: unknown }).mimalloc),
    mallocCommitted: mem.currentCommit,
  };
  if (types) {
    reading.topTypes = Object.entries(h.objectTypeCounts)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10);
  }
  return reading;
}

/**
 * Answers SIGUSR2 with one `heap-probe {...}` line on stderr. Nothing runs until a signal arrives,
 * so the probe adds no timer and no garbage to the process it watches. SIGUSR1 adds the object types.
 */
export function installHeapProbe(): void {
  const answer = (types: boolean) =>
    process.stderr.write(`${PROBE_PREFIX}${JSON.stringify(readHeap(types))}\n`);
  process.on("SIGUSR2", () => answer(false));
  process.on("SIGUSR1", () => answer(true));
}
