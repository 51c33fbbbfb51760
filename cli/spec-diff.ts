// The difference between two workload specs, field by field (pure), and its text like `nomad job plan`.

/** One changed field; `path` is dotted (`resources.mem_mb`). */
export interface SpecChange {
  path: string;
  kind: "add" | "remove" | "change";
  before?: unknown;
  after?: unknown;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Every leaf that differs between `before` and `after`, in key order; maps are walked, lists compared whole. */
export function diffSpecs(before: unknown, after: unknown, path = ""): SpecChange[] {
  if (isMap(before) && isMap(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    return keys.flatMap((k) => diffSpecs(before[k], after[k], path ? `${path}.${k}` : k));
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  if (before === undefined) return leaves(after, path).map(([p, v]) => ({ path: p, kind: "add", after: v }));
  if (after === undefined)
    return leaves(before, path).map(([p, v]) => ({ path: p, kind: "remove", before: v }));
  return [{ path, kind: "change", before, after }];
}

function leaves(v: unknown, path: string): [string, unknown][] {
  if (isMap(v) && Object.keys(v).length > 0) {
    return Object.entries(v).flatMap(([k, x]) => leaves(x, path ? `${path}.${k}` : k));
  }
  return [[path, v]];
}

const show = (v: unknown) => (typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v));

/** `+ path: value`, `- path: value`, `~ path: old => new`, one line each. */
export function diffText(changes: readonly SpecChange[]): string {
  return changes
    .map((c) => {
      if (c.kind === "add") return `+ ${c.path}: ${show(c.after)}`;
      if (c.kind === "remove") return `- ${c.path}: ${show(c.before)}`;
      return `~ ${c.path}: ${show(c.before)} => ${show(c.after)}`;
    })
    .join("\n");
}
