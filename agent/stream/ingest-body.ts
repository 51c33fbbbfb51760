// Parses the points local applications POST to the agent's /v1/ingest (JSON or CBOR), refusing bad input by field.
import { Decoder } from "cbor-x/decode";
import { RequestError } from "../../shared/errors.ts";
import { MAX_SERIES_CHARS, SERIES_PATTERN } from "./series-name.ts";

export const MAX_INGEST_POINTS = 10_000;
/** Enough for 10,000 points with long names; anything bigger is refused before decoding. */
export const MAX_INGEST_BYTES = 4 << 20;
/** How far a point's own time may be from the agent's clock. */
export const MAX_CLOCK_SKEW_MS = 86_400_000;

/** One validated point. */
export interface IngestPoint {
  series: string;
  /** Milliseconds since the epoch (the agent's clock when the body gave none). */
  t: number;
  value: number;
}

const POINT_KEYS = new Set(["series", "t", "value"]);
// Plain maps only: no cbor-x record extension, nothing beyond what any CBOR encoder writes.
const cbor = new Decoder({ useRecords: false, mapsAsObjects: true });

/**
 * Parses a POST /v1/ingest body: `{"points":[{"series","value","t"?}, ...]}` or the bare list, as JSON
 * (text, bytes, or an already-parsed value) or CBOR (bytes). Throws RequestError naming the field,
 * e.g. `points.3.value`.
 */
export function parseIngestBody(
  body: unknown,
  contentType: string | null | undefined,
  now: number = Date.now(),
): IngestPoint[] {
  const doc = decodeBody(body, mediaType(contentType));
  let list: unknown;
  let prefix: string;
  if (Array.isArray(doc)) {
    list = doc;
    prefix = "";
  } else if (isRecord(doc)) {
    for (const k of Object.keys(doc)) if (k !== "points") throw new RequestError(`unknown field "${k}"`, k);
    list = doc.points;
    prefix = "points.";
    if (!Array.isArray(list)) throw new RequestError("points must be a list", "points");
  } else {
    throw new RequestError('body must be {"points": [...]} or a list of points', "body");
  }
  const items = list as unknown[];
  if (items.length > MAX_INGEST_POINTS) {
    throw new RequestError(
      `too many points: ${items.length} (at most ${MAX_INGEST_POINTS})`,
      prefix ? "points" : "body",
    );
  }
  const out: IngestPoint[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) out[i] = parsePoint(items[i], `${prefix}${i}`, now);
  return out;
}

function parsePoint(raw: unknown, at: string, now: number): IngestPoint {
  if (!isRecord(raw)) throw new RequestError("must be a map with series, value and optional t", at);
  for (const k of Object.keys(raw)) {
    if (!POINT_KEYS.has(k))
      throw new RequestError(`unknown field "${k}" (expected series, value, t)`, `${at}.${k}`);
  }
  const { series, value, t } = raw;
  if (typeof series !== "string") throw new RequestError("must be a string", `${at}.series`);
  if (series.length === 0 || series.length > MAX_SERIES_CHARS || !SERIES_PATTERN.test(series)) {
    throw new RequestError(
      `must be 1-${MAX_SERIES_CHARS} characters: letters, digits, '_' and '.', optionally followed by {labels}`,
      `${at}.series`,
    );
  }
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new RequestError("must be a finite number", `${at}.value`);
  }
  let time = now;
  if (t !== undefined && t !== null) {
    if (typeof t !== "number" || !Number.isFinite(t)) {
      throw new RequestError("must be a time in milliseconds since the epoch", `${at}.t`);
    }
    if (Math.abs(t - now) > MAX_CLOCK_SKEW_MS) {
      throw new RequestError(
        "must be within one day of the agent's clock (milliseconds since the epoch)",
        `${at}.t`,
      );
    }
    time = Math.floor(t);
  }
  return { series, t: time, value };
}

function mediaType(contentType: string | null | undefined): "json" | "cbor" {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "" || type === "application/json" || type.endsWith("+json")) return "json";
  if (type === "application/cbor" || type.endsWith("+cbor")) return "cbor";
  throw new RequestError(
    `unsupported content type "${type}" (use application/json or application/cbor)`,
    "content-type",
  );
}

function decodeBody(body: unknown, type: "json" | "cbor"): unknown {
  if (type === "cbor") {
    if (!(body instanceof Uint8Array)) throw new RequestError("a CBOR body must be bytes", "body");
    checkSize(body.byteLength);
    try {
      return cbor.decode(body);
    } catch (err) {
      throw new RequestError(`invalid CBOR: ${(err as Error).message}`, "body");
    }
  }
  let text: string;
  if (body instanceof Uint8Array) {
    checkSize(body.byteLength);
    text = new TextDecoder().decode(body);
  } else if (typeof body === "string") {
    checkSize(body.length);
    text = body;
  } else {
    // Already parsed by the caller.
    return body;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RequestError(`invalid JSON: ${(err as Error).message}`, "body");
  }
}

function checkSize(bytes: number): void {
  if (bytes > MAX_INGEST_BYTES) {
    throw new RequestError(`body too large: ${bytes} bytes (at most ${MAX_INGEST_BYTES})`, "body");
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x) && !(x instanceof Uint8Array);
}
