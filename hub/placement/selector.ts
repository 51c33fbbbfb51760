// Label selectors: `{k: v}`, `{k: [a, b]}`, or `"k in (a,b), k!=v, !k, k"`, parsed once and matched on ids.
import type { FleetIndex } from "./fleet-index.ts";
import type { LabelSelector } from "./types.ts";

export type SelectorOp = "in" | "notin" | "exists" | "absent";

export interface SelectorTerm {
  key: string;
  op: SelectorOp;
  values: string[];
  /** Canonical text, used in explanations: `site in (a,b)`, `tier=gold`, `!gpu`. */
  text: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._/:-]*$/;

function termText(key: string, op: SelectorOp, values: readonly string[]): string {
  switch (op) {
    case "in":
      return values.length === 1 ? `${key}=${values[0]}` : `${key} in (${values.join(",")})`;
    case "notin":
      return values.length === 1 ? `${key}!=${values[0]}` : `${key} notin (${values.join(",")})`;
    case "exists":
      return key;
    case "absent":
      return `!${key}`;
    default: {
      const never: never = op;
      return never;
    }
  }
}

function term(key: string, op: SelectorOp, values: string[]): SelectorTerm {
  if (!NAME.test(key)) throw new Error(`bad label key "${key}"`);
  for (const v of values) if (!NAME.test(v)) throw new Error(`bad label value "${v}" for ${key}`);
  if ((op === "in" || op === "notin") && values.length === 0) throw new Error(`${key}: empty value list`);
  return { key, op, values, text: termText(key, op, values) };
}

/** Splits on commas that are not inside parentheses. */
function splitTerms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
    if (depth < 0 || depth > 1) throw new Error("unbalanced parentheses");
  }
  if (depth !== 0) throw new Error("unbalanced parentheses");
  out.push(text.slice(start));
  return out.map((s) => s.trim());
}

function parseTerm(raw: string): SelectorTerm {
  if (raw === "") throw new Error("empty term");
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(raw);
  if (set) {
    const values = set[3]!.split(",").map((s) => s.trim());
    return term(set[1]!, set[2] as "in" | "notin", values);
  }
  const cmp = /^([^=!\s]+)\s*(==|=|!=)\s*(\S+)$/.exec(raw);
  if (cmp) return term(cmp[1]!, cmp[2] === "!=" ? "notin" : "in", [cmp[3]!]);
  if (raw.startsWith("!")) return term(raw.slice(1).trim(), "absent", []);
  return term(raw, "exists", []);
}

/** Parses a selector into terms that must all hold; throws an Error whose message says what is wrong. */
export function parseSelector(selector: LabelSelector): SelectorTerm[] {
  if (typeof selector === "string") {
    if (selector.trim() === "") return [];
    return splitTerms(selector).map(parseTerm);
  }
  return Object.entries(selector).map(([key, value]) =>
    term(key, "in", typeof value === "string" ? [value] : [...value]),
  );
}

/** A term resolved against a fleet's label column: a flag per interned value. */
export interface CompiledTerm {
  term: SelectorTerm;
  ids: Int32Array;
  /** 1 for value ids the term accepts (for `in`) or rejects (for `notin`). */
  flags: Uint8Array;
  op: SelectorOp;
}

export function compileTerms(terms: readonly SelectorTerm[], fleet: FleetIndex): CompiledTerm[] {
  return terms.map((t) => {
    const column = fleet.labelColumn(t.key);
    const flags = new Uint8Array(column.values.length);
    for (const v of t.values) {
      const id = column.lookup.get(v);
      if (id !== undefined) flags[id] = 1;
    }
    return { term: t, ids: column.ids, flags, op: t.op };
  });
}

/** Whether node `i` satisfies the term. */
export function matchTerm(c: CompiledTerm, i: number): boolean {
  const id = c.ids[i]!;
  switch (c.op) {
    case "in":
      return id >= 0 && c.flags[id] === 1;
    case "notin":
      return id < 0 || c.flags[id] === 0;
    case "exists":
      return id >= 0;
    case "absent":
      return id < 0;
    default: {
      const never: never = c.op;
      return never;
    }
  }
}
