// The XX handshake against the published Noise test vectors, and its refusals.
import { describe, expect, test } from "bun:test";
import {
  aeadOpen,
  aeadSeal,
  generateKeyPair,
  keyPairFromSecret,
  NoiseError,
  XXHandshake,
} from "../../shared/secure/noise.ts";

const hex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// Noise_XX_25519_AESGCM_SHA256 from the cacophony test vectors (the vector set Noise implementations share).
const VECTOR = {
  prologue: "4a6f686e2047616c74",
  init_static: "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
  init_ephemeral: "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
  resp_static: "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
  resp_ephemeral: "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
  handshake_hash: "1b7aefb1125762aa21a252890d00af54519638b76437444538f9a52f21e2e0dc",
  messages: [
    [
      "4c756477696720766f6e204d69736573",
      "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573",
    ],
    [
      "4d757272617920526f746862617264",
      "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843757117acceb05bd7a45733bc22015c97a9d0cbaf41b80446d5988ff5127235d76b79eade70f473d6a4ef521fdcbeda5340d01e028ba793fc059f2724a83af05f12dda0448a7621a926b379a92477fd",
    ],
    [
      "462e20412e20486179656b",
      "c90f1cf77eba4e50edb038991565e36c9758943a989229b6051244dc4fbecb6946744b401af2ee1a5881b65fbb87fd07cb6a328ececc9ce6ce84c399dc332d4fd521fa4bb7f467ce909395",
    ],
    ["4361726c204d656e676572", "bc3fa77f6aca3e8466d7dc6bea10013e88a6a29add5132b461806c"],
    [
      "4a65616e2d426170746973746520536179",
      "250b01074cdfe0df2ecf8ccbf1737b15a2ddb5b52fd9a396604e9c793cee3b3bb9",
    ],
    [
      "457567656e2042f6686d20766f6e2042617765726b",
      "449d4d433b3cdc3d02bf6fc881774b9df54366ebcffb9689bb13f14709822cd7ef42bcdb4d",
    ],
  ],
};

function pair() {
  const init = new XXHandshake("initiator", keyPairFromSecret(hex(VECTOR.init_static)), {
    prologue: hex(VECTOR.prologue),
    ephemeral: keyPairFromSecret(hex(VECTOR.init_ephemeral)),
  });
  const resp = new XXHandshake("responder", keyPairFromSecret(hex(VECTOR.resp_static)), {
    prologue: hex(VECTOR.prologue),
    ephemeral: keyPairFromSecret(hex(VECTOR.resp_ephemeral)),
  });
  return { init, resp };
}

describe("noise XX handshake", () => {
  test("matches the published Noise_XX_25519_AESGCM_SHA256 vector byte for byte, transport messages included", () => {
    const { init, resp } = pair();
    const [m0, m1, m2] = VECTOR.messages;
    const c0 = init.write(hex(m0![0]!));
    expect(toHex(c0)).toBe(m0![1]!);
    expect(toHex(resp.read(c0).payload)).toBe(m0![0]!);
    const c1 = resp.write(hex(m1![0]!));
    expect(toHex(c1)).toBe(m1![1]!);
    expect(toHex(init.read(c1).payload)).toBe(m1![0]!);
    const c2 = init.write(hex(m2![0]!));
    expect(toHex(c2)).toBe(m2![1]!);
    expect(toHex(resp.read(c2).payload)).toBe(m2![0]!);
    expect(toHex(init.hash)).toBe(VECTOR.handshake_hash);
    expect(toHex(resp.hash)).toBe(VECTOR.handshake_hash);
    const ik = init.split();
    const rk = resp.split();
    expect(toHex(ik.remoteStatic)).toBe(toHex(keyPairFromSecret(hex(VECTOR.resp_static)).publicKey));
    expect(toHex(rk.remoteStatic)).toBe(toHex(keyPairFromSecret(hex(VECTOR.init_static)).publicKey));
    // Transport messages alternate, responder first, each direction counting its own nonces from 0.
    const empty = new Uint8Array(0);
    const counters = { init: 0, resp: 0 };
    for (const [i, [payload, ciphertext]] of VECTOR.messages.slice(3).entries()) {
      const fromResp = i % 2 === 0;
      const key = fromResp ? rk.send : ik.send;
      const n = fromResp ? counters.resp++ : counters.init++;
      const sealed = aeadSeal(key, n, empty, hex(payload!));
      expect(toHex(sealed)).toBe(ciphertext!);
      expect(toHex(aeadOpen(fromResp ? ik.recv : rk.recv, n, empty, sealed))).toBe(payload!);
    }
  });

  test("a tampered second message is refused, and a clone lets the reader try another", () => {
    const init = new XXHandshake("initiator", generateKeyPair());
    const hubKey = generateKeyPair();
    const forgerKey = generateKeyPair();
    const resp = new XXHandshake("responder", hubKey);
    const forger = new XXHandshake("responder", forgerKey);
    const m1 = init.write(new Uint8Array(0));
    resp.read(m1);
    forger.read(m1);
    const real = resp.write(new Uint8Array([1]));
    const tampered = new Uint8Array(real);
    tampered[40]! ^= 1;
    expect(() => init.clone().read(tampered)).toThrow(NoiseError);
    // A well-formed message from another responder reads, but names another static key.
    const other = init.clone();
    other.read(forger.write(new Uint8Array([2])));
    expect(toHex(other.remoteStatic!)).toBe(toHex(forgerKey.publicKey));
    const ok = init.read(real);
    expect(toHex(init.remoteStatic!)).toBe(toHex(hubKey.publicKey));
    expect([...ok.payload]).toEqual([1]);
    resp.read(init.write(new Uint8Array(0)));
    expect(toHex(init.split().send)).toBe(toHex(resp.split().recv));
  });

  test("a low-order public key is refused", () => {
    const resp = new XXHandshake("responder", generateKeyPair());
    resp.read(new Uint8Array(32)); // an all-zero ephemeral
    expect(() => resp.write(new Uint8Array(0))).toThrow(/low-order|X25519/);
  });
});
