// The expression language's tokenizer: numbers, names (dotted, with label sets), keywords, operators, with 1-based columns.

/** An expression that cannot be parsed or does not fit its context; `path` is where inside a structured field. */
export class ExprError extends Error {
  readonly path: string;
  constructor(message: string, path = "") {
    super(message);
    this.path = path;
  }
}

export type Keyword = "and" | "or" | "not" | "true" | "false";

/** One token; `col` is its 1-based column, `text` as written. */
export type Token =
  | { readonly t: "num"; readonly value: number; readonly col: number; readonly text: string }
  | { readonly t: "ident"; readonly key: string; readonly col: number; readonly text: string }
  | { readonly t: "kw"; readonly word: Keyword; readonly col: number; readonly text: string }
  | { readonly t: "op"; readonly col: number; readonly text: string }
  | { readonly t: "end"; readonly col: number; readonly text: string };

/** Operators made of the characters below; a run of them that is not one of these is an unknown operator. */
const RUN_OPS = new Set(["<", "<=", ">", ">=", "==", "!=", "&&", "||", "!"]);
const RUN_CHARS = /[<>=!&|~]+/y;
const SINGLE = new Set(["+", "-", "*", "/", "%", "(", ")", ","]);
const NUMBER = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const NAME = /[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*/y;
const LABEL_NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const SPACE = /\s*/y;
const KEYWORDS: ReadonlySet<string> = new Set(["and", "or", "not", "true", "false"]);

function match(re: RegExp, text: string, at: number): string | undefined {
  re.lastIndex = at;
  return re.exec(text)?.[0];
}

/** Escapes a label value the way the collector writes it (Prometheus text format). */
function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/**
 * Reads `{k="v", ...}` at `at` (the `{`); returns the canonical text and the index after `}`.
 * Labels are sorted by name and joined by "," with no spaces, which is how series keys are written.
 */
function readLabels(text: string, at: number): { canon: string; end: number } {
  const labels: [string, string][] = [];
  let i = at + 1;
  const skip = () => {
    i += match(SPACE, text, i)?.length ?? 0;
  };
  const fail = (what: string): never => {
    throw new ExprError(`${what} at column ${i + 1}`);
  };
  skip();
  while (text[i] !== "}") {
    const name = match(LABEL_NAME, text, i) ?? fail("expected a label name");
    i += name.length;
    skip();
    if (text[i] !== "=") fail(`expected "=" after label ${name}`);
    i++;
    skip();
    if (text[i] !== '"') fail(`expected a quoted value for label ${name}`);
    i++;
    let value = "";
    for (;;) {
      const c = text[i];
      if (c === undefined || c === "\n") fail(`unterminated value of label ${name}`);
      i++;
      if (c === '"') break;
      if (c === "\\") {
        const e = text[i++];
        if (e === "n") value += "\n";
        else if (e === "\\" || e === '"') value += e;
        else fail(`bad escape in value of label ${name}`);
      } else value += c;
    }
    if (labels.some(([n]) => n === name)) fail(`label ${name} given twice`);
    labels.push([name, value]);
    skip();
    if (text[i] === ",") {
      i++;
      skip();
    } else if (text[i] !== "}") fail('expected "," or "}" in label set');
  }
  if (labels.length === 0) fail("empty label set");
  labels.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const canon = `{${labels.map(([n, v]) => `${n}="${escapeLabel(v)}"`).join(",")}}`;
  return { canon, end: i + 1 };
}

/** Splits a run of operator characters into operators: one known operator, then any number of "!". */
function splitRun(run: string): string[] | undefined {
  if (RUN_OPS.has(run)) return [run];
  for (let cut = Math.min(2, run.length); cut >= 1; cut--) {
    const head = run.slice(0, cut);
    const rest = run.slice(cut);
    if (RUN_OPS.has(head) && /^!+$/.test(rest)) return [head, ...rest];
  }
  return undefined;
}

/** Splits an expression into tokens, ending with an `end` token; throws ExprError naming the column. */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  for (;;) {
    i += match(SPACE, text, i)?.length ?? 0;
    const col = i + 1;
    const c = text[i];
    if (c === undefined) {
      out.push({ t: "end", col, text: "" });
      return out;
    }
    if (SINGLE.has(c)) {
      out.push({ t: "op", col, text: c });
      i++;
      continue;
    }
    const run = match(RUN_CHARS, text, i);
    if (run) {
      const ops = splitRun(run);
      if (!ops) throw new ExprError(`unknown operator "${run}" at column ${col}`);
      let at = col;
      for (const op of ops) {
        out.push({ t: "op", col: at, text: op });
        at += op.length;
      }
      i += run.length;
      continue;
    }
    const num = match(NUMBER, text, i);
    if (num) {
      const after = text[i + num.length];
      if (after !== undefined && /[A-Za-z0-9_.]/.test(after)) {
        throw new ExprError(`bad number "${num}${after}" at column ${col}`);
      }
      out.push({ t: "num", value: Number(num), col, text: num });
      i += num.length;
      continue;
    }
    const name = match(NAME, text, i);
    if (name) {
      i += name.length;
      const lower = name.toLowerCase();
      if (KEYWORDS.has(lower)) {
        out.push({ t: "kw", word: lower as Keyword, col, text: name });
        continue;
      }
      let key = name;
      if (text[i] === "{") {
        const labels = readLabels(text, i);
        key += labels.canon;
        i = labels.end;
      }
      out.push({ t: "ident", key, col, text: text.slice(col - 1, i) });
      continue;
    }
    throw new ExprError(`unexpected character "${c}" at column ${col}`);
  }
}
