// Webhooks in SQLite: their settings, the durable queue of notifications to send, and the delivery log.
import type { Database } from "bun:sqlite";
import { randomBytes } from "node:crypto";
import type { AlertChange } from "./alert-store.ts";

export interface Webhook {
  id: string;
  name: string;
  url: string;
  /** The HMAC-SHA256 key of the signature header (shown once, when created). */
  secret: string;
  /** Which alert changes it hears. */
  events: AlertChange["event"][];
  /** Lowest severity it hears. */
  min_severity: "info" | "warning" | "critical";
  created_at: number;
}

/** One notification waiting in the queue (or delivered / given up). */
export interface QueuedNotification {
  id: number;
  webhook: string;
  alert: number;
  event: AlertChange["event"];
  /** The alert as it was at the change (JSON). */
  payload: string;
  created_at: number;
  next_at: number;
  attempts: number;
}

/** One attempt to deliver a group of notifications. */
export interface Delivery {
  id: number;
  webhook: string;
  at: number;
  attempt: number;
  notifications: number[];
  alerts: number[];
  status: number | null;
  ok: boolean;
  error: string | null;
  duration_ms: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS webhooks (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  url TEXT NOT NULL,
  secret TEXT NOT NULL,
  events TEXT NOT NULL,
  min_severity TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
-- One row per (webhook, alert, change): a change is queued once however often it is seen.
CREATE TABLE IF NOT EXISTS webhook_queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  webhook TEXT NOT NULL,
  alert INTEGER NOT NULL,
  event TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  next_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  delivered_at INTEGER,
  gave_up_at INTEGER,
  last_error TEXT,
  UNIQUE (webhook, alert, event)
);
CREATE INDEX IF NOT EXISTS webhook_queue_due ON webhook_queue (webhook, next_at) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  webhook TEXT NOT NULL,
  at INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  notifications TEXT NOT NULL,
  alerts TEXT NOT NULL,
  status INTEGER,
  ok INTEGER NOT NULL,
  error TEXT,
  duration_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_hook ON webhook_deliveries (webhook, id);
`;

const SEVERITY_RANK = { info: 0, warning: 1, critical: 2 } as const;

/** Whether `hook` hears a change of this severity and kind. */
export function hears(hook: Webhook, change: AlertChange): boolean {
  const rank = SEVERITY_RANK[change.alert.severity as keyof typeof SEVERITY_RANK] ?? 1;
  return hook.events.includes(change.event) && rank >= SEVERITY_RANK[hook.min_severity];
}

/** Persistence of webhooks, their queue and their deliveries. */
export class WebhookStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
    db.run(SCHEMA);
  }

  create(w: Omit<Webhook, "id" | "secret"> & { secret?: string }): Webhook {
    const hook: Webhook = {
      ...w,
      id: `wh_${randomBytes(6).toString("hex")}`,
      secret: w.secret ?? randomBytes(24).toString("base64url"),
    };
    this.#db
      .query(
        "INSERT INTO webhooks (id, name, url, secret, events, min_severity, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run(
        hook.id,
        hook.name,
        hook.url,
        hook.secret,
        JSON.stringify(hook.events),
        hook.min_severity,
        hook.created_at,
      );
    return hook;
  }

  list(): Webhook[] {
    return (
      this.#db.query("SELECT * FROM webhooks ORDER BY created_at, id").all() as Record<string, unknown>[]
    ).map((r) => ({ ...(r as unknown as Webhook), events: JSON.parse(r.events as string) }));
  }

  get(id: string): Webhook | undefined {
    return this.list().find((w) => w.id === id);
  }

  /** Removes a webhook and what it still had queued; its delivery log stays. */
  delete(id: string): boolean {
    return this.#db.transaction(() => {
      this.#db.query("DELETE FROM webhook_queue WHERE webhook = ? AND delivered_at IS NULL").run(id);
      return this.#db.query("DELETE FROM webhooks WHERE id = ?").run(id).changes > 0;
    })();
  }

  /** Queues a change for a webhook; false if that change was queued for it before (deduplicated). */
  enqueue(hook: string, change: AlertChange, at: number): boolean {
    return (
      this.#db
        .query(
          `INSERT INTO webhook_queue (webhook, alert, event, payload, created_at, next_at)
           VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        )
        .run(hook, change.alert.id, change.event, JSON.stringify(change.alert), at, at).changes > 0
    );
  }

  /** Webhooks with something due by `now`. */
  dueHooks(now: number): string[] {
    return (
      this.#db
        .query(
          "SELECT DISTINCT webhook FROM webhook_queue WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_at <= ?",
        )
        .all(now) as { webhook: string }[]
    ).map((r) => r.webhook);
  }

  /** The earliest time anything is due (undefined: nothing queued). */
  nextDue(): number | undefined {
    return (
      (
        this.#db
          .query(
            "SELECT min(next_at) AS t FROM webhook_queue WHERE delivered_at IS NULL AND gave_up_at IS NULL",
          )
          .get() as { t: number | null }
      ).t ?? undefined
    );
  }

  /** A webhook's due notifications, oldest first (one group: one POST). */
  due(hook: string, now: number, limit: number): QueuedNotification[] {
    return this.#db
      .query(
        `SELECT id, webhook, alert, event, payload, created_at, next_at, attempts FROM webhook_queue
         WHERE webhook = ? AND delivered_at IS NULL AND gave_up_at IS NULL AND next_at <= ? ORDER BY id LIMIT ?`,
      )
      .all(hook, now, limit) as QueuedNotification[];
  }

  /** Notifications not yet delivered nor given up (for /metrics and the API). */
  pending(hook?: string): number {
    const sql = "SELECT count(*) AS n FROM webhook_queue WHERE delivered_at IS NULL AND gave_up_at IS NULL";
    return (
      (hook ? this.#db.query(`${sql} AND webhook = ?`).get(hook) : this.#db.query(sql).get()) as { n: number }
    ).n;
  }

  /** Records one attempt and its outcome for the whole group, in one transaction. */
  settle(
    group: QueuedNotification[],
    d: Omit<Delivery, "id" | "notifications" | "alerts" | "attempt">,
    retry: (attempts: number) => number | undefined,
  ): void {
    this.#db.transaction(() => {
      for (const n of group) {
        const attempts = n.attempts + 1;
        if (d.ok) {
          this.#db
            .query("UPDATE webhook_queue SET delivered_at = ?, attempts = ?, last_error = NULL WHERE id = ?")
            .run(d.at, attempts, n.id);
          continue;
        }
        const next = retry(attempts);
        if (next === undefined)
          this.#db
            .query("UPDATE webhook_queue SET gave_up_at = ?, attempts = ?, last_error = ? WHERE id = ?")
            .run(d.at, attempts, d.error, n.id);
        else
          this.#db
            .query("UPDATE webhook_queue SET next_at = ?, attempts = ?, last_error = ? WHERE id = ?")
            .run(next, attempts, d.error, n.id);
      }
      this.#db
        .query(
          `INSERT INTO webhook_deliveries (webhook, at, attempt, notifications, alerts, status, ok, error, duration_ms)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          d.webhook,
          d.at,
          Math.max(...group.map((n) => n.attempts + 1)),
          JSON.stringify(group.map((n) => n.id)),
          JSON.stringify([...new Set(group.map((n) => n.alert))]),
          d.status,
          d.ok ? 1 : 0,
          d.error,
          d.duration_ms,
        );
    })();
  }

  /**
   * Forgets what is settled: queue rows delivered or given up before `before`, and delivery log
   * entries older than `logBefore`. Returns how many rows went.
   */
  prune(before: number, logBefore: number): number {
    return this.#db.transaction(() => {
      const q = this.#db
        .query(
          "DELETE FROM webhook_queue WHERE (delivered_at IS NOT NULL AND delivered_at < ?) OR (gave_up_at IS NOT NULL AND gave_up_at < ?)",
        )
        .run(before, before).changes;
      const d = this.#db.query("DELETE FROM webhook_deliveries WHERE at < ?").run(logBefore).changes;
      return q + d;
    })();
  }

  /** A webhook's delivery log, newest first. */
  deliveries(hook: string, limit: number): Delivery[] {
    return (
      this.#db
        .query("SELECT * FROM webhook_deliveries WHERE webhook = ? ORDER BY id DESC LIMIT ?")
        .all(hook, limit) as Record<string, unknown>[]
    ).map((r) => ({
      ...(r as unknown as Delivery),
      notifications: JSON.parse(r.notifications as string),
      alerts: JSON.parse(r.alerts as string),
      ok: r.ok === 1,
    }));
  }
}
