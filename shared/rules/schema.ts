// The rule list as it appears in the agent's YAML (valibot), and its validation into rule specs with errors naming rule and field.
import * as v from "valibot";
import { ConfigError } from "../errors.ts";
import { formatDuration, parseDuration } from "../config/index.ts";
import { describeRetired, type Retired } from "../expr/index.ts";
import { type Condition, ConditionError, parseCondition } from "./condition.ts";
import { type Action, SEVERITIES, type Severity } from "./types.ts";

const WEEK_MS = 7 * 86_400_000;
const RULE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A duration written with its unit ("30s", "5m", "1h30m"), or 0; bare numbers are refused as ambiguous. */
function duration(min: number, max: number) {
  return v.pipe(
    v.unknown(),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const raw = dataset.value;
      const ms =
        raw === 0 ? 0 : typeof raw === "string" && !/^\s*\d+\s*$/.test(raw) ? parseDuration(raw) : undefined;
      if (ms === undefined) {
        addIssue({
          message: `must be a duration with a unit such as 30s, 5m or 1h (got ${JSON.stringify(raw)})`,
        });
        return NEVER;
      }
      if (ms < min || ms > max) {
        const range =
          min === 0
            ? `at most ${formatDuration(max)}`
            : `from ${formatDuration(min)} to ${formatDuration(max)}`;
        addIssue({ message: `must be ${range} (got ${JSON.stringify(raw)})` });
        return NEVER;
      }
      return ms;
    }),
  );
}

/** A condition as YAML gives it (text or structured); its language is checked by `parseCondition`. */
const ConditionInput = v.union(
  [v.string(), v.record(v.string(), v.unknown())],
  'must be an expression such as "cpu.util > 80" or a map with all, any, not or series',
);

/** One action: a map with exactly one key, the action's name; its value is checked by ACTION_VALUES. */
const ActionInput = v.pipe(
  v.record(v.string(), v.unknown(), 'must be a map such as {alert: "text"}'),
  v.check((a) => Object.keys(a).length === 1, "must have exactly one key, the action's name"),
);

/** One rule as written in YAML. */
export const RuleInput = v.strictObject({
  name: v.pipe(
    v.string("must be a string"),
    v.regex(RULE_NAME, "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"),
  ),
  /** Fires when this holds for `for`. */
  when: ConditionInput,
  for: v.optional(duration(0, WEEK_MS), 0),
  /** Hysteresis: clears when this holds for `clear_for`; by default, when `when` does not hold. */
  clear_when: v.optional(ConditionInput),
  clear_for: v.optional(duration(0, WEEK_MS), 0),
  /** Minimum time between two firings. */
  cooldown: v.optional(duration(0, WEEK_MS), 0),
  severity: v.optional(v.picklist(SEVERITIES, 'must be "info", "warning" or "critical"'), "warning"),
  actions: v.pipe(
    v.array(ActionInput, "must be a list of actions"),
    v.minLength(1, "must list at least one action"),
  ),
  clear_actions: v.optional(v.array(ActionInput, "must be a list of actions"), []),
  /** false keeps a rule in the file without running it. */
  enabled: v.optional(v.boolean("must be true or false"), true),
});
export type RuleInput = v.InferInput<typeof RuleInput>;

const RULE_FIELDS = Object.keys(RuleInput.entries);
const priorityBelow = v.pipe(
  v.number("must be a priority from 1 to 11 (tasks below it are affected)"),
  v.integer("must be a priority from 1 to 11 (tasks below it are affected)"),
  v.minValue(1, "must be a priority from 1 to 11 (tasks below it are affected)"),
  v.maxValue(11, "must be a priority from 1 to 11 (tasks below it are affected)"),
);
const yes = v.literal(true, "must be true");

/** The value schema of each action name; the output is the normalised action (severity filled in later). */
const ACTION_VALUES = {
  alert: v.pipe(v.string("must be the alert's text"), v.minLength(1, "must be the alert's text")),
  clear_alert: v.union([yes, v.pipe(v.string(), v.regex(RULE_NAME))], "must be true or the name of a rule"),
  pause_tasks_below: priorityBelow,
  resume_tasks: yes,
  stop_tasks_below: priorityBelow,
  evict_cache: v.union(
    [
      v.strictObject({
        fraction: v.pipe(
          v.number("must be a number above 0 and at most 1"),
          v.gtValue(0, "must be a number above 0 and at most 1"),
          v.maxValue(1, "must be a number above 0 and at most 1"),
        ),
      }),
      v.strictObject({
        prefix: v.pipe(v.string("must be a key prefix"), v.minLength(1, "must not be empty")),
      }),
    ],
    'must be {fraction: 0..1} or {prefix: "key prefix"}',
  ),
  downsample_buffer: yes,
  prune_buffer: v.strictObject(
    { older_than: duration(60_000, 365 * 86_400_000) },
    'must be {older_than: "12h"}',
  ),
  set_sample_interval: duration(100, 3_600_000),
  request_migration: v.strictObject(
    { reason: v.pipe(v.string("must be text"), v.minLength(1, "must not be empty")) },
    'must be {reason: "why"}',
  ),
} as const;
type ActionName = keyof typeof ACTION_VALUES;

/** A validated rule: durations in ms, conditions parsed, actions normalised. */
export interface RuleSpec {
  readonly name: string;
  readonly when: Condition;
  /** The clear condition; undefined means "when `when` does not hold". */
  readonly clearWhen: Condition | undefined;
  readonly forMs: number;
  readonly clearForMs: number;
  readonly cooldownMs: number;
  readonly severity: Severity;
  readonly actions: readonly Action[];
  readonly clearActions: readonly Action[];
  readonly enabled: boolean;
  /** Retired spellings in its conditions: `rules[0] (cpu-hot).when: "&&" at column 15 is a retired spelling; write "and"`. */
  readonly warnings: readonly string[];
}

/** A problem inside one rule: `path` is relative to the rule (".actions[1].pause_tasks_below"). */
class RuleIssue extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(message);
    this.path = path;
  }
}

function pathText(keys: readonly unknown[]): string {
  return keys.map((k) => (typeof k === "number" ? `[${k}]` : `.${String(k)}`)).join("");
}

function issueMessage(
  issue: v.BaseIssue<unknown>,
  field: string | undefined,
  known: readonly string[],
): string {
  if (issue.type === "strict_object" && issue.received === "undefined") return "is required";
  if (issue.type === "strict_object" && issue.expected === "never") {
    return `unknown field ${JSON.stringify(field)} (known: ${known.join(", ")})`;
  }
  return issue.message;
}

function actionOf(
  name: ActionName,
  value: unknown,
  rule: string,
  severity: Severity,
  names: ReadonlySet<string>,
): Action {
  const r = v.safeParse(ACTION_VALUES[name], value);
  if (!r.success) {
    const issue = r.issues[0];
    const keys = issue.path?.map((p) => p.key) ?? [];
    const last = keys.at(-1);
    const known = Object.keys((ACTION_VALUES[name] as { entries?: object }).entries ?? {});
    throw new RuleIssue(
      `.${name}${pathText(keys)}`,
      keys.length > 0
        ? issueMessage(issue, typeof last === "string" ? last : undefined, known)
        : issue.message,
    );
  }
  const out = r.output;
  switch (name) {
    case "alert":
      return { type: "alert", message: out as string, severity };
    case "clear_alert": {
      const target = out === true ? rule : (out as string);
      if (!names.has(target)) throw new RuleIssue(".clear_alert", `no rule named "${target}"`);
      return { type: "clear_alert", rule: target };
    }
    case "pause_tasks_below":
      return { type: "pause_tasks", below: out as number };
    case "resume_tasks":
      return { type: "resume_tasks" };
    case "stop_tasks_below":
      return { type: "stop_tasks", below: out as number };
    case "evict_cache": {
      const e = out as { fraction: number } | { prefix: string };
      return "fraction" in e
        ? { type: "evict_cache", fraction: e.fraction }
        : { type: "evict_cache", prefix: e.prefix };
    }
    case "downsample_buffer":
      return { type: "downsample_buffer" };
    case "prune_buffer":
      return { type: "prune_buffer", older_than_ms: (out as { older_than: number }).older_than };
    case "set_sample_interval":
      return { type: "set_sample_interval", interval_ms: out as number };
    case "request_migration":
      return { type: "request_migration", reason: (out as { reason: string }).reason };
    default:
      return name satisfies never;
  }
}

function actionsOf(
  list: readonly Record<string, unknown>[],
  field: "actions" | "clear_actions",
  rule: string,
  severity: Severity,
  names: ReadonlySet<string>,
): Action[] {
  return list.map((a, i) => {
    const [name] = Object.keys(a) as [string];
    if (!Object.hasOwn(ACTION_VALUES, name)) {
      throw new RuleIssue(
        `.${field}[${i}]`,
        `unknown action "${name}" (known: ${Object.keys(ACTION_VALUES).join(", ")})`,
      );
    }
    try {
      return actionOf(name as ActionName, a[name], rule, severity, names);
    } catch (err) {
      if (err instanceof RuleIssue) throw new RuleIssue(`.${field}[${i}]${err.path}`, err.message);
      throw err;
    }
  });
}

function conditionOf(input: unknown, field: "when" | "clear_when", retired: Retired[]): Condition {
  try {
    return parseCondition(input, "", retired);
  } catch (err) {
    if (err instanceof ConditionError) throw new RuleIssue(`.${field}${err.path}`, err.message);
    throw err;
  }
}

function specOf(input: v.InferOutput<typeof RuleInput>, names: ReadonlySet<string>, label: string): RuleSpec {
  const { name, severity } = input;
  const actions = actionsOf(input.actions, "actions", name, severity, names);
  const clearActions = actionsOf(input.clear_actions, "clear_actions", name, severity, names);
  // A rule that raises an alert takes it down when it clears, unless it says how itself.
  const raises = actions.some((a) => a.type === "alert");
  const lowers = clearActions.some((a) => a.type === "clear_alert" && a.rule === name);
  if (raises && !lowers) clearActions.unshift({ type: "clear_alert", rule: name });
  const retiredWhen: Retired[] = [];
  const retiredClear: Retired[] = [];
  const when = conditionOf(input.when, "when", retiredWhen);
  const clearWhen =
    input.clear_when === undefined ? undefined : conditionOf(input.clear_when, "clear_when", retiredClear);
  const warnings = [
    ...retiredWhen.map((r) => `${label}.when: ${describeRetired(r)}`),
    ...retiredClear.map((r) => `${label}.clear_when: ${describeRetired(r)}`),
  ];
  return {
    name,
    when,
    clearWhen,
    forMs: input.for,
    clearForMs: input.clear_for,
    cooldownMs: input.cooldown,
    severity,
    actions,
    clearActions,
    enabled: input.enabled,
    warnings,
  };
}

/** `rules[2] (cpu-hot)`: how errors name a rule. */
function ruleLabel(field: string, index: number, raw: unknown): string {
  const name = (raw as { name?: unknown } | null)?.name;
  return typeof name === "string" && name !== "" ? `${field}[${index}] (${name})` : `${field}[${index}]`;
}

/**
 * Validates a rule list as YAML gives it; throws ConfigError whose field names the rule and the field,
 * e.g. `rules[2] (cpu-hot).when: unknown operator "=>" at column 10`.
 */
export function parseRules(input: unknown, field = "rules"): RuleSpec[] {
  if (!Array.isArray(input)) throw new ConfigError(field, "must be a list of rules");
  // First the shape of every rule and their names, so that clear_alert may name any rule in the list.
  const seen = new Map<string, number>();
  const shaped = input.map((raw, i) => {
    const label = ruleLabel(field, i, raw);
    const r = v.safeParse(RuleInput, raw);
    if (!r.success) {
      const issue = r.issues[0];
      const keys = issue.path?.map((p) => p.key) ?? [];
      const first = typeof keys[0] === "string" ? keys[0] : undefined;
      const message =
        keys.length === 0 && issue.type === "strict_object"
          ? "must be a map with name, when and actions"
          : undefined;
      throw new ConfigError(`${label}${pathText(keys)}`, message ?? issueMessage(issue, first, RULE_FIELDS));
    }
    const dup = seen.get(r.output.name);
    if (dup !== undefined)
      throw new ConfigError(`${label}.name`, `duplicate: ${field}[${dup}] has the same name`);
    seen.set(r.output.name, i);
    return { label, rule: r.output };
  });
  const names = new Set(seen.keys());
  return shaped.map(({ label, rule }) => {
    try {
      return specOf(rule, names, label);
    } catch (err) {
      if (err instanceof RuleIssue) throw new ConfigError(`${label}${err.path}`, err.message, { cause: err });
      throw err;
    }
  });
}
