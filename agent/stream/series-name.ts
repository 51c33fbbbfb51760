// Series names: the accepted pattern, label suffixes, source patterns and output-name templates.

/** A series name: dotted lower-case words, optionally followed by `{labels}` (case-insensitive). */
export const SERIES_PATTERN = /^[a-z0-9_.]+(\{[^}]*\})?$/i;
export const MAX_SERIES_CHARS = 200;

/** The placeholder an output name uses for the name of the series flowing into the step. */
export const SERIES_PLACEHOLDER = "{series}";

/** Splits `name{labels}` into its base name and its label suffix ("" when none). */
export function splitLabels(series: string): [base: string, labels: string] {
  const brace = series.indexOf("{");
  return brace < 0 ? [series, ""] : [series.slice(0, brace), series.slice(brace)];
}

/** An exact series name, or a prefix glob ending in `*` ("sensor.*", or "*" for every series). */
export interface SourcePattern {
  readonly text: string;
  readonly prefix: string;
  readonly glob: boolean;
}

/** Parses a pipeline's `source`; undefined when it is neither a name nor a prefix glob. */
export function parseSource(text: string): SourcePattern | undefined {
  if (text.endsWith("*")) {
    const prefix = text.slice(0, -1);
    return /^[a-z0-9_.]*$/i.test(prefix) ? { text, prefix, glob: true } : undefined;
  }
  return /^[a-z0-9_.]+$/i.test(text) && text.length <= MAX_SERIES_CHARS
    ? { text, prefix: text, glob: false }
    : undefined;
}

/** Whether a base series name (labels stripped) matches a source pattern. */
export function sourceMatches(source: SourcePattern, base: string): boolean {
  return source.glob ? base.startsWith(source.prefix) : base === source.prefix;
}

/** Whether some name could match both patterns (used to find pipelines that feed each other). */
export function patternsOverlap(a: SourcePattern, b: SourcePattern): boolean {
  if (a.glob && b.glob) return a.prefix.startsWith(b.prefix) || b.prefix.startsWith(a.prefix);
  if (a.glob) return b.prefix.startsWith(a.prefix);
  if (b.glob) return a.prefix.startsWith(b.prefix);
  return a.prefix === b.prefix;
}

/**
 * An output-name template: literal text around at most one `{series}`, which stands for the base
 * name of the series flowing into the step. With the placeholder, the input's labels are carried to
 * the output (per-series state); without it, every input series feeds the one output.
 */
export interface NameTemplate {
  readonly text: string;
  readonly before: string;
  readonly after: string;
  readonly perSeries: boolean;
}

/** Parses an output-name template; returns an error message when it cannot make valid names. */
export function parseTemplate(text: string): NameTemplate | string {
  const at = text.indexOf(SERIES_PLACEHOLDER);
  const before = at < 0 ? text : text.slice(0, at);
  const after = at < 0 ? "" : text.slice(at + SERIES_PLACEHOLDER.length);
  if (after.includes(SERIES_PLACEHOLDER)) return `may use ${SERIES_PLACEHOLDER} at most once`;
  const literal = before + (at < 0 ? "" : "x") + after;
  if (!/^[a-z0-9_.]+$/i.test(literal)) {
    return `must be a series name of letters, digits, '_' and '.' (optionally with ${SERIES_PLACEHOLDER}), no labels`;
  }
  if (literal.length > MAX_SERIES_CHARS) return `must be at most ${MAX_SERIES_CHARS} characters`;
  return { text, before, after, perSeries: at >= 0 };
}

/** The output name a template gives for one input series (labels carried when per-series). */
export function applyTemplate(tpl: NameTemplate, series: string, suffix = ""): string {
  if (!tpl.perSeries) return tpl.before + suffix;
  const [base, labels] = splitLabels(series);
  return tpl.before + base + tpl.after + suffix + labels;
}

/**
 * The names a template can produce from inputs matching `input`, as a pattern: exact when the
 * template is fixed or the input is exact, otherwise a prefix glob (conservative).
 */
export function templateOutputs(tpl: NameTemplate, input: SourcePattern, suffix = ""): SourcePattern {
  if (!tpl.perSeries) return { text: tpl.before + suffix, prefix: tpl.before + suffix, glob: false };
  if (!input.glob) {
    const name = tpl.before + input.prefix + tpl.after + suffix;
    return { text: name, prefix: name, glob: false };
  }
  const prefix = tpl.before + input.prefix;
  return { text: `${prefix}*`, prefix, glob: true };
}
