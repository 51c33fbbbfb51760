// Validates the `pipelines:` section of the agent config into typed pipeline specs; errors name the pipeline and field.
import * as v from "valibot";
import { ConfigError } from "../../shared/errors.ts";
import { formatDuration, parseDuration } from "../../shared/config/index.ts";
import { describeRetired, type Retired } from "../../shared/expr/index.ts";
import { compileExpr, type Expr, ExprError } from "./expr.ts";
import { checkNoFeedLoops } from "./feed-loops.ts";
import {
  type NameTemplate,
  parseSource,
  parseTemplate,
  type SourcePattern,
  SERIES_PLACEHOLDER,
} from "./series-name.ts";
import type { Severity } from "./types.ts";
import { WINDOW_FNS, type WindowFn } from "./window.ts";

export const MAX_PIPELINES = 256;
export const MAX_STEPS = 32;
/** Panes per sliding window (size / every). */
export const MAX_PANES = 1000;
export const MAX_WINDOW_MS = 86_400_000;
export const DEFAULT_MAX_SERIES = 1000;

export type Route = "hub" | "alert" | "drop";

export type StepSpec =
  | { kind: "filter"; text: string; expr: Expr }
  | { kind: "derive"; series: NameTemplate; text: string; expr: Expr }
  | {
      kind: "window";
      window: "tumbling" | "sliding";
      size: number;
      every: number;
      fns: WindowFn[];
      emitAs: NameTemplate;
    }
  | {
      kind: "anomaly";
      alpha: number;
      spreadAlpha: number;
      z: number;
      minPoints: number;
      direction: "both" | "up" | "down";
      severity: Severity;
      message: string | undefined;
      cooldown: number;
    }
  | {
      kind: "threshold";
      above: number | undefined;
      below: number | undefined;
      severity: Severity;
      message: string | undefined;
      cooldown: number;
    };

/** One validated pipeline; `fingerprint` is equal for two specs exactly when they behave the same. */
export interface PipelineSpec {
  name: string;
  source: SourcePattern;
  steps: StepSpec[];
  route: { hub: boolean; alert: boolean };
  severity: Severity;
  message: string | undefined;
  maxSeries: number;
  fingerprint: string;
  /** Retired spellings in its expressions, one line each naming the pipeline and field (see shared/expr). */
  warnings: string[];
}

const severity = v.optional(
  v.picklist(["info", "warning", "critical"], 'must be "info", "warning" or "critical"'),
  "warning",
);

const duration = (min: number, max: number) =>
  v.pipe(
    v.union([v.string(), v.number()], 'must be a duration such as "500ms", "10s" or "1m"'),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const raw = dataset.value;
      const ms = typeof raw === "number" ? raw : parseDuration(raw);
      if (ms === undefined || !Number.isSafeInteger(ms)) {
        addIssue({
          message: `must be a duration such as "500ms", "10s" or "1m", got ${JSON.stringify(raw)}`,
        });
        return NEVER;
      }
      if (ms < min || ms > max) {
        addIssue({ message: `must be between ${formatDuration(min)} and ${formatDuration(max)}` });
        return NEVER;
      }
      return ms;
    }),
  );

const finite = v.pipe(v.number("must be a number"), v.finite("must be a finite number"));
const message = v.optional(v.pipe(v.string(), v.maxLength(500)));

const PipelineSchema = v.strictObject({
  name: v.pipe(
    v.string("must be a string"),
    v.regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/i, "must be 1-64 letters, digits, '_', '.' or '-'"),
  ),
  source: v.pipe(v.string("must be a string"), v.minLength(1, "must not be empty")),
  steps: v.optional(v.array(v.unknown(), "must be a list of steps"), []),
  route: v.optional(
    v.union(
      [
        v.picklist(["hub", "alert", "drop"]),
        v.array(v.picklist(["hub", "alert", "drop"], 'must be "hub", "alert" or "drop"')),
      ],
      'must be "hub", "alert", "drop" or a list of them',
    ),
    ["hub"],
  ),
  /** Severity and message of the alerts `route: [alert]` raises. */
  severity,
  message,
  max_series: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100_000)),
    DEFAULT_MAX_SERIES,
  ),
});

const STEP_SCHEMAS = {
  filter: v.pipe(v.string("must be an expression string"), v.minLength(1)),
  derive: v.strictObject({
    series: v.string("must be a series name"),
    expr: v.string("must be an expression string"),
  }),
  window: v.strictObject({
    kind: v.picklist(["tumbling", "sliding"], 'must be "tumbling" or "sliding"'),
    size: duration(1, MAX_WINDOW_MS),
    every: v.optional(duration(1, MAX_WINDOW_MS)),
    fn: v.union(
      [v.picklist(WINDOW_FNS), v.pipe(v.array(v.picklist(WINDOW_FNS)), v.minLength(1))],
      `must be one of ${WINDOW_FNS.join(", ")}, or a non-empty list of them`,
    ),
    emit_as: v.optional(v.string("must be a series name")),
  }),
  anomaly: v.strictObject({
    method: v.optional(v.picklist(["ewma"], 'must be "ewma"'), "ewma"),
    alpha: v.optional(
      v.pipe(finite, v.gtValue(0, "must be above 0"), v.maxValue(1, "must be at most 1")),
      0.1,
    ),
    /** Smoothing of the spread (default alpha / 5): slower than the level, for fewer false alarms. */
    spread_alpha: v.optional(
      v.pipe(finite, v.gtValue(0, "must be above 0"), v.maxValue(1, "must be at most 1")),
    ),
    z: v.optional(v.pipe(finite, v.gtValue(0, "must be above 0")), 4),
    min_points: v.optional(v.pipe(v.number(), v.integer(), v.minValue(2), v.maxValue(1_000_000)), 20),
    direction: v.optional(v.picklist(["both", "up", "down"], 'must be "both", "up" or "down"'), "both"),
    severity,
    message,
    cooldown: v.optional(duration(0, MAX_WINDOW_MS), 0),
  }),
  threshold: v.strictObject({
    above: v.optional(finite),
    below: v.optional(finite),
    severity,
    message,
    cooldown: v.optional(duration(0, MAX_WINDOW_MS), 0),
  }),
} as const;

type StepKind = keyof typeof STEP_SCHEMAS;
const STEP_KINDS = Object.keys(STEP_SCHEMAS) as StepKind[];

/** Where an error is: the field path, and the pipeline it belongs to. */
interface At {
  field: string;
  pipeline: string | undefined;
}

function fail(at: At, msg: string): never {
  const where = at.pipeline === undefined ? "" : `pipeline "${at.pipeline}": `;
  throw new ConfigError(at.field, `${where}${msg}`);
}

function parseWith<S extends v.GenericSchema>(schema: S, input: unknown, at: At): v.InferOutput<S> {
  const r = v.safeParse(schema, input);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const path = issue.path?.map((p) => String(p.key)).join(".");
  return fail({ ...at, field: path ? `${at.field}.${path}` : at.field }, issue.message);
}

function expr(text: string, at: At, as: "filter" | "derive", warnings: string[]): Expr {
  const retired: Retired[] = [];
  try {
    const compiled = compileExpr(text, as, retired);
    for (const r of retired) warnings.push(`${at.field}: pipeline "${at.pipeline}": ${describeRetired(r)}`);
    return compiled;
  } catch (err) {
    if (err instanceof ExprError) fail(at, err.message);
    throw err;
  }
}

function template(text: string, at: At): NameTemplate {
  const t = parseTemplate(text);
  return typeof t === "string" ? fail(at, t) : t;
}

function parseStep(raw: unknown, at: At, warnings: string[]): StepSpec {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw) || Object.keys(raw).length !== 1) {
    fail(at, `a step must be a map with exactly one of: ${STEP_KINDS.join(", ")}`);
  }
  const [key, body] = Object.entries(raw)[0]!;
  if (!(STEP_KINDS as string[]).includes(key)) {
    fail({ ...at, field: `${at.field}.${key}` }, `unknown step (expected one of: ${STEP_KINDS.join(", ")})`);
  }
  const kind = key as StepKind;
  const here = { ...at, field: `${at.field}.${kind}` };
  switch (kind) {
    case "filter": {
      const text = parseWith(STEP_SCHEMAS.filter, body, here);
      return { kind, text, expr: expr(text, here, "filter", warnings) };
    }
    case "derive": {
      const d = parseWith(STEP_SCHEMAS.derive, body, here);
      return {
        kind,
        series: template(d.series, { ...here, field: `${here.field}.series` }),
        text: d.expr,
        expr: expr(d.expr, { ...here, field: `${here.field}.expr` }, "derive", warnings),
      };
    }
    case "window": {
      const w = parseWith(STEP_SCHEMAS.window, body, here);
      let every = w.every ?? w.size;
      if (w.kind === "tumbling" && w.every !== undefined && w.every !== w.size) {
        fail(
          { ...here, field: `${here.field}.every` },
          "a tumbling window emits once per size; leave out every",
        );
      }
      if (w.kind === "sliding") {
        if (w.every === undefined)
          fail({ ...here, field: `${here.field}.every` }, "a sliding window needs every");
        every = w.every;
        if (every > w.size || w.size % every !== 0) {
          fail({ ...here, field: `${here.field}.every` }, "must divide size exactly");
        }
        if (w.size / every > MAX_PANES) {
          fail({ ...here, field: `${here.field}.every` }, `size / every must be at most ${MAX_PANES}`);
        }
      }
      const fns = [...new Set(typeof w.fn === "string" ? [w.fn] : w.fn)];
      // Default output name: the input series plus the size as written ("sensor.temp.10s").
      const rawSize = (body as { size: unknown }).size;
      const sizeLabel = typeof rawSize === "string" ? rawSize.trim() : formatDuration(w.size);
      const emitAs = template(w.emit_as ?? `${SERIES_PLACEHOLDER}.${sizeLabel}`, {
        ...here,
        field: `${here.field}.emit_as`,
      });
      return { kind, window: w.kind, size: w.size, every, fns, emitAs };
    }
    case "anomaly": {
      const a = parseWith(STEP_SCHEMAS.anomaly, body, here);
      return {
        kind,
        alpha: a.alpha,
        spreadAlpha: a.spread_alpha ?? a.alpha / 5,
        z: a.z,
        minPoints: a.min_points,
        direction: a.direction,
        severity: a.severity,
        message: a.message,
        cooldown: a.cooldown,
      };
    }
    case "threshold": {
      const th = parseWith(STEP_SCHEMAS.threshold, body, here);
      if (th.above === undefined && th.below === undefined) fail(here, "needs above, below or both");
      return {
        kind,
        above: th.above,
        below: th.below,
        severity: th.severity,
        message: th.message,
        cooldown: th.cooldown,
      };
    }
  }
}

function parsePipeline(raw: unknown, index: number): PipelineSpec {
  const name =
    raw && typeof raw === "object" && typeof (raw as { name?: unknown }).name === "string"
      ? (raw as { name: string }).name
      : undefined;
  const at: At = { field: `pipelines.${index}`, pipeline: name };
  const p = parseWith(PipelineSchema, raw, at);
  const source = parseSource(p.source);
  if (!source) {
    fail({ ...at, field: `${at.field}.source` }, 'must be a series name or a prefix glob such as "sensor.*"');
  }
  if (p.steps.length > MAX_STEPS) fail({ ...at, field: `${at.field}.steps` }, `at most ${MAX_STEPS} steps`);
  const warnings: string[] = [];
  const steps = p.steps.map((s, i) => parseStep(s, { ...at, field: `${at.field}.steps.${i}` }, warnings));
  const routes = new Set(typeof p.route === "string" ? [p.route] : p.route);
  if (routes.size === 0) fail({ ...at, field: `${at.field}.route` }, "must name at least one route");
  if (routes.has("drop") && routes.size > 1) {
    fail({ ...at, field: `${at.field}.route` }, "drop cannot be combined with other routes");
  }
  // Two windows of one pipeline writing the same series would mix their aggregates.
  const emitted = new Map<string, string>();
  steps.forEach((s, i) => {
    if (s.kind !== "window") return;
    const prev = emitted.get(s.emitAs.text);
    if (prev !== undefined) {
      fail(
        { ...at, field: `${at.field}.steps.${i}.window.emit_as` },
        `emits "${s.emitAs.text}" like ${prev}; set a distinct emit_as`,
      );
    }
    emitted.set(s.emitAs.text, `steps.${i}`);
  });
  const { name: _n, ...rest } = p;
  return {
    name: p.name,
    source,
    steps,
    route: { hub: routes.has("hub"), alert: routes.has("alert") },
    severity: p.severity,
    message: p.message,
    maxSeries: p.max_series,
    fingerprint: JSON.stringify(rest),
    warnings,
  };
}

/** Validates `{pipelines: [...]}` (other top-level keys are ignored); throws ConfigError naming the field. */
export function parsePipelinesConfig(config: unknown): PipelineSpec[] {
  if (config === undefined || config === null) return [];
  if (typeof config !== "object" || Array.isArray(config)) {
    fail({ field: "pipelines", pipeline: undefined }, "the config must be a map with a pipelines list");
  }
  const list = (config as { pipelines?: unknown }).pipelines;
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) fail({ field: "pipelines", pipeline: undefined }, "must be a list");
  if (list.length > MAX_PIPELINES) {
    fail({ field: "pipelines", pipeline: undefined }, `at most ${MAX_PIPELINES} pipelines`);
  }
  const specs = list.map((raw, i) => parsePipeline(raw, i));
  const seen = new Map<string, number>();
  specs.forEach((p, i) => {
    const prev = seen.get(p.name);
    if (prev !== undefined) {
      fail({ field: `pipelines.${i}.name`, pipeline: p.name }, `duplicate name (also pipelines.${prev})`);
    }
    seen.set(p.name, i);
  });
  checkNoFeedLoops(specs);
  return specs;
}
