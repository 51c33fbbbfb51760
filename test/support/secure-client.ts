// A test client that speaks to a real hub the way an agent does: the real SecureTransport over a real socket.
import { WsTransport } from "../../shared/link/index.ts";
import { createLogger } from "../../shared/log.ts";
import { decodeFrame, type Envelope, encodeFrame, type Message } from "../../shared/protocol/index.ts";
import {
  generateKeyPair,
  joinTokenKey,
  type KeyPair,
  nodeTokenProof,
  parseJoinToken,
  SecureTransport,
} from "../../shared/secure/index.ts";

export interface SecureClient extends AsyncDisposable {
  transport: SecureTransport;
  received: Message[];
  /** Seals and sends one message; a hello gets the join proof of this session added. */
  send(env: Envelope): void;
  key: KeyPair;
}

/** Opens an authenticated WebSocket session to `url` as node `nodeId`. */
export async function connectSecure(
  url: string,
  o: { nodeId: string; joinToken: string; key?: KeyPair; hubKeys?: Uint8Array[] },
): Promise<SecureClient> {
  const key = o.key ?? generateKeyPair();
  const transport = new SecureTransport(new WsTransport(url), {
    nodeId: o.nodeId,
    staticKey: () => key,
    trustedHubKeys: () => o.hubKeys ?? [],
    joinToken: o.joinToken,
    log: createLogger("test-client", { write: () => {} }),
  });
  const received: Message[] = [];
  transport.onFrame((f) => received.push(decodeFrame(f)));
  transport.onClose(() => {});
  await transport.connect();
  return {
    transport,
    received,
    key,
    send(env) {
      if (env.t === "hello" && !(env.b as { join?: unknown }).join) {
        const t = parseJoinToken(o.joinToken);
        (env.b as Record<string, unknown>).join = {
          id: t.id,
          proof: nodeTokenProof(joinTokenKey(t.secret), transport.handshakeHash!),
        };
      }
      transport.send(encodeFrame(env), env.t);
    },
    async [Symbol.asyncDispose]() {
      await transport.close();
    },
  };
}
