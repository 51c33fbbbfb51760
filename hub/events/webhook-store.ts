// Webhooks in the hub's store: their settings, the durable queue of notifications to send, and the delivery log.
import { randomBytes } from "node:crypto";
import type { HubSql } from "../store/sql/index.ts";
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

const SEVERITY_RANK = { info: 0, warning: 1, critical: 2 } as const;

/** Whether `hook` hears a change of this severity and kind. */
export function hears(hook: Webhook, change: AlertChange): boolean {
  const rank = SEVERITY_RANK[change.alert.severity as keyof typeof SEVERITY_RANK] ?? 1;
  return hook.events.includes(change.event) && rank >= SEVERITY_RANK[hook.min_severity];
}

/** Persistence of webhooks, their queue and their deliveries, on the hub's HubSql. */
export class WebhookStore {
  readonly #sql: HubSql;
  /** Notifications pending as last read (the metrics collector's; `refreshPending` reads it). */
  #pending = 0;

  constructor(sql: HubSql) {
    this.#sql = sql;
  }

  async create(w: Omit<Webhook, "id" | "secret"> & { secret?: string }): Promise<Webhook> {
    const hook: Webhook = {
      ...w,
      id: `wh_${randomBytes(6).toString("hex")}`,
      secret: w.secret ?? randomBytes(24).toString("base64url"),
    };
    await this.#sql.run(
      "INSERT INTO webhooks (id, name, url, secret, events, min_severity, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      [
        hook.id,
        hook.name,
        hook.url,
        hook.secret,
        JSON.stringify(hook.events),
        hook.min_severity,
        hook.created_at,
      ],
    );
    return hook;
  }

  async list(via: HubSql = this.#sql): Promise<Webhook[]> {
    const rows = await via.all<Record<string, unknown>>("SELECT * FROM webhooks ORDER BY created_at, id");
    return rows.map((r) => ({ ...(r as unknown as Webhook), events: JSON.parse(r.events as string) }));
  }

  async get(id: string): Promise<Webhook | undefined> {
    const r = await this.#sql.get<Record<string, unknown>>("SELECT * FROM webhooks WHERE id = ?", [id]);
    return r ? { ...(r as unknown as Webhook), events: JSON.parse(r.events as string) } : undefined;
  }

  /** Removes a webhook and what it still had queued; its delivery log stays. */
  delete(id: string): Promise<boolean> {
    return this.#sql.tx(async (tx) => {
      await tx.run("DELETE FROM webhook_queue WHERE webhook = ? AND delivered_at IS NULL", [id]);
      return (await tx.run("DELETE FROM webhooks WHERE id = ?", [id])).changes > 0;
    });
  }

  /**
   * Queues a change for a webhook, through the transaction that made the change; false if that change
   * was queued for it before (deduplicated).
   */
  async enqueue(tx: HubSql, hook: string, change: AlertChange, at: number): Promise<boolean> {
    const r = await tx.run(
      `INSERT INTO webhook_queue (webhook, alert, event, payload, created_at, next_at)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [hook, change.alert.id, change.event, JSON.stringify(change.alert), at, at],
    );
    return r.changes > 0;
  }

  /** Webhooks with something due by `now`. */
  async dueHooks(now: number): Promise<string[]> {
    const rows = await this.#sql.all<{ webhook: string }>(
      "SELECT DISTINCT webhook FROM webhook_queue WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_at <= ?",
      [now],
    );
    return rows.map((r) => r.webhook);
  }

  /** The earliest time anything is due (undefined: nothing queued). */
  async nextDue(): Promise<number | undefined> {
    const row = await this.#sql.get<{ t: number | null }>(
      "SELECT min(next_at) AS t FROM webhook_queue WHERE delivered_at IS NULL AND gave_up_at IS NULL",
    );
    return row?.t ?? undefined;
  }

  /** A webhook's due notifications, oldest first (one group: one POST). */
  due(hook: string, now: number, limit: number): Promise<QueuedNotification[]> {
    return this.#sql.all<QueuedNotification>(
      `SELECT id, webhook, alert, event, payload, created_at, next_at, attempts FROM webhook_queue
       WHERE webhook = ? AND delivered_at IS NULL AND gave_up_at IS NULL AND next_at <= ? ORDER BY id LIMIT ?`,
      [hook, now, limit],
    );
  }

  /** Notifications not yet delivered nor given up (the API). */
  async pending(hook?: string): Promise<number> {
    // A row queued for a webhook deleted meanwhile (on another replica) is nobody's: not pending.
    const sql = `SELECT count(*) AS n FROM webhook_queue WHERE delivered_at IS NULL AND gave_up_at IS NULL
      AND webhook IN (SELECT id FROM webhooks)`;
    const row = await (hook
      ? this.#sql.get<{ n: number }>(`${sql} AND webhook = ?`, [hook])
      : this.#sql.get<{ n: number }>(sql));
    return Number(row?.n ?? 0);
  }

  /** All notifications pending, as last read by `refreshPending` (for /metrics). */
  pendingNow(): number {
    return this.#pending;
  }

  /** Reads the pending count again (before a metrics scrape). */
  async refreshPending(): Promise<void> {
    this.#pending = await this.pending();
  }

  /** Records one attempt and its outcome for the whole group, in one transaction. */
  async settle(
    group: QueuedNotification[],
    d: Omit<Delivery, "id" | "notifications" | "alerts" | "attempt">,
    retry: (attempts: number) => number | undefined,
  ): Promise<void> {
    await this.#sql.tx(async (tx) => {
      for (const n of group) {
        const attempts = n.attempts + 1;
        if (d.ok) {
          await tx.run(
            "UPDATE webhook_queue SET delivered_at = ?, attempts = ?, last_error = NULL WHERE id = ?",
            [d.at, attempts, n.id],
          );
          continue;
        }
        const next = retry(attempts);
        if (next === undefined)
          await tx.run("UPDATE webhook_queue SET gave_up_at = ?, attempts = ?, last_error = ? WHERE id = ?", [
            d.at,
            attempts,
            d.error,
            n.id,
          ]);
        else
          await tx.run("UPDATE webhook_queue SET next_at = ?, attempts = ?, last_error = ? WHERE id = ?", [
            next,
            attempts,
            d.error,
            n.id,
          ]);
      }
      await tx.run(
        `INSERT INTO webhook_deliveries (webhook, at, attempt, notifications, alerts, status, ok, error, duration_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          d.webhook,
          d.at,
          Math.max(...group.map((n) => n.attempts + 1)),
          JSON.stringify(group.map((n) => n.id)),
          JSON.stringify([...new Set(group.map((n) => n.alert))]),
          d.status,
          d.ok ? 1 : 0,
          d.error,
          d.duration_ms,
        ],
      );
    });
  }

  /**
   * Forgets what is settled: queue rows delivered or given up before `before`, and delivery log
   * entries older than `logBefore`. Returns how many rows went.
   */
  prune(before: number, logBefore: number): Promise<number> {
    return this.#sql.tx(async (tx) => {
      const q = await tx.run(
        "DELETE FROM webhook_queue WHERE (delivered_at IS NOT NULL AND delivered_at < ?) OR (gave_up_at IS NOT NULL AND gave_up_at < ?)",
        [before, before],
      );
      const d = await tx.run("DELETE FROM webhook_deliveries WHERE at < ?", [logBefore]);
      // Rows queued for a webhook that was deleted while they were being queued.
      const orphans = await tx.run(
        "DELETE FROM webhook_queue WHERE delivered_at IS NULL AND webhook NOT IN (SELECT id FROM webhooks)",
      );
      return q.changes + d.changes + orphans.changes;
    });
  }

  /** A webhook's delivery log, newest first. */
  async deliveries(hook: string, limit: number): Promise<Delivery[]> {
    const rows = await this.#sql.all<Record<string, unknown>>(
      "SELECT * FROM webhook_deliveries WHERE webhook = ? ORDER BY id DESC LIMIT ?",
      [hook, limit],
    );
    return rows.map((r) => ({
      ...(r as unknown as Delivery),
      notifications: JSON.parse(r.notifications as string),
      alerts: JSON.parse(r.alerts as string),
      ok: r.ok === 1,
    }));
  }
}
