// `apply -f spec` (a plan and a diff first, changes only when confirmed) and `plan -f spec` (a dry run).
import type { WorkloadSpec } from "../../shared/workload/index.ts";
import type { Plan, WorkloadView } from "../api-types.ts";
import { type Ctx, defineCommand, type Parsed, requiredFlag } from "../command.ts";
import { HubError, NotAppliedError } from "../errors.ts";
import { planText } from "../plan-text.ts";
import { jsonText } from "../render.ts";
import { diffSpecs, diffText, type SpecChange } from "../spec-diff.ts";
import { readSpecFile, specOf, validateSpec } from "../spec-file.ts";

const enc = encodeURIComponent;

const FILE_FLAG = {
  name: "--file",
  short: "-f",
  value: "FILE",
  help: "workload spec, YAML or JSON (- for stdin)",
  file: true,
} as const;

/** The placement request of a spec: its resources, replicas, pinned nodes and placement block. */
function placementRequest(doc: Record<string, unknown>) {
  const keys = ["resources", "replicas", "nodes", "placement"];
  return Object.fromEntries(keys.filter((k) => doc[k] !== undefined).map((k) => [k, doc[k]]));
}

async function current(ctx: Ctx, name: string): Promise<WorkloadView | undefined> {
  try {
    return await ctx.client.get<WorkloadView>(`/api/v1/workloads/${enc(name)}`);
  } catch (err) {
    if (err instanceof HubError && err.status === 404 && err.code === "not_found") return undefined;
    throw err;
  }
}

async function readDoc(p: Parsed): Promise<{ doc: Record<string, unknown>; name: string }> {
  const path = requiredFlag(p, "--file", "the workload spec to read (-f spec.yaml)");
  const doc = await readSpecFile(path, () => new Response(Bun.stdin.stream()).text());
  return { doc, name: path === "-" ? "stdin" : path };
}

/** What `apply` would do: create, update (with the changed fields) or nothing. */
export interface ApplyPlan {
  action: "create" | "update" | "none";
  workload: string;
  changes: SpecChange[];
  placement: Plan | null;
}

function applyPlanText(plan: ApplyPlan, before: WorkloadView | undefined, spec: WorkloadSpec): string {
  const out: string[] = [];
  if (plan.action === "create") {
    out.push(
      `+ workload "${plan.workload}" (new, ${spec.replicas} replica${spec.replicas === 1 ? "" : "s"})`,
    );
  } else if (plan.action === "update") {
    out.push(
      `~ workload "${plan.workload}" (version ${before?.version} -> ${(before?.version ?? 0) + 1}, ` +
        `rolled out by strategy ${spec.rollout.strategy})`,
      diffText(plan.changes)
        .split("\n")
        .map((l) => `    ${l}`)
        .join("\n"),
    );
  } else {
    out.push(`= workload "${plan.workload}" is unchanged (version ${before?.version})`);
  }
  if (plan.placement) {
    // An update is rolled out over the copies that run now; the dry run shows where the spec fits today.
    if (plan.action === "update")
      out.push("", "Where the new spec fits now (a dry run; the rollout replaces copies in place):");
    out.push("", planText(plan.placement));
  }
  return out.join("\n");
}

export const applyCommand = defineCommand({
  words: ["apply"],
  summary: "create or change a workload from a spec file: shows the plan and the diff, then asks",
  description:
    "Prints what would change (the fields, and where the replicas would be placed) before it changes\n" +
    "anything. It applies with --yes, or when you answer y at the prompt on a terminal. Without a\n" +
    "terminal and without --yes it changes nothing and exits 5.",
  args: [],
  usage: "apply -f FILE [--yes]",
  flags: [FILE_FLAG, { name: "--yes", short: "-y", help: "apply without asking" }],
  async run(ctx, p) {
    const { doc, name } = await readDoc(p);
    const spec = validateSpec(doc, name);
    const before = await current(ctx, spec.name);
    const beforeSpec = before ? specOf(before) : undefined;
    const changes = before ? diffSpecs(beforeSpec ?? {}, spec) : [];
    const action = !before ? "create" : changes.length > 0 ? "update" : "none";
    const placement =
      action === "none" ? null : await ctx.client.post<Plan>("/api/v1/placement/plan", placementRequest(doc));
    const plan: ApplyPlan = { action, workload: spec.name, changes, placement };
    if (!ctx.json) ctx.out(applyPlanText(plan, before, spec));
    if (action === "none") {
      if (ctx.json) ctx.out(jsonText({ plan, applied: false }));
      return;
    }
    let yes = p.switches.has("--yes");
    if (!yes && ctx.interactive && !ctx.json) {
      ctx.out("");
      yes = await ctx.confirm(`${action === "create" ? "Create" : "Update"} workload "${spec.name}"? [y/N] `);
    }
    if (!yes) {
      if (ctx.json) ctx.out(jsonText({ plan, applied: false }));
      throw new NotAppliedError(
        ctx.interactive && !ctx.json
          ? "not applied"
          : "not applied: pass --yes to apply (no terminal to ask on)",
      );
    }
    const after =
      action === "create"
        ? await ctx.client.post<WorkloadView>("/api/v1/workloads", doc)
        : await ctx.client.put<WorkloadView>(`/api/v1/workloads/${enc(spec.name)}`, doc);
    if (ctx.json) return ctx.out(jsonText({ plan, applied: true, workload: after }));
    ctx.out("");
    ctx.out(
      `${action === "create" ? "created" : "updated"} workload ${after.name}, version ${after.version}`,
    );
  },
});

export const planCommand = defineCommand({
  words: ["plan"],
  summary: "placement dry run of a spec: where its replicas would go and why the other nodes would not",
  args: [],
  usage: "plan -f FILE",
  flags: [FILE_FLAG],
  async run(ctx, p) {
    const { doc } = await readDoc(p);
    const plan = await ctx.client.post<Plan>("/api/v1/placement/plan", placementRequest(doc));
    if (ctx.json) return ctx.out(jsonText(plan));
    ctx.out(planText(plan));
    if (plan.summary && plan.filtered.length === 0 && !plan.complete) ctx.out(plan.summary);
  },
});
