// The thin applier of hub alerting: gathers facts, runs the pure evaluation, writes what it decided.
import type { Clock, TimerHandle } from "../../shared/clock.ts";
import { LogLimiter, type Logger } from "../../shared/log.ts";
import type { Body } from "../../shared/protocol/index.ts";
import {
  type AlertDecisions,
  type AlertFacts,
  type AlertMemory,
  emptyMemory,
  evaluateAlerts,
  type FailoverFact,
} from "./alert-evaluate.ts";
import { effectiveRules } from "./alert-rules.ts";
import { agentSeverity, type AlertStore } from "./alert-store.ts";
import { afterCommit, afterTx } from "../store/after-tx.ts";
import type { HubSql } from "../store/sql/index.ts";
import { type Leadership, soleLeader } from "../replicas/leadership.ts";

export interface AlerterOptions {
  store: AlertStore;
  clock: Clock;
  log: Logger;
  /** How often the rules are evaluated besides right after a node transition (default 5 s). */
  intervalMs?: number;
  /** The fleet now (nodes, workloads read through `via`); failover entries come from `failoverAfter`. */
  facts: (via: HubSql) => Promise<Omit<AlertFacts, "failover" | "now">>;
  /** Failover log entries after id `after`, oldest first (a bounded number of them), read through `via`. */
  failoverAfter: (after: number, via: HubSql) => Promise<FailoverFact[]>;
  /** The failover log's newest id. */
  failoverLast: () => Promise<number>;
  /** Told after each evaluation has committed. */
  onEvaluated?: () => void;
  /** Whether this hub evaluates the rules now (hub/replicas); one hub alone always does. */
  leader?: Leadership;
}

const CURSOR = "failover_cursor";

/** Evaluates alert rules on a timer and on demand; agent alerts go through it into the same lifecycle. */
export class Alerter {
  readonly #o: AlerterOptions;
  #memory: AlertMemory = emptyMemory();
  /** The cursor set, on a fresh database, to where the failover log stands now. */
  readonly #ready: Promise<void>;
  #timer: TimerHandle | undefined;
  #queued = false;
  /** The evaluation running, if one is: another asked meanwhile runs after it, once. */
  #running: Promise<AlertDecisions> | undefined;

  /** Evaluations fail every tick while the store is away: logged once per 10 s. */
  readonly #failures: LogLimiter;

  constructor(o: AlerterOptions) {
    this.#o = o;
    this.#failures = new LogLimiter(o.log, { intervalMs: 10_000 });
    // A fresh database starts reading the failover log where it stands (old failovers are history).
    this.#ready = o
      .failoverLast()
      .then((last) =>
        o.store.sql.run("INSERT INTO alert_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING", [
          CURSOR,
          last,
        ]),
      )
      .then(
        () => {},
        // A hub closed at once, or a store away: the first evaluation starts from the log's start.
        (err: unknown) =>
          o.log.warn("the alerts' failover cursor could not be set", { error: (err as Error).message }),
      );
  }

  start(): void {
    this.#timer ??= this.#o.clock.setInterval(() => this.#evaluateNow(), this.#o.intervalMs ?? 5000);
  }

  stop(): void {
    this.#o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Asks for an evaluation soon (once, however many times asked in the same turn). */
  kick(): void {
    if (this.#queued || this.#timer === undefined) return;
    this.#queued = true;
    // Not after stop(): the database may be closed by then.
    afterTx(() => {
      if (this.#timer !== undefined) this.#evaluateNow();
      else this.#queued = false;
    });
  }

  // A tick of the timer or a kick: skipped while an evaluation runs (the next tick comes soon).
  #evaluateNow(): void {
    if (this.#running) return;
    void this.evaluate().catch((err: unknown) =>
      this.#failures.error("evaluate", "alert evaluation failed", { error: (err as Error).message }),
    );
  }

  /** Resolves once no evaluation runs. */
  async settled(): Promise<void> {
    while (this.#running) await this.#running.catch(() => {});
  }

  /** One evaluation, applied in one transaction; returns what was decided. */
  async evaluate(): Promise<AlertDecisions> {
    while (this.#running) await this.#running.catch(() => {});
    this.#queued = false;
    this.#running = this.#evaluate();
    try {
      return await this.#running;
    } finally {
      this.#running = undefined;
      this.#o.onEvaluated?.();
    }
  }

  async #evaluate(): Promise<AlertDecisions> {
    await this.#ready;
    const o = this.#o;
    const store = o.store;
    // Another replica evaluates (and holds the memory of conditions pending their `for`).
    const leader = o.leader ?? soleLeader;
    if (!leader.active()) return { open: [], update: [], resolve: [] };
    // Each attempt works on a copy of the memory (a `for` begun, a counter seen); the copy of the
    // attempt that committed becomes the memory, so a rolled-back or repeated one leaves no trace.
    let memory = this.#memory;
    const d = await store.sql.tx(async (tx) => {
      await leader.fence(tx);
      memory = structuredClone(this.#memory);
      const cursor = (await store.meta(tx, CURSOR)) ?? 0;
      const entries = await o.failoverAfter(cursor, tx);
      const last = entries.at(-1)?.id ?? cursor;
      const facts: AlertFacts = { ...(await o.facts(tx)), now: o.clock.now(), failover: entries };
      const rules = effectiveRules(await store.rules(tx));
      const d = evaluateAlerts(rules, facts, await store.live(tx), memory);
      for (const a of d.open) {
        const opened = await store.open(tx, a, "hub");
        // Logged once committed (a retried attempt would log it twice; a rolled-back one, wrongly).
        if (opened)
          afterCommit(() =>
            o.log.warn("alert opened", { alert: opened.id, rule: a.rule, message: a.message }),
          );
      }
      for (const u of d.update) await store.update(tx, u.id, u.message);
      for (const r of d.resolve) {
        const resolved = await store.resolve(tx, r.id, r.reason);
        if (resolved)
          afterCommit(() =>
            o.log.info("alert resolved", { alert: r.id, rule: resolved.rule, reason: r.reason }),
          );
      }
      if (last !== cursor) await store.setMeta(tx, CURSOR, last);
      return d;
    });
    this.#memory = memory;
    return d;
  }

  /**
   * An agent's `alert` opens (once per node and source) and its `alert_clear` resolves an alert, through
   * the ingest transaction `tx` that stores the event.
   */
  async onAgentEvent(tx: HubSql, node: string, e: Body<"event">): Promise<void> {
    if (e.kind !== "alert" && e.kind !== "alert_clear") return;
    const f = e.fields ?? {};
    const source = typeof f.source === "string" && f.source !== "" ? f.source : "";
    const key = `agent:${node}:${source || e.message}`;
    if (e.kind === "alert") {
      await this.#o.store.open(
        tx,
        { key, rule: source || "agent", node, severity: agentSeverity(f.severity), message: e.message },
        "agent",
        Math.min(e.at, this.#o.clock.now()),
      );
      return;
    }
    const live = await this.#o.store.liveByKey(tx, key);
    if (live) await this.#o.store.resolve(tx, live.id, e.message, `node:${node}`);
  }
}
