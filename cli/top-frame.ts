// One frame of `novacron top` from one snapshot of the fleet (pure: the command fetches and draws).
import type { NodeSummary, WorkloadView } from "./api-types.ts";
import type { FleetValues } from "./prom-text.ts";
import { age, table, when } from "./render.ts";
import { sortNodes } from "./commands/nodes.ts";

/** What one refresh fetched. */
export interface FleetSnapshot {
  hub: string;
  at: number;
  nodes: NodeSummary[];
  workloads: WorkloadView[];
  values: FleetValues;
  /** Why the last refresh failed, if it did (the frame still shows what it had). */
  error?: string;
}

const pct = (v: number | undefined) => (v === undefined ? "-" : v.toFixed(0));

/** The frame as lines, cut to `width` columns and `height` rows when given. */
export function topFrame(
  s: FleetSnapshot,
  opts: { width?: number; height?: number; live?: boolean } = {},
): string {
  const byStatus = new Map<string, number>();
  for (const n of s.nodes) byStatus.set(n.status, (byStatus.get(n.status) ?? 0) + 1);
  const allocs = s.workloads.flatMap((w) => w.allocs);
  const allocsOn = new Map<string, number>();
  for (const a of allocs) allocsOn.set(a.node, (allocsOn.get(a.node) ?? 0) + 1);
  const running = allocs.filter((a) => a.status === "running").length;
  const head = [
    `novacron top  ${s.hub}  ${when(s.at)}${opts.live ? "  (q to quit)" : ""}`,
    `nodes ${s.nodes.length}: ${["ready", "suspect", "down", "draining"].map((k) => `${byStatus.get(k) ?? 0} ${k}`).join(", ")}` +
      `   workloads ${s.workloads.length}   allocations ${running} running of ${allocs.length}`,
    ...(s.error ? [`! ${s.error}`] : []),
    "",
  ];
  const rows = sortNodes(s.nodes).map((n) => {
    const v = s.values.get(n.id);
    return [
      n.id,
      String(n.level),
      n.status,
      n.connected ? "yes" : "no",
      pct(v?.get("cpu_util")),
      pct(v?.get("mem_used_pct")),
      pct(v?.get("disk_used_pct/")),
      v?.get("cpu_load1")?.toFixed(2) ?? "-",
      String(allocsOn.get(n.id) ?? 0),
      age(n.last_seen, s.at),
    ];
  });
  const room = opts.height === undefined ? rows.length : Math.max(1, opts.height - head.length - 2);
  const shown = rows.slice(0, room);
  let body = table(
    ["NODE", "LEVEL", "STATUS", "CONN", "CPU%", "MEM%", "DISK%", "LOAD1", "ALLOCS", "LAST SEEN"],
    shown,
  );
  if (shown.length < rows.length) body += `\n... ${rows.length - shown.length} more nodes`;
  const lines = [...head, ...body.split("\n")];
  return (opts.width ? lines.map((l) => l.slice(0, opts.width)) : lines).join("\n");
}
