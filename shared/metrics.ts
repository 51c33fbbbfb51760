// A tiny Prometheus registry: counters and gauges with labels, rendered in the text format.

/** Label names to values. */
export type Labels = Record<string, string>;

interface Family {
  type: "counter" | "gauge";
  help: string;
  values: Map<string, { labels: Labels; value: number }>;
  collect?: () => number | [Labels, number][];
}

/** Metric families of the text format: a family's samples together, after its HELP and TYPE. */
export function renderFamily(
  name: string,
  type: "counter" | "gauge",
  help: string,
  samples: Iterable<[Labels, number]>,
): string[] {
  const out = [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`];
  for (const [labels, value] of samples) {
    const key = labelKey(labels);
    out.push(`${name}${key ? `{${key}}` : ""} ${formatValue(value)}`);
  }
  return out;
}

/** A label value escaped for the text format (backslash, newline, double quote). */
export const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

/** A HELP text escaped for the text format (backslash, newline). */
export const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

/** A sample value in the text format. */
export const formatValue = (value: number) =>
  Number.isNaN(value) ? "NaN" : value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : String(value);
const labelKey = (labels: Labels) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabel(labels[k] ?? "")}"`)
    .join(",");

/** Holds metric families; each process has one. */
export class MetricsRegistry {
  readonly #families = new Map<string, Family>();
  readonly #loads: (() => Promise<void>)[] = [];

  #family(name: string, type: Family["type"], help: string): Family {
    let f = this.#families.get(name);
    if (!f) {
      f = { type, help, values: new Map() };
      this.#families.set(name, f);
    }
    return f;
  }

  /** Declares a counter; returns a function that adds to it. */
  counter(name: string, help: string): (by?: number, labels?: Labels) => void {
    const f = this.#family(name, "counter", help);
    return (by = 1, labels = {}) => {
      const key = labelKey(labels);
      const cur = f.values.get(key);
      if (cur) cur.value += by;
      else f.values.set(key, { labels, value: by });
    };
  }

  /** Declares a counter whose value(s) are read when scraped (a durable count kept elsewhere). */
  counterOf(name: string, help: string, collect: () => number | [Labels, number][]): void {
    const f = this.#family(name, "counter", help);
    f.collect = collect;
  }

  /** Declares a gauge whose value(s) are read when scraped. */
  gauge(name: string, help: string, collect: () => number | [Labels, number][]): void {
    const f = this.#family(name, "gauge", help);
    f.collect = collect;
  }

  /** Current value of a counter or gauge (tests and status pages). */
  value(name: string, labels: Labels = {}): number {
    const f = this.#families.get(name);
    if (!f) return 0;
    if (f.collect) {
      const v = f.collect();
      if (typeof v === "number") return v;
      return v.find(([l]) => labelKey(l) === labelKey(labels))?.[1] ?? 0;
    }
    return f.values.get(labelKey(labels))?.value ?? 0;
  }

  /**
   * Runs `load` before each `scrape`: an asynchronous read (a store's figures) whose result collectors
   * then serve from memory.
   */
  beforeScrape(load: () => Promise<void>): void {
    this.#loads.push(load);
  }

  /** Runs every `beforeScrape` load, then renders; a load that fails leaves its figures as last read. */
  async scrape(onError?: (err: unknown) => void): Promise<string> {
    await Promise.all(this.#loads.map((load) => load().catch((err: unknown) => onError?.(err))));
    return this.render();
  }

  /** Prometheus text exposition format 0.0.4 (without running the `beforeScrape` loads). */
  render(): string {
    const out: string[] = [];
    for (const [name, f] of this.#families) {
      const samples: [Labels, number][] = f.collect
        ? (() => {
            const v = f.collect();
            return typeof v === "number" ? [[{}, v] as [Labels, number]] : v;
          })()
        : [...f.values.values()].map((e) => [e.labels, e.value]);
      if (samples.length === 0 && f.type === "counter") samples.push([{}, 0]);
      out.push(...renderFamily(name, f.type, f.help, samples));
    }
    return `${out.join("\n")}\n`;
  }
}
