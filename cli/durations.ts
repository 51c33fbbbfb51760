// Time flags: durations ("90s", "1h") and points in time ("1h" ago, epoch ms, or an ISO date).
import { parseDuration } from "../shared/config/index.ts";
import { UsageError } from "./errors.ts";

/** A duration flag in ms, or undefined when absent; a UsageError naming the flag when malformed. */
export function parseDurationFlag(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined)
    throw new UsageError(`${flag} must be a duration like 90s, 5m or 1h (got ${JSON.stringify(text)})`, flag);
  return ms;
}

/**
 * A point in time: a duration means that long before `now` ("1h"), digits are ms since the epoch,
 * anything else must be an ISO 8601 date ("2026-12-03T12:00:00Z").
 */
export function parseTimeFlag(text: string | undefined, flag: string, now: number): number | undefined {
  if (text === undefined) return undefined;
  if (/^\d{10,}$/.test(text)) return Number(text);
  const ms = parseDuration(text);
  if (ms !== undefined && !/^\d+$/.test(text)) return now - ms;
  const date = Date.parse(text);
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && Number.isFinite(date)) return date;
  throw new UsageError(
    `${flag} must be a duration before now (1h), ms since the epoch or an ISO date (got ${JSON.stringify(text)})`,
    flag,
  );
}
