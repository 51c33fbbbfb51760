// Latency probes: TCP connect time from this node to named targets (an exchange gateway, a site's server).

/** Series name of a probe result, as the hub's placement reads it. */
export const probeSeries = (target: string): string =>
  `probe.rtt_ms{target="${target.replace(/["\\]/g, "_")}"}`;

/** Time to complete a TCP connect to `host:port`, in ms (3 decimals); undefined when it fails or times out. */
export async function tcpConnectMs(address: string, timeoutMs = 2000): Promise<number | undefined> {
  const i = address.lastIndexOf(":");
  const hostname = address.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(address.slice(i + 1));
  const start = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const socket = await Promise.race([
      Bun.connect({ hostname, port, socket: { data() {}, error() {}, close() {} } }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), timeoutMs);
      }),
    ]);
    const ms = performance.now() - start;
    socket.end();
    return Math.round(ms * 1000) / 1000;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Connects this many times per round and keeps the fastest: one slow handshake is noise, not distance. */
const ATTEMPTS = 3;

async function bestOf(address: string): Promise<number | undefined> {
  let best: number | undefined;
  for (let i = 0; i < ATTEMPTS; i++) {
    const ms = await tcpConnectMs(address);
    if (ms !== undefined && (best === undefined || ms < best)) best = ms;
  }
  return best;
}

/** Runs every probe once (the best of a short burst each); returns series name → ms for those that answered. */
export async function runProbes(targets: Readonly<Record<string, string>>): Promise<Record<string, number>> {
  const entries = await Promise.all(
    Object.entries(targets).map(async ([name, address]) => [name, await bestOf(address)] as const),
  );
  const out: Record<string, number> = {};
  for (const [name, ms] of entries) if (ms !== undefined) out[probeSeries(name)] = ms;
  return out;
}
