// Counting what each filter removed (with examples and the range of the offending values) and saying it.
import type { FilterCount, FilterName } from "./types.ts";

/** Describes a filter reason, given the smallest and largest offending value seen (NaN when none). */
export type Describe = (min: number, max: number) => string;

interface Slot {
  filter: FilterName;
  detail: string;
  describe: Describe;
}

/** Per-reason counters filled by the filter pass: one slot per distinct reason, no allocation per node. */
export class Tally {
  readonly #slots: Slot[] = [];
  #counts = new Int32Array(16);
  #min = new Float64Array(16);
  #max = new Float64Array(16);
  readonly #examples: number[][] = [];
  readonly #keep: number;

  constructor(examples: number) {
    this.#keep = examples;
  }

  /** Registers a reason; returns its slot number for `hit`. */
  slot(filter: FilterName, detail: string, describe: Describe): number {
    const s = this.#slots.length;
    this.#slots.push({ filter, detail, describe });
    this.#examples.push([]);
    if (s >= this.#counts.length) {
      const grow = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.#counts = grow(this.#counts, (n) => new Int32Array(n));
      this.#min = grow(this.#min, (n) => new Float64Array(n));
      this.#max = grow(this.#max, (n) => new Float64Array(n));
    }
    this.#min[s] = Number.POSITIVE_INFINITY;
    this.#max[s] = Number.NEGATIVE_INFINITY;
    return s;
  }

  /** Counts node `node` as removed for reason `slot`, with the offending value if there is one. */
  hit(slot: number, node: number, value = Number.NaN): void {
    this.#counts[slot]!++;
    const ex = this.#examples[slot]!;
    if (ex.length < this.#keep) ex.push(node);
    if (value < this.#min[slot]!) this.#min[slot] = value;
    if (value > this.#max[slot]!) this.#max[slot] = value;
  }

  /** Total nodes removed. */
  removed(): number {
    let n = 0;
    for (let s = 0; s < this.#slots.length; s++) n += this.#counts[s]!;
    return n;
  }

  /** The non-empty reasons, most nodes first (then in filter order), with text and example ids. */
  report(ids: readonly string[]): FilterCount[] {
    const out: (FilterCount & { order: number })[] = [];
    this.#slots.forEach((slot, s) => {
      const count = this.#counts[s]!;
      if (count === 0) return;
      const min = this.#min[s]!;
      const max = this.#max[s]!;
      const what = slot.describe(
        Number.isFinite(min) ? min : Number.NaN,
        Number.isFinite(max) ? max : Number.NaN,
      );
      out.push({
        filter: slot.filter,
        detail: slot.detail,
        count,
        text: `${nodes(count)}: ${what}`,
        examples: this.#examples[s]!.flatMap((i) => (ids[i] === undefined ? [] : [ids[i]!])),
        order: s,
      });
    });
    out.sort((a, b) => b.count - a.count || a.order - b.order);
    return out.map(({ order: _, ...f }) => f);
  }
}

/** `1 node` / `12 nodes`. */
export function nodes(count: number): string {
  return `${count} ${count === 1 ? "node" : "nodes"}`;
}

/** A number with at most two decimals and no trailing zeros: 1.8, 0.25, 12. */
export function num(x: number): string {
  return String(Math.round(x * 100) / 100);
}

/** `1.8` or `1.2-4.5`, for a range of offending values. */
export function range(min: number, max: number): string {
  return min === max ? num(min) : `${num(min)}-${num(max)}`;
}

/** The one-line explanation of what the filters removed. */
export function summarize(filtered: readonly FilterCount[]): string {
  return filtered.map((f) => f.text).join("; ");
}
