// Free TCP ports on loopback for processes that must be restarted on the same port.

/** A port that was free a moment ago (the OS picks it). */
export function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}
