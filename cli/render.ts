// Text output for people: aligned tables, ages ("12s ago"), and key/value blocks.

/** Renders rows as a table under upper-case headers; columns are padded to their widest cell. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** How long ago `ms` was, in the largest fitting unit: "now", "12s ago", "3m ago", "5h ago", "2d ago". */
export function age(ms: number | null | undefined, now: number): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms <= 0) return "never";
  const s = Math.floor((now - ms) / 1000);
  if (s < 0) return `in ${span(-s)}`;
  if (s < 1) return "now";
  return `${span(s)} ago`;
}

/** A number of seconds as "45s", "3m", "5h", "2d". */
export function span(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** A UTC time as "2026-12-03 13:45:02Z", or "-" for none. */
export function when(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")}Z`;
}

/** `k=v,k2=v2`, or "-" for none. */
export function labels(map: Record<string, string> | null | undefined): string {
  const pairs = Object.entries(map ?? {});
  return pairs.length === 0 ? "-" : pairs.map(([k, v]) => `${k}=${v}`).join(",");
}

/** Aligned `key: value` lines. */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join("\n");
}

/** A value for a table cell: "-" for nothing. */
export function cell(v: unknown): string {
  if (v === null || v === undefined || v === "") return "-";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(1);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** Pretty JSON for --json output. */
export function jsonText(v: unknown): string {
  return JSON.stringify(v, null, 2);
}
