// WebSocket side of the gateway: Bun's server upgrades /v1/agent on the API port.
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { MessageType } from "../../shared/protocol/index.ts";
import type { Gateway, Peer } from "./gateway.ts";

export const AGENT_PATH = "/v1/agent";

interface WsData {
  peer: Peer | undefined;
  remote: string;
}

/** Upgrades an agent request to a WebSocket; returns false for any other request. */
export function upgradeAgent(req: Request, server: Server<WsData>): boolean {
  const url = new URL(req.url);
  if (url.pathname !== AGENT_PATH || req.headers.get("upgrade")?.toLowerCase() !== "websocket") return false;
  const remote = server.requestIP(req);
  return server.upgrade(req, {
    data: { peer: undefined, remote: remote ? `${remote.address}:${remote.port}` : "?" },
  });
}

/** Bun WebSocket handlers that feed the gateway. */
export function wsHandlers(gateway: Gateway, maxFrameBytes: number): WebSocketHandler<WsData> {
  const peerOf = (ws: ServerWebSocket<WsData>): Peer => {
    let peer = ws.data.peer;
    if (!peer) {
      peer = {
        via: "ws",
        remote: ws.data.remote,
        node: undefined,
        send: (frame: Uint8Array, _type: MessageType) => {
          ws.sendBinary(frame);
        },
        close: (reason: string) => ws.close(4001, reason.slice(0, 120)),
      };
      ws.data.peer = peer;
    }
    return peer;
  };
  return {
    // Frames over our limit are refused by the gateway with a clear error; only absurd ones
    // (16x the limit) make Bun drop the connection before we see them.
    maxPayloadLength: maxFrameBytes * 16,
    idleTimeout: 120,
    sendPings: true,
    open(ws) {
      peerOf(ws);
    },
    message(ws, message) {
      const frame = typeof message === "string" ? new TextEncoder().encode(message) : new Uint8Array(message);
      gateway.onFrame(peerOf(ws), frame);
    },
    close(ws) {
      gateway.onClosed(peerOf(ws));
    },
  };
}
