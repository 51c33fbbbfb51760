// An in-process hub (the same wiring as the server) and agents that join it through a recording peer.
import { createHubCore, type HubCoreOptions } from "../../hub/core.ts";
import type { Peer } from "../../hub/gateway/index.ts";
import { openHubDb } from "../../hub/store/db.ts";
import { createLogger } from "../../shared/log.ts";
import {
  decodeFrame,
  encodeFrame,
  envelope,
  type HelloBody,
  type Message,
} from "../../shared/protocol/index.ts";

export const JOIN = "join";
export const ADMIN = "admin";

/** A valid hello for `node`, joining with the test join token. */
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
    join_token: JOIN,
    ...extra,
  };
}

/** A hub core on a fresh database in `dir`; the rollout tick is left to the test. Disposing closes both. */
export function openHubCore(dir: string, opts: Partial<HubCoreOptions> = {}) {
  const db = openHubDb(dir);
  const core = createHubCore(db, {
    hubId: "hub",
    joinToken: JOIN,
    adminToken: ADMIN,
    heartbeatMs: 5000,
    maxFrameBytes: 1 << 20,
    statusPolicy: { suspectAfterMs: 15_000, downAfterMs: 60_000, restartGraceMs: 30_000 },
    log: createLogger("test", { write: () => {} }),
    tickMs: 60_000,
    ...opts,
  });
  return Object.assign(core, {
    db,
    [Symbol.dispose]() {
      core.close();
      db.close();
    },
  });
}

/** An agent session at the transport boundary: what the hub sends is recorded in `received`. */
export function joinNode(
  core: { gateway: { onFrame(peer: Peer, frame: Uint8Array): void } },
  node: string,
  hello: Partial<HelloBody> = {},
): { peer: Peer; received: Message[] } {
  const received: Message[] = [];
  const peer: Peer = {
    via: "ws",
    remote: node,
    node: undefined,
    send: (frame) => received.push(decodeFrame(frame)),
    close: () => {},
  };
  core.gateway.onFrame(peer, encodeFrame(envelope("hello", node, helloBody(node, hello))));
  return { peer, received };
}
