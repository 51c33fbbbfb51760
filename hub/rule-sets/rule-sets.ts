// Rule sets the hub holds for its nodes: stored with revisions, sent to the nodes they target, kept for judging decisions.
import type { Database } from "bun:sqlite";
import * as v from "valibot";
import { ConfigError, NotFoundError, RequestError } from "../../shared/errors.ts";
import type { Body } from "../../shared/protocol/index.ts";
import {
  type CompiledRuleSet,
  compileRules,
  RULE_SET_NAME,
  type RuleSetBody,
} from "../../shared/rules/index.ts";
import { CacheTarget, targets } from "../cache/index.ts";
import type { NodeRecord } from "../registry/index.ts";

/** Which nodes a rule set is for: node ids, a level range `[min, max]` and labels, all that are given must match. */
export type RuleSetTarget = v.InferOutput<typeof CacheTarget>;

/** The body of `PUT /api/v1/rule-sets/{name}` (each rule is then compiled by the rule engine). */
export const RuleSetPut = v.strictObject({
  rules: v.array(v.unknown(), "must be a list of rules"),
  target: v.optional(CacheTarget, {}),
});

/** A rule set as the API shows it. */
export interface RuleSetRecord {
  name: string;
  rev: number;
  target: RuleSetTarget;
  rules: unknown[];
  updated: number;
}

/** What a node reported it runs (its `rules_applied` event). */
export interface AppliedRuleSets {
  node: string;
  config_rev: number;
  rule_sets: { name: string; rev: number }[];
  at: number;
}

interface Row {
  name: string;
  rev: number;
  target: string;
  rules: string;
  deleted: number;
  updated: number;
}

/** How many compiled revisions the verdict check keeps at hand. */
const COMPILED_CACHE = 256;

function fieldOf(issue: v.BaseIssue<unknown>): string {
  return (
    issue.path?.map((p) => (typeof p.key === "number" ? `[${p.key}]` : `.${String(p.key)}`)).join("") ?? ""
  );
}

/**
 * Checks a PUT body `{rules: [...], target: {...}}`; throws RequestError naming the field
 * (`target.levels`, `rules[0] (cpu-hot).when`). Returns the body and the retired spellings its rules use.
 */
export function parseRuleSetPut(input: unknown): {
  rules: unknown[];
  target: RuleSetTarget;
  warnings: readonly string[];
} {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new RequestError("must be a JSON object with rules and target", "body");
  }
  const r = v.safeParse(RuleSetPut, input);
  if (!r.success) {
    const issue = r.issues[0];
    const path = fieldOf(issue).replace(/^\./, "");
    if (issue.type === "strict_object" && issue.expected === "never") {
      throw new RequestError(`unknown field "${path}" (known: rules, target)`, path);
    }
    if (!path) throw new RequestError("must be a JSON object with rules and target", "body");
    const message =
      issue.type === "strict_object" && issue.received === "undefined" ? "is required" : issue.message;
    throw new RequestError(`${path}: ${message}`, path);
  }
  try {
    const compiled = compileRules(r.output.rules, "rules");
    return { ...r.output, warnings: compiled.warnings };
  } catch (err) {
    if (err instanceof ConfigError) throw new RequestError(err.message, err.field);
    throw err;
  }
}

/** Checks a rule set's name as it appears in the URL. */
export function checkRuleSetName(name: string): void {
  if (!RULE_SET_NAME.test(name)) {
    throw new RequestError(
      `rule set name "${name}" must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit`,
      "name",
    );
  }
}

/** The hub's rule sets: their revisions in SQLite, and the `config` each targeted node is sent. */
export class RuleSets {
  readonly #db: Database;
  readonly #send: (node: string, body: Body<"config">) => boolean;
  readonly #now: () => number;
  readonly #compiled = new Map<string, CompiledRuleSet | Error>();
  // The current sets, read once per change rather than at every node's session.
  #current: RuleSetRecord[] | undefined;

  constructor(
    db: Database,
    send: (node: string, body: Body<"config">) => boolean,
    now: () => number = Date.now,
  ) {
    this.#db = db;
    this.#send = send;
    this.#now = now;
  }

  /** The revision of the hub's rule-set config: rises with every change to any rule set. */
  configRev(): number {
    const row = this.#db.query("SELECT value FROM hub_counters WHERE name = 'config_rev'").get() as {
      value: number;
    } | null;
    return row?.value ?? 0;
  }

  /**
   * Stores a new revision of rule set `name` (validated by parseRuleSetPut) and sends the new config to
   * every connected node it targets now or targeted before. Returns the record and the nodes sent to.
   */
  put(
    name: string,
    body: { rules: unknown[]; target: RuleSetTarget },
    fleet: readonly NodeRecord[],
    connected: (id: string) => boolean,
  ): { record: RuleSetRecord; created: boolean; delivered: string[] } {
    const now = this.#now();
    const { before, record } = this.#db.transaction(() => {
      const before = this.#row(name);
      const rev = (before?.rev ?? 0) + 1;
      const target = JSON.stringify(body.target);
      const rules = JSON.stringify(body.rules);
      this.#db
        .query(
          `INSERT INTO rule_sets (name, rev, target, rules, deleted, updated) VALUES (?, ?, ?, ?, 0, ?)
           ON CONFLICT(name) DO UPDATE SET rev = excluded.rev, target = excluded.target, rules = excluded.rules,
             deleted = 0, updated = excluded.updated`,
        )
        .run(name, rev, target, rules, now);
      this.#db
        .query("INSERT INTO rule_set_revisions (name, rev, target, rules, created) VALUES (?, ?, ?, ?, ?)")
        .run(name, rev, target, rules, now);
      this.#bumpConfigRev();
      this.#current = undefined;
      const record = { name, rev, target: body.target, rules: body.rules, updated: now };
      return { before, record };
    })();
    const old = before && !before.deleted ? (JSON.parse(before.target) as RuleSetTarget) : undefined;
    const touched = fleet.filter((n) => targets(record.target, n) || (old !== undefined && targets(old, n)));
    return { record, created: !before || before.deleted === 1, delivered: this.#deliver(touched, connected) };
  }

  /** Deletes rule set `name` (its revisions stay, for judging decisions made under them); its nodes are told. */
  remove(
    name: string,
    fleet: readonly NodeRecord[],
    connected: (id: string) => boolean,
  ): { rev: number; delivered: string[] } {
    const row = this.#row(name);
    if (!row || row.deleted) throw new NotFoundError(`no rule set named ${name}`);
    this.#db.transaction(() => {
      this.#db.query("UPDATE rule_sets SET deleted = 1, updated = ? WHERE name = ?").run(this.#now(), name);
      this.#bumpConfigRev();
      this.#current = undefined;
    })();
    const target = JSON.parse(row.target) as RuleSetTarget;
    return {
      rev: row.rev,
      delivered: this.#deliver(
        fleet.filter((n) => targets(target, n)),
        connected,
      ),
    };
  }

  /** The current rule sets, by name. */
  list(): RuleSetRecord[] {
    this.#current ??= (
      this.#db.query("SELECT * FROM rule_sets WHERE deleted = 0 ORDER BY name").all() as Row[]
    ).map(recordOf);
    return this.#current;
  }

  /** One rule set now, or at revision `rev` (deleted sets included then). */
  get(name: string, rev?: number): RuleSetRecord | undefined {
    if (rev === undefined) {
      const row = this.#row(name);
      return row && !row.deleted ? recordOf(row) : undefined;
    }
    const row = this.#db
      .query(
        "SELECT name, rev, target, rules, created AS updated FROM rule_set_revisions WHERE name = ? AND rev = ?",
      )
      .get(name, rev) as Omit<Row, "deleted"> | null;
    return row ? recordOf({ ...row, deleted: 0 }) : undefined;
  }

  /** The revisions of rule set `name` that the hub holds, oldest first. */
  revisions(name: string): number[] {
    return (
      this.#db.query("SELECT rev FROM rule_set_revisions WHERE name = ? ORDER BY rev").all(name) as {
        rev: number;
      }[]
    ).map((r) => r.rev);
  }

  /** The compiled rules of one revision, for the verdict on a decision made under it (cached). */
  compiled(name: string, rev: number): CompiledRuleSet | undefined {
    const key = `${name}@${rev}`;
    let c = this.#compiled.get(key);
    if (c === undefined) {
      const rec = this.get(name, rev);
      if (!rec) return undefined;
      try {
        c = compileRules(rec.rules, `rule_sets.${key}`);
      } catch (err) {
        c = err as Error;
      }
      if (this.#compiled.size >= COMPILED_CACHE) this.#compiled.delete(this.#compiled.keys().next().value!);
      this.#compiled.set(key, c);
    }
    return c instanceof Error ? undefined : c;
  }

  /** The rule sets that target `node`, by name: what its `config` carries. */
  forNode(node: Pick<NodeRecord, "id" | "level" | "labels">, sets = this.list()): RuleSetBody[] {
    return sets
      .filter((r) => targets(r.target, node))
      .map((r) => ({ name: r.name, rev: r.rev, rules: r.rules }));
  }

  /** A node's session began: it gets its rule sets (none, if every set it had was deleted meanwhile). */
  onSession(node: NodeRecord): void {
    // A hub that never held a rule set has nothing to say, and a node keeps what it holds.
    if (this.configRev() === 0) return;
    this.#send(node.id, this.#configFor(node));
  }

  /** Records what a node reports it runs (its `rules_applied` event). */
  onApplied(node: string, fields: Record<string, unknown>, at: number): void {
    const sets = Array.isArray(fields.rule_sets) ? fields.rule_sets : [];
    const clean = sets
      .filter((s): s is { name: string; rev: number } => {
        const x = s as Record<string, unknown> | null;
        return !!x && typeof x.name === "string" && typeof x.rev === "number";
      })
      .map((s) => ({ name: s.name, rev: s.rev }));
    this.#db
      .query(
        `INSERT INTO node_rule_sets (node, config_rev, rule_sets, at) VALUES (?, ?, ?, ?)
         ON CONFLICT(node) DO UPDATE SET config_rev = excluded.config_rev, rule_sets = excluded.rule_sets, at = excluded.at`,
      )
      .run(node, Number(fields.config_rev) || 0, JSON.stringify(clean), at);
  }

  /** What every node last reported it runs. */
  applied(): AppliedRuleSets[] {
    const rows = this.#db.query("SELECT * FROM node_rule_sets ORDER BY node").all() as (Omit<
      AppliedRuleSets,
      "rule_sets"
    > & { rule_sets: string })[];
    return rows.map((r) => ({ ...r, rule_sets: JSON.parse(r.rule_sets) }));
  }

  #configFor(
    node: Pick<NodeRecord, "id" | "level" | "labels">,
    sets = this.list(),
    rev = this.configRev(),
  ): Body<"config"> {
    return { rev, config: { rule_sets: this.forNode(node, sets) } };
  }

  #deliver(nodes: readonly NodeRecord[], connected: (id: string) => boolean): string[] {
    const sets = this.list();
    const rev = this.configRev();
    const out: string[] = [];
    for (const n of nodes)
      if (connected(n.id) && this.#send(n.id, this.#configFor(n, sets, rev))) out.push(n.id);
    return out;
  }

  #row(name: string): Row | undefined {
    return (this.#db.query("SELECT * FROM rule_sets WHERE name = ?").get(name) as Row | null) ?? undefined;
  }

  #bumpConfigRev(): void {
    this.#db
      .query(
        `INSERT INTO hub_counters (name, value) VALUES ('config_rev', 1)
         ON CONFLICT(name) DO UPDATE SET value = value + 1`,
      )
      .run();
  }
}

function recordOf(r: Row): RuleSetRecord {
  return {
    name: r.name,
    rev: r.rev,
    target: JSON.parse(r.target) as RuleSetTarget,
    rules: JSON.parse(r.rules) as unknown[],
    updated: r.updated,
  };
}
