// Property test of the rule engine: seeded random rules and series streams against an independent reading of the spec.
import { describe, expect, test } from "bun:test";
import {
  type AgentState,
  compileRules,
  type Decision,
  RuleEngine,
  type Snapshot,
} from "../../shared/rules/index.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { mulberry32 as rng } from "../support/prng.ts";

interface Sample {
  values: Record<string, number>;
  state: AgentState;
}

/** A condition generated twice: as rule text and as a plain predicate that says what the text should mean. */
interface GenCondition {
  text: string;
  holds: (s: Sample) => boolean;
}

const SERIES = ["a", "b.util", 'disk.used_pct{mount="/"}'];
const OPS: [string, (x: number, y: number) => boolean][] = [
  [">", (x, y) => x > y],
  [">=", (x, y) => x >= y],
  ["<", (x, y) => x < y],
  ["<=", (x, y) => x <= y],
  ["==", (x, y) => x === y],
  ["!=", (x, y) => x !== y],
];

function genCondition(r: () => number, depth: number): GenCondition {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const roll = r();
  if (depth <= 0 || roll < 0.45) {
    const [op, cmp] = pick(OPS);
    if (r() < 0.2) {
      const threshold = Math.round(r() * 10) / 10;
      return {
        text: `state.buffer_fill ${op} ${threshold}`,
        holds: (s) => cmp(s.state.buffer_fill, threshold),
      };
    }
    if (r() < 0.1) {
      const v = r() < 0.5 ? 1 : 0;
      return { text: `state.connected ${op} ${v}`, holds: (s) => cmp(s.state.connected ? 1 : 0, v) };
    }
    const key = pick(SERIES);
    // Values are small integers, so == and != hold often enough to matter.
    const threshold = Math.floor(r() * 10);
    return {
      text: r() < 0.5 ? `${key} ${op} ${threshold}` : `${key}${op}${threshold}`,
      holds: (s) => {
        const x = s.values[key];
        return x !== undefined && cmp(x, threshold);
      },
    };
  }
  if (roll < 0.6) {
    const inner = genCondition(r, depth - 1);
    return { text: `not (${inner.text})`, holds: (s) => !inner.holds(s) };
  }
  const left = genCondition(r, depth - 1);
  const right = genCondition(r, depth - 1);
  return roll < 0.8
    ? { text: `(${left.text}) and (${right.text})`, holds: (s) => left.holds(s) && right.holds(s) }
    : { text: `(${left.text}) or (${right.text})`, holds: (s) => left.holds(s) || right.holds(s) };
}

interface GenRule {
  name: string;
  when: GenCondition;
  clear: GenCondition;
  clearText: string | undefined;
  forMs: number;
  clearForMs: number;
  cooldownMs: number;
}

const DURATIONS = [0, 500, 1000, 3000, 10_000, 30_000];

function genRule(r: () => number, i: number): GenRule {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const when = genCondition(r, 3);
  const explicit = r() < 0.5 ? genCondition(r, 2) : undefined;
  return {
    name: `r${i}`,
    when,
    clear: explicit ?? { text: "", holds: (s) => !when.holds(s) },
    clearText: explicit?.text,
    forMs: pick(DURATIONS),
    clearForMs: pick(DURATIONS),
    cooldownMs: pick([0, 0, 2000, 20_000, 60_000]),
  };
}

function genStream(r: () => number, steps: number, t0: number): { t: number; sample: Sample }[] {
  const out: { t: number; sample: Sample }[] = [];
  const level: Record<string, number> = { a: 5, "b.util": 5, 'disk.used_pct{mount="/"}': 5 };
  let t = t0;
  let connected = true;
  for (let k = 0; k < steps; k++) {
    // Irregular gaps (as after a hiccup), mostly about a second.
    t += r() < 0.8 ? 1000 : Math.floor(r() * 5000) + 1;
    const values: Record<string, number> = {};
    for (const key of Object.keys(level)) {
      // Long stretches of the same regime, so that `for` and `clear_for` are reached as well as missed.
      if (r() < 0.15) level[key] = Math.floor(r() * 10);
      if (r() < 0.04) continue; // the series is missing from this sample
      values[key] = level[key]!;
    }
    if (r() < 0.03) connected = !connected;
    out.push({
      t,
      sample: {
        values,
        state: {
          connected,
          offline_s: 0,
          buffer_fill: Math.floor(r() * 10) / 10,
          tasks_running: 0,
          tasks_paused: 0,
        },
      },
    });
  }
  return out;
}

/**
 * What the engine must decide for one rule, read straight from the spec: fire when `when` has held at every
 * sample since a time at least `for` ago (and not before the last clear) and `cooldown` has passed since
 * the last fire; clear when the clear condition has held at every sample after the firing for `clear_for`.
 */
function expected(rule: GenRule, stream: { t: number; sample: Sample }[]): ["fire" | "clear", number][] {
  const out: ["fire" | "clear", number][] = [];
  let firing = false;
  let lastFire: number | undefined;
  let lastClear = Number.NEGATIVE_INFINITY;
  let whenRun: number | undefined; // first sample time of the current run of `when` holding
  let clearRun: number | undefined;
  const tryFire = (t: number) => {
    if (whenRun === undefined) return;
    const pendingSince = Math.max(whenRun, lastClear);
    if (t - pendingSince < rule.forMs) return;
    if (lastFire !== undefined && t - lastFire < rule.cooldownMs) return;
    out.push(["fire", t]);
    firing = true;
    lastFire = t;
    clearRun = undefined;
  };
  for (const { t, sample } of stream) {
    const w = rule.when.holds(sample);
    whenRun = w ? (whenRun ?? t) : undefined;
    if (!firing) {
      tryFire(t);
      continue;
    }
    clearRun = rule.clear.holds(sample) ? (clearRun ?? t) : undefined;
    if (clearRun !== undefined && t - clearRun >= rule.clearForMs) {
      out.push(["clear", t]);
      firing = false;
      lastClear = t;
      tryFire(t);
    }
  }
  return out;
}

describe("rule engine: properties over random streams", () => {
  test("never fires unless the condition held throughout `for`, never within the cooldown, and decides exactly as specified", () => {
    let fires = 0;
    let clears = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const rules = Array.from({ length: 1 + Math.floor(r() * 5) }, (_, i) => genRule(r, i));
      const t0 = 1_718_000_000_000;
      const stream = genStream(r, 400, t0);
      const set = compileRules(
        rules.map((g) => ({
          name: g.name,
          when: g.when.text,
          ...(g.clearText === undefined ? {} : { clear_when: g.clearText }),
          for: `${g.forMs}ms`,
          clear_for: `${g.clearForMs}ms`,
          cooldown: `${g.cooldownMs}ms`,
          actions: [{ alert: g.name }],
        })),
      );
      const engine = new RuleEngine(set, new FakeClock(t0));
      const decisions: Decision[] = [];
      for (const { t, sample } of stream) {
        const snapshot: Snapshot = { values: new Map(Object.entries(sample.values)), state: sample.state };
        decisions.push(...engine.evaluate(snapshot, t));
      }
      for (const rule of rules) {
        const mine = decisions.filter((d) => d.rule === rule.name);
        const context = { seed, rule: rule.name, when: rule.when.text, clear: rule.clearText };
        // Safety, checked on its own terms: each firing is preceded by `for` of unbroken truth...
        let previousFire: number | undefined;
        for (const d of mine.filter((x) => x.kind === "fire")) {
          const upTo = stream.filter((s) => s.t <= d.at);
          let k = upTo.length - 1;
          while (k > 0 && rule.when.holds(upTo[k - 1]!.sample)) k--;
          expect({ ...context, at: d.at, held: rule.when.holds(upTo.at(-1)!.sample) }).toEqual({
            ...context,
            at: d.at,
            held: true,
          });
          expect({ ...context, at: d.at, heldFor: d.at - upTo[k]!.t >= rule.forMs }).toEqual({
            ...context,
            at: d.at,
            heldFor: true,
          });
          // ...and at least `cooldown` after the previous firing.
          if (previousFire !== undefined) {
            expect({ ...context, at: d.at, cooled: d.at - previousFire >= rule.cooldownMs }).toEqual({
              ...context,
              at: d.at,
              cooled: true,
            });
          }
          previousFire = d.at;
        }
        // Fire and clear alternate, starting with a fire.
        mine.forEach((d, i) => {
          expect({ ...context, i, kind: d.kind }).toEqual({
            ...context,
            i,
            kind: i % 2 === 0 ? "fire" : "clear",
          });
        });
        // Liveness as well: exactly the decisions the spec calls for, at exactly those times.
        expect({ ...context, decisions: mine.map((d) => [d.kind, d.at]) }).toEqual({
          ...context,
          decisions: expected(rule, stream),
        });
        fires += mine.filter((d) => d.kind === "fire").length;
        clears += mine.filter((d) => d.kind === "clear").length;
      }
    }
    // The generator must exercise the engine, not just idle it.
    expect(fires).toBeGreaterThan(1000);
    expect(clears).toBeGreaterThan(1000);
  });
});
