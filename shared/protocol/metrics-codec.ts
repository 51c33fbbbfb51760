// Columnar, delta-encoded, optionally zstd-compressed body data of a `metrics_batch` message.
//
// Layout of the raw (uncompressed) data, all integers as LEB128 varints unless noted:
//
//   u8       format version: 1, or 2 when a series carries its own times (presence 3, below)
//   varint   ticks; must equal the batch's `ticks`, so a blob cannot be read against the wrong grid
//   varint   series count S
//   S times:
//     varint   name length in bytes (1..1024), then the name as UTF-8; or 0, then a varint index into
//              WELL_KNOWN_SERIES (well-known-series.ts), which saves ~1 byte a sample on small batches
//     u8       flags: bits 0-1 presence (0 every tick, 1 bitmap follows, 2 no tick, 3 own times),
//              bits 2-3 values (0 scaled integers, 1 float64), bits 4-6 decimals d (0..6), bit 7 zero
//     bitmap   ceil(ticks / 8) bytes when presence is 1; bit i (LSB first) set when tick i has a value;
//              bits past the last tick are zero
//     times    presence 3 only (format 2): the series' points carry their own millisecond times instead
//              of sitting on the grid (points pushed at sub-second times): varint n (1..1,000,000),
//              varint t0 - start (no point lies before the batch's start), then when n > 1 varint g > 0 (GCD of the steps) and n - 1 varints
//              q ≥ 1, t_i = t_{i-1} + q_i * g. Times rise strictly, so n - 1 steps take n - 1 bytes at
//              least; a format 1 reader refuses the whole batch (unknown version) instead of putting
//              the points on the grid.
//     values   of the n present ticks (or the n timed points), nothing when n is 0:
//       scaled:  varint g, zigzag k0, then when g > 0 n - 1 zigzag q; value i is k_i / 10^d with
//                k_i = k_{i-1} + q_i * g. g is the GCD of the deltas (1024 for memory counted in KiB);
//                g = 0 means every value equals k0, so a constant series costs a few bytes.
//       float64: n little-endian IEEE 754 doubles, for NaN, ±Infinity, more than 6 decimals, or scaled
//                integers (beyond 2^53, or 2^50 when d > 0) and deltas (2^53) that doubles cannot hold
//                exactly.
//
// Zigzag maps n ≥ 0 to 2n and n < 0 to 2(-n - 1) + 1; it is computed as 2m + sign so that every
// integer of magnitude ≤ 2^53 stays exact in double arithmetic, without BigInt.
// node:zlib is loaded on first decode only: agents never decode, and the module costs them ~2.7 MB resident.
type ZstdDecompress = (data: Uint8Array, opts: { maxOutputLength: number }) => Uint8Array;
let zstdDecompressSync: ZstdDecompress | undefined;
const zstd = (): ZstdDecompress => {
  zstdDecompressSync ??= (require("node:zlib") as { zstdDecompressSync: ZstdDecompress }).zstdDecompressSync;
  return zstdDecompressSync;
};
import { ProtocolError } from "../errors.ts";
import { WELL_KNOWN_SERIES, wellKnownIndex } from "./well-known-series.ts";

/**
 * One series over the batch's ticks; null where the series had no value at that tick. With `times`,
 * the series is off the grid: values[i] (never null) was taken at times[i] (ms since the epoch,
 * strictly rising), and the batch's ticks say nothing about it.
 */
export interface SeriesColumn {
  name: string;
  values: (number | null)[];
  times?: number[];
}

/** A batch of samples on a regular time grid. */
export interface MetricsFrame {
  start: number;
  interval: number;
  ticks: number;
  series: SeriesColumn[];
}

const FORMAT_VERSION = 1;
/** Written only when a series carries its own times, so that batches of grid data stay readable by format 1 hubs. */
const FORMAT_TIMED = 2;
const MAX_TICKS = 1_000_000;
const MAX_SERIES = 100_000;
const MAX_NAME_BYTES = 1024;
// Caps ticks × series so a few bytes (many constant series over many ticks) cannot make the hub
// allocate gigabytes of arrays; a real batch is far below it.
const MAX_CELLS = 1 << 24;
const MAX_DECIMALS = 6;
const LIMIT = 2 ** 53;
// Below 2^50 an ulp of v * 10^d is at most 1/8, so Math.round lands on the decimal's exact integer;
// above it, scaling a value by a d that another value of the series needed can be off by one.
const SCALED_LIMIT = 2 ** 50;
// Snapping to d decimals moves a value by at most this much, relative: a few ulps, which absorbs the float
// noise of decimal arithmetic (0.1 + 0.2, 12.34 * 100) yet keeps every digit a double can carry.
// A looser bound such as 1e-9 would silently round 1718000000.121 to 1718000000.12.
const INTEGRAL_TOLERANCE = 2 ** -50;
const DEFAULT_COMPRESS_ABOVE = 64;
const DEFAULT_MAX_DECOMPRESSED = 16 * 1024 * 1024;
const ZSTD_MAGIC = 0xfd2fb528;

const PRESENCE_ALL = 0;
const PRESENCE_BITMAP = 1;
const PRESENCE_NONE = 2;
const PRESENCE_TIMED = 3;
const VALUES_SCALED = 0;
const VALUES_FLOAT = 1;

const POW10 = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];
const utf8Encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF in a name instead of silently dropping it.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function bad(message: string, cause?: unknown): ProtocolError {
  return new ProtocolError("bad_body", message, cause === undefined ? undefined : { cause });
}

/** Counts non-null samples in a frame. */
export function countSamples(frame: MetricsFrame): number {
  let n = 0;
  for (const s of frame.series) for (const v of s.values) if (v !== null) n++;
  return n;
}

/** Encodes a frame; `z` is 1 when zstd made `data` smaller and was applied; `samples` counts non-null values. */
export function encodeMetrics(
  frame: MetricsFrame,
  opts: { compressAbove?: number } = {},
): { data: Uint8Array<ArrayBuffer>; z: 0 | 1; samples: number } {
  const { ticks, series } = frame;
  if (!Number.isInteger(ticks) || ticks < 0 || ticks > MAX_TICKS) {
    throw bad(`ticks must be an integer in 0..${MAX_TICKS}, got ${ticks}`);
  }
  if (series.length > MAX_SERIES) throw bad(`${series.length} series exceed the limit of ${MAX_SERIES}`);
  if (series.length * ticks > MAX_CELLS) throw bad(`${series.length} series × ${ticks} ticks is too many`);
  const w = new Writer(Math.min(64 + series.length * 24 + series.length * ticks * 2, 1 << 20));
  const timed = series.some((s) => s.times !== undefined);
  w.byte(timed ? FORMAT_TIMED : FORMAT_VERSION);
  w.uint(ticks);
  w.uint(series.length);
  let samples = 0;
  for (let i = 0; i < series.length; i++) {
    const s = series[i]!;
    samples += s.times === undefined ? writeSeries(w, s, ticks, i) : writeTimedSeries(w, s, frame.start, i);
  }
  const raw = w.finish();
  if (raw.length > (opts.compressAbove ?? DEFAULT_COMPRESS_ABOVE)) {
    const packed = Bun.zstdCompressSync(raw);
    if (packed.length < raw.length) return { data: new Uint8Array(packed), z: 1, samples };
  }
  return { data: raw, z: 0, samples };
}

function writeSeries(w: Writer, s: SeriesColumn, ticks: number, index: number): number {
  const { values } = s;
  if (values.length !== ticks) {
    throw bad(`series ${index} (${s.name}) has ${values.length} values for ${ticks} ticks`);
  }
  writeName(w, s, index);
  const flagsAt = w.reserve(1);
  return writeGridValues(w, s, ticks, index, flagsAt);
}

function writeName(w: Writer, s: SeriesColumn, index: number): void {
  if (!s.name.isWellFormed()) throw bad(`series ${index} name is not well-formed Unicode`);
  if (s.name.length === 0) throw bad(`series ${index} has an empty name`);
  const known = wellKnownIndex(s.name);
  if (known !== undefined) {
    w.uint(0);
    w.uint(known);
  } else {
    const name = utf8Encoder.encode(s.name);
    if (name.length > MAX_NAME_BYTES)
      throw bad(`series ${index} name is longer than ${MAX_NAME_BYTES} bytes`);
    w.uint(name.length);
    w.bytes(name);
  }
}

/** A series with its own times: count, first time, steps (see the layout above), then its values. */
function writeTimedSeries(w: Writer, s: SeriesColumn, start: number, index: number): number {
  const { values } = s;
  const times = s.times!;
  const n = times.length;
  if (values.length !== n)
    throw bad(`series ${index} (${s.name}) has ${values.length} values for ${n} times`);
  if (n > MAX_TICKS) throw bad(`series ${index} (${s.name}) has ${n} timed points (at most ${MAX_TICKS})`);
  writeName(w, s, index);
  const flagsAt = w.reserve(1);
  if (n === 0) {
    w.buf[flagsAt] = PRESENCE_NONE;
    return 0;
  }
  let g = 0;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const t = times[i]!;
    const v = values[i];
    if (!Number.isInteger(t) || t < 0 || t > LIMIT)
      throw bad(`series ${index} (${s.name}) time ${i} is not a millisecond time: ${t}`);
    if (i > 0) {
      if (!(t > times[i - 1]!)) throw bad(`series ${index} (${s.name}) times do not rise at ${i}`);
      g = gcd(g, t - times[i - 1]!);
    }
    if (typeof v !== "number") throw bad(`series ${index} (${s.name}) value ${i} is not a number`);
    if (d >= 0) d = decimalsOf(v, d);
  }
  if (times[0]! < start) throw bad(`series ${index} (${s.name}) has a time before the batch's start`);
  w.uint(n);
  w.uint(times[0]! - start);
  if (n > 1) {
    w.uint(g);
    for (let i = 1; i < n; i++) w.uint((times[i]! - times[i - 1]!) / g);
  }
  const valuesAt = w.pos;
  if (d >= 0 && writeScaled(w, values, POW10[d]!)) {
    w.buf[flagsAt] = PRESENCE_TIMED | (VALUES_SCALED << 2) | (d << 4);
  } else {
    w.pos = valuesAt;
    w.buf[flagsAt] = PRESENCE_TIMED | (VALUES_FLOAT << 2);
    w.reserve(n * 8);
    for (let i = 0, at = valuesAt; i < n; i++, at += 8) w.view.setFloat64(at, values[i]!, true);
  }
  return n;
}

function writeGridValues(w: Writer, s: SeriesColumn, ticks: number, index: number, flagsAt: number): number {
  const { values } = s;
  const bitmapBytes = (ticks + 7) >>> 3;
  const bitmapAt = w.reserve(bitmapBytes);
  const buf = w.buf;
  buf.fill(0, bitmapAt, bitmapAt + bitmapBytes);
  // One pass finds presence and the smallest decimal scale; d only grows, so each value is scaled a few
  // times at most.
  let present = 0;
  let d = 0;
  for (let i = 0; i < ticks; i++) {
    const v = values[i];
    if (v === null) continue;
    if (typeof v !== "number")
      throw bad(`series ${index} (${s.name}) value at tick ${i} is not a number or null`);
    present++;
    const at = bitmapAt + (i >>> 3);
    buf[at] = buf[at]! | (1 << (i & 7));
    if (d >= 0) d = decimalsOf(v, d);
  }
  if (present === 0) {
    w.pos = bitmapAt;
    w.buf[flagsAt] = PRESENCE_NONE;
    return 0;
  }
  let presence = PRESENCE_BITMAP;
  if (present === ticks) {
    presence = PRESENCE_ALL;
    w.pos = bitmapAt;
  }
  const valuesAt = w.pos;
  if (d >= 0 && writeScaled(w, values, POW10[d]!)) {
    w.buf[flagsAt] = presence | (VALUES_SCALED << 2) | (d << 4);
  } else {
    w.pos = valuesAt;
    w.buf[flagsAt] = presence | (VALUES_FLOAT << 2);
    w.reserve(present * 8);
    let at = valuesAt;
    for (const v of values) {
      if (v === null) continue;
      w.view.setFloat64(at, v, true);
      at += 8;
    }
  }
  return present;
}

/** Smallest d ≥ from at which v * 10^d is an integer the scaled form holds exactly, else -1. */
function decimalsOf(v: number, from: number): number {
  for (let d = from; d <= MAX_DECIMALS; d++) {
    const x = v * POW10[d]!;
    const limit = d === 0 ? LIMIT : SCALED_LIMIT;
    // Also false for NaN and ±Infinity.
    if (!(x <= limit && x >= -limit)) return -1;
    if (Math.abs(x - Math.round(x)) <= INTEGRAL_TOLERANCE * Math.abs(x)) return d;
  }
  return -1;
}

/** Writes the scaled section; false (leaving output for the caller to drop) when it would not be exact. */
function writeScaled(w: Writer, values: (number | null)[], scale: number): boolean {
  const limit = scale === 1 ? LIMIT : SCALED_LIMIT;
  let first = true;
  let prev = 0;
  let g = 0;
  for (const v of values) {
    if (v === null) continue;
    const k = Math.round(v * scale);
    if (k > limit || k < -limit) return false;
    if (first) {
      first = false;
    } else {
      const delta = Math.abs(k - prev);
      // A true delta past 2^53 can round down to exactly 2^53, hence the strict bound.
      if (!(delta < LIMIT)) return false;
      g = gcd(g, delta);
    }
    prev = k;
  }
  w.uint(g);
  first = true;
  for (const v of values) {
    if (v === null) continue;
    const k = Math.round(v * scale);
    if (first) {
      w.sint(k);
      first = false;
      if (g === 0) break;
    } else {
      w.sint((k - prev) / g);
    }
    prev = k;
  }
  return true;
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** Decodes `data` back into a frame. Throws ProtocolError("bad_body", message) from ../errors.ts on any malformed/hostile input. */
export function decodeMetrics(
  body: { start: number; interval: number; ticks: number; data: Uint8Array; z?: 0 | 1 | undefined },
  limits: { maxDecompressedBytes?: number } = {},
): MetricsFrame {
  const { ticks } = body;
  if (!Number.isInteger(ticks) || ticks < 0 || ticks > MAX_TICKS) {
    throw bad(`ticks must be an integer in 0..${MAX_TICKS}, got ${ticks}`);
  }
  if (!(body.data instanceof Uint8Array)) throw bad("data is not a byte string");
  const max = limits.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED;
  let data = body.data;
  if (body.z === 1) data = decompress(data, max);
  else if (body.z !== 0 && body.z !== undefined) throw bad(`z must be 0 or 1, got ${String(body.z)}`);
  else if (data.length > max) throw bad(`data is ${data.length} bytes, over the limit of ${max}`);

  const r = new Reader(data);
  const version = r.byte("format version");
  if (version !== FORMAT_VERSION && version !== FORMAT_TIMED)
    throw bad(`unsupported metrics format version ${version}`);
  const encodedTicks = r.uint("ticks");
  if (encodedTicks !== ticks) throw bad(`data holds ${encodedTicks} ticks but the batch says ${ticks}`);
  const count = r.uint("series count");
  // Every series takes at least two bytes (name length and flags).
  if (count > MAX_SERIES || count * 2 > r.remaining()) {
    throw bad(`series count ${count} does not fit in ${r.remaining()} bytes (limit ${MAX_SERIES})`);
  }
  if (count * ticks > MAX_CELLS) throw bad(`${count} series × ${ticks} ticks is too many`);
  const series: SeriesColumn[] = new Array(count);
  const cells = { timed: 0, allowed: version === FORMAT_TIMED, start: body.start };
  for (let i = 0; i < count; i++) series[i] = readSeries(r, ticks, i, cells);
  if (r.remaining() !== 0) throw bad(`${r.remaining()} trailing bytes after ${count} series`);
  return { start: body.start, interval: body.interval, ticks, series };
}

function readSeries(
  r: Reader,
  ticks: number,
  index: number,
  cells: { timed: number; allowed: boolean; start: number },
): SeriesColumn {
  const nameLength = r.uint(`series ${index} name length`);
  if (nameLength > MAX_NAME_BYTES) throw bad(`series ${index} name is longer than ${MAX_NAME_BYTES} bytes`);
  let name: string;
  if (nameLength === 0) {
    const known = r.uint(`series ${index} well-known name index`);
    const wellKnown = WELL_KNOWN_SERIES[known];
    if (wellKnown === undefined) throw bad(`series ${index} names unknown well-known series ${known}`);
    name = wellKnown;
  } else {
    try {
      name = utf8Decoder.decode(r.take(nameLength, `series ${index} name`));
    } catch (err) {
      if (err instanceof ProtocolError) throw err;
      throw bad(`series ${index} name is not valid UTF-8`, err);
    }
  }
  const flags = r.byte(`series ${index} (${name}) flags`);
  const presence = flags & 3;
  const kind = (flags >> 2) & 3;
  const d = (flags >> 4) & 7;
  const timed = presence === PRESENCE_TIMED && cells.allowed;
  if ((presence > PRESENCE_NONE && !timed) || kind > VALUES_FLOAT || d > MAX_DECIMALS || flags & 0x80) {
    throw bad(`series ${index} (${name}) has unknown flags 0x${flags.toString(16)}`);
  }
  if (timed) return readTimed(r, name, index, kind, d, cells);
  const values: (number | null)[] = new Array(ticks);
  if (presence === PRESENCE_NONE) {
    values.fill(null);
    return { name, values };
  }
  let n = ticks;
  let bitmap: Uint8Array | undefined;
  if (presence === PRESENCE_BITMAP) {
    bitmap = r.take((ticks + 7) >>> 3, `series ${index} (${name}) presence bitmap`);
    n = 0;
    for (const b of bitmap) n += popcount(b);
    const last = bitmap[bitmap.length - 1];
    if (last !== undefined && ticks % 8 !== 0 && last >>> (ticks % 8) !== 0) {
      throw bad(`series ${index} (${name}) presence bitmap marks ticks past ${ticks}`);
    }
  }
  if (n > 0) {
    if (kind === VALUES_FLOAT) readFloats(r, values, n, index, name);
    else readScaled(r, values, n, POW10[d]!, index, name);
  }
  // Values were decoded densely into the front; spreading them to their ticks from the back never
  // overwrites one not yet moved.
  if (bitmap !== undefined) {
    let j = n;
    for (let i = ticks - 1; i >= 0; i--) {
      values[i] = (bitmap[i >>> 3]! >>> (i & 7)) & 1 ? values[--j]! : null;
    }
  }
  return { name, values };
}

// A series with its own times (format 2, presence 3): see the layout at the top.
function readTimed(
  r: Reader,
  name: string,
  index: number,
  kind: number,
  d: number,
  cells: { timed: number; start: number },
): SeriesColumn {
  const what = `series ${index} (${name}) times`;
  const n = r.uint(what);
  if (n === 0 || n > MAX_TICKS) throw bad(`${what}: count ${n} is not in 1..${MAX_TICKS}`);
  // Every step after the first time takes at least one byte.
  if (n - 1 > r.remaining()) throw bad(`${what}: ${n - 1} steps do not fit in ${r.remaining()} bytes`);
  cells.timed += n;
  if (cells.timed > MAX_CELLS) throw bad(`${what}: ${cells.timed} timed points in all is too many`);
  const times: number[] = new Array(n);
  let t = cells.start + r.uint(what);
  if (!(t >= 0 && t <= LIMIT)) throw bad(`${what}: first time ${t} is not a millisecond time`);
  times[0] = t;
  if (n > 1) {
    const g = r.uint(what);
    if (g === 0) throw bad(`${what}: step 0 (times must rise)`);
    for (let i = 1; i < n; i++) {
      const q = r.uint(what);
      if (q === 0) throw bad(`${what}: time ${i} does not rise`);
      t += q * g;
      if (!(t <= LIMIT)) throw bad(`${what}: time ${i} exceeds 2^53`);
      times[i] = t;
    }
  }
  const values: (number | null)[] = new Array(n);
  if (kind === VALUES_FLOAT) readFloats(r, values, n, index, name);
  else readScaled(r, values, n, POW10[d]!, index, name);
  return { name, values, times };
}

/**
 * The first and last time a frame holds a sample at (grid ticks and timed points), or undefined when it
 * holds none. What the hub indexes a batch by.
 */
export function frameSpan(frame: MetricsFrame): { first: number; last: number } | undefined {
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const col of frame.series) {
    if (col.times) {
      if (col.times.length === 0) continue;
      first = Math.min(first, col.times[0]!);
      last = Math.max(last, col.times[col.times.length - 1]!);
      continue;
    }
    const i = col.values.findIndex((v) => v !== null);
    if (i < 0) continue;
    first = Math.min(first, frame.start + i * frame.interval);
    const j = col.values.findLastIndex((v) => v !== null);
    last = Math.max(last, frame.start + j * frame.interval);
  }
  return first <= last ? { first, last } : undefined;
}

/** The time of value `i` of `col` in `frame`: its own time, or its tick's. */
export function sampleTime(frame: MetricsFrame, col: SeriesColumn, i: number): number {
  return col.times ? col.times[i]! : frame.start + i * frame.interval;
}

function readFloats(r: Reader, out: (number | null)[], n: number, index: number, name: string): void {
  r.take(n * 8, `series ${index} (${name}) float values`);
  let at = r.pos - n * 8;
  for (let i = 0; i < n; i++, at += 8) out[i] = r.view.getFloat64(at, true);
}

function readScaled(
  r: Reader,
  out: (number | null)[],
  n: number,
  scale: number,
  index: number,
  name: string,
): void {
  const what = `series ${index} (${name}) values`;
  const g = r.uint(what);
  let k = r.sint(what);
  if (g === 0) {
    out.fill(k / scale, 0, n);
    return;
  }
  out[0] = k / scale;
  // Each delta takes at least one byte, so a bogus count fails here instead of after a long loop.
  if (n - 1 > r.remaining()) throw bad(`${what}: ${n - 1} deltas do not fit in ${r.remaining()} bytes`);
  for (let i = 1; i < n; i++) {
    k += r.sint(what) * g;
    if (k > LIMIT || k < -LIMIT) throw bad(`${what}: value at position ${i} exceeds 2^53`);
    // Division by an exact power of ten rounds once, so 1234 / 100 is 12.34 (k * 0.01 is not).
    out[i] = k / scale;
  }
}

function popcount(b: number): number {
  b = b - ((b >>> 1) & 0x55);
  b = (b & 0x33) + ((b >>> 2) & 0x33);
  return (b + (b >>> 4)) & 0x0f;
}

/**
 * Decompresses zstd data, refusing more than `max` bytes of output. The frame's declared content size is
 * checked first; Bun.zstdDecompressSync cannot bound its output, so node:zlib's maxOutputLength bounds
 * frames that do not declare a size (and any further concatenated frames), aborting mid-stream.
 */
export function decompress(data: Uint8Array, max: number): Uint8Array {
  if (data.length < 5 || new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true) !== ZSTD_MAGIC) {
    throw bad("z is 1 but data is not a zstd frame");
  }
  const declared = declaredContentSize(data);
  if (declared !== undefined && declared > max) {
    throw bad(`zstd frame declares ${declared} bytes, over the limit of ${max}`);
  }
  let out: Uint8Array;
  try {
    out = zstd()(data, { maxOutputLength: max });
  } catch (err) {
    throw bad(`zstd data does not decompress within ${max} bytes`, err);
  }
  if (out.length > max) throw bad(`zstd data decompresses to ${out.length} bytes, over the limit of ${max}`);
  return out;
}

/** Frame_Content_Size from a zstd frame header (RFC 8878 §3.1.1.1), or undefined when the header omits it. */
function declaredContentSize(data: Uint8Array): number | undefined {
  const fhd = data[4]!;
  const fcsFlag = fhd >>> 6;
  const singleSegment = (fhd >>> 5) & 1;
  const fcsBytes = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag]!;
  if (fcsBytes === 0) return undefined;
  const at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][fhd & 3]!;
  if (at + fcsBytes > data.length) throw bad("zstd frame header is truncated");
  let size = 0;
  for (let i = fcsBytes - 1; i >= 0; i--) size = size * 256 + data[at + i]!;
  return fcsBytes === 2 ? size + 256 : size;
}

/** Growable byte buffer; one per encode, so encoding allocates per batch, not per value. */
class Writer {
  buf: Uint8Array;
  view: DataView;
  pos = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  /** Makes room for n bytes and returns where they start. */
  reserve(n: number): number {
    const at = this.pos;
    if (at + n > this.buf.length) {
      const grown = new Uint8Array(Math.max(this.buf.length * 2, at + n));
      grown.set(this.buf.subarray(0, at));
      this.buf = grown;
      this.view = new DataView(grown.buffer);
    }
    this.pos = at + n;
    return at;
  }

  byte(b: number): void {
    const at = this.reserve(1);
    this.buf[at] = b;
  }

  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }

  uint(v: number): void {
    this.reserve(8);
    let at = this.pos - 8;
    while (v >= 0x80) {
      this.buf[at++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[at++] = v;
    this.pos = at;
  }

  /** Zigzag as 2m + sign: m ≤ 2^53 keeps it exact where 2n would need 54 bits. */
  sint(n: number): void {
    const negative = n < 0;
    const m = negative ? -n - 1 : n;
    const low = (m % 64) * 2 + (negative ? 1 : 0);
    if (m < 64) {
      this.byte(low);
      return;
    }
    this.byte(low | 0x80);
    this.uint(Math.floor(m / 64));
  }

  finish(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.pos);
  }
}

/** Bounds-checked reader over untrusted bytes: every read names what it was reading when it fails. */
class Reader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  remaining(): number {
    return this.buf.length - this.pos;
  }

  byte(what: string): number {
    const b = this.buf[this.pos];
    if (b === undefined) throw bad(`data ends inside ${what}`);
    this.pos++;
    return b;
  }

  take(n: number, what: string): Uint8Array {
    if (n > this.remaining())
      throw bad(`data ends inside ${what} (${n} bytes needed, ${this.remaining()} left)`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  uint(what: string): number {
    const b = this.buf[this.pos];
    if (b !== undefined && b < 0x80) {
      this.pos++;
      return b;
    }
    return this.rest(0, 1, what);
  }

  sint(what: string): number {
    const b = this.byte(what);
    const m = b & 0x80 ? this.rest((b >>> 1) & 63, 64, what) : (b >>> 1) & 63;
    if (b & 1) {
      if (m >= LIMIT) throw bad(`${what}: integer exceeds 2^53`);
      return -m - 1;
    }
    return m;
  }

  /** Continues a varint whose value so far is `value` and whose next group is worth `scale`. */
  private rest(value: number, scale: number, what: string): number {
    for (;;) {
      const b = this.byte(what);
      const term = (b & 0x7f) * scale;
      if (term > LIMIT - value) throw bad(`${what}: integer exceeds 2^53`);
      value += term;
      if (b < 0x80) return value;
      scale *= 0x80;
      if (scale > LIMIT) throw bad(`${what}: varint is too long`);
    }
  }
}
