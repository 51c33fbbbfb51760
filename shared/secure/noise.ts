// The Noise_XX_25519_AESGCM_SHA256 handshake (noiseprotocol.org, revision 34) on node:crypto primitives.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";

export const PROTOCOL_NAME = "Noise_XX_25519_AESGCM_SHA256";
const DHLEN = 32;
const TAGLEN = 16;
// DER wrappers of a raw X25519 key (RFC 8410), so raw 32-byte keys can be used with node:crypto.
const PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

/** A failed handshake or transport step: a bad tag, a short message, a low-order key. */
export class NoiseError extends Error {}

/** An X25519 key pair: the private key as node:crypto holds it, both halves raw. */
export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly secret: Bytes;
  readonly publicKey: Bytes;
}

/** A key pair from its raw 32-byte private key. */
export function keyPairFromSecret(secret: Uint8Array): KeyPair {
  if (secret.byteLength !== DHLEN) throw new NoiseError("an X25519 private key is 32 bytes");
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, secret]),
    format: "der",
    type: "pkcs8",
  });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return {
    privateKey,
    secret: new Uint8Array(secret),
    publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX.length)),
  };
}

/** A fresh random key pair. */
export function generateKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync("x25519");
  const pkcs8 = privateKey.export({ format: "der", type: "pkcs8" });
  return keyPairFromSecret(new Uint8Array(pkcs8.subarray(PKCS8_PREFIX.length)));
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  if (raw.byteLength !== DHLEN) throw new NoiseError("an X25519 public key is 32 bytes");
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: "der", type: "spki" });
}

/** X25519; refuses the all-zero output that low-order points give (RFC 7748 section 6.1). */
export function dh(kp: KeyPair, remote: Uint8Array): Uint8Array {
  let out: Buffer;
  try {
    out = diffieHellman({ privateKey: kp.privateKey, publicKey: publicKeyObject(remote) });
  } catch (err) {
    throw new NoiseError(`X25519 failed: ${(err as Error).message}`);
  }
  if (out.every((b) => b === 0)) throw new NoiseError("remote key is a low-order point");
  return new Uint8Array(out);
}

/** Bytes backed by a plain ArrayBuffer (what message schemas and Web APIs expect). */
export type Bytes = Uint8Array<ArrayBuffer>;

export function sha256(...parts: Uint8Array[]): Bytes {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Bytes {
  const h = createHmac("sha256", key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

// Noise's HKDF: two outputs chained from HMAC-SHA256 keyed with the chaining key.
function hkdf2(ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = hmac(ck, ikm);
  const out1 = hmac(temp, Uint8Array.of(1));
  const out2 = hmac(temp, out1, Uint8Array.of(2));
  return [out1, out2];
}

/** The AESGCM nonce of Noise: 32 zero bits, then the 64-bit counter big-endian. */
export function gcmNonce(n: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(Math.floor(n / 2 ** 32), 4);
  nonce.writeUInt32BE(n >>> 0, 8);
  return nonce;
}

/** A key prepared once for many AEAD operations (saves importing the raw bytes on every frame). */
export function aeadKey(raw: Uint8Array): KeyObject {
  return createSecretKey(raw);
}

const EMPTY = new Uint8Array(0);

/**
 * AES-256-GCM encryption: ciphertext followed by the 16-byte tag. With `prefix`, the result starts
 * with it (a frame's header, usually also the AD), so a frame is built in one allocation.
 */
export function aeadSeal(
  key: Uint8Array | KeyObject,
  n: number,
  ad: Uint8Array,
  plaintext: Uint8Array,
  prefix: Uint8Array = EMPTY,
): Uint8Array {
  const c = createCipheriv("aes-256-gcm", key, gcmNonce(n), { authTagLength: TAGLEN });
  c.setAAD(ad);
  const head = c.update(plaintext);
  const tail = c.final();
  const tag = c.getAuthTag();
  const at = prefix.byteLength;
  const out = new Uint8Array(at + head.byteLength + tail.byteLength + TAGLEN);
  out.set(prefix, 0);
  out.set(head, at);
  out.set(tail, at + head.byteLength);
  out.set(tag, at + head.byteLength + tail.byteLength);
  return out;
}

/** AES-256-GCM decryption; throws NoiseError when the tag does not verify. */
export function aeadOpen(
  key: Uint8Array | KeyObject,
  n: number,
  ad: Uint8Array,
  sealed: Uint8Array,
): Uint8Array {
  if (sealed.byteLength < TAGLEN) throw new NoiseError("ciphertext shorter than its tag");
  try {
    const d = createDecipheriv("aes-256-gcm", key, gcmNonce(n), { authTagLength: TAGLEN });
    d.setAAD(ad);
    d.setAuthTag(sealed.subarray(sealed.byteLength - TAGLEN));
    const head = d.update(sealed.subarray(0, sealed.byteLength - TAGLEN));
    const tail = d.final();
    return tail.byteLength === 0 ? head : Buffer.concat([head, tail]);
  } catch (err) {
    throw new NoiseError("authentication tag does not verify", { cause: err });
  }
}

// CipherState and SymmetricState of the Noise specification (sections 5.1 and 5.2).
class SymmetricState {
  ck: Uint8Array;
  h: Uint8Array;
  k: Uint8Array | undefined;
  n = 0;

  constructor(ck: Uint8Array, h: Uint8Array, k?: Uint8Array, n = 0) {
    this.ck = ck;
    this.h = h;
    this.k = k;
    this.n = n;
  }

  static init(name: string): SymmetricState {
    const bytes = new TextEncoder().encode(name);
    const h = bytes.byteLength <= 32 ? new Uint8Array(32) : sha256(bytes);
    if (bytes.byteLength <= 32) h.set(bytes);
    return new SymmetricState(h, h);
  }

  clone(): SymmetricState {
    return new SymmetricState(this.ck, this.h, this.k, this.n);
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf2(this.ck, ikm);
    this.ck = ck;
    this.k = k;
    this.n = 0;
  }

  mixHash(data: Uint8Array): void {
    this.h = sha256(this.h, data);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const out = this.k ? aeadSeal(this.k, this.n++, this.h, plaintext) : plaintext;
    this.mixHash(out);
    return out;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const out = this.k ? aeadOpen(this.k, this.n++, this.h, ciphertext) : ciphertext;
    this.mixHash(ciphertext);
    return out;
  }

  split(): [Uint8Array, Uint8Array] {
    return hkdf2(this.ck, new Uint8Array(0));
  }
}

/** Keys of an established session, one per direction. */
export interface SessionKeys {
  send: Uint8Array;
  recv: Uint8Array;
  /** The handshake hash: a unique name of this session both sides agree on (channel binding). */
  hash: Uint8Array;
  /** The peer's static public key, proven by the handshake. */
  remoteStatic: Uint8Array;
}

/** What reading a handshake message gave. */
export interface ReadResult {
  payload: Uint8Array;
  /** The handshake hash just before the payload: what a proof inside the payload is bound to. */
  hashBeforePayload: Uint8Array;
}

/**
 * One side of an XX handshake:
 *   -> e
 *   <- e, ee, s, es
 *   -> s, se
 * Each step throws NoiseError on bad input. `clone()` lets a reader try a message without
 * spoiling its state (an MQTT downlink may carry forged candidates).
 */
export class XXHandshake {
  readonly initiator: boolean;
  readonly #s: KeyPair;
  #e: KeyPair | undefined;
  #re: Uint8Array | undefined;
  #rs: Uint8Array | undefined;
  #ss: SymmetricState;
  #step = 0;

  constructor(
    role: "initiator" | "responder",
    s: KeyPair,
    opts: { prologue?: Uint8Array; ephemeral?: KeyPair; state?: SymmetricState } = {},
  ) {
    this.initiator = role === "initiator";
    this.#s = s;
    this.#e = opts.ephemeral;
    if (opts.state) this.#ss = opts.state;
    else {
      this.#ss = SymmetricState.init(PROTOCOL_NAME);
      this.#ss.mixHash(opts.prologue ?? new Uint8Array(0));
    }
  }

  clone(): XXHandshake {
    const c = new XXHandshake(this.initiator ? "initiator" : "responder", this.#s, {
      ...(this.#e ? { ephemeral: this.#e } : {}),
      state: this.#ss.clone(),
    });
    c.#re = this.#re;
    c.#rs = this.#rs;
    c.#step = this.#step;
    return c;
  }

  /** Our ephemeral public key (after we wrote or are about to write it). */
  get ephemeral(): Uint8Array | undefined {
    return this.#e?.publicKey;
  }

  get remoteEphemeral(): Uint8Array | undefined {
    return this.#re;
  }

  get remoteStatic(): Uint8Array | undefined {
    return this.#rs;
  }

  get hash(): Uint8Array {
    return this.#ss.h;
  }

  get done(): boolean {
    return this.#step === 3;
  }

  /** Writes the next message; `payload` may be computed from the hash just before it. */
  write(payload: Uint8Array | ((hash: Uint8Array) => Uint8Array)): Uint8Array {
    const ss = this.#ss;
    const parts: Uint8Array[] = [];
    const mine = this.initiator ? this.#step === 0 || this.#step === 2 : this.#step === 1;
    if (!mine || this.#step > 2) throw new NoiseError(`not this side's turn (message ${this.#step + 1})`);
    if (this.#step === 0) {
      this.#e ??= generateKeyPair();
      parts.push(this.#e.publicKey);
      ss.mixHash(this.#e.publicKey);
    } else if (this.#step === 1) {
      this.#e ??= generateKeyPair();
      parts.push(this.#e.publicKey);
      ss.mixHash(this.#e.publicKey);
      ss.mixKey(dh(this.#e, this.#re!));
      parts.push(ss.encryptAndHash(this.#s.publicKey));
      ss.mixKey(dh(this.#s, this.#re!));
    } else {
      parts.push(ss.encryptAndHash(this.#s.publicKey));
      ss.mixKey(dh(this.#s, this.#re!));
    }
    const body = typeof payload === "function" ? payload(ss.h) : payload;
    parts.push(ss.encryptAndHash(body));
    this.#step += 1;
    return concat(parts);
  }

  /** Reads the peer's next message and returns its payload. */
  read(message: Uint8Array): ReadResult {
    const ss = this.#ss;
    const theirs = this.initiator ? this.#step === 1 : this.#step === 0 || this.#step === 2;
    if (!theirs || this.#step > 2) throw new NoiseError(`not the peer's turn (message ${this.#step + 1})`);
    let at = 0;
    const take = (n: number): Uint8Array => {
      if (message.byteLength < at + n)
        throw new NoiseError(`handshake message ${this.#step + 1} is too short`);
      const out = message.subarray(at, at + n);
      at += n;
      return out;
    };
    if (this.#step === 0) {
      this.#re = new Uint8Array(take(DHLEN));
      ss.mixHash(this.#re);
    } else if (this.#step === 1) {
      this.#re = new Uint8Array(take(DHLEN));
      ss.mixHash(this.#re);
      ss.mixKey(dh(this.#e!, this.#re));
      this.#rs = ss.decryptAndHash(take(DHLEN + TAGLEN));
      ss.mixKey(dh(this.#e!, this.#rs));
    } else {
      this.#rs = ss.decryptAndHash(take(DHLEN + TAGLEN));
      ss.mixKey(dh(this.#e!, this.#rs));
    }
    const hashBeforePayload = ss.h;
    const payload = ss.decryptAndHash(message.subarray(at));
    this.#step += 1;
    return { payload, hashBeforePayload };
  }

  /** The session keys once all three messages are through. */
  split(): SessionKeys {
    if (!this.done) throw new NoiseError("handshake is not finished");
    const [a, b] = this.#ss.split();
    return {
      send: this.initiator ? a : b,
      recv: this.initiator ? b : a,
      hash: this.#ss.h,
      remoteStatic: this.#rs!,
    };
  }
}

export function concat(parts: Uint8Array[]): Bytes {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
