// An in-process hub (the same wiring as the server) and agents that join it through a recording peer.
import type { Database } from "bun:sqlite";
import { createHubCore, type HubCoreOptions } from "../../hub/core.ts";
import type { Peer, RawPeer, SecureSessions } from "../../hub/gateway/index.ts";
import type { Registry } from "../../hub/registry/index.ts";
import { openHubDb } from "../../hub/store/db.ts";
import { createLogger } from "../../shared/log.ts";
import { FakeClock } from "./fake-clock.ts";
import {
  decodeFrame,
  type Envelope,
  encodeCbor,
  encodeFrame,
  envelope,
  type HelloBody,
  type Message,
} from "../../shared/protocol/index.ts";
import {
  FRAME,
  generateKeyPair,
  HANDSHAKE_ID_BYTES,
  joinTokenKey,
  type KeyPair,
  nodeTokenProof,
  PROLOGUE,
  parseJoinToken,
  SESSION_PROTOCOL,
  SecureChannel,
  XXHandshake,
} from "../../shared/secure/index.ts";
import { concat } from "../../shared/secure/noise.ts";

export const JOIN = "join";
export const ADMIN = "admin";

/** A valid hello for `node` (the join proof is added once a session exists). */
export function helloBody(node: string, extra: Partial<HelloBody> = {}): HelloBody {
  return {
    node_id: node,
    level: 4,
    labels: {},
    capabilities: [],
    resources: {},
    version: "test",
    boot_id: "boot",
    last_acked: 0,
    ...extra,
  };
}

/** A hub core on a fresh database in `dir`; the rollout tick is left to the test. Disposing closes both. */
export async function openHubCore(dir: string, opts: Partial<HubCoreOptions> = {}) {
  return hubCoreOn(await openHubDb(dir), opts);
}

/** A hub core on `db`, wired as openHubCore wires it. Disposing closes both. */
export function hubCoreOn(db: Database, opts: Partial<HubCoreOptions> = {}) {
  const core = createHubCore(db, {
    hubId: "hub",
    joinToken: JOIN,
    adminToken: ADMIN,
    heartbeatMs: 5000,
    maxFrameBytes: 1 << 20,
    statusPolicy: {
      suspectAfterMs: 15_000,
      downAfterMs: 60_000,
      restartGraceMs: 30_000,
      keyLifetimeMs: 30 * 86_400_000,
    },
    log: createLogger("test", { write: () => {} }),
    tickMs: 60_000,
    ...opts,
  });
  if (opts.clock instanceof FakeClock) opts.clock.idle = () => core.settled();
  return Object.assign(core, {
    db,
    [Symbol.dispose]() {
      core.close();
      db.close();
    },
  });
}

/** What a test node holds after its handshake: the hub's peer for it, what the hub sent, a way to send. */
export interface JoinedNode {
  /** The session as the gateway knows it (frames given to gateway.onFrame with it are inside the session). */
  peer: Peer;
  /** Every message the hub sent this node after the handshake, opened and decoded. */
  received: Message[];
  /** Sends one message sealed in the session, as a real node would. */
  send(env: Envelope): void;
  /** Sends raw bytes on the connection (forged or replayed frames). */
  sendRaw(frame: Uint8Array): void;
  /** Every sealed frame this node sent, in order (for replays). */
  sent: Uint8Array[];
  key: KeyPair;
  channel: SecureChannel;
}

/**
 * An agent session at the transport boundary: a real XX handshake with the hub's session layer
 * (`key` is the node's static key), then a hello proving the join token unless `join` is false.
 */
export function joinNode(
  core: { secure: SecureSessions },
  node: string,
  hello: Partial<HelloBody> = {},
  opts: { key?: KeyPair; join?: string | false; hello?: false } = {},
): JoinedNode {
  const key = opts.key ?? generateKeyPair();
  const pending: Uint8Array[] = [];
  const received: Message[] = [];
  let channel: SecureChannel | undefined;
  const raw: RawPeer = {
    via: "ws",
    remote: node,
    send: (frame) => {
      if (!channel) pending.push(frame);
      else {
        const plain = channel.open(frame);
        if (plain instanceof Uint8Array) received.push(decodeFrame(plain));
      }
    },
    close: () => {},
  };
  const conn = core.secure.openWs(raw);
  const hs = new XXHandshake("initiator", key, { prologue: PROLOGUE });
  core.secure.onWsFrame(
    conn,
    concat([Uint8Array.of(FRAME.hello1), hs.write(encodeCbor({ v: SESSION_PROTOCOL }))]),
  );
  const m2 = pending.shift();
  if (!m2) throw new Error("the hub did not answer the handshake");
  hs.read(m2.subarray(1 + HANDSHAKE_ID_BYTES));
  const m3 = hs.write(encodeCbor({ node }));
  const ch = new SecureChannel(hs.split());
  const hubEphemeral = hs.remoteEphemeral!.subarray(0, HANDSHAKE_ID_BYTES);
  channel = ch;
  core.secure.onWsFrame(conn, concat([Uint8Array.of(FRAME.hello3), hubEphemeral, m3]));
  const sent: Uint8Array[] = [];
  const send = (env: Envelope) => {
    const frame = ch.seal(encodeFrame(env));
    sent.push(frame);
    core.secure.onWsFrame(conn, frame);
  };
  const body = helloBody(node, hello);
  const token = opts.join === undefined ? JOIN : opts.join;
  if (token !== false && !body.join) {
    const t = parseJoinToken(token);
    body.join = { id: t.id, proof: nodeTokenProof(joinTokenKey(t.secret), ch.hash) };
  }
  if (conn.session && opts.hello !== false) send(envelope("hello", node, body));
  return {
    peer: conn.session?.inner ?? { ...raw, node: undefined },
    received,
    send,
    sendRaw: (frame) => core.secure.onWsFrame(conn, frame),
    sent,
    key,
    channel: ch,
  };
}

/** Registers `hello` straight in a registry, as a session that proved a fresh key and the join token would. */
export function admitDirect(registry: Registry, hello: HelloBody, transport = "ws", key = generateKeyPair()) {
  registry.joinTokens.ensureDefault(JOIN, Date.now());
  const hash = new Uint8Array(32).fill(7);
  const body = { ...hello, join: { id: "default", proof: nodeTokenProof(joinTokenKey(JOIN), hash) } };
  return registry.admit(body, { key: key.publicKey, hash }, transport);
}
