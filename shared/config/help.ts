// The --help text, generated from the field table so that it can never disagree with the parser.
import type { Field, FieldTable } from "./fields.ts";
import { formatBytes, formatDuration, formatListen } from "./parsers.ts";

const METAVAR: Readonly<Record<Field["kind"], string>> = {
  custom: "JSON",
  string: "VALUE",
  int: "N",
  duration: "DURATION",
  bytes: "SIZE",
  listen: "HOST:PORT",
  list: "A,B",
  "url-list": "URL[,URL...]",
  map: "K=V",
  bool: "",
};

function showDefault(field: Field): string {
  if (field.defaultHelp !== undefined) return field.defaultHelp;
  const def = typeof field.default === "function" ? field.default() : field.default;
  if (typeof def === "string") return def === "" ? '""' : def;
  if (typeof def === "number") {
    if (field.kind === "duration") return formatDuration(def);
    if (field.kind === "bytes") return formatBytes(def);
    return String(def);
  }
  if (typeof def === "boolean") return String(def);
  if (Array.isArray(def)) return def.length === 0 ? "none" : def.join(",");
  if (field.kind === "listen") return formatListen(def as { host: string; port: number });
  const pairs = Object.entries(def as Record<string, string>);
  return pairs.length === 0 ? "none" : pairs.map(([k, v]) => `${k}=${v}`).join(",");
}

/**
 * Renders `--help`: the usage line, then each flag with its help, environment variable, file key and
 * default. `watches` says whether the process reloads its config file: only then is "reloads live" true.
 */
export function helpText(fields: FieldTable, usage: string, opts: { watches?: boolean } = {}): string {
  const heads = fields.map((f) => {
    const metavar = f.metavar ?? (f.kind === "string" && f.oneOf ? f.oneOf.join("|") : METAVAR[f.kind]);
    return `  ${f.flag}${metavar ? ` ${metavar}` : ""}${f.repeatable ? " (repeatable)" : ""}`;
  });
  const switches = [
    ["  --help", "print this help and exit"],
    ["  --version", "print the version and exit"],
  ] as const;
  const width = Math.max(...heads.map((h) => h.length), ...switches.map(([h]) => h.length)) + 2;
  const pad = " ".repeat(width);
  const lines = [`Usage: ${usage}`, "", "Flags:"];
  fields.forEach((f, i) => {
    lines.push(`${(heads[i] ?? "").padEnd(width)}${f.help}`);
    const key = f.inFile === false ? "" : `, file key ${f.key}`;
    const hot = f.hot && opts.watches !== false ? ", reloads live" : "";
    lines.push(`${pad}env ${f.env}${key}, default ${showDefault(f)}${hot}`);
  });
  for (const [head, help] of switches) lines.push(`${head.padEnd(width)}${help}`);
  return `${lines.join("\n")}\n`;
}
