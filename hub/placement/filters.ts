// Hard filters: one pass over the fleet's columns; each removed node is counted under its first failing filter.
import type { Compiled } from "./compile.ts";
import { num, range, Tally } from "./explain.ts";
import { type FleetIndex, STATUS_NAMES } from "./fleet-index.ts";
import { matchTerm } from "./selector.ts";
import { domainOf } from "./spread.ts";

export interface Filtered {
  /** Indices of the nodes that passed, in fleet order (pinned order for pinned requests). */
  feasible: Int32Array;
  count: number;
  tally: Tally;
}

const DIM_TEXT = [
  { name: "cpu", unit: " millicores" },
  { name: "memory", unit: " MB" },
  { name: "disk", unit: " MB" },
] as const;

/** Registers the slots in `layout` order with the text of each reason. */
function register(tally: Tally, c: Compiled): void {
  for (const s of [1, 2, 3]) tally.slot("health", STATUS_NAMES[s]!, () => `status ${STATUS_NAMES[s]}`);
  tally.slot("level", "level", () =>
    c.levelMin === c.levelMax ? `level not ${c.levelMin}` : `level outside ${c.levelMin}-${c.levelMax}`,
  );
  tally.slot("arch", "arch", () => `arch not ${c.archText}`);
  for (const r of c.required) tally.slot("capabilities", r.name, () => `missing capability ${r.name}`);
  for (const t of c.terms) tally.slot("labels", t.term.text, () => `labels do not match ${t.term.text}`);
  tally.slot("jurisdiction", "unknown", () => "jurisdiction unknown");
  tally.slot("jurisdiction", "outside", () => `jurisdiction not ${c.jurisdictionText}`);
  tally.slot("region", "unknown", () => "no region label");
  tally.slot("region", "outside", () => `region not ${c.regionText}`);
  const target = c.latencyTarget ?? "hub";
  tally.slot("latency", "unmeasured", () => `no RTT measured to ${target}`);
  tally.slot(
    "latency",
    "ceiling",
    (min, max) => `latency to ${target} ${range(min, max)} ms > ${num(c.maxMs)} ms`,
  );
  const aff = c.affinity;
  tally.slot("affinity", aff?.workload ?? "", () =>
    aff ? `${aff.domains.by} does not run ${aff.workload}` : "",
  );
  DIM_TEXT.forEach(({ name, unit }, k) => {
    tally.slot("resources", name, (_min, max) => {
      const need = `${num(c.need[k]!)}${unit}`;
      return `not enough free ${name} (need ${need}, at most ${num(Math.max(0, max))}${unit} free)`;
    });
  });
}

/**
 * The first filter node i fails, as a tally slot number, or -1 when it passes every filter.
 * `value[0]` receives the offending value (RTT, free amount) where there is one.
 */
export function check(
  fleet: FleetIndex,
  c: Compiled,
  used: Float64Array,
  i: number,
  value: Float64Array,
): number {
  const s = fleet.status[i]!;
  if (s !== 0) return s - 1;
  const lv = fleet.level[i]!;
  if (lv < c.levelMin || lv > c.levelMax) return 3;
  if (c.arch !== null) {
    const a = fleet.arch.ids[i]!;
    if (a < 0 || c.arch[a] !== 1) return 4;
  }
  const at = c.slots;
  for (let k = 0; k < c.required.length; k++) {
    const column = c.required[k]!.column;
    if (column === null || column[i] !== 1) return at.caps + k;
  }
  for (let k = 0; k < c.terms.length; k++) if (!matchTerm(c.terms[k]!, i)) return at.terms + k;
  if (c.jurisdictions !== null) {
    const j = fleet.jurisdiction.ids[i]!;
    if (j < 0) return at.jur;
    if (c.jurisdictions[j] !== 1) return at.jur + 1;
  }
  if (c.regions !== null) {
    const r = c.regionIds[i]!;
    if (r < 0) return at.reg;
    if (c.regions[r] !== 1) return at.reg + 1;
  }
  if (c.maxMs !== Number.POSITIVE_INFINITY) {
    const ms = c.rtt === null ? Number.NaN : c.rtt[i]!;
    if (Number.isNaN(ms)) return at.lat;
    if (ms > c.maxMs) {
      value[0] = ms;
      return at.lat + 1;
    }
  }
  const aff = c.affinity;
  if (aff !== null && aff.allowed[domainOf(aff.domains, i)] !== 1) return at.aff;
  return shortOfRoom(fleet, c, used, i, value, at.res);
}

/** The resource slot of the first dimension that lacks room (free amount in value[0]), or -1. */
function shortOfRoom(
  fleet: FleetIndex,
  c: Compiled,
  used: Float64Array,
  i: number,
  value: Float64Array,
  res: number,
) {
  const b = 3 * i;
  for (let k = 0; k < 3; k++) {
    const free = fleet.cap[b + k]! - used[b + k]!;
    if (c.need[k]! > free) {
      value[0] = free;
      return res + k;
    }
  }
  return -1;
}

/** Runs every hard filter over the fleet against the `used` column given. */
export function filterFleet(fleet: FleetIndex, c: Compiled, used: Float64Array, examples: number): Filtered {
  const tally = new Tally(examples);
  register(tally, c);
  const n = fleet.size;
  const feasible = new Int32Array(n);
  const value = new Float64Array(1);
  let count = 0;
  for (let i = 0; i < n; i++) {
    value[0] = Number.NaN;
    const slot = check(fleet, c, used, i, value);
    if (slot < 0) feasible[count++] = i;
    else tally.hit(slot, i, value[0]!);
  }
  return { feasible, count, tally };
}

/** Pinned requests: only the pinned nodes, and only the health and resource filters apply. */
export function filterPinned(fleet: FleetIndex, c: Compiled, used: Float64Array, examples: number): Filtered {
  const tally = new Tally(examples);
  register(tally, c);
  const unknown: string[] = [];
  const unknownSlot = tally.slot("unknown_node", "unknown", () => `not in the fleet: ${unknown.join(", ")}`);
  const res = c.slots.res;
  const pinned = c.pinned ?? [];
  const feasible = new Int32Array(pinned.length);
  const value = new Float64Array(1);
  let count = 0;
  const seen = new Set<number>();
  for (const id of pinned) {
    const i = fleet.byId.get(id);
    if (i === undefined) {
      unknown.push(id);
      tally.hit(unknownSlot, -1);
      continue;
    }
    if (seen.has(i)) continue;
    seen.add(i);
    const s = fleet.status[i]!;
    if (s !== 0) {
      tally.hit(s - 1, i);
      continue;
    }
    const slot = shortOfRoom(fleet, c, used, i, value, res);
    if (slot < 0) feasible[count++] = i;
    else tally.hit(slot, i, value[0]!);
  }
  return { feasible, count, tally };
}
