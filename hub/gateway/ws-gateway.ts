// WebSocket side of the gateway: Bun's server upgrades /v1/agent on the API port; frames go through the session layer.
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import type { SecureSessions, WsConn } from "./secure-sessions.ts";

export const AGENT_PATH = "/v1/agent";

interface WsData {
  conn: WsConn | undefined;
  remote: string;
  deadline: ReturnType<typeof setTimeout> | undefined;
}

/** Upgrades an agent request to a WebSocket; returns false for any other request. */
export function upgradeAgent(req: Request, server: Server<WsData>): boolean {
  const url = new URL(req.url);
  if (url.pathname !== AGENT_PATH || req.headers.get("upgrade")?.toLowerCase() !== "websocket") return false;
  const remote = server.requestIP(req);
  return server.upgrade(req, {
    data: { conn: undefined, remote: remote ? `${remote.address}:${remote.port}` : "?", deadline: undefined },
  });
}

/** Bun WebSocket handlers that feed the session layer. */
export function wsHandlers(
  sessions: SecureSessions,
  maxFrameBytes: number,
  handshakeTimeoutMs = 10_000,
): WebSocketHandler<WsData> {
  const connOf = (ws: ServerWebSocket<WsData>): WsConn => {
    let conn = ws.data.conn;
    if (!conn) {
      conn = sessions.openWs({
        via: "ws",
        remote: ws.data.remote,
        send: (frame) => {
          ws.sendBinary(frame);
        },
        close: (reason) => ws.close(4001, reason.slice(0, 120)),
      });
      ws.data.conn = conn;
    }
    return conn;
  };
  return {
    // A sealed frame is the envelope plus a small header and tag; anything far larger is dropped by
    // Bun before it is buffered whole (a stranger cannot make the hub hold 16 MB per connection).
    maxPayloadLength: maxFrameBytes + 4096,
    idleTimeout: 120,
    sendPings: true,
    open(ws) {
      const conn = connOf(ws);
      // A connection that has not authenticated and been admitted in time is closed: strangers (and
      // peers that finish a handshake but never prove a node) hold no socket for long.
      ws.data.deadline = setTimeout(() => {
        if (sessions.expired(conn)) ws.close(4001, "no admitted session in time");
      }, handshakeTimeoutMs + 50);
    },
    message(ws, message) {
      const frame = typeof message === "string" ? new TextEncoder().encode(message) : new Uint8Array(message);
      sessions.onWsFrame(connOf(ws), frame);
    },
    close(ws) {
      clearTimeout(ws.data.deadline);
      sessions.onWsClosed(connOf(ws));
    },
  };
}
