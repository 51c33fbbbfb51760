// A TCP proxy for the chaos soak: a silent partition holds every byte both ways without closing anything.
//
// During a partition the proxy still accepts connections (the agent's connect succeeds, as it would to a
// NAT or load balancer in front of a dead path) but nothing is forwarded either way and nothing is closed:
// the endpoints see a link that has gone quiet. A heal either resumes (held bytes are delivered in order,
// as TCP retransmission would after a short outage) or resets (every connection is closed, as a
// middlebox that timed the flows out would).
import type { Socket, TCPSocketListener } from "bun";

type Side = Socket<{ pair: Pair; side: "client" | "upstream" }>;

interface Pair {
  client: Side;
  upstream: Side | undefined;
  /** Bytes waiting to go to the upstream (not yet connected, held by a partition, or backpressure). */
  toUp: Uint8Array[];
  /** Bytes waiting to go to the client. */
  toClient: Uint8Array[];
  closed: boolean;
  /** The upstream closed while the path was silent: the client learns it at the heal. */
  upLost: boolean;
}

export interface LinkProxy {
  port: number;
  readonly partitioned: boolean;
  partition(): void;
  heal(mode: "resume" | "reset"): void;
  /** Connections currently open through the proxy. */
  connections(): number;
  stop(): void;
}

// Writes what the socket takes now; the rest waits for its drain event.
function pump(sock: Side | undefined, queue: Uint8Array[]): void {
  if (!sock) return;
  while (queue.length > 0) {
    const chunk = queue[0]!;
    const n = sock.write(chunk);
    if (n < 0) return;
    if (n < chunk.byteLength) {
      queue[0] = chunk.subarray(n);
      return;
    }
    queue.shift();
  }
}

/** Listens on `port` (127.0.0.1) and forwards each connection to 127.0.0.1:targetPort. */
export function startLinkProxy(port: number, targetPort: number): LinkProxy {
  const pairs = new Set<Pair>();
  let partitioned = false;

  const end = (pair: Pair) => {
    if (pair.closed) return;
    pair.closed = true;
    pairs.delete(pair);
    pair.client.end();
    pair.upstream?.end();
  };

  const connectUp = (pair: Pair) => {
    void Bun.connect<{ pair: Pair; side: "client" | "upstream" }>({
      hostname: "127.0.0.1",
      port: targetPort,
      socket: {
        open(up) {
          up.data = { pair, side: "upstream" };
          if (pair.closed) {
            up.end();
            return;
          }
          pair.upstream = up;
          if (!partitioned) pump(up, pair.toUp);
        },
        data(_up, chunk) {
          pair.toClient.push(new Uint8Array(chunk));
          if (!partitioned) pump(pair.client, pair.toClient);
        },
        drain(up) {
          if (!partitioned) pump(up, pair.toUp);
        },
        close() {
          // The target went away (killed): the client learns at once, unless the path is silent.
          if (!partitioned) end(pair);
          else pair.upLost = true;
        },
        error() {
          if (!partitioned) end(pair);
        },
      },
    }).catch(() => {
      if (!partitioned) end(pair);
    });
  };

  const listener: TCPSocketListener<{ pair: Pair; side: "client" | "upstream" }> = Bun.listen({
    hostname: "127.0.0.1",
    port,
    socket: {
      open(client) {
        const pair: Pair = {
          client,
          upstream: undefined,
          toUp: [],
          toClient: [],
          closed: false,
          upLost: false,
        };
        client.data = { pair, side: "client" };
        pairs.add(pair);
        // A partition swallows the SYN's continuation: the upstream is reached only after a heal.
        if (!partitioned) connectUp(pair);
      },
      data(client, chunk) {
        const pair = client.data.pair;
        pair.toUp.push(new Uint8Array(chunk));
        if (!partitioned) pump(pair.upstream, pair.toUp);
      },
      drain(client) {
        if (!partitioned) pump(client, client.data.pair.toClient);
      },
      close(client) {
        if (!partitioned) end(client.data.pair);
        else {
          // Held: the upstream does not learn of it until the heal.
          client.data.pair.closed = true;
        }
      },
      error(client) {
        if (!partitioned) end(client.data.pair);
      },
    },
  });

  return {
    port,
    get partitioned() {
      return partitioned;
    },
    partition() {
      partitioned = true;
    },
    heal(mode) {
      partitioned = false;
      for (const pair of [...pairs]) {
        if (mode === "reset" || pair.closed || pair.upLost) {
          pair.closed = false;
          end(pair);
          continue;
        }
        if (!pair.upstream) {
          // Accepted during the partition: it reaches the target only now.
          connectUp(pair);
          continue;
        }
        pump(pair.upstream, pair.toUp);
        pump(pair.client, pair.toClient);
      }
    },
    connections() {
      return pairs.size;
    },
    stop() {
      for (const pair of [...pairs]) end(pair);
      listener.stop(true);
    },
  };
}
