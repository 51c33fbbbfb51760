// Turns one field's raw value (flag or env text, a YAML value, or the default) into its typed, checked value.
import { ConfigError } from "../../errors.ts";
import type { BytesField, DurationField, Field, IntField } from "../fields.ts";
import {
  formatBytes,
  formatDuration,
  isUrl,
  type ListenAddress,
  parseBytes,
  parseDuration,
  parseList,
  parseListen,
  parseMap,
  redactUrl,
} from "../parsers.ts";

/** Quotes a value for an error message, hiding secrets and cutting long values. */
function show(field: Field, raw: unknown): string {
  if (field.secret) return "<hidden>";
  // A broker URL may carry a password (mqtt://user:pass@host); error messages end up in logs.
  if (typeof raw === "string") raw = redactUrl(raw);
  const text =
    typeof raw === "string" && /^[\w.:/@,=+%*[\]-]+$/.test(raw) ? raw : (JSON.stringify(raw) ?? String(raw));
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** "a, b or c". */
function orList(items: readonly string[]): string {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} or ${items.at(-1)}`;
}

function fail(field: Field, rule: string, raw: unknown, from: string): never {
  throw new ConfigError(field.key, `${rule} (got ${show(field, raw)} from ${from})`);
}

function bound(
  field: DurationField | BytesField,
  value: number | string | undefined,
  parse: (s: string) => number | undefined,
) {
  if (value === undefined || typeof value === "number") return value;
  const n = parse(value);
  // A bad bound is a mistake in the table, not in the user's input.
  if (n === undefined) throw new Error(`config table: bad bound ${JSON.stringify(value)} for ${field.key}`);
  return n;
}

function rangeText(min: string | undefined, max: string | undefined): string {
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`;
  if (min !== undefined) return ` of at least ${min}`;
  if (max !== undefined) return ` of at most ${max}`;
  return "";
}

function coerceInt(field: IntField, raw: unknown, from: string): number {
  const min = field.min === undefined ? undefined : String(field.min);
  const max = field.max === undefined ? undefined : String(field.max);
  const rule = `must be an integer${rangeText(min, max)}`;
  const n = typeof raw === "string" && /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : raw;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) return fail(field, rule, raw, from);
  if ((field.min !== undefined && n < field.min) || (field.max !== undefined && n > field.max)) {
    return fail(field, rule, raw, from);
  }
  return n;
}

function coerceAmount(field: DurationField | BytesField, raw: unknown, from: string): number {
  const [noun, parse, format, example] =
    field.kind === "duration"
      ? (["a duration", parseDuration, formatDuration, "500ms, 10s, 2m or 1h"] as const)
      : (["a size", parseBytes, formatBytes, "100MB, 64KiB or 1GiB"] as const);
  const min = bound(field, field.min, parse);
  const max = bound(field, field.max, parse);
  // Bounds are shown as the table writes them ("1MB"), else in the largest exact unit.
  const label = (b: number | string | undefined) =>
    b === undefined || typeof b === "string" ? b : format(b);
  const rule = `must be ${noun}${rangeText(label(field.min), label(field.max))}`;
  const n = typeof raw === "string" ? parse(raw) : raw;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    return fail(field, `${rule}, like ${example}`, raw, from);
  }
  if ((min !== undefined && n < min) || (max !== undefined && n > max)) return fail(field, rule, raw, from);
  return n;
}

function coerceList(field: Field, raw: unknown, from: string): string[] {
  if (typeof raw === "string") return parseList(raw);
  if (Array.isArray(raw) && raw.every((item) => typeof item === "string")) return [...raw];
  return fail(field, "must be a list of strings (a YAML list or a comma-separated string)", raw, from);
}

function coerceUrls(field: Field & { schemes: readonly string[] }, raw: unknown, from: string): string[] {
  const urls = coerceList(field, raw, from);
  const rule = `must be ${orList(field.schemes.map((s) => `${s}//`))} URLs`;
  // The error shows the one bad URL, not the whole list, so the operator sees at once which to fix.
  for (const url of urls) if (!isUrl(url, field.schemes)) fail(field, rule, url, from);
  return urls;
}

function coerceMap(field: Field, raw: unknown, from: string): Record<string, string> {
  if (typeof raw === "string") {
    return (
      parseMap(raw) ?? fail(field, "must be k=v pairs separated by commas, with distinct keys", raw, from)
    );
  }
  if (typeof raw === "object" && raw !== null && !Array.isArray(raw)) {
    const entries = Object.entries(raw);
    if (entries.every(([, v]) => typeof v === "string")) return Object.fromEntries(entries);
  }
  return fail(field, "must be a map of strings; quote numbers in YAML", raw, from);
}

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);

function coerceBool(field: Field, raw: unknown, from: string): boolean {
  if (typeof raw === "boolean") return raw;
  const text = typeof raw === "string" ? raw.trim().toLowerCase() : "";
  if (TRUE.has(text)) return true;
  if (FALSE.has(text)) return false;
  return fail(field, "must be true or false", raw, from);
}

function coerceListen(field: Field, raw: unknown, from: string): ListenAddress {
  if (typeof raw === "string") {
    const addr = parseListen(raw);
    if (addr) return addr;
  } else if (typeof raw === "object" && raw !== null) {
    const { host, port } = raw as Partial<Record<string, unknown>>;
    if (typeof host === "string" && host !== "" && typeof port === "number" && Number.isInteger(port)) {
      if (port >= 0 && port <= 65535) return { host, port };
    }
  }
  return fail(
    field,
    "must be HOST:PORT with a port from 0 to 65535, like 127.0.0.1:8080 or [::1]:8080",
    raw,
    from,
  );
}

/** Parses and checks `raw` (from the source named `from`) for `field`; throws ConfigError naming both. */
export function coerce(field: Field, raw: unknown, from: string): unknown {
  let value: unknown;
  switch (field.kind) {
    case "string":
      if (typeof raw !== "string") fail(field, "must be a string; quote it in YAML", raw, from);
      if (field.oneOf && !field.oneOf.includes(raw))
        fail(field, `must be one of ${orList(field.oneOf)}`, raw, from);
      value = raw;
      break;
    case "int":
      value = coerceInt(field, raw, from);
      break;
    case "duration":
    case "bytes":
      value = coerceAmount(field, raw, from);
      break;
    case "listen":
      value = coerceListen(field, raw, from);
      break;
    case "list":
      value = coerceList(field, raw, from);
      break;
    case "url-list":
      value = coerceUrls(field, raw, from);
      break;
    case "map":
      value = coerceMap(field, raw, from);
      break;
    case "bool":
      value = coerceBool(field, raw, from);
      break;
    case "custom": {
      let input = raw;
      if (typeof raw === "string") {
        try {
          input = JSON.parse(raw);
        } catch {
          fail(field, "must be JSON when given as a flag or environment variable", raw, from);
        }
      }
      try {
        value = field.parse(input);
      } catch (err) {
        if (err instanceof ConfigError)
          throw new ConfigError(err.field, `${err.message.slice(err.field.length + 2)} (from ${from})`);
        fail(field, (err as Error).message, raw, from);
      }
      break;
    }
    default: {
      const never: never = field;
      throw new Error(`config table: unknown kind in ${JSON.stringify(never)}`);
    }
  }
  // Each field's own rule sees only the typed value; the cast is safe because `value` came from its kind.
  const problem = (field.validate as ((v: unknown) => string | undefined) | undefined)?.(value);
  if (problem !== undefined) fail(field, problem, raw, from);
  return value;
}
