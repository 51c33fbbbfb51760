// Reads a request's JSON body; malformed JSON is a 400 naming the body, a schema failure a 400 naming the field.
import type { Context } from "hono";
import * as v from "valibot";
import { RequestError } from "../../shared/errors.ts";

/** The parsed JSON body of a request. */
export async function jsonBody(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new RequestError("body is not valid JSON", "body");
  }
}

/** Checks a value against a schema; the error names the first bad field (`ttl_s`, `levels.1`, `body`). */
export function parseWith<S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> {
  const parsed = v.safeParse(schema, input);
  if (parsed.success) return parsed.output;
  const issue = parsed.issues[0];
  const field = v.getDotPath(issue) || "body";
  const message = issue.received === "undefined" ? "is required" : issue.message;
  throw new RequestError(`${field}: ${message}`, field);
}

/** The JSON body checked against the schema the route declares in its OpenAPI description. */
export async function parseBody<S extends v.GenericSchema>(c: Context, schema: S): Promise<v.InferOutput<S>> {
  return parseWith(schema, await jsonBody(c));
}
