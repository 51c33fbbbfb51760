// `nodes`, `node show|drain|undrain ID`: the registry, one node's detail, taking a node out of service.
import type { AllocView, NodeDetail, NodeSummary } from "../api-types.ts";
import { arg, defineCommand, intFlag } from "../command.ts";
import { parseDurationFlag } from "../durations.ts";
import { age, cell, fields, jsonText, labels, table } from "../render.ts";

const STATUS_ORDER = ["down", "suspect", "draining", "ready"];

/** Nodes in the order people read them: trouble first, then by id. */
export function sortNodes<T extends { id: string; status: string }>(nodes: readonly T[]): T[] {
  const rank = (s: string) => {
    const i = STATUS_ORDER.indexOf(s);
    return i < 0 ? -1 : i;
  };
  return [...nodes].sort((a, b) => rank(a.status) - rank(b.status) || a.id.localeCompare(b.id));
}

const enc = encodeURIComponent;

export const nodesCommand = defineCommand({
  words: ["nodes"],
  summary: "list the nodes with their tier, status and when they were last heard",
  args: [],
  flags: [
    {
      name: "--status",
      value: "STATUS",
      help: "only nodes with this status",
      choices: ["ready", "suspect", "down", "draining"],
    },
  ],
  async run(ctx, p) {
    const { nodes } = await ctx.client.get<{ nodes: NodeSummary[] }>("/api/v1/nodes");
    const shown = nodes.filter((n) => !p.flags["--status"] || n.status === p.flags["--status"]);
    if (ctx.json) return ctx.out(jsonText({ nodes: shown }));
    const now = ctx.now();
    ctx.out(
      table(
        ["NODE", "LEVEL", "STATUS", "CONNECTED", "LAST SEEN", "LABELS"],
        sortNodes(shown).map((n) => [
          n.id,
          String(n.level),
          n.status,
          n.connected ? "yes" : "no",
          age(n.last_seen, now),
          labels(n.labels),
        ]),
      ),
    );
  },
});

export const nodeShowCommand = defineCommand({
  words: ["node", "show"],
  summary: "one node: status, resources, ingest counters and its allocations",
  args: [{ name: "ID", complete: "nodes" }],
  flags: [],
  async run(ctx, p) {
    const id = arg(p, "ID");
    const node = await ctx.client.get<NodeDetail>(`/api/v1/nodes/${enc(id)}`);
    const { allocs } = await ctx.client.get<{ allocs: AllocView[] }>(`/api/v1/nodes/${enc(id)}/allocs`);
    if (ctx.json) return ctx.out(jsonText({ ...node, allocs }));
    const now = ctx.now();
    const res = node.resources ?? {};
    ctx.out(
      fields([
        ["node", node.id],
        ["status", `${node.status}${node.connected ? ", connected" : ", not connected"}`],
        ["level", String(node.level)],
        ["last seen", `${age(node.last_seen, now)}`],
        ["first seen", age(node.first_seen, now)],
        ["version", cell(node.version)],
        ["transport", cell(node.transport)],
        ["labels", labels(node.labels)],
        ["capabilities", node.capabilities.length > 0 ? node.capabilities.join(",") : "-"],
        [
          "resources",
          Object.keys(res).length > 0
            ? Object.entries(res)
                .map(([k, v]) => `${k}=${v}`)
                .join(" ")
            : "-",
        ],
        [
          "ingest",
          node.ingest
            ? `${node.ingest.samples ?? 0} samples in ${node.ingest.batches ?? 0} batches, ${node.ingest.duplicates ?? 0} duplicates`
            : "-",
        ],
      ]),
    );
    ctx.out("");
    ctx.out(allocs.length === 0 ? "no allocations" : allocTable(allocs, now));
  },
});

/** Allocations as a table. */
export function allocTable(allocs: readonly AllocView[], now: number): string {
  return table(
    ["ALLOC", "WORKLOAD", "NODE", "STATUS", "VERSION", "HEALTHY", "RESTARTS", "UPDATED"],
    allocs.map((a) => [
      a.id,
      a.workload,
      a.node,
      a.status,
      String(a.version),
      a.healthy === undefined || a.healthy === null ? "-" : a.healthy ? "yes" : "no",
      cell(a.restarts),
      age(a.updated, now),
    ]),
  );
}

export const nodeDrainCommand = defineCommand({
  words: ["node", "drain"],
  summary: "drain a node: move its workloads away (make before break) and place nothing new on it",
  args: [{ name: "ID", complete: "nodes" }],
  flags: [
    { name: "--deadline", value: "DURATION", help: "give up moving after this long (default 1h)" },
    { name: "--max-parallel", value: "N", help: "moves at once (default 1)" },
  ],
  async run(ctx, p) {
    const id = arg(p, "ID");
    const body: Record<string, number> = {};
    const deadline = parseDurationFlag(p.flags["--deadline"], "--deadline");
    if (deadline !== undefined) body.deadline_ms = deadline;
    const parallel = intFlag(p, "--max-parallel", 1, 1000);
    if (parallel !== undefined) body.max_parallel = parallel;
    const answer = await ctx.client.post<{ drain: Record<string, unknown> }>(
      `/api/v1/nodes/${enc(id)}/drain`,
      body,
    );
    if (ctx.json) return ctx.out(jsonText(answer));
    ctx.out(`draining ${id}: its workloads move elsewhere; \`novacron node undrain ${id}\` ends it`);
  },
});

export const nodeUndrainCommand = defineCommand({
  words: ["node", "undrain"],
  summary: "end a drain: the node takes work again",
  args: [{ name: "ID", complete: "nodes" }],
  flags: [],
  async run(ctx, p) {
    const id = arg(p, "ID");
    const answer = await ctx.client.post<{ node: string; draining: boolean }>(
      `/api/v1/nodes/${enc(id)}/undrain`,
    );
    if (ctx.json) return ctx.out(jsonText(answer));
    ctx.out(`${id} takes work again`);
  },
});
