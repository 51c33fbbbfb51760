// Series names common to every agent, sent on the wire as a small index instead of the name.
//
// Append only: an index, once given, means that name for as long as protocol version 1 lives.

/** Well-known series names; position = wire index. */
export const WELL_KNOWN_SERIES: readonly string[] = [
  "cpu.util",
  "cpu.load1",
  "cpu.load5",
  "cpu.load15",
  "mem.used_pct",
  "mem.avail_bytes",
  "net.rx_bps",
  "net.tx_bps",
  "temp.cpu_c",
  "agent.rss_bytes",
  "agent.cpu_pct",
  'disk.used_pct{mount="/"}',
];

const INDEX = new Map(WELL_KNOWN_SERIES.map((name, i) => [name, i]));

/** The wire index of a well-known name, or undefined. */
export function wellKnownIndex(name: string): number | undefined {
  return INDEX.get(name);
}
