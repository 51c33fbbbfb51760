// `workloads`, `workload show NAME`, `logs WORKLOAD`: what runs, where, and what it printed.
import type { AllocView, WorkloadView } from "../api-types.ts";
import { arg, defineCommand, intFlag } from "../command.ts";
import { HubError, NotAppliedError } from "../errors.ts";
import { age, cell, fields, jsonText, table } from "../render.ts";
import { allocTable } from "./nodes.ts";

const enc = encodeURIComponent;

/** The rollout state in a few words ("done", "canary: waiting for promote"). */
export function rolloutText(r: unknown): string {
  if (r === null || r === undefined) return "-";
  if (typeof r === "string") return r;
  if (typeof r === "object") {
    const o = r as Record<string, unknown>;
    const parts = [o.state ?? o.phase ?? o.status, o.strategy, o.message ?? o.reason].filter(
      (x) => typeof x === "string" && x !== "",
    );
    if (parts.length > 0) return parts.join(", ");
  }
  return JSON.stringify(r);
}

export const workloadsCommand = defineCommand({
  words: ["workloads"],
  summary: "list the workloads with their version, replicas and rollout",
  args: [],
  flags: [],
  async run(ctx) {
    const { workloads } = await ctx.client.get<{ workloads: WorkloadView[] }>("/api/v1/workloads");
    if (ctx.json) return ctx.out(jsonText({ workloads }));
    const now = ctx.now();
    ctx.out(
      table(
        ["NAME", "DRIVER", "VERSION", "RUNNING", "ROLLOUT", "UPDATED"],
        workloads.map((w) => [
          w.name,
          w.driver,
          String(w.version),
          `${w.allocs.filter((a) => a.status === "running").length}/${w.replicas}`,
          rolloutText(w.rollout_status),
          age(w.updated, now),
        ]),
      ),
    );
  },
});

export const workloadShowCommand = defineCommand({
  words: ["workload", "show"],
  summary: "one workload: spec, version, rollout, allocations and why replicas are not placed",
  args: [{ name: "NAME", complete: "workloads" }],
  flags: [],
  async run(ctx, p) {
    const w = await ctx.client.get<WorkloadView>(`/api/v1/workloads/${enc(arg(p, "NAME"))}`);
    if (ctx.json) return ctx.out(jsonText(w));
    const now = ctx.now();
    ctx.out(
      fields([
        ["workload", w.name],
        ["version", String(w.version)],
        ["driver", w.driver],
        [
          "command",
          [w.command, ...(w.args ?? [])].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" "),
        ],
        ["replicas", `${w.allocs.filter((a) => a.status === "running").length} running of ${w.replicas}`],
        ["pinned to", Array.isArray(w.nodes) && w.nodes.length > 0 ? w.nodes.join(",") : "-"],
        ["rollout", rolloutText(w.rollout_status)],
        ["updated", age(w.updated, now)],
        ...(w.pending_reason ? ([["pending", w.pending_reason]] as const) : []),
      ]),
    );
    ctx.out("");
    ctx.out(w.allocs.length === 0 ? "no allocations" : allocTable(w.allocs, now));
  },
});

export const logsCommand = defineCommand({
  words: ["logs"],
  summary: "the last lines of a workload's output, from every running copy or one allocation",
  args: [{ name: "WORKLOAD", complete: "workloads" }],
  flags: [
    { name: "--alloc", value: "ID", help: "only this allocation" },
    { name: "--lines", value: "N", help: "lines per copy (default 200)" },
  ],
  async run(ctx, p) {
    const name = arg(p, "WORKLOAD");
    const lines = intFlag(p, "--lines", 1, 10_000) ?? 200;
    let allocs: Pick<AllocView, "id" | "node">[];
    if (p.flags["--alloc"]) {
      allocs = [{ id: p.flags["--alloc"], node: "" }];
    } else {
      const w = await ctx.client.get<WorkloadView>(`/api/v1/workloads/${enc(name)}`);
      allocs = w.allocs.filter(
        (a) => a.status === "running" || a.status === "failed" || a.status === "complete",
      );
      if (allocs.length === 0)
        throw new HubError(404, "no_allocations", `workload ${name} has no copy with output yet`);
    }
    const got: { alloc: string; node: string; logs: string }[] = [];
    for (const a of allocs) {
      got.push(
        await ctx.client.get<{ alloc: string; node: string; logs: string }>(
          `/api/v1/workloads/${enc(name)}/allocs/${enc(a.id)}/logs`,
          { lines },
        ),
      );
    }
    if (ctx.json) return ctx.out(jsonText({ logs: got }));
    for (const g of got) {
      if (got.length > 1) ctx.out(`==> ${g.alloc} on ${cell(g.node)} <==`);
      ctx.out(g.logs.replace(/\n$/, ""));
    }
  },
});

export const workloadDeleteCommand = defineCommand({
  words: ["workload", "delete"],
  summary: "delete a workload: every copy stops (asks first, like apply)",
  args: [{ name: "NAME", complete: "workloads" }],
  flags: [{ name: "--yes", short: "-y", help: "delete without asking" }],
  async run(ctx, p) {
    const name = arg(p, "NAME");
    const w = await ctx.client.get<WorkloadView>(`/api/v1/workloads/${enc(name)}`);
    const running = w.allocs.filter((a) => a.status === "running").length;
    if (!ctx.json)
      ctx.out(
        `- workload "${name}" (version ${w.version}; ${running} running cop${running === 1 ? "y" : "ies"} stop)`,
      );
    let yes = p.switches.has("--yes");
    if (!yes && ctx.interactive && !ctx.json) yes = await ctx.confirm(`Delete workload "${name}"? [y/N] `);
    if (!yes)
      throw new NotAppliedError(
        ctx.interactive && !ctx.json
          ? "not deleted"
          : "not deleted: pass --yes to delete (no terminal to ask on)",
      );
    const answer = await ctx.client.delete<{ deleted: string }>(`/api/v1/workloads/${enc(name)}`);
    if (ctx.json) return ctx.out(jsonText(answer));
    ctx.out(`deleted workload ${answer.deleted}`);
  },
});

export const workloadPromoteCommand = defineCommand({
  words: ["workload", "promote"],
  summary: "promote a canary or blue-green rollout that waits for it: the rest of the copies follow",
  args: [{ name: "NAME", complete: "workloads" }],
  flags: [],
  async run(ctx, p) {
    const w = await ctx.client.post<WorkloadView>(`/api/v1/workloads/${enc(arg(p, "NAME"))}/promote`);
    if (ctx.json) return ctx.out(jsonText(w));
    ctx.out(`promoted ${w.name} version ${w.version}: ${rolloutText(w.rollout_status)}`);
  },
});

export const workloadRollbackCommand = defineCommand({
  words: ["workload", "rollback"],
  summary: "return every copy to the previous version",
  args: [{ name: "NAME", complete: "workloads" }],
  flags: [],
  async run(ctx, p) {
    const w = await ctx.client.post<WorkloadView>(`/api/v1/workloads/${enc(arg(p, "NAME"))}/rollback`);
    if (ctx.json) return ctx.out(jsonText(w));
    ctx.out(`rolling ${w.name} back: version ${w.version}, ${rolloutText(w.rollout_status)}`);
  },
});
