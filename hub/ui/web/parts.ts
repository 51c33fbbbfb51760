// Small pieces every page uses: ages that tick, health badges, a data hook, error lines.
import { html } from "htm/preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, describeError } from "./api.ts";

/** "12 s ago", "4 min ago", "3 h ago", "2 d ago" (or "in 5 s" for a time ahead). */
export function formatAge(at: number, now: number): string {
  const d = Math.round((now - at) / 1000);
  const abs = Math.abs(d);
  const text =
    abs < 60
      ? `${abs} s`
      : abs < 3600
        ? `${Math.floor(abs / 60)} min`
        : abs < 86400
          ? `${Math.floor(abs / 3600)} h`
          : `${Math.floor(abs / 86400)} d`;
  return d < 0 ? `in ${text}` : `${text} ago`;
}

const tickers = new Set<(n: number) => void>();
setInterval(() => {
  const n = Date.now();
  for (const t of tickers) t(n);
}, 1000);

/** The current time, updated every second while mounted. */
export function useNow(): number {
  const [now, set] = useState(Date.now());
  useEffect(() => {
    tickers.add(set);
    return () => {
      tickers.delete(set);
    };
  }, []);
  return now;
}

/** A time shown as its age, the exact time in its tooltip. */
export function Age({ at }: { at: number | null | undefined }) {
  const now = useNow();
  if (!at) return html`<span class="age">never</span>`;
  return html`<time class="age" datetime=${new Date(at).toISOString()} title=${new Date(at).toLocaleString()}
    >${formatAge(at, now)}</time
  >`;
}

/** A health or status word with its colour; the word itself is always shown (colour is never alone). */
export function Badge({ value, since }: { value: string; since?: number | undefined }) {
  return html`<span class="badge" data-health=${value}>${value}</span>${since ? html` <${Age} at=${since} />` : ""}`;
}

export function ErrorLine({ error }: { error: unknown }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${describeError(error)}</p>`;
}

/** Loads `path` (again when it or `version` changes); `reload` fetches again. */
export function useApi<T>(path: string | null, version = 0) {
  const [state, set] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const load = useCallback(() => {
    if (!path) return;
    api<T>(path).then(
      (data) => set({ data, loading: false }),
      (error) => set((s) => ({ ...s, error, loading: false })),
    );
  }, [path]);
  useEffect(() => {
    set((s) => ({ ...s, loading: true, error: undefined }));
    load();
  }, [path, version]);
  return { ...state, reload: load };
}

/** A table that says so when it has no rows. */
export function Table({
  caption,
  head,
  rows,
  empty,
}: {
  caption: string;
  head: string[];
  rows: unknown[];
  empty: string;
}) {
  return html`<table>
    <caption>${caption}</caption>
    <thead><tr>${head.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
    <tbody>${rows.length ? rows : html`<tr><td colspan=${head.length} class="muted">${empty}</td></tr>`}</tbody>
  </table>`;
}

export const href = {
  overview: "#/",
  node: (id: string) => `#/nodes/${encodeURIComponent(id)}`,
  workloads: "#/workloads",
  workload: (name: string) => `#/workloads/${encodeURIComponent(name)}`,
  placement: "#/placement",
  alerts: "#/alerts",
};
