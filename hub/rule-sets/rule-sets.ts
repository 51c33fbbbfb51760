// Rule sets the hub holds for its nodes: stored with revisions, sent to the nodes they target, kept for judging decisions.
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
import { forUpdate, type HubSql } from "../store/sql/index.ts";

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

/** The hub's rule sets: their revisions in the hub's store, and the `config` each targeted node is sent. */
export class RuleSets {
  readonly #sql: HubSql;
  readonly #send: (node: string, body: Body<"config">) => boolean;
  readonly #now: () => number;
  readonly #compiled = new Map<string, CompiledRuleSet | Error>();
  /** The newest config revision sent to each node: an older one read before it is not sent after it. */
  readonly #sentRev = new Map<string, number>();
  // The current sets at a config revision, read again only when the revision moved (on any replica).
  #current: { rev: number; sets: RuleSetRecord[] } | undefined;

  constructor(
    sql: HubSql,
    send: (node: string, body: Body<"config">) => boolean,
    now: () => number = Date.now,
  ) {
    this.#sql = sql;
    this.#send = send;
    this.#now = now;
  }

  /** The revision of the hub's rule-set config: rises with every change to any rule set. */
  async configRev(via: HubSql = this.#sql): Promise<number> {
    const row = await via.get<{ value: number }>("SELECT value FROM hub_counters WHERE name = 'config_rev'");
    return row?.value ?? 0;
  }

  /**
   * Stores a new revision of rule set `name` (validated by parseRuleSetPut) and sends the new config to
   * every connected node it targets now or targeted before. Returns the record and the nodes sent to.
   * Changes are serialized on the config revision's row, so two replicas never hand out one revision twice.
   */
  async put(
    name: string,
    body: { rules: unknown[]; target: RuleSetTarget },
    fleet: readonly NodeRecord[],
    connected: (id: string) => boolean,
  ): Promise<{ record: RuleSetRecord; created: boolean; delivered: string[] }> {
    const now = this.#now();
    const { before, record } = await this.#sql.tx(async (tx) => {
      await this.#lockConfigRev(tx);
      const before = await this.#row(tx, name, true);
      const rev = (before?.rev ?? 0) + 1;
      const target = JSON.stringify(body.target);
      const rules = JSON.stringify(body.rules);
      await tx.run(
        `INSERT INTO rule_sets (name, rev, target, rules, deleted, updated) VALUES (?, ?, ?, ?, 0, ?)
         ON CONFLICT(name) DO UPDATE SET rev = excluded.rev, target = excluded.target, rules = excluded.rules,
           deleted = 0, updated = excluded.updated`,
        [name, rev, target, rules, now],
      );
      await tx.run(
        "INSERT INTO rule_set_revisions (name, rev, target, rules, created) VALUES (?, ?, ?, ?, ?)",
        [name, rev, target, rules, now],
      );
      await this.#bumpConfigRev(tx);
      const record = { name, rev, target: body.target, rules: body.rules, updated: now };
      return { before, record };
    });
    const old = before && !before.deleted ? (JSON.parse(before.target) as RuleSetTarget) : undefined;
    const touched = fleet.filter((n) => targets(record.target, n) || (old !== undefined && targets(old, n)));
    return {
      record,
      created: !before || before.deleted === 1,
      delivered: await this.#deliver(touched, connected),
    };
  }

  /** Deletes rule set `name` (its revisions stay, for judging decisions made under them); its nodes are told. */
  async remove(
    name: string,
    fleet: readonly NodeRecord[],
    connected: (id: string) => boolean,
  ): Promise<{ rev: number; delivered: string[] }> {
    const row = await this.#sql.tx(async (tx) => {
      await this.#lockConfigRev(tx);
      const row = await this.#row(tx, name, true);
      // Refused after the commit, not by a rollback (docs/hub-replicas.md, "What steps 0-2 showed").
      if (!row || row.deleted) return undefined;
      await tx.run("UPDATE rule_sets SET deleted = 1, updated = ? WHERE name = ?", [this.#now(), name]);
      await this.#bumpConfigRev(tx);
      return row;
    });
    if (!row) throw new NotFoundError(`no rule set named ${name}`);
    const target = JSON.parse(row.target) as RuleSetTarget;
    return {
      rev: row.rev,
      delivered: await this.#deliver(
        fleet.filter((n) => targets(target, n)),
        connected,
      ),
    };
  }

  /** The current rule sets, by name, and the config revision they are at. */
  async current(): Promise<{ rev: number; sets: RuleSetRecord[] }> {
    const rev = await this.configRev();
    if (this.#current?.rev !== rev) {
      // Read in one transaction with the revision, so the sets are the ones that revision names.
      this.#current = await this.#sql.tx(async (tx) => ({
        rev: await this.configRev(tx),
        sets: (await tx.all<Row>("SELECT * FROM rule_sets WHERE deleted = 0 ORDER BY name")).map(recordOf),
      }));
    }
    return this.#current;
  }

  /** The current rule sets, by name. */
  async list(): Promise<RuleSetRecord[]> {
    return (await this.current()).sets;
  }

  /** One rule set now, or at revision `rev` (deleted sets included then). */
  async get(name: string, rev?: number, via: HubSql = this.#sql): Promise<RuleSetRecord | undefined> {
    if (rev === undefined) {
      const row = await this.#row(via, name);
      return row && !row.deleted ? recordOf(row) : undefined;
    }
    const row = await via.get<Omit<Row, "deleted">>(
      "SELECT name, rev, target, rules, created AS updated FROM rule_set_revisions WHERE name = ? AND rev = ?",
      [name, rev],
    );
    return row ? recordOf({ ...row, deleted: 0 }) : undefined;
  }

  /** The revisions of rule set `name` that the hub holds, oldest first. */
  async revisions(name: string): Promise<number[]> {
    const rows = await this.#sql.all<{ rev: number }>(
      "SELECT rev FROM rule_set_revisions WHERE name = ? ORDER BY rev",
      [name],
    );
    return rows.map((r) => r.rev);
  }

  /**
   * The compiled rules of one revision, for the verdict on a decision made under it (cached: a revision
   * never changes). `via`: the handle of the transaction the caller is in, if any.
   */
  async compiled(name: string, rev: number, via: HubSql = this.#sql): Promise<CompiledRuleSet | undefined> {
    const key = `${name}@${rev}`;
    let c = this.#compiled.get(key);
    if (c === undefined) {
      const rec = await this.get(name, rev, via);
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
  forNode(node: Pick<NodeRecord, "id" | "level" | "labels">, sets: readonly RuleSetRecord[]): RuleSetBody[] {
    return sets
      .filter((r) => targets(r.target, node))
      .map((r) => ({ name: r.name, rev: r.rev, rules: r.rules }));
  }

  /** A node's session began: it gets its rule sets (none, if every set it had was deleted meanwhile). */
  async onSession(node: NodeRecord): Promise<void> {
    const { rev, sets } = await this.current();
    // A hub that never held a rule set has nothing to say, and a node keeps what it holds.
    if (rev === 0) return;
    this.#sendConfig(node.id, this.#configFor(node, sets, rev));
  }

  /** Records what a node reports it runs (its `rules_applied` event), in the transaction `tx` that stores it. */
  async onApplied(tx: HubSql, node: string, fields: Record<string, unknown>, at: number): Promise<void> {
    const sets = Array.isArray(fields.rule_sets) ? fields.rule_sets : [];
    const clean = sets
      .filter((s): s is { name: string; rev: number } => {
        const x = s as Record<string, unknown> | null;
        return !!x && typeof x.name === "string" && Number.isSafeInteger(x.rev);
      })
      .map((s) => ({ name: s.name, rev: s.rev }));
    await tx.run(
      `INSERT INTO node_rule_sets (node, config_rev, rule_sets, at) VALUES (?, ?, ?, ?)
       ON CONFLICT(node) DO UPDATE SET config_rev = excluded.config_rev, rule_sets = excluded.rule_sets, at = excluded.at`,
      [node, safeInt(fields.config_rev), JSON.stringify(clean), at],
    );
  }

  /** What every node last reported it runs. */
  async applied(): Promise<AppliedRuleSets[]> {
    const rows = await this.#sql.all<Omit<AppliedRuleSets, "rule_sets"> & { rule_sets: string }>(
      "SELECT * FROM node_rule_sets ORDER BY node",
    );
    return rows.map((r) => ({ ...r, rule_sets: JSON.parse(r.rule_sets) }));
  }

  #configFor(
    node: Pick<NodeRecord, "id" | "level" | "labels">,
    sets: readonly RuleSetRecord[],
    rev: number,
  ): Body<"config"> {
    return { rev, config: { rule_sets: this.forNode(node, sets) } };
  }

  // A node applies whatever revision it is sent, so a config read before a change and sent after the
  // change's own would take the node back: only a revision at least as new as the last one sent goes.
  #sendConfig(node: string, body: Body<"config">): boolean {
    if ((this.#sentRev.get(node) ?? -1) > body.rev) return false;
    if (!this.#send(node, body)) return false;
    this.#sentRev.set(node, body.rev);
    return true;
  }

  async #deliver(nodes: readonly NodeRecord[], connected: (id: string) => boolean): Promise<string[]> {
    const { rev, sets } = await this.current();
    const out: string[] = [];
    for (const n of nodes)
      if (connected(n.id) && this.#sendConfig(n.id, this.#configFor(n, sets, rev))) out.push(n.id);
    return out;
  }

  // `lock`: inside a transaction that changes the row.
  async #row(via: HubSql, name: string, lock = false): Promise<Row | undefined> {
    return via.get<Row>(`SELECT * FROM rule_sets WHERE name = ?${lock ? forUpdate(via.dialect) : ""}`, [
      name,
    ]);
  }

  // Every change to any rule set takes this row first: changes on all replicas happen one at a time.
  async #lockConfigRev(tx: HubSql): Promise<void> {
    await tx.run(
      "INSERT INTO hub_counters (name, value) VALUES ('config_rev', 0) ON CONFLICT(name) DO NOTHING",
    );
    await tx.get(`SELECT value FROM hub_counters WHERE name = 'config_rev'${forUpdate(tx.dialect)}`);
  }

  async #bumpConfigRev(tx: HubSql): Promise<void> {
    await tx.run("UPDATE hub_counters SET value = value + 1 WHERE name = 'config_rev'");
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

// A count an agent reported, as a whole number the store's 64-bit columns take (0 when it is not one).
function safeInt(v: unknown): number {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : 0;
}
