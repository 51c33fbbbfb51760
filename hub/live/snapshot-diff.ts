// What changed between two looks at the hub: the pure half of the live stream (GET /api/v1/stream).

/** A node's liveness as the stream tells it. */
export interface NodeView {
  id: string;
  /** The registry's status: `ready`, `suspect`, `down` or `draining`. */
  status: string;
  /** The heartbeat monitor's: `ready`, `suspect`, `disconnected` or `lost`. */
  health: string;
  /** When the current health began (ms since the epoch). */
  at: number;
  reason: string;
}

export interface AllocView {
  id: string;
  workload: string;
  node: string;
  status: string;
  healthy: boolean | null;
  updated: number;
}

/** One look at the hub: what the stream compares from one tick to the next. */
export interface Snapshot {
  nodes: Map<string, NodeView>;
  allocs: Map<string, AllocView>;
  /** Highest failover event id seen. */
  failoverId: number;
  /** Each alert's id with a key that changes when it does (state, update time). */
  alerts: Map<string, string>;
}

/** One server-sent event. */
export type StreamEvent =
  | { event: "node"; data: NodeView }
  | { event: "alloc"; data: AllocView }
  | { event: "failover"; data: { id: number } & Record<string, unknown> }
  | { event: "alert"; data: Record<string, unknown> };

export const emptySnapshot = (): Snapshot => ({
  nodes: new Map(),
  allocs: new Map(),
  failoverId: 0,
  alerts: new Map(),
});

const sameNode = (a: NodeView, b: NodeView) =>
  a.status === b.status && a.health === b.health && a.at === b.at;
const sameAlloc = (a: AllocView, b: AllocView) =>
  a.status === b.status && a.healthy === b.healthy && a.node === b.node;

/**
 * The events that take a client from `prev` to `next`: nodes and allocations that appeared or
 * changed (a vanished allocation is sent once as `stopped`), failover events and alerts that are new
 * or changed. Failover events and alerts come with `next`, newest first, as the stores list them.
 */
export function diffSnapshots(
  prev: Snapshot,
  next: Snapshot,
  fresh: { failover: ({ id: number } & Record<string, unknown>)[]; alerts: Record<string, unknown>[] },
): StreamEvent[] {
  const out: StreamEvent[] = [];
  for (const [id, n] of next.nodes) {
    const before = prev.nodes.get(id);
    if (!before || !sameNode(before, n)) out.push({ event: "node", data: n });
  }
  for (const [id, a] of next.allocs) {
    const before = prev.allocs.get(id);
    if (!before || !sameAlloc(before, a)) out.push({ event: "alloc", data: a });
  }
  for (const [id, a] of prev.allocs) {
    if (!next.allocs.has(id)) out.push({ event: "alloc", data: { ...a, status: "stopped" } });
  }
  for (const e of [...fresh.failover].reverse()) {
    if (e.id > prev.failoverId) out.push({ event: "failover", data: e });
  }
  for (const a of [...fresh.alerts].reverse()) {
    const id = String(a.id);
    const key = next.alerts.get(id);
    if (key !== undefined && prev.alerts.get(id) !== key) out.push({ event: "alert", data: a });
  }
  return out;
}

/** The key an alert is compared by: a new alert, or one whose state or update time moved, is sent again. */
export const alertKey = (a: Record<string, unknown>): string =>
  `${String(a.state ?? "")}|${String(a.updated_at ?? a.at ?? "")}|${String(a.acknowledged_at ?? "")}`;

/** Encodes one event as server-sent event lines (`event:` and one JSON `data:` line). */
export function encodeEvent(e: StreamEvent): string {
  return `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
}
