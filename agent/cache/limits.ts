// Size limits of cache keys and values, and the checks that refuse anything outside them by field.
import { RequestError } from "../../shared/errors.ts";

export const MAX_KEY_BYTES = 256;
export const MAX_VALUE_BYTES = 1 << 20;

const utf8Length = (s: string) => Buffer.byteLength(s, "utf8");

/** The UTF-8 length of a valid key; RequestError on "key" otherwise. */
export function checkKey(key: unknown): number {
  if (typeof key !== "string" || key.length === 0)
    throw new RequestError("must be a non-empty string", "key");
  const n = utf8Length(key);
  if (n > MAX_KEY_BYTES) throw new RequestError(`is ${n} bytes; at most ${MAX_KEY_BYTES}`, "key");
  return n;
}

/** The byte length of a valid value (UTF-8 for strings); RequestError on "value" otherwise. */
export function checkValue(value: unknown): number {
  let n: number;
  if (typeof value === "string") n = value.length > MAX_VALUE_BYTES ? MAX_VALUE_BYTES + 1 : utf8Length(value);
  else if (value instanceof Uint8Array) n = value.byteLength;
  else throw new RequestError("must be a string or bytes", "value");
  if (n > MAX_VALUE_BYTES) throw new RequestError(`is over ${MAX_VALUE_BYTES} bytes (1 MiB)`, "value");
  return n;
}

/** A valid byte budget; RequestError on "budgetBytes" otherwise. */
export function checkBudget(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0)
    throw new RequestError("must be a non-negative integer", "budgetBytes");
  return bytes;
}
