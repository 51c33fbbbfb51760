// The one definition of a valid cache key and value, in bytes (UTF-8), used by the hub's API and the agent alike.
import { RequestError } from "../errors.ts";

/** A key is 1 to 256 bytes of UTF-8 (90 x "€" is 90 characters but 270 bytes: too long). */
export const MAX_KEY_BYTES = 256;
/** A value is at most 1 MiB (UTF-8 bytes for strings). */
export const MAX_VALUE_BYTES = 1 << 20;

/** UTF-8 length of a string. */
export const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8");

/** Why `key` is not a valid key, or undefined when it is. */
export function keyProblem(key: unknown): string | undefined {
  if (typeof key !== "string" || key.length === 0) return "must be a non-empty string";
  // Lone surrogates have no UTF-8 form: the bytes stored would not be the key asked for.
  if (!key.isWellFormed()) return "must be valid Unicode (no lone surrogates)";
  const n = utf8Length(key);
  if (n > MAX_KEY_BYTES) return `is ${n} bytes; at most ${MAX_KEY_BYTES}`;
  return undefined;
}

/** The UTF-8 length of a valid key; RequestError naming `field` (default "key") otherwise. */
export function checkKey(key: unknown, field = "key"): number {
  const problem = keyProblem(key);
  if (problem) throw new RequestError(problem, field);
  return utf8Length(key as string);
}

/** Why `value` is not a valid value, or undefined when it is. */
export function valueProblem(value: unknown): string | undefined {
  let n: number;
  if (typeof value === "string") n = value.length > MAX_VALUE_BYTES ? MAX_VALUE_BYTES + 1 : utf8Length(value);
  else if (value instanceof Uint8Array) n = value.byteLength;
  else return "must be a string or bytes";
  if (n > MAX_VALUE_BYTES) return `is over ${MAX_VALUE_BYTES} bytes (1 MiB)`;
  return undefined;
}

/** The byte length of a valid value (UTF-8 for strings); RequestError naming `field` otherwise. */
export function checkValue(value: unknown, field = "value"): number {
  const problem = valueProblem(value);
  if (problem) throw new RequestError(problem, field);
  return typeof value === "string" ? utf8Length(value) : (value as Uint8Array).byteLength;
}
