// One series over a range, drawn with uPlot; the library is its own chunk, loaded on the first chart.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";

/** What GET /api/v1/nodes/{id}/metrics answers: points, and minutes kept only as rollups. */
export interface SeriesData {
  points: [number, number][];
  rollups?: [t: number, min: number, max: number, avg: number, count: number][];
}

/** Columns for uPlot: time (s), value, and min/max where the minute was rolled up. */
export function columns(d: SeriesData): [number[], (number | null)[], (number | null)[], (number | null)[]] {
  const rows = new Map<number, [number | null, number | null, number | null]>();
  for (const [t, v] of d.points) rows.set(t, [v, null, null]);
  for (const [t, min, max, avg] of d.rollups ?? []) rows.set(t, [avg, min, max]);
  const ts = [...rows.keys()].sort((a, b) => a - b);
  return [
    ts.map((t) => t / 1000),
    ts.map((t) => rows.get(t)![0]),
    ts.map((t) => rows.get(t)![1]),
    ts.map((t) => rows.get(t)![2]),
  ];
}

export function Chart({ name, data }: { name: string; data: SeriesData }) {
  const box = useRef<HTMLDivElement>(null);
  const [failed, setFailed] = useState("");
  useEffect(() => {
    let plot: { destroy(): void } | undefined;
    let gone = false;
    import("uplot").then(
      ({ default: UPlot }) => {
        if (gone || !box.current) return;
        const cols = columns(data);
        const rolled = (data.rollups?.length ?? 0) > 0;
        plot = new UPlot(
          {
            width: Math.max(320, box.current.clientWidth - 8),
            height: 240,
            series: [
              {},
              { label: name, stroke: "#1f5fbf", width: 1.5 },
              ...(rolled
                ? [
                    { label: "rollup min", stroke: "#6b7a90", dash: [4, 4] },
                    { label: "rollup max", stroke: "#b3471b", dash: [4, 4] },
                  ]
                : []),
            ],
            axes: [{}, { size: 60 }],
          },
          (rolled ? cols : cols.slice(0, 2)) as never,
          box.current,
        );
      },
      (err) => setFailed(String(err)),
    );
    return () => {
      gone = true;
      plot?.destroy();
    };
  }, [data, name]);
  const values = data.points.map((p) => p[1]);
  const summary = values.length
    ? `${values.length} points${data.rollups?.length ? ` and ${data.rollups.length} rolled-up minutes` : ""}, min ${Math.min(...values)}, max ${Math.max(...values)}, last ${values.at(-1)}`
    : `no points in this range${data.rollups?.length ? ` (${data.rollups.length} rolled-up minutes)` : ""}`;
  return html`<figure class="chart">
    <div ref=${box} role="img" aria-label=${`${name}: ${summary}`}></div>
    <figcaption>${name}: ${summary}</figcaption>
    ${failed ? html`<p class="error">The chart did not load: ${failed}</p>` : ""}
  </figure>`;
}
