// Rule sets a hub distributes, and how they combine with the node's own rules: by rule name, the hub's rule wins.
import * as v from "valibot";
import { ConfigError } from "../errors.ts";
import { type CompiledRule, type CompiledRuleSet, compileRules } from "./compile.ts";
import { parseRules } from "./schema.ts";

/** A rule set's name: what operators PUT under /api/v1/rule-sets/{name}. */
export const RULE_SET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** One distributed rule set at one revision, as the hub's `config` message carries it. */
export interface RuleSetBody {
  readonly name: string;
  readonly rev: number;
  readonly rules: readonly unknown[];
}

/** Where a running rule comes from: the node's own config (undefined) or a hub rule set at a revision. */
export interface RuleOrigin {
  readonly set: string;
  readonly rev: number;
}

const RuleSetsSchema = v.array(
  v.object({
    name: v.pipe(v.string(), v.regex(RULE_SET_NAME, "must be 1-64 letters, digits, '_', '.' or '-'")),
    rev: v.pipe(v.number(), v.integer(), v.minValue(1)),
    rules: v.array(v.unknown(), "must be a list of rules"),
  }),
  "must be a list of rule sets",
);

/** Checks the `rule_sets` of a hub `config` message; throws ConfigError naming the field. */
export function parseRuleSetBodies(input: unknown): RuleSetBody[] {
  const r = v.safeParse(RuleSetsSchema, input);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const path = issue.path?.map((p) => (typeof p.key === "number" ? `[${p.key}]` : `.${String(p.key)}`)) ?? [];
  throw new ConfigError(`rule_sets${path.join("")}`, issue.message);
}

/** The rules a node runs: its own and its hub's, combined, with where each one comes from. */
export interface MergedRules {
  readonly set: CompiledRuleSet;
  readonly origins: ReadonlyMap<string, RuleOrigin>;
}

/**
 * Combines the node's own rules (`local`, as its config gives them) with the hub's rule sets: by rule name,
 * a hub rule replaces the local rule of the same name (in its place); other hub rules follow, set by set in
 * the order given; a disabled hub rule switches the local one off. Between two hub sets, the later one wins a
 * name. Throws ConfigError naming set, rule and field.
 */
export function mergeRuleSets(local: unknown, hub: readonly RuleSetBody[]): MergedRules {
  const own = compileRules(local);
  const byName = new Map<string, CompiledRule>(own.rules.map((r) => [r.name, r]));
  const origins = new Map<string, RuleOrigin>();
  const warnings = [...own.warnings];
  for (const s of hub) {
    const field = `rule_sets.${s.name}@${s.rev}`;
    const compiled = compileRules(s.rules, field);
    warnings.push(...compiled.warnings);
    // A hub rule written with `enabled: false` switches off the node's rule of that name.
    for (const r of parseRules(s.rules, field)) {
      if (!r.enabled) {
        byName.delete(r.name);
        origins.delete(r.name);
      }
    }
    for (const r of compiled.rules) {
      byName.set(r.name, r);
      origins.set(r.name, { set: s.name, rev: s.rev });
    }
  }
  return { set: { rules: [...byName.values()], warnings }, origins };
}
