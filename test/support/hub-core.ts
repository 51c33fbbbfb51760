// An in-process hub (the same wiring as the server) and agents that join it through a recording peer.
import type { Database } from "bun:sqlite";
import { createHubCore, type HubCoreOptions } from "../../hub/core.ts";
import type { Peer, RawPeer, SecureSessions } from "../../hub/gateway/index.ts";
import type { Registry } from "../../hub/registry/index.ts";
import { wrapSqlite } from "../../hub/store/sql/index.ts";
import { createLogger } from "../../shared/log.ts";
import { FakeClock } from "./fake-clock.ts";
import { openTestStore, type TestStore } from "./hub-store.ts";
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

/**
 * A hub core on a fresh store (test/support/hub-store.ts: SQLite in `dir`, or PostgreSQL with
 * NOVACRON_TEST_STORE=postgres); the rollout tick is left to the test. Disposing closes both.
 */
export async function openHubCore(dir: string, opts: Partial<HubCoreOptions> = {}) {
  const store = await openTestStore(dir);
  return await hubCoreOnStore(store, opts);
}

/** A hub core on the SQLite file `db`, wired as openHubCore wires it. Disposing closes both. */
export async function hubCoreOn(db: Database, opts: Partial<HubCoreOptions> = {}) {
  return hubCoreOnStore({ sql: wrapSqlite(db), db, where: "hub.db", close: async () => db.close() }, opts);
}

async function hubCoreOnStore(store: TestStore, opts: Partial<HubCoreOptions>) {
  const core = await createHubCore(store.sql, {
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
    /** The SQLite file (undefined on PostgreSQL). */
    db: store.db,
    store,
    [Symbol.dispose]() {
      core.close();
      // SQLite closes at once (its statements are done when settled's promises are); PostgreSQL's
      // pool once what the hub was doing has ended.
      if (store.db) store.db.close();
      else void core.settled().finally(() => store.close());
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
 * Resolves once the hub has answered the hello (welcome or error).
 */
export async function joinNode(
  core: { secure: SecureSessions },
  node: string,
  hello: Partial<HelloBody> = {},
  opts: { key?: KeyPair; join?: string | false; hello?: false } = {},
): Promise<JoinedNode> {
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
  if (conn.session && opts.hello !== false) {
    send(envelope("hello", node, body));
    // The hub admits a hello against its store: answered a few turns later (SQLite), or once
    // PostgreSQL has answered.
    const answered = () => received.some((m) => m.t === "welcome" || m.t === "error");
    const deadline = Date.now() + 10_000;
    while (!answered() && Date.now() < deadline) await new Promise<void>((r) => setImmediate(r));
    if (!answered()) throw new Error(`the hub never answered the hello of ${node}`);
  }
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
export async function admitDirect(
  registry: Registry,
  hello: HelloBody,
  transport = "ws",
  key = generateKeyPair(),
) {
  await registry.joinTokens.ensureDefault(JOIN, Date.now());
  const hash = new Uint8Array(32).fill(7);
  const body = { ...hello, join: { id: "default", proof: nodeTokenProof(joinTokenKey(JOIN), hash) } };
  return registry.admit(body, { key: key.publicKey, hash }, transport);
}
