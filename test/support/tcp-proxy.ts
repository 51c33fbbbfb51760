// A TCP proxy for fault injection at the network boundary: hold one direction's bytes, or cut every link.
import type { Socket, TCPSocketListener } from "bun";
import { freePort } from "./ports.ts";

interface Pair {
  client: Socket<{ pair: Pair }>;
  upstream: Socket<{ pair: Pair }> | undefined;
  pendingUp: Uint8Array[];
  heldDown: Uint8Array[];
}

export interface TcpProxy extends Disposable {
  port: number;
  /** Holds bytes from the target to clients (delivered, in order, on resume): a stalled link. */
  holdDownstream(): void;
  resumeDownstream(): void;
  /** Closes every connection through the proxy. */
  cutAll(): void;
  /**
   * A silent partition (power loss, a dead router): bytes either way are dropped, nothing is closed
   * (no FIN), and new connections hang, until heal().
   */
  blackHole(): void;
  /** A partition that refuses: every link is cut and new connections are closed at once, until heal(). */
  refuse(): void;
  /** Ends blackHole() or refuse(): new connections go through again (black-holed ones stay dead). */
  heal(): void;
}

/** Listens on a free loopback port and forwards each connection to 127.0.0.1:targetPort. */
export function startTcpProxy(targetPort: number): TcpProxy {
  const pairs = new Set<Pair>();
  let holding = false;
  let mode: "open" | "blackhole" | "refuse" = "open";
  const dead = new Set<Pair>();
  const port = freePort();
  const listener: TCPSocketListener<{ pair: Pair }> = Bun.listen<{ pair: Pair }>({
    hostname: "127.0.0.1",
    port,
    socket: {
      open(client) {
        const pair: Pair = { client, upstream: undefined, pendingUp: [], heldDown: [] };
        client.data = { pair };
        if (mode === "refuse") {
          client.end();
          return;
        }
        if (mode === "blackhole") {
          dead.add(pair);
          return;
        }
        pairs.add(pair);
        void Bun.connect<{ pair: Pair }>({
          hostname: "127.0.0.1",
          port: targetPort,
          socket: {
            open(up) {
              up.data = { pair };
              pair.upstream = up;
              for (const chunk of pair.pendingUp) up.write(chunk);
              pair.pendingUp = [];
            },
            data(_up, chunk) {
              if (dead.has(pair)) return;
              if (holding) pair.heldDown.push(new Uint8Array(chunk));
              else pair.client.write(chunk);
            },
            close() {
              // A black hole tells neither side anything.
              if (dead.has(pair)) return;
              pair.client.end();
              pairs.delete(pair);
            },
            error() {
              if (dead.has(pair)) return;
              pair.client.end();
            },
          },
        }).catch(() => client.end());
      },
      data(client, chunk) {
        const pair = client.data.pair;
        if (dead.has(pair)) return;
        if (pair.upstream) pair.upstream.write(chunk);
        else pair.pendingUp.push(new Uint8Array(chunk));
      },
      close(client) {
        if (dead.has(client.data.pair)) return;
        client.data.pair.upstream?.end();
        pairs.delete(client.data.pair);
      },
    },
  });
  return {
    port,
    holdDownstream() {
      holding = true;
    },
    resumeDownstream() {
      holding = false;
      for (const p of pairs) {
        for (const chunk of p.heldDown) p.client.write(chunk);
        p.heldDown = [];
      }
    },
    cutAll() {
      for (const p of pairs) {
        p.client.end();
        p.upstream?.end();
      }
      pairs.clear();
    },
    blackHole() {
      mode = "blackhole";
      for (const p of pairs) dead.add(p);
    },
    refuse() {
      mode = "refuse";
      this.cutAll();
    },
    heal() {
      mode = "open";
    },
    [Symbol.dispose]() {
      this.cutAll();
      for (const p of dead) {
        p.client.end();
        p.upstream?.end();
      }
      dead.clear();
      listener.stop(true);
    },
  };
}
