// Specification of the metrics_batch data codec: exact round trips, compactness and hostile input.
import { describe, expect, test } from "bun:test";
import { ProtocolError } from "../../shared/errors.ts";
import {
  countSamples,
  decodeMetrics,
  encodeMetrics,
  type MetricsFrame,
  type SeriesColumn,
} from "../../shared/protocol/metrics-codec.ts";
import { mulberry32 as prng } from "../support/prng.ts";

const START = 1_718_000_000_000;
const INTERVAL = 1000;

function frameOf(ticks: number, series: SeriesColumn[]): MetricsFrame {
  return { start: START, interval: INTERVAL, ticks, series };
}

function roundTrip(frame: MetricsFrame, opts?: { compressAbove?: number }): MetricsFrame {
  const { data, z } = encodeMetrics(frame, opts);
  return decodeMetrics({ start: frame.start, interval: frame.interval, ticks: frame.ticks, data, z });
}

function rawSize(frame: MetricsFrame): number {
  return encodeMetrics(frame, { compressAbove: Number.POSITIVE_INFINITY }).data.length;
}

/** Decodes hand-made or hostile bytes against a batch of `ticks`. */
function decodeBytes(bytes: number[] | Uint8Array, ticks: number, z: 0 | 1 = 0): MetricsFrame {
  const data = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
  return decodeMetrics({ start: START, interval: INTERVAL, ticks, data, z });
}

function badBody(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe("bad_body");
    return err as ProtocolError;
  }
  throw new Error("expected a ProtocolError, but nothing was thrown");
}

/** Decoding hostile bytes may succeed or throw, but only ever a bad_body ProtocolError. */
function decodesOrRefuses(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ProtocolError) || err.code !== "bad_body") throw err;
  }
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

function ascii(s: string): number[] {
  return [...s].map((c) => c.charCodeAt(0));
}

function int(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

describe("metrics codec: round trips", () => {
  test("metrics codec: round-trips decimal values exactly at their precision", () => {
    const values = [12.34, 0.1 + 0.2, 1.005, -7.5, 0, 99.999];
    const decoded = roundTrip(frameOf(values.length, [{ name: "cpu.util", values }]));
    // 12.34, not 12.340000000000002, and 0.3 for 0.30000000000000004: value rounded to d decimals.
    expect(decoded.series[0]!.values).toEqual([12.34, 0.3, 1.005, -7.5, 0, 99.999]);
    expect(decoded.series[0]!.values).toEqual(values.map((v) => Number(v.toFixed(3))));
  });

  test("metrics codec: reconstructs accumulated two-decimal values as their decimal, not float noise", () => {
    const values = Array.from({ length: 100 }, (_, i) => 12.34 + i * 0.01);
    const decoded = roundTrip(frameOf(values.length, [{ name: "load.1", values }]));
    expect(decoded.series[0]!.values).toEqual(values.map((v) => Number(v.toFixed(2))));
    expect(decoded.series[0]!.values[1]).toBe(12.35);
    // Stored as scaled integers (about a byte each), not 8-byte floats.
    expect(rawSize(frameOf(values.length, [{ name: "load.1", values }]))).toBeLessThan(values.length * 2);
  });

  test("metrics codec: keeps every digit of values with up to 15 significant digits", () => {
    const values = [1718000000.121, 123456.789012, 0.000001, 999999999.999999, -42.000001, 2 ** 49 + 0.25];
    expect(roundTrip(frameOf(values.length, [{ name: "precise", values }])).series[0]!.values).toEqual(
      values,
    );
  });

  test("metrics codec: stays exact when one value's decimals push another past 2^50 once scaled", () => {
    // 0.123456 needs d = 6, which makes 4331692412.96127 * 10^6 ≈ 4.3e15, where doubles are spaced 0.5 apart.
    const values = [4331692412.96127, 0.123456, -3872385520.95368];
    expect(roundTrip(frameOf(3, [{ name: "mixed", values }])).series[0]!.values).toEqual(values);
  });

  test("metrics codec: moves arbitrary doubles by no more than a few ulps", () => {
    const rand = prng(3);
    const values = Array.from({ length: 5000 }, () => (rand() - 0.5) * 10 ** int(rand, -8, 15));
    const decoded = roundTrip(
      frameOf(
        1,
        values.map((v, i) => ({ name: `v${i}`, values: [v] })),
      ),
    );
    decoded.series.forEach((s, i) => {
      const v = values[i]!;
      expect(Math.abs(s.values[0]! - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -49);
    });
  });

  test("metrics codec: stores byte counts in multiples of 1024 in about one byte per sample", () => {
    const rand = prng(7);
    let mem = 16_000_000_000;
    const values = Array.from({ length: 200 }, () => {
      mem += int(rand, -50, 50) * 1024;
      return mem;
    });
    const frame = frameOf(values.length, [{ name: "mem.avail_bytes", values }]);
    expect(roundTrip(frame).series[0]!.values).toEqual(values);
    expect(rawSize(frame)).toBeLessThan(values.length + 32);
  });

  test("metrics codec: round-trips integers up to 2^53, negatives and zero exactly", () => {
    const scaled = [2 ** 53, 2 ** 53 - 1, 2 ** 53 - 7, 0, -1, -(2 ** 52), 16e9, -16e9];
    const frame = frameOf(scaled.length, [{ name: "big", values: scaled }]);
    expect(roundTrip(frame).series[0]!.values).toEqual(scaled);
    const lows = [-(2 ** 53), -(2 ** 53) + 3, -(2 ** 53) + 1];
    expect(roundTrip(frameOf(3, [{ name: "low", values: lows }])).series[0]!.values).toEqual(lows);
    // A jump from -2^53 to 2^53 has a delta doubles cannot hold: the series falls back to exact floats.
    const extremes = [-(2 ** 53), 2 ** 53, -(2 ** 53)];
    expect(roundTrip(frameOf(3, [{ name: "jump", values: extremes }])).series[0]!.values).toEqual(extremes);
  });

  test("metrics codec: falls back to exact float64 for NaN, infinities and values without a short decimal form", () => {
    const values = [1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 5e-324, 1 / 3, -0];
    const extra = [Number.MAX_VALUE, 2 ** 53 + 2, Math.PI, 1e-7, 0.1234567, 3, 4];
    const decoded = roundTrip(
      frameOf(values.length, [
        { name: "special", values },
        { name: "wide", values: extra },
      ]),
    );
    decoded.series[0]!.values.forEach((v, i) => {
      expect(Object.is(v, values[i])).toBe(true);
    });
    expect(decoded.series[1]!.values).toEqual(extra);
  });

  test("metrics codec: restores nulls at their ticks whatever the pattern", () => {
    const n = null;
    const patterns: (number | null)[][] = [
      [n, n, n, n, n, n, n, n, n],
      [n, 1, 2, 3, 4, 5, 6, 7, 8],
      [1, 2, 3, 4, 5, 6, 7, 8, n],
      [1, n, 2.5, n, 3, n, 4, n, 5],
      [n, n, n, n, n, n, n, n, 1e300],
      [n, Number.NaN, n, n, n, n, n, n, n],
    ];
    const frame = frameOf(
      9,
      patterns.map((values, i) => ({ name: `p${i}`, values })),
    );
    expect(roundTrip(frame).series).toEqual(frame.series);
    for (const ticks of [8, 16, 17]) {
      const values = Array.from({ length: ticks }, (_, i) => (i % 3 === 0 ? null : i * 1.5));
      const f = frameOf(ticks, [{ name: "gappy", values }]);
      expect(roundTrip(f).series[0]!.values).toEqual(values);
    }
  });

  test("metrics codec: round-trips an empty series list, zero ticks and a single tick", () => {
    const empty = frameOf(10, []);
    expect(roundTrip(empty)).toEqual(empty);
    const none = frameOf(0, [{ name: "a", values: [] }]);
    expect(roundTrip(none)).toEqual(none);
    const single = frameOf(1, [
      { name: "int", values: [7] },
      { name: "dec", values: [0.5] },
      { name: "nan", values: [Number.NaN] },
      { name: "null", values: [null] },
    ]);
    expect(roundTrip(single)).toEqual(single);
  });

  test("metrics codec: round-trips names exactly, including well-known, non-ASCII and a leading BOM", () => {
    const names = [
      "cpu.util",
      'disk.used_pct{mount="/"}',
      "température.°C",
      "\uFEFFbom",
      "磁盘.used",
      "emoji.🚀",
      "x".repeat(1024),
    ];
    const frame = frameOf(
      1,
      names.map((name) => ({ name, values: [1] })),
    );
    expect(roundTrip(frame).series.map((s) => s.name)).toEqual(names);
  });

  test("metrics codec: refuses an empty series name", () => {
    expect(() => encodeMetrics(frameOf(1, [{ name: "", values: [1] }]))).toThrow(/empty name/);
  });

  test("metrics codec: sends a well-known name as an index, far shorter than the name", () => {
    const known = encodeMetrics(frameOf(1, [{ name: "mem.avail_bytes", values: [1] }]), {
      compressAbove: 1e9,
    });
    const custom = encodeMetrics(frameOf(1, [{ name: "mem.avail_bytez", values: [1] }]), {
      compressAbove: 1e9,
    });
    expect(custom.data.length - known.data.length).toBe("mem.avail_bytez".length - 1);
  });

  test("metrics codec: handles a million ticks and a hundred thousand series", () => {
    const rand = prng(11);
    const long = Array.from({ length: 1_000_000 }, (_, i) => (i % 97 === 0 ? null : int(rand, 0, 1000) / 10));
    const longFrame = frameOf(long.length, [{ name: "long", values: long }]);
    expect(roundTrip(longFrame).series[0]!.values).toEqual(long);
    const wide = frameOf(
      1,
      Array.from({ length: 100_000 }, (_, i) => ({ name: `s${i}`, values: [i] })),
    );
    expect(roundTrip(wide)).toEqual(wide);
  });

  test("metrics codec: counts non-null samples the same way in encode and countSamples", () => {
    const frame = frameOf(4, [
      { name: "a", values: [1, null, 3, Number.NaN] },
      { name: "b", values: [null, null, null, null] },
      { name: "c", values: [0, 0, 0, 0] },
    ]);
    expect(countSamples(frame)).toBe(7);
    expect(encodeMetrics(frame).samples).toBe(7);
  });

  test("metrics codec: randomized frames round-trip exactly (seeded, 3000 cases)", () => {
    const rand = prng(2024);
    for (let c = 0; c < 3000; c++) {
      const frame = randomFrame(rand);
      const encoded = encodeMetrics(frame, { compressAbove: int(rand, 0, 200) });
      expect(encoded.samples).toBe(countSamples(frame));
      const decoded = decodeMetrics({ ...frame, data: encoded.data, z: encoded.z });
      expect(decoded).toEqual(frame);
    }
  });
});

/** A frame mixing every kind of series the agent produces, with values whose decimals are known. */
function randomFrame(rand: () => number): MetricsFrame {
  const ticks = rand() < 0.1 ? int(rand, 0, 1) : int(rand, 2, 70);
  const nullRate = [0, 0, 0.1, 0.5, 0.95][int(rand, 0, 4)]!;
  const series = Array.from({ length: int(rand, 0, 9) }, (_, s): SeriesColumn => {
    const kind = int(rand, 0, 6);
    const d = int(rand, 0, 6);
    let k = int(rand, -1e6, 1e6);
    const values = Array.from({ length: ticks }, (): number | null => {
      if (rand() < nullRate) return null;
      switch (kind) {
        case 0: // a random walk with d decimals
          k += int(rand, -500, 500);
          return k / 10 ** d;
        case 1: // byte counts in KiB pages
          return int(rand, 0, 2 ** 24) * 1024;
        case 2: // doubles with 15 significant digits
          return Number(((rand() - 0.5) * 10 ** int(rand, -5, 12)).toPrecision(15));
        case 3: // extremes of the scaled range and beyond
          return [2 ** 53, -(2 ** 53), 2 ** 53 - 1, 0, Number.NaN, Number.POSITIVE_INFINITY][
            int(rand, 0, 5)
          ]!;
        case 4: // constant
          return k;
        case 5: // 15 digits around 1e9, where some values need 6 decimals and others scale past 2^50
          return Number(((rand() - 0.5) * 10 ** int(rand, 9, 11)).toPrecision(15));
        default: // up to 15 significant digits at any scale
          return int(rand, -(10 ** 15), 10 ** 15) / 10 ** d;
      }
    });
    return { name: `series.${s}.${kind}`, values };
  });
  return frameOf(ticks, series);
}

describe("metrics codec: compression", () => {
  const repetitive = frameOf(
    60,
    Array.from({ length: 40 }, (_, i) => ({
      name: `node.disk.sda${i}.read_bytes_total`,
      values: Array.from({ length: 60 }, (_, t) => (t % 2) * 4096),
    })),
  );

  test("metrics codec: compresses with zstd when data is large and zstd makes it smaller", () => {
    const { data, z } = encodeMetrics(repetitive);
    expect(z).toBe(1);
    expect(data.length).toBeLessThan(rawSize(repetitive));
    expect(roundTrip(repetitive)).toEqual(repetitive);
  });

  test("metrics codec: leaves data raw at or below the threshold", () => {
    const small = frameOf(2, [{ name: "a", values: [1, 2] }]);
    expect(encodeMetrics(small).z).toBe(0);
    expect(encodeMetrics(repetitive, { compressAbove: Number.POSITIVE_INFINITY }).z).toBe(0);
    expect(roundTrip(repetitive, { compressAbove: Number.POSITIVE_INFINITY })).toEqual(repetitive);
  });

  test("metrics codec: leaves data raw when zstd would make it larger", () => {
    const tiny = frameOf(1, [{ name: "a", values: [1] }]);
    const { data, z } = encodeMetrics(tiny, { compressAbove: 0 });
    expect(z).toBe(0);
    expect(data.length).toBe(rawSize(tiny));
  });
});

describe("metrics codec: hostile input", () => {
  // version 1, 3 ticks, 1 series "ab", every tick present, scaled d=0, g=1, k0=5, deltas +1 +1
  const valid = [1, 3, 1, 2, ...ascii("ab"), 0x00, 1, 10, 2, 2];

  test("metrics codec: accepts the hand-built reference encoding", () => {
    expect(decodeBytes(valid, 3).series).toEqual([{ name: "ab", values: [5, 6, 7] }]);
  });

  test("metrics codec: refuses every truncation of valid data", () => {
    const frames = [
      frameOf(3, [{ name: "ab", values: [5, 6, 7] }]),
      randomFrame(prng(5)),
      randomFrame(prng(6)),
    ];
    for (const frame of frames) {
      const { data } = encodeMetrics(frame, { compressAbove: Number.POSITIVE_INFINITY });
      for (let len = 0; len < data.length; len++)
        badBody(() => decodeBytes(data.subarray(0, len), frame.ticks));
    }
  });

  test("metrics codec: refuses trailing bytes", () => {
    expect(badBody(() => decodeBytes([...valid, 0], 3)).message).toMatch(/trailing/);
  });

  test("metrics codec: refuses data encoded for a different number of ticks than the batch", () => {
    expect(badBody(() => decodeBytes(valid, 4)).message).toMatch(/3 ticks but the batch says 4/);
    expect(badBody(() => decodeBytes(valid, 1_000_001)).message).toMatch(/ticks/);
  });

  test("metrics codec: refuses an unknown format version and unknown flags", () => {
    expect(badBody(() => decodeBytes([3, ...valid.slice(1)], 3)).message).toMatch(/version 3/);
    const flagsAt = 6;
    for (const flags of [0x03, 0x0c, 0x70, 0x80]) {
      const bytes = valid.slice();
      bytes[flagsAt] = flags;
      expect(badBody(() => decodeBytes(bytes, 3)).message).toMatch(/series 0 \(ab\) has unknown flags/);
    }
  });

  test("metrics codec: refuses bogus huge counts before allocating for them", () => {
    const cases: [number[], number, RegExp][] = [
      [[1, 1, ...varint(2 ** 53)], 1, /series count/],
      [[1, 1, ...varint(100_001), ...new Array(300_000).fill(0)], 1, /series count 100001/],
      [[1, ...varint(1_000_000), 100, ...new Array(400).fill(0)], 1_000_000, /too many/],
      [[1, 1, 1, ...varint(2 ** 40), 0], 1, /name is longer/],
      [[1, 1, 1, ...varint(1024), 0], 1, /series 0 name/],
      [[1, ...varint(1_000_000), 1, 0, 0, 0x01, 0xff], 1_000_000, /presence bitmap/],
      [[1, ...varint(1_000_000), 1, 0, 0, 0x04, 0, 0], 1_000_000, /float values/],
      [[1, ...varint(1_000_000), 1, 0, 0, 0x00, 1, 0, 0, 0], 1_000_000, /deltas do not fit/],
      [[1, 1, 1, 0, 0, 0x00, ...new Array(20).fill(0x80), 0], 1, /varint is too long/],
      [[1, 1, 1, 0, 0, 0x00, ...varint(2 ** 53 + 2048)], 1, /exceeds 2\^53/],
    ];
    for (const [bytes, ticks, message] of cases) {
      expect(badBody(() => decodeBytes(bytes, ticks)).message).toMatch(message);
    }
  });

  test("metrics codec: refuses presence bits past the last tick and scaled values beyond 2^53", () => {
    // 3 ticks, bitmap 0b1000 marks tick 3
    const bits = [1, 3, 1, 1, ...ascii("b"), 0x01, 0b1001, 1, 2, 2];
    expect(badBody(() => decodeBytes(bits, 3)).message).toMatch(/ticks past 3/);
    // k0 = 2^53 (zigzag 2^54), then +2
    const over = [1, 2, 1, 1, ...ascii("c"), 0x00, 1, ...varint(2 ** 54), 4];
    expect(badBody(() => decodeBytes(over, 2)).message).toMatch(/exceeds 2\^53/);
  });

  test("metrics codec: refuses names that are not valid UTF-8", () => {
    const bytes = [1, 1, 1, 2, 0xc3, 0x28, 0x02];
    expect(badBody(() => decodeBytes(bytes, 1)).message).toMatch(/UTF-8/);
  });

  test("metrics codec: refuses z=1 with data that is not zstd, or a corrupt zstd frame", () => {
    expect(badBody(() => decodeBytes(valid, 3, 1)).message).toMatch(/not a zstd frame/);
    const packed = Bun.zstdCompressSync(new Uint8Array(1000));
    const corrupt = packed.slice(0, packed.length - 3);
    badBody(() => decodeBytes(corrupt, 3, 1));
    badBody(() =>
      decodeMetrics({ start: START, interval: INTERVAL, ticks: 3, data: Uint8Array.from(valid), z: 2 as 0 }),
    );
  });

  test("metrics codec: refuses a zstd bomb that declares its size (64 MiB of zeros)", () => {
    const bomb = Bun.zstdCompressSync(new Uint8Array(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(10_000);
    expect(badBody(() => decodeBytes(bomb, 1, 1)).message).toMatch(/declares 67108864 bytes/);
  });

  test("metrics codec: stops decompressing a zstd bomb that hides its size at the limit", () => {
    const bomb = rleBomb(8192); // 1 GiB of RLE blocks in 32 KiB, no declared content size
    // The refusal comes from the output bound (maxOutputLength), not from a length check after inflating.
    const err = badBody(() => decodeBytes(bomb, 1, 1));
    expect(err.message).toMatch(/within 16777216 bytes/);
    expect((err.cause as { code?: string }).code).toBe("ERR_BUFFER_TOO_LARGE");
  });

  test("metrics codec: applies maxDecompressedBytes to compressed and raw data", () => {
    const frame = frameOf(60, [{ name: "x", values: Array.from({ length: 60 }, () => 1e300) }]);
    const { data, z } = encodeMetrics(frame);
    expect(z).toBe(1);
    const body = { ...frame, data, z };
    expect(decodeMetrics(body, { maxDecompressedBytes: 1000 })).toEqual(frame);
    badBody(() => decodeMetrics(body, { maxDecompressedBytes: 400 }));
    const raw = { start: START, interval: INTERVAL, ticks: 3, data: Uint8Array.from(valid) };
    expect(badBody(() => decodeMetrics(raw, { maxDecompressedBytes: 5 })).message).toMatch(
      /over the limit of 5/,
    );
  });

  test("metrics codec: random bytes only ever decode or raise bad_body (seeded, 5000 cases)", () => {
    const rand = prng(99);
    for (let c = 0; c < 5000; c++) {
      const ticks = int(rand, 0, 20);
      const bytes = Array.from({ length: int(rand, 0, 64) }, () => int(rand, 0, 255));
      // Most cases start with a plausible header so the fuzzing reaches the series decoder.
      if (rand() < 0.8) bytes.unshift(1, ticks, int(rand, 0, 4));
      decodesOrRefuses(() => decodeBytes(bytes, ticks, rand() < 0.05 ? 1 : 0));
    }
  });

  test("metrics codec: mutated valid encodings only ever decode or raise bad_body (seeded, 3000 cases)", () => {
    const rand = prng(123);
    for (let c = 0; c < 3000; c++) {
      const frame = randomFrame(rand);
      const { data } = encodeMetrics(frame, { compressAbove: Number.POSITIVE_INFINITY });
      const bytes = Array.from(data);
      for (let m = int(rand, 1, 3); m > 0; m--) {
        const at = int(rand, 0, bytes.length);
        const op = int(rand, 0, 2);
        if (op === 0 && at < bytes.length) bytes[at] = int(rand, 0, 255);
        else if (op === 1) bytes.splice(at, 0, int(rand, 0, 255));
        else bytes.splice(at, 1);
      }
      decodesOrRefuses(() => decodeBytes(bytes, frame.ticks));
    }
  });
});

/** A zstd frame of 128 KiB RLE blocks (RFC 8878 §3.1.1.2), 4 bytes each, that declares no content size. */
function rleBomb(blocks: number): Uint8Array {
  const header = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58];
  const out = new Uint8Array(header.length + blocks * 4);
  out.set(header);
  const blockHeader = (1 << 1) | ((128 * 1024) << 3);
  for (let i = 0, at = header.length; i < blocks; i++, at += 4) {
    const h = blockHeader | (i === blocks - 1 ? 1 : 0);
    out.set([h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff, 0], at);
  }
  return out;
}

describe("metrics codec: realistic batches", () => {
  test("metrics codec: a realistic 60-tick batch takes under 3 bytes per sample", () => {
    const rand = prng(42);
    const ten = realisticFrame(10, rand);
    const sixty = realisticFrame(60, rand);
    for (const frame of [ten, sixty]) {
      const { data, z, samples } = encodeMetrics(frame);
      expect(roundTrip(frame)).toEqual(frame);
      const raw = rawSize(frame);
      const per = (bytes: number) => (bytes / samples).toFixed(2);
      console.log(
        `metrics codec: ${frame.ticks} ticks × ${frame.series.length} series, ${samples} samples: ` +
          `${data.length} bytes (z=${z}) = ${per(data.length)} B/sample; raw ${per(raw)} B/sample`,
      );
    }
    const { data, samples } = encodeMetrics(sixty);
    expect(data.length / samples).toBeLessThan(3);
  });

  test("metrics codec: reports decode throughput (printed, not asserted)", () => {
    const frame = realisticFrame(60, prng(1));
    const { data, z, samples } = encodeMetrics(frame);
    const body = { ...frame, data, z };
    for (let i = 0; i < 200; i++) decodeMetrics(body);
    const rounds = 2000;
    const started = performance.now();
    for (let i = 0; i < rounds; i++) decodeMetrics(body);
    const seconds = (performance.now() - started) / 1000;
    const rate = (rounds * samples) / seconds;
    console.log(`metrics codec: decodes ${(rate / 1e6).toFixed(1)}M samples/s (60 × 9 batch, z=${z})`);
    const raw = encodeMetrics(frame, { compressAbove: Number.POSITIVE_INFINITY }).data;
    const rawStarted = performance.now();
    for (let i = 0; i < rounds; i++) decodeMetrics({ ...frame, data: raw, z: 0 });
    const rawRate = (rounds * samples) / ((performance.now() - rawStarted) / 1000);
    console.log(`metrics codec: decodes ${(rawRate / 1e6).toFixed(1)}M samples/s uncompressed`);
    expect(rate).toBeGreaterThan(0);
  });
});

/** Nine series as the agent collects them: percentages and loads with 2 decimals, byte counts, rates. */
function realisticFrame(ticks: number, rand: () => number): MetricsFrame {
  const walk = (start: number, step: number, lo: number, hi: number, round: (v: number) => number) => {
    let v = start;
    return Array.from({ length: ticks }, () => {
      v = Math.min(hi, Math.max(lo, v + (rand() * 2 - 1) * step));
      return round(v);
    });
  };
  const cents = (v: number) => Math.round(v * 100) / 100;
  const kib = (v: number) => Math.round(v / 1024) * 1024;
  const total = 16 * 1024 ** 3;
  const avail = walk(6.2e9, 2 * 1024 ** 2, 1e9, total, kib);
  return frameOf(ticks, [
    { name: "cpu.util", values: walk(23.17, 3, 0, 100, cents) },
    { name: "cpu.iowait", values: walk(0.4, 0.2, 0, 100, cents) },
    { name: "mem.avail_bytes", values: avail },
    { name: "mem.used_bytes", values: avail.map((a) => total - a) },
    { name: "disk.used_bytes", values: walk(120e9, 64 * 1024, 0, 1e12, (v) => Math.round(v / 4096) * 4096) },
    { name: "net.rx_bps", values: walk(125_000, 40_000, 0, 1e9, Math.round) },
    { name: "net.tx_bps", values: walk(40_000, 15_000, 0, 1e9, Math.round) },
    { name: "load.1", values: walk(0.87, 0.15, 0, 64, cents) },
    { name: "load.5", values: walk(0.74, 0.05, 0, 64, cents) },
  ]);
}

describe("metrics codec: series at their own times (format 2)", () => {
  const timed = (name: string, times: number[], values: number[]): SeriesColumn => ({ name, values, times });

  test("metrics codec: ten points a second keep their millisecond times and values exactly", () => {
    const times = Array.from({ length: 600 }, (_, i) => START + i * 100 + (i % 7));
    const values = times.map((_, i) => Math.round(Math.sin(i) * 1000) / 100 || 0);
    const frame = frameOf(1, [timed("sensor.vibration", times, values)]);
    const back = roundTrip(frame);
    expect(back.series).toEqual([{ name: "sensor.vibration", values, times }]);
    expect(countSamples(back)).toBe(600);
  });

  test("metrics codec: grid and timed series share a batch; grid-only data stays format 1, byte for byte", () => {
    const grid = { name: "cpu.util", values: [1, 2, null, 4] };
    const gridOnly = encodeMetrics(frameOf(4, [grid]), { compressAbove: Number.POSITIVE_INFINITY });
    expect(gridOnly.data[0]).toBe(1);
    const mixed = frameOf(4, [
      grid,
      timed("app.latency_ms", [START + 1, START + 250, START + 9999], [3, 4.5, 6]),
    ]);
    const enc = encodeMetrics(mixed, { compressAbove: Number.POSITIVE_INFINITY });
    expect(enc.data[0]).toBe(2);
    expect(enc.samples).toBe(6);
    expect(roundTrip(mixed).series).toEqual(mixed.series);
  });

  test("metrics codec: a format 1 reader's rule holds: presence 3 in format 1 data is refused", () => {
    const enc = encodeMetrics(frameOf(1, [timed("ab", [START], [5])]), {
      compressAbove: Number.POSITIVE_INFINITY,
    });
    const asV1 = Uint8Array.from(enc.data);
    asV1[0] = 1;
    expect(badBody(() => decodeBytes(asV1, 1)).message).toMatch(/unknown flags/);
  });

  test("metrics codec: refuses to encode times that do not rise, lie before the start or are not integers", () => {
    for (const times of [[START + 5, START + 5], [START + 5, START + 4], [START - 1], [START + 0.5]]) {
      badBody(() =>
        encodeMetrics(
          frameOf(1, [
            timed(
              "ab",
              times,
              times.map(() => 1),
            ),
          ]),
        ),
      );
    }
    badBody(() => encodeMetrics(frameOf(1, [{ name: "ab", values: [1, 2], times: [START] }])));
  });

  test("metrics codec: refuses hostile timed data: zero steps, zero count, counts past the bytes left", () => {
    // version 2, 1 tick, 1 series, name "ab", flags presence 3 (scaled, d 0)
    const head = [2, 1, 1, 2, ...ascii("ab"), 3];
    expect(badBody(() => decodeBytes([...head, 0, 0, 0, 0], 1)).message).toMatch(/count 0/);
    expect(badBody(() => decodeBytes([...head, 2, 0, 0, 1, 0, 0], 1)).message).toMatch(/step 0/);
    expect(badBody(() => decodeBytes([...head, 2, 0, 1, 0, 0, 0], 1)).message).toMatch(/does not rise/);
    expect(badBody(() => decodeBytes([...head, ...varint(1_000_000), 0, 1], 1)).message).toMatch(
      /do not fit/,
    );
    expect(badBody(() => decodeBytes([...head, 1, ...varint(2 ** 53), 0, 0], 1)).message).toMatch(
      /2\^53|time/,
    );
    // The reference: two points 7 ms apart, values 5 and 6.
    expect(decodeBytes([...head, 2, 3, 7, 1, 1, 10, 2], 1).series).toEqual([
      { name: "ab", values: [5, 6], times: [START + 3, START + 10] },
    ]);
  });

  test("metrics codec: randomized timed frames round-trip exactly and mutations only ever refuse cleanly (seeded)", () => {
    const rand = prng(42);
    for (let c = 0; c < 500; c++) {
      const series: SeriesColumn[] = [];
      const n = int(rand, 1, 4);
      for (let s = 0; s < n; s++) {
        const count = int(rand, 1, 200);
        const times: number[] = [];
        let t = START + int(rand, 0, 5000);
        for (let i = 0; i < count; i++) {
          times.push(t);
          t += rand() < 0.3 ? int(rand, 1, 3) : int(rand, 1, 100_000);
        }
        const values = times.map(() => (rand() < 0.1 ? rand() * 1e300 : int(rand, -1e6, 1e6) / 100));
        series.push(timed(`s${s}`, times, values));
      }
      const frame = frameOf(1, series);
      expect(roundTrip(frame).series).toEqual(series);
      const { data } = encodeMetrics(frame, { compressAbove: Number.POSITIVE_INFINITY });
      for (let m = 0; m < 5; m++) {
        const bytes = Uint8Array.from(data);
        bytes[int(rand, 0, bytes.length - 1)] = int(rand, 0, 255);
        decodesOrRefuses(() => decodeBytes(bytes, 1));
      }
    }
  });
});
