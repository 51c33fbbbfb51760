// Size limits of cache keys and values (the shared definition, in bytes) and the budget check.
import { RequestError } from "../../shared/errors.ts";

export { checkKey, checkValue, MAX_KEY_BYTES, MAX_VALUE_BYTES } from "../../shared/cache/index.ts";

/** A valid byte budget; RequestError on "budgetBytes" otherwise. */
export function checkBudget(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0)
    throw new RequestError("must be a non-negative integer", "budgetBytes");
  return bytes;
}
