// Reads a workload spec file (YAML or JSON, or "-" for stdin) and validates it with the hub's own schema.
import { readFileSync } from "node:fs";
import {
  parseWorkloadSpec,
  type WorkloadSpec,
  WorkloadSpec as WorkloadSchema,
} from "../shared/workload/index.ts";
import { UsageError } from "./errors.ts";

/** The spec keys, in schema order (what a diff compares; the hub's answers carry more). */
export const SPEC_KEYS: readonly string[] = Object.keys(WorkloadSchema.entries);

/** Parses the text of a spec file: JSON when it is named .json or starts with "{", YAML otherwise. */
export function parseSpecText(text: string, name: string): Record<string, unknown> {
  const json = name.endsWith(".json") || text.trimStart().startsWith("{");
  let doc: unknown;
  try {
    doc = json ? JSON.parse(text) : Bun.YAML.parse(text);
  } catch (err) {
    const why = (err as Error).message.replace(/^YAML Parse error:\s*/, "");
    throw new UsageError(`${name}: not valid ${json ? "JSON" : "YAML"}: ${why}`, "-f");
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new UsageError(
      `${name}: must hold one workload spec (a map with name, driver, command, ...)`,
      "-f",
    );
  }
  return doc as Record<string, unknown>;
}

/** Reads `path` ("-" is stdin) into a spec document. */
export async function readSpecFile(
  path: string,
  stdin: () => Promise<string>,
): Promise<Record<string, unknown>> {
  if (path === "-") return parseSpecText(await stdin(), "stdin");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new UsageError(
      `-f ${path}: ${code === "ENOENT" ? "file not found" : (err as Error).message}`,
      "-f",
    );
  }
  return parseSpecText(text, path);
}

/** Validates a spec document with the shared schema; the UsageError names the file and the field. */
export function validateSpec(doc: unknown, name: string): WorkloadSpec {
  const r = parseWorkloadSpec(doc);
  if (!r.ok) throw new UsageError(`${name}: ${r.field}: ${r.message}`, r.field);
  return r.spec;
}

/** The spec part of a workload as the hub shows it, with the schema's defaults filled in. */
export function specOf(view: Record<string, unknown>): WorkloadSpec | undefined {
  const picked = Object.fromEntries(SPEC_KEYS.filter((k) => view[k] !== undefined).map((k) => [k, view[k]]));
  const r = parseWorkloadSpec(picked);
  return r.ok ? r.spec : undefined;
}
