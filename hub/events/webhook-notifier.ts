// Sends alert changes to webhooks: queued durably, grouped per webhook, signed, retried with exponential back-off.
import { createHmac, randomBytes } from "node:crypto";
import type { Clock, TimerHandle } from "../../shared/clock.ts";
import { LogLimiter, type Logger } from "../../shared/log.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import type { Alert, AlertChange } from "./alert-store.ts";
import { hears, type QueuedNotification, type WebhookStore } from "./webhook-store.ts";
import { type OneAtATime, oneAtATime } from "../../shared/one-at-a-time.ts";
import { afterTx } from "../store/after-tx.ts";
import { type Leadership, soleLeader } from "../replicas/leadership.ts";
import type { HubSql } from "../store/sql/index.ts";

/** The header that carries `sha256=<hex HMAC-SHA256 of the body with the webhook's secret>`. */
export const SIGNATURE_HEADER = "x-novacron-signature";
/** The header that names one delivery attempt's group (the same on every retry of it). */
export const DELIVERY_HEADER = "x-novacron-delivery";

/** The signature header's value for `body`. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Delay before attempt `attempts + 1`: base·2^(attempts-1), at most `maxMs`. */
export function backoffMs(attempts: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempts - 1, 30)));
}

const WORD = { opened: "FIRING", acknowledged: "ACKNOWLEDGED", resolved: "RESOLVED" } as const;
const COLOR = { critical: "#d62728", warning: "#ff7f0e", info: "#1f77b4" } as const;

/**
 * The JSON a webhook receives: `text` (what Slack and Teams show), Slack `attachments` with
 * `fields`, and `alerts` with every alert in full for programs.
 */
export function notificationBody(
  hubId: string,
  delivery: string,
  group: { event: AlertChange["event"]; alert: Alert; notification: number }[],
  now: number,
) {
  const line = (g: (typeof group)[number]) =>
    `[${WORD[g.event]}] ${g.alert.severity} ${g.alert.rule}${g.alert.node ? ` on ${g.alert.node}` : ""}: ${g.alert.message}`;
  const head =
    group.length === 1 ? `NovaCron hub ${hubId}: ` : `NovaCron hub ${hubId}: ${group.length} alert changes\n`;
  return {
    text: head + group.map(line).join("\n"),
    attachments: group.map((g) => ({
      color: COLOR[g.alert.severity as keyof typeof COLOR] ?? COLOR.warning,
      title: `${WORD[g.event]}: ${g.alert.rule}`,
      text: g.alert.message,
      fields: [
        { title: "severity", value: g.alert.severity, short: true },
        { title: "node", value: g.alert.node ?? "-", short: true },
        { title: "state", value: g.alert.state, short: true },
        { title: "alert", value: String(g.alert.id), short: true },
        ...(g.alert.acknowledged_by
          ? [{ title: "acknowledged by", value: g.alert.acknowledged_by, short: true }]
          : []),
      ],
      ts: Math.floor((g.alert.updated_at ?? now) / 1000),
    })),
    hub: hubId,
    delivery,
    sent_at: now,
    alerts: group.map((g) => ({ notification: g.notification, event: g.event, ...g.alert })),
  };
}

export interface NotifierOptions {
  store: WebhookStore;
  clock: Clock;
  hubId: string;
  log: Logger;
  metrics: MetricsRegistry;
  /** First retry after this long, doubling each time (default 1 s). */
  retryBaseMs?: number;
  /** Longest wait between two attempts (default 5 min). */
  retryMaxMs?: number;
  /** A notification not delivered this long after it was queued is given up (default 24 h). */
  giveUpAfterMs?: number;
  /** At most this many notifications in one POST (default 50). */
  groupMax?: number;
  /** How long one POST may take (default 10 s). */
  timeoutMs?: number;
  /** Whether this hub delivers the queue now (hub/replicas); one hub alone always does. */
  leader?: Leadership;
}

/** Delivers the webhook queue; safe to run with other hubs' queues in other databases. */
export class WebhookNotifier {
  readonly #o: Required<Omit<NotifierOptions, "store" | "clock" | "hubId" | "log" | "metrics" | "leader">> &
    NotifierOptions;
  readonly #inFlight = new Set<string>();
  readonly #count: (by?: number, labels?: Record<string, string>) => void;
  #timer: TimerHandle | undefined;
  #running = false;
  #lastPrune = 0;
  /** Asks for a round: one at a time, and one asked meanwhile runs after it, once. */
  readonly #round: OneAtATime;

  constructor(o: NotifierOptions) {
    this.#o = {
      retryBaseMs: 1000,
      retryMaxMs: 300_000,
      giveUpAfterMs: 86_400_000,
      groupMax: 50,
      timeoutMs: 10_000,
      ...o,
    };
    // A round fails every second while the store is away: logged once per 10 s.
    const failures = new LogLimiter(o.log, { intervalMs: 10_000 });
    this.#round = oneAtATime(
      () => this.#tick(),
      (err) => failures.error("round", "webhook round failed", { error: (err as Error).message }),
    );
    this.#count = o.metrics.counter(
      "novacron_hub_webhook_deliveries_total",
      "Webhook POSTs made, by result (ok, failed)",
    );
    o.metrics.beforeScrape(() => o.store.refreshPending());
    o.metrics.gauge(
      "novacron_hub_webhook_queue_pending",
      "Alert notifications queued and not yet delivered",
      () => o.store.pendingNow(),
    );
  }

  /**
   * Queues a change for every webhook that hears it, in the transaction `tx` that made the change (the
   * queue is the alerts' outbox), then tries to send once that transaction has ended.
   */
  async onChange(tx: HubSql, change: AlertChange): Promise<void> {
    const now = this.#o.clock.now();
    let queued = false;
    for (const hook of await this.#o.store.list(tx)) {
      if (hears(hook, change) && (await this.#o.store.enqueue(tx, hook.id, change, now))) queued = true;
    }
    if (queued && this.#running) afterTx(() => this.tick());
  }

  start(): void {
    this.#running = true;
    const every = Math.max(50, Math.min(1000, Math.floor(this.#o.retryBaseMs / 2)));
    this.#timer ??= this.#o.clock.setInterval(() => this.tick(), every);
    setImmediate(() => this.tick());
  }

  /** Resolves once no round runs or is asked for (deliveries in flight go on). */
  settled(): Promise<void> {
    return this.#round.idle();
  }

  stop(): void {
    this.#running = false;
    this.#o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Sends one group to every webhook with something due and nothing in flight. */
  tick(): void {
    if (this.#running) this.#round();
  }

  async #tick(): Promise<void> {
    if (!this.#running || !(this.#o.leader ?? soleLeader).active()) return;
    const now = this.#o.clock.now();
    if (now - this.#lastPrune >= 3_600_000) {
      // A settled notification is kept a week (a queued one is never dropped: it is due or given up);
      // the delivery log a month.
      this.#lastPrune = now;
      await this.#o.store.prune(now - 7 * 86_400_000, now - 30 * 86_400_000);
    }
    for (const id of await this.#o.store.dueHooks(now)) {
      if (this.#inFlight.has(id) || !this.#running) continue;
      const hook = await this.#o.store.get(id);
      if (!hook) continue;
      const group = await this.#o.store.due(id, now, this.#o.groupMax);
      if (group.length === 0 || this.#inFlight.has(id)) continue;
      this.#inFlight.add(id);
      void this.#send(hook.id, hook.url, hook.secret, group)
        .catch((err: unknown) =>
          this.#o.log.error("a webhook delivery could not be recorded", {
            webhook: id,
            error: (err as Error).message,
          }),
        )
        .finally(async () => {
          this.#inFlight.delete(id);
          // More may be due already (a group larger than groupMax, or a retry that came due).
          if (
            this.#running &&
            ((await this.#o.store.nextDue().catch(() => undefined)) ?? Infinity) <= this.#o.clock.now()
          )
            this.tick();
        });
    }
  }

  async #send(hook: string, url: string, secret: string, group: QueuedNotification[]): Promise<void> {
    const o = this.#o;
    const started = o.clock.now();
    // The delivery id is made from the notifications it carries: a retry of the same group has the same id.
    const delivery = `${hook}:${group.map((n) => n.id).join(",")}`;
    const deliveryId = delivery.length > 100 ? `${hook}:${randomBytes(8).toString("hex")}` : delivery;
    const body = JSON.stringify(
      notificationBody(
        o.hubId,
        deliveryId,
        group.map((n) => ({ event: n.event, alert: JSON.parse(n.payload) as Alert, notification: n.id })),
        started,
      ),
    );
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "novacron-hub",
          [SIGNATURE_HEADER]: signBody(secret, body),
          [DELIVERY_HEADER]: deliveryId,
        },
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(o.timeoutMs),
      });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const at = o.clock.now();
    const ok = error === null;
    // Stopped meanwhile (the database may be closed): the rows stay due, and the next start sends them
    // again with the same delivery id, by which a receiver can tell. A deleted webhook has nothing to settle.
    if (!this.#running || !(await o.store.get(hook))) return;
    await o.store.settle(
      group,
      { webhook: hook, at, status, ok, error, duration_ms: Math.max(0, at - started) },
      (attempts) => {
        const oldest = Math.min(...group.map((n) => n.created_at));
        if (at - oldest >= o.giveUpAfterMs) return undefined;
        return at + backoffMs(attempts, o.retryBaseMs, o.retryMaxMs);
      },
    );
    this.#count(1, { result: ok ? "ok" : "failed" });
    if (ok) o.log.info("webhook delivered", { webhook: hook, notifications: group.length });
    else o.log.warn("webhook delivery failed", { webhook: hook, error, attempts: group[0]!.attempts + 1 });
  }
}
