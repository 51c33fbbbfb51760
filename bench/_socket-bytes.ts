// TCP payload bytes of one process's established connections, read from the kernel's tcp_info through `ss`.

/** Bytes one connection has sent and received so far (TCP payload, retransmissions included). */
export interface SocketBytes {
  local: string;
  peer: string;
  sent: number;
  received: number;
  retransmitted: number;
  segsOut: number;
  segsIn: number;
}

/**
 * The established TCP connections of `pid` to `peerPort` with their byte counters. The kernel keeps
 * these per socket (tcpi_bytes_sent/received), so nothing has to sit in the path to count them; they
 * are gone once the socket closes, so read them while the connection is up.
 */
export function socketBytes(pid: number, peerPort: number): SocketBytes[] {
  const out = Bun.spawnSync(["ss", "-tinpH", "state", "established", `( dport = :${peerPort} )`], {
    stdout: "pipe",
    stderr: "pipe",
  });
  if (out.exitCode !== 0) throw new Error(`ss failed: ${out.stderr.toString().trim()}`);
  // Each socket is a summary line (addresses, users:((...,pid=N,...))) followed by an indented info line.
  const lines = out.stdout.toString().split("\n");
  const found: SocketBytes[] = [];
  for (let i = 0; i < lines.length; i++) {
    const head = lines[i]!;
    if (head.startsWith("\t") || head.trim() === "") continue;
    if (!head.includes(`pid=${pid},`)) continue;
    const info = lines[i + 1] ?? "";
    const num = (key: string) => Number(new RegExp(`\\b${key}:(\\d+)`).exec(info)?.[1] ?? 0);
    const [, , local = "", peer = ""] = head.trim().split(/\s+/);
    found.push({
      local,
      peer,
      sent: num("bytes_sent"),
      received: num("bytes_received"),
      retransmitted: num("bytes_retrans"),
      segsOut: num("segs_out"),
      segsIn: num("segs_in"),
    });
  }
  return found;
}
