// Encodes envelopes to CBOR frames and decodes untrusted frames with full validation.
// The subpath entries are pure JS: the package's main entry also loads Node streams and a native
// addon, which cost ~11 MB of resident memory on the agent for nothing we use.
import { Decoder } from "cbor-x/decode";
import { Encoder } from "cbor-x/encode";
import * as v from "valibot";
import { ProtocolError } from "../errors.ts";
import type { Envelope, Message } from "./envelope.ts";
import { BODY_SCHEMAS, type Body, type MessageType } from "./messages.ts";
import { DEFAULT_MAX_FRAME_BYTES, PROTOCOL_VERSION } from "./version.ts";

// Plain CBOR maps, no cbor-x record extension, so any CBOR implementation can read our frames.
// variableMapSize: the smallest map header (one byte for small maps) instead of a fixed 3-byte one.
const encoder = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  variableMapSize: true,
});
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** Builds an envelope of kind `t`. */
export function envelope<T extends MessageType>(
  t: T,
  sender: string,
  body: Body<T>,
  extra: { q?: number; base?: number; ts?: number } = {},
): Envelope<T> {
  const env: Envelope<T> = { v: PROTOCOL_VERSION, t, s: sender, ts: extra.ts ?? Date.now(), b: body };
  if (extra.q !== undefined) env.q = extra.q;
  if (extra.base !== undefined) env.base = extra.base;
  return env;
}

/** Encodes a message to one CBOR frame. */
export function encodeFrame(env: Envelope): Uint8Array {
  return encoder.encode(env);
}

/**
 * Encodes an envelope whose body is already CBOR (as stored in an outbox), without decoding it:
 * the header map gets one more entry, "b", followed by the stored bytes.
 */
export function encodeFrameRawBody(head: Omit<Envelope, "b">, body: Uint8Array): Uint8Array {
  const defined = Object.fromEntries(Object.entries(head).filter(([, v]) => v !== undefined));
  const headBytes = encoder.encode(defined);
  const entries = (headBytes[0] ?? 0) - 0xa0;
  // A small map's header is one byte (0xa0 + entries); envelopes never have more than 23 keys.
  if (entries < 0 || entries >= 23) throw new Error("envelope head is not a small CBOR map");
  const out = new Uint8Array(headBytes.byteLength + 2 + body.byteLength);
  out.set(headBytes, 0);
  out[0] = 0xa0 + entries + 1;
  out[headBytes.byteLength] = 0x61; // text string of length 1
  out[headBytes.byteLength + 1] = 0x62; // "b"
  out.set(body, headBytes.byteLength + 2);
  return out;
}

/** Encodes any value as CBOR (bodies stored in outboxes, blobs). */
export function encodeCbor(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decodes CBOR written by encodeCbor. Throws ProtocolError("bad_cbor") on bad input. */
export function decodeCbor(bytes: Uint8Array): unknown {
  try {
    return decoder.decode(bytes);
  } catch (err) {
    throw new ProtocolError("bad_cbor", `malformed CBOR: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Decodes and validates one untrusted frame. Throws ProtocolError with a code that says what
 * was wrong (frame_too_large, bad_cbor, bad_envelope, unsupported_version, unknown_type, bad_body).
 */
export function decodeFrame(bytes: Uint8Array, maxBytes = DEFAULT_MAX_FRAME_BYTES): Message {
  if (bytes.byteLength > maxBytes) {
    throw new ProtocolError(
      "frame_too_large",
      `frame of ${bytes.byteLength} bytes exceeds the ${maxBytes} byte limit`,
    );
  }
  const raw = decodeCbor(bytes);
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ProtocolError("bad_envelope", "frame is not a CBOR map");
  }
  const env = raw as Record<string, unknown>;
  if (typeof env.v !== "number")
    throw new ProtocolError("bad_envelope", "envelope field v (version) missing");
  if (env.v !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      "unsupported_version",
      `protocol version ${env.v} is not supported (this build speaks ${PROTOCOL_VERSION})`,
    );
  }
  if (typeof env.t !== "string") throw new ProtocolError("bad_envelope", "envelope field t (type) missing");
  if (typeof env.s !== "string" || env.s.length === 0) {
    throw new ProtocolError("bad_envelope", "envelope field s (sender) missing");
  }
  if (typeof env.ts !== "number") throw new ProtocolError("bad_envelope", "envelope field ts (time) missing");
  // A time in milliseconds (a fraction is taken as sent; NaN or an infinity is no time at all).
  if (!Number.isFinite(env.ts) || Math.abs(env.ts) > Number.MAX_SAFE_INTEGER)
    throw new ProtocolError(
      "bad_envelope",
      `envelope field ts (time) must be a finite number of milliseconds, got ${env.ts}`,
    );
  for (const key of ["q", "base"] as const) {
    const n = env[key];
    if (n !== undefined && !(typeof n === "number" && Number.isInteger(n) && n >= 0)) {
      throw new ProtocolError("bad_envelope", `envelope field ${key} must be a non-negative integer`);
    }
  }
  const schema = BODY_SCHEMAS[env.t as MessageType];
  if (schema === undefined) {
    // The envelope is sound: a reliable message of a kind this build does not know (say, from a newer
    // agent) carries its sequence number, so the receiver can record it as refused and move past it.
    const err = new ProtocolError("unknown_type", `unknown message type "${env.t}"`);
    err.seq = env.q as number | undefined;
    err.base = env.base as number | undefined;
    throw err;
  }
  const parsed = v.safeParse(schema, env.b);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = issue.path?.map((p) => String(p.key)).join(".") ?? "";
    const err = new ProtocolError(
      "bad_body",
      `${env.t} body${path ? ` field ${path}` : ""}: ${issue.message}`,
    );
    // The envelope was sound: the receiver may record this sequence number as refused.
    err.seq = env.q as number | undefined;
    err.base = env.base as number | undefined;
    throw err;
  }
  const out: Envelope = { v: env.v, t: env.t as MessageType, s: env.s, ts: env.ts, b: parsed.output };
  if (env.q !== undefined) out.q = env.q as number;
  if (env.base !== undefined) out.base = env.base as number;
  return out as Message;
}
