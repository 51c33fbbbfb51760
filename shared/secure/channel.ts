// Frames of the secure session layer, and the channel that seals and opens data frames with replay protection.
import { decodeCbor, encodeCbor } from "../protocol/index.ts";
import type { KeyObject } from "node:crypto";
import {
  aeadKey,
  aeadOpen,
  aeadSeal,
  type Bytes,
  concat,
  NoiseError,
  type SessionKeys,
  sha256,
} from "./noise.ts";

/** Version of the session layer; bound into every handshake through the prologue. */
export const SESSION_PROTOCOL = 2;
export const PROLOGUE = new TextEncoder().encode(`novacron/${SESSION_PROTOCOL}`);

/** First byte of every frame. Protocol 1 frames were bare CBOR maps (0xa0-0xbf), so the two never meet. */
export const FRAME = {
  /** Agent → hub: XX message 1 (`e`, then a clear CBOR payload). */
  hello1: 0x21,
  /** Hub → agent: [8-byte id of the initiator's `e`] XX message 2. */
  hello2: 0x22,
  /** Agent → hub: [8-byte id of the responder's `e`] XX message 3. */
  hello3: 0x23,
  /** Either way: [8-byte counter] AES-GCM sealed CBOR envelope (the counter and kind are the AD). */
  data: 0x24,
  /** Hub → agent, in clear and so only advisory: why a frame could not be taken (never trusted for state). */
  refuse: 0x25,
} as const;

export const HANDSHAKE_ID_BYTES = 8;
const COUNTER_BYTES = 8;
const DATA_HEAD = 1 + COUNTER_BYTES;
/** Bytes a data frame adds to the envelope it carries: kind, counter and tag. */
export const DATA_OVERHEAD = DATA_HEAD + 16;
/** Rekey (by a new handshake) long before a counter could wrap. */
export const MAX_COUNTER = 2 ** 48;

/** The short name of a handshake: the first bytes of one side's ephemeral key. */
export function handshakeId(ephemeral: Uint8Array): string {
  return Buffer.from(ephemeral.subarray(0, HANDSHAKE_ID_BYTES)).toString("hex");
}

export function frameKind(frame: Uint8Array): number | undefined {
  return frame.byteLength > 0 ? frame[0] : undefined;
}

/**
 * A clear refusal frame: `{code, message}`, and for `busy` the wait in ms before trying again
 * (advisory: anyone on a broker could write one).
 */
export function refuseFrame(code: string, message: string, retryAfterMs?: number): Uint8Array {
  const body: Record<string, unknown> = { code, message };
  if (retryAfterMs !== undefined) body.retry_after = retryAfterMs;
  return concat([Uint8Array.of(FRAME.refuse), encodeCbor(body)]);
}

/** A refusal as read by a node; `retryAfterMs` is bounded to 5 minutes whatever the frame says. */
export interface Refusal {
  code: string;
  message: string;
  retryAfterMs?: number;
}

export function readRefusal(frame: Uint8Array): Refusal | undefined {
  try {
    const body = decodeCbor(frame.subarray(1)) as {
      code?: unknown;
      message?: unknown;
      retry_after?: unknown;
    };
    if (typeof body?.code === "string" && typeof body.message === "string") {
      const r: Refusal = { code: body.code.slice(0, 64), message: body.message.slice(0, 512) };
      const after = body.retry_after;
      if (typeof after === "number" && Number.isFinite(after) && after >= 0) {
        r.retryAfterMs = Math.min(after, 300_000);
      }
      return r;
    }
  } catch {
    // advisory only: a refusal that does not parse is ignored
  }
  return undefined;
}

/**
 * Anti-replay window over explicit counters (the sliding bitmap of RFC 6479, as WireGuard keeps):
 * counters may arrive out of order within the window, never twice, never from before it.
 */
export class ReplayWindow {
  static readonly SIZE = 2048;
  readonly #bits = new Uint32Array(ReplayWindow.SIZE / 32);
  #top = -1;

  /** Whether `n` could be new (checked before the costly decryption). */
  fresh(n: number): boolean {
    if (n > this.#top) return true;
    if (this.#top - n >= ReplayWindow.SIZE) return false;
    const slot = n % ReplayWindow.SIZE;
    return (this.#bits[slot >>> 5]! & (1 << (slot & 31))) === 0;
  }

  /** Records `n` as seen (after its frame authenticated). */
  accept(n: number): void {
    if (n > this.#top) {
      const gap = n - this.#top;
      if (gap >= ReplayWindow.SIZE) this.#bits.fill(0);
      else
        for (let i = this.#top + 1; i <= n; i++) {
          const slot = i % ReplayWindow.SIZE;
          this.#bits[slot >>> 5]! &= ~(1 << (slot & 31));
        }
      this.#top = n;
    }
    const slot = n % ReplayWindow.SIZE;
    this.#bits[slot >>> 5]! |= 1 << (slot & 31);
  }
}

/** Why a data frame was not opened. */
export type OpenFailure = "short" | "replayed" | "forged";

/** One established session: seals what we send, opens what the peer sent, refuses replays. */
export class SecureChannel {
  readonly #send: KeyObject;
  readonly #recv: KeyObject;
  readonly hash: Uint8Array;
  readonly remoteStatic: Uint8Array;
  readonly #window = new ReplayWindow();
  #counter = 0;

  constructor(keys: SessionKeys) {
    this.#send = aeadKey(keys.send);
    this.#recv = aeadKey(keys.recv);
    this.hash = keys.hash;
    this.remoteStatic = keys.remoteStatic;
  }

  /** Frames sent so far (a new handshake is due well before MAX_COUNTER). */
  get sent(): number {
    return this.#counter;
  }

  /** Seals one plaintext into a data frame. */
  seal(plaintext: Uint8Array): Uint8Array {
    const n = this.#counter++;
    if (n >= MAX_COUNTER) throw new NoiseError("session counter exhausted; a new handshake is needed");
    const head = new Uint8Array(DATA_HEAD);
    head[0] = FRAME.data;
    const view = new DataView(head.buffer);
    view.setUint32(1, Math.floor(n / 2 ** 32));
    view.setUint32(5, n >>> 0);
    return aeadSeal(this.#send, n, head, plaintext, head);
  }

  /** Opens one data frame, or says why not. */
  open(frame: Uint8Array): Uint8Array | OpenFailure {
    if (frame.byteLength < DATA_OVERHEAD || frame[0] !== FRAME.data) return "short";
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const n = view.getUint32(1) * 2 ** 32 + view.getUint32(5);
    if (!this.#window.fresh(n)) return "replayed";
    let plain: Uint8Array;
    try {
      plain = aeadOpen(this.#recv, n, frame.subarray(0, DATA_HEAD), frame.subarray(DATA_HEAD));
    } catch {
      return "forged";
    }
    this.#window.accept(n);
    return plain;
  }
}

/** The key a join token's secret proves knowledge with (the token itself never travels). */
export function joinTokenKey(secret: string): Bytes {
  return sha256(new TextEncoder().encode("novacron join token\0"), new TextEncoder().encode(secret));
}

/** Splits a join token into its id and secret: minted tokens are `id.secret`; any other string is the default token. */
export function parseJoinToken(token: string): { id: string; secret: string } {
  const m = /^([a-z0-9]{8})\.([A-Za-z0-9_-]{20,})$/.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : { id: "default", secret: token };
}

/** Encodes a public key for people and config files (base64url, 43 characters). */
export function encodeKey(key: Uint8Array): string {
  return Buffer.from(key).toString("base64url");
}

/** Decodes a key written by encodeKey; undefined when it is not 32 bytes of base64url. */
export function decodeKey(text: string): Bytes | undefined {
  if (!/^[A-Za-z0-9_-]{43}$/.test(text.trim())) return undefined;
  const bytes = new Uint8Array(Buffer.from(text.trim(), "base64url"));
  return bytes.byteLength === 32 ? bytes : undefined;
}

export function keysEqual(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (!a || !b || a.byteLength !== b.byteLength) return false;
  let d = 0;
  for (let i = 0; i < a.byteLength; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
