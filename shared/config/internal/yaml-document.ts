// Reads a config file's YAML into a plain map, turning syntax errors into a ConfigError on "config".
import { ConfigError } from "../../errors.ts";

function tryParse(text: string): boolean {
  try {
    Bun.YAML.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Bun's YAML errors carry no position (as of Bun 1.4), so the line is estimated: the first line after
 * the longest prefix that still parses. Only run on failure, and only for files of config size.
 */
function errorLine(text: string): number | undefined {
  const lines = text.split("\n");
  if (lines.length > 5000) return undefined;
  for (let n = lines.length - 1; n >= 0; n--) {
    if (tryParse(lines.slice(0, n).join("\n"))) return n + 1;
  }
  return undefined;
}

/** Parses the top level of a config file into key → value; throws ConfigError("config", ...) if it cannot. */
export function parseYamlDocument(path: string, text: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = Bun.YAML.parse(text);
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).replace(/^YAML Parse error:\s*/, "");
    const line = errorLine(text);
    const where = line === undefined ? "" : ` near line ${line}`;
    throw new ConfigError("config", `YAML syntax error in ${path}${where}: ${reason}`, { cause: err });
  }
  // An empty file, or one holding only comments, is a valid file that sets nothing.
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(
      "config",
      `${path} must be a YAML map of settings (key: value), not a ${describe(doc)}`,
    );
  }
  return Object.fromEntries(Object.entries(doc));
}

function describe(doc: unknown): string {
  return Array.isArray(doc) ? "list" : typeof doc;
}
