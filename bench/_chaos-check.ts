// The chaos soak's checker: every sample at the hub counted by node, series and timestamp, against the agents' counters.
import { Database } from "bun:sqlite";
import { join } from "node:path";

/** What the soak knows of one agent when it checks. */
export interface CheckedAgent {
  id: string;
  transport: "ws" | "mqtt";
  tmpfs: boolean;
  /** The agent's final /v1/status (undefined when it never answered). */
  status: AgentStatus | undefined;
  /** Pushed points (values are their push numbers): accepted with a 2xx, and those whose answer never came. */
  pushed?: { series: string; accepted: Set<number>; ambiguous: Set<number> };
  /** Times [from, to] (ms) when the agent ran unfrozen, with margins taken off: each second should be sampled. */
  upWindows: [number, number][];
  starts: number;
  unexpectedExits: number;
  /** The highest produced counter seen during the run, and whether a later reading was lower. */
  producedWentBack: { from: number; to: number } | undefined;
}

export interface AgentStatus {
  connected: boolean;
  outbox: { pending: number; bytes: number };
  samples: {
    produced: number;
    dropped: number;
    downsampled: number;
    staged_ticks: number;
    dropped_by?: Record<string, number>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

interface NodeJson {
  ingest: {
    samples: number;
    rolled_up: number;
    batches: number;
    last_seq: number;
    duplicates: number;
    gaps: number;
  };
}

interface SeriesJson {
  points: [number, number][];
  rollups?: [number, number, number, number, number][];
}

/** One row of the per-node table. */
export interface NodeRow {
  node: string;
  transport: string;
  tmpfs: boolean;
  produced: number;
  dropped: number;
  droppedBy: Record<string, number> | undefined;
  /** Samples the series API returns: fine points plus the counts of rolled-up minutes. */
  stored: number;
  /** The hub's own counter of stored samples. */
  hubCounter: number;
  /** produced − dropped − stored. */
  diff: number;
  /** Points stored twice or more (same node, series and timestamp), counting each extra copy. */
  duplicatePoints: number;
  /** Rolled-up minutes holding more samples than a minute can (fine and rolled-up copies of the same seconds). */
  overfullMinutes: number;
  /** Resends the hub recognised and dropped (expected after reconnects; not an error). */
  resendsDropped: number;
  hubGaps: number;
  /** Seconds the agent ran, unfrozen, with no cpu.util stored (in runs of at least 3 s). */
  missingSeconds: number;
  /** Distinct seconds with cpu.util stored (fine, or inside a rolled-up minute). */
  sampledSeconds: number;
  pendingAtEnd: number | undefined;
  starts: number;
  unexpectedExits: number;
  producedWentBack: { from: number; to: number } | undefined;
  pushed?: {
    series: string;
    accepted: number;
    ambiguous: number;
    storedPoints: number;
    storedAccepted: number;
    lost: number;
    storedTwice: number;
    lostExamples: number[];
  };
}

/** Per-node counts from the hub's series API. */
export async function checkNodes(
  hub: { url: string; adminToken: string },
  agents: CheckedAgent[],
  window: { from: number; to: number },
): Promise<NodeRow[]> {
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${hub.url}${path}`, { headers: { authorization: `Bearer ${hub.adminToken}` } });
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const rows: NodeRow[] = [];
  for (const a of agents) {
    let node: NodeJson | undefined;
    let series: string[] = [];
    try {
      node = await api<NodeJson>(`/api/v1/nodes/${a.id}`);
      series = (await api<{ series: string[] }>(`/api/v1/nodes/${a.id}/series`)).series;
    } catch {}
    let stored = 0;
    let duplicatePoints = 0;
    let overfullMinutes = 0;
    let cpuSeconds = new Set<number>();
    let pushedValues: number[] = [];
    for (const name of series) {
      const q = `/api/v1/nodes/${a.id}/metrics?series=${encodeURIComponent(name)}&from=${window.from}&to=${window.to}`;
      const body = await api<SeriesJson>(q);
      const rollups = body.rollups ?? [];
      // The rollup averages are among the points, one per minute: take them out to leave the fine points.
      const times = new Map<number, number>();
      for (const [t] of body.points) times.set(t, (times.get(t) ?? 0) + 1);
      for (const r of rollups) times.set(r[0], (times.get(r[0]) ?? 1) - 1);
      let fine = 0;
      for (const n of times.values()) {
        fine += n;
        if (n > 1) duplicatePoints += n - 1;
      }
      stored += fine;
      for (const r of rollups) {
        stored += r[4];
        let inMinute = 0;
        for (const [t, n] of times) if (t >= r[0] && t < r[0] + 60_000) inMinute += n;
        if (r[4] + inMinute > 60) overfullMinutes += 1;
      }
      if (name === "cpu.util") {
        cpuSeconds = new Set(
          [...times.keys()].filter((t) => (times.get(t) ?? 0) > 0).map((t) => Math.round(t / 1000)),
        );
        for (const r of rollups) for (let s = 0; s < 60; s++) cpuSeconds.add(r[0] / 1000 + s);
      }
      if (a.pushed && name === a.pushed.series) {
        const fineOnly = body.points.filter(([t]) => !rollups.some((r) => r[0] === t));
        pushedValues = fineOnly.map(([, v]) => v);
      }
    }
    let missingSeconds = 0;
    for (const [from, to] of a.upWindows) {
      let run = 0;
      for (let s = Math.ceil(from / 1000); s <= Math.floor(to / 1000); s++) {
        if (cpuSeconds.has(s)) {
          if (run >= 3) missingSeconds += run;
          run = 0;
        } else run += 1;
      }
      if (run >= 3) missingSeconds += run;
    }
    const st = a.status;
    const produced = st?.samples.produced ?? 0;
    const dropped = st?.samples.dropped ?? 0;
    const row: NodeRow = {
      node: a.id,
      transport: a.transport,
      tmpfs: a.tmpfs,
      produced,
      dropped,
      droppedBy: st?.samples.dropped_by,
      stored,
      hubCounter: node?.ingest.samples ?? 0,
      diff: produced - dropped - stored,
      duplicatePoints,
      overfullMinutes,
      resendsDropped: node?.ingest.duplicates ?? 0,
      hubGaps: node?.ingest.gaps ?? 0,
      missingSeconds,
      sampledSeconds: cpuSeconds.size,
      pendingAtEnd: st?.outbox.pending,
      starts: a.starts,
      unexpectedExits: a.unexpectedExits,
      producedWentBack: a.producedWentBack,
    };
    if (a.pushed) {
      const seen = new Map<number, number>();
      for (const v of pushedValues) seen.set(v, (seen.get(v) ?? 0) + 1);
      const lostList = [...a.pushed.accepted].filter((v) => !seen.has(v)).sort((x, y) => x - y);
      row.pushed = {
        series: a.pushed.series,
        accepted: a.pushed.accepted.size,
        ambiguous: a.pushed.ambiguous.size,
        storedPoints: pushedValues.length,
        storedAccepted: [...a.pushed.accepted].filter((v) => seen.has(v)).length,
        lost: lostList.length,
        storedTwice: [...seen.values()].filter((n) => n > 1).length,
        lostExamples: lostList.slice(0, 8),
      };
    }
    rows.push(row);
  }
  return rows;
}

/** What the hub's database file holds, read directly (the hub must be stopped): per node, and identical batches. */
export function checkHubDb(hubData: string): {
  perNode: Map<string, { samples: number; batches: number }>;
  identicalBatches: { node: string; start: number; ticks: number; copies: number }[];
} {
  const db = new Database(join(hubData, "hub.db"), { readonly: true });
  try {
    const perNode = new Map<string, { samples: number; batches: number }>();
    for (const r of db
      .query("SELECT node, sum(samples) AS samples, count(*) AS batches FROM batches GROUP BY node")
      .all() as { node: string; samples: number; batches: number }[])
      perNode.set(r.node, { samples: r.samples, batches: r.batches });
    const identicalBatches = db
      .query(
        `SELECT node, start, ticks, count(*) AS copies FROM batches
         GROUP BY node, start, ticks, data HAVING count(*) > 1 ORDER BY node, start`,
      )
      .all() as { node: string; start: number; ticks: number; copies: number }[];
    return { perNode, identicalBatches };
  } finally {
    db.close();
  }
}

const pad = (s: string | number, n: number) => String(s).padStart(n);

/** The per-node table, as printed and as recorded in BENCHMARKS.md. */
export function formatTable(rows: NodeRow[], db?: Map<string, { samples: number; batches: number }>): string {
  const head = [
    "node".padEnd(8),
    "via ",
    "disk  ",
    pad("produced", 9),
    pad("dropped", 8),
    pad("stored", 9),
    pad("p−d−s", 7),
    pad("dup pts", 7),
    pad("hub ctr", 9),
    ...(db ? [pad("db sum", 9)] : []),
    pad("resends", 7),
    pad("miss s", 6),
    pad("starts", 6),
    pad("crash", 5),
  ].join(" ");
  const lines = [head, "-".repeat(head.length)];
  for (const r of rows) {
    lines.push(
      [
        r.node.padEnd(8),
        r.transport.padEnd(4),
        (r.tmpfs ? "tmpfs" : "disk").padEnd(6),
        pad(r.produced, 9),
        pad(r.dropped, 8),
        pad(r.stored, 9),
        pad(r.diff, 7),
        pad(r.duplicatePoints, 7),
        pad(r.hubCounter, 9),
        ...(db ? [pad(db.get(r.node)?.samples ?? 0, 9)] : []),
        pad(r.resendsDropped, 7),
        pad(r.missingSeconds, 6),
        pad(r.starts, 6),
        pad(r.unexpectedExits, 5),
      ].join(" "),
    );
  }
  return lines.join("\n");
}
