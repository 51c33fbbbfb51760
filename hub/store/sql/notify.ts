// Notifications between replicas: PostgreSQL LISTEN/NOTIFY, or direct calls within the one hub on SQLite.
import { RequestError, TooLargeError } from "../../../shared/errors.ts";
import { createLogger, type Logger } from "../../../shared/log.ts";
import { listenOn } from "./postgres.ts";
import type { HubSql } from "./types.ts";

/** PostgreSQL refuses payloads of 8000 bytes or more (its default build); the same bound holds on SQLite. */
export const MAX_PAYLOAD_BYTES = 7999;
/** PostgreSQL's identifier limit, which a channel name is. */
export const MAX_CHANNEL_BYTES = 63;

export interface Subscription {
  unsubscribe(): Promise<void>;
}

/**
 * Publish and subscribe by channel. Delivery is at most once: a subscriber whose connection drops
 * misses what was published until it is back (Bun reconnects and calls `onListen` again, the place to
 * catch up from the store). Payloads are small pointers to rows, not the data itself.
 */
export interface Notifier {
  publish(channel: string, payload: string): Promise<void>;
  /** Resolves once subscribed: a publish after that is delivered. `onListen` runs then and after each reconnect. */
  subscribe(channel: string, fn: (payload: string) => void, onListen?: () => void): Promise<Subscription>;
}

const utf8 = new TextEncoder();

function checkChannel(channel: unknown): asserts channel is string {
  const bytes = typeof channel === "string" ? utf8.encode(channel).length : 0;
  if (typeof channel !== "string" || bytes === 0 || bytes > MAX_CHANNEL_BYTES || channel.includes("\0"))
    throw new RequestError(
      `a notification channel must be 1 to ${MAX_CHANNEL_BYTES} bytes without NUL, not ${JSON.stringify(channel)}`,
      "channel",
    );
}

function checkPayload(channel: string, payload: unknown): asserts payload is string {
  if (typeof payload !== "string" || payload.includes("\0"))
    throw new RequestError(`a notification on channel "${channel}" must be text without NUL`, "payload");
  const bytes = utf8.encode(payload).length;
  if (bytes > MAX_PAYLOAD_BYTES)
    throw new TooLargeError(
      `a notification on channel "${channel}" is ${bytes} bytes, over the ${MAX_PAYLOAD_BYTES}-byte limit`,
      "payload",
    );
}

/** A notifier on `sql`'s back end: LISTEN/NOTIFY on PostgreSQL, in-process on SQLite. Subscriber errors go to `log`. */
export function openNotifier(sql: HubSql, log: Logger = createLogger("notify")): Notifier {
  return sql.dialect === "postgres" ? new PostgresNotifier(sql, log) : new LocalNotifier(log);
}

// A subscriber that throws must not stop delivery to the others, nor (on PostgreSQL) crash the process.
function guarded<A extends unknown[]>(channel: string, fn: (...args: A) => void, log: Logger) {
  return (...args: A): void => {
    try {
      fn(...args);
    } catch (err) {
      log.error("a notification subscriber failed", { channel, err });
    }
  };
}

/** NOTIFY through the pool (pg_notify, a statement like any other); LISTEN on the client's dedicated connection. */
class PostgresNotifier implements Notifier {
  constructor(
    readonly sql: HubSql,
    readonly log: Logger,
  ) {}

  async publish(channel: string, payload: string): Promise<void> {
    checkChannel(channel);
    checkPayload(channel, payload);
    await this.sql.get("SELECT pg_notify(?, ?)", [channel, payload]);
  }

  async subscribe(channel: string, fn: (payload: string) => void, onListen?: () => void) {
    checkChannel(channel);
    const sub = await listenOn(
      this.sql,
      channel,
      guarded(channel, fn, this.log),
      onListen && guarded(channel, onListen, this.log),
    );
    return { unsubscribe: () => sub.unlisten() };
  }
}

/** One hub on SQLite has no one else to tell: publish calls this process's subscribers directly. */
class LocalNotifier implements Notifier {
  readonly #subs = new Map<string, Set<(payload: string) => void>>();

  constructor(readonly log: Logger) {}

  async publish(channel: string, payload: string): Promise<void> {
    checkChannel(channel);
    checkPayload(channel, payload);
    for (const fn of [...(this.#subs.get(channel) ?? [])]) fn(payload);
  }

  async subscribe(channel: string, fn: (payload: string) => void, onListen?: () => void) {
    checkChannel(channel);
    const wrapped = guarded(channel, fn, this.log);
    const set = this.#subs.get(channel) ?? new Set();
    this.#subs.set(channel, set);
    set.add(wrapped);
    if (onListen) guarded(channel, onListen, this.log)();
    return {
      unsubscribe: async () => {
        set.delete(wrapped);
        if (set.size === 0 && this.#subs.get(channel) === set) this.#subs.delete(channel);
      },
    };
  }
}
