// Reads a request's JSON body; malformed JSON is a 400 naming the body.
import type { Context } from "hono";
import { RequestError } from "../../shared/errors.ts";

/** The parsed JSON body of a request. */
export async function jsonBody(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new RequestError("body is not valid JSON", "body");
  }
}
