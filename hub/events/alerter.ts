// The thin applier of hub alerting: gathers facts, runs the pure evaluation, writes what it decided.
import type { Clock, TimerHandle } from "../../shared/clock.ts";
import type { Logger } from "../../shared/log.ts";
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
import { afterTx } from "../store/after-tx.ts";

export interface AlerterOptions {
  store: AlertStore;
  clock: Clock;
  log: Logger;
  /** How often the rules are evaluated besides right after a node transition (default 5 s). */
  intervalMs?: number;
  /** The fleet now (nodes, workloads); failover entries come from `failoverAfter`. */
  facts: () => Omit<AlertFacts, "failover" | "now">;
  /** Failover log entries after id `after`, oldest first (a bounded number of them). */
  failoverAfter: (after: number) => FailoverFact[];
  /** The failover log's newest id. */
  failoverLast: () => number;
}

const CURSOR = "failover_cursor";

/** Evaluates alert rules on a timer and on demand; agent alerts go through it into the same lifecycle. */
export class Alerter {
  readonly #o: AlerterOptions;
  readonly #memory: AlertMemory = emptyMemory();
  #timer: TimerHandle | undefined;
  #queued = false;

  constructor(o: AlerterOptions) {
    this.#o = o;
    // A fresh database starts reading the failover log where it stands (old failovers are history).
    if (o.store.meta(CURSOR) === undefined) o.store.setMeta(CURSOR, o.failoverLast());
  }

  start(): void {
    this.#timer ??= this.#o.clock.setInterval(() => this.evaluate(), this.#o.intervalMs ?? 5000);
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
      if (this.#timer !== undefined) this.evaluate();
      else this.#queued = false;
    });
  }

  /** One evaluation, applied in one transaction; returns what was decided. */
  evaluate(): AlertDecisions {
    this.#queued = false;
    const o = this.#o;
    const store = o.store;
    return store.db.transaction(() => {
      const cursor = store.meta(CURSOR) ?? 0;
      const entries = o.failoverAfter(cursor);
      const last = entries.at(-1)?.id ?? cursor;
      const facts: AlertFacts = { ...o.facts(), now: o.clock.now(), failover: entries };
      const d = evaluateAlerts(effectiveRules(store.rules()), facts, store.live(), this.#memory);
      for (const a of d.open) {
        const opened = store.open(a, "hub");
        if (opened) o.log.warn("alert opened", { alert: opened.id, rule: a.rule, message: a.message });
      }
      for (const u of d.update) store.update(u.id, u.message);
      for (const r of d.resolve) {
        const resolved = store.resolve(r.id, r.reason);
        if (resolved) o.log.info("alert resolved", { alert: r.id, rule: resolved.rule, reason: r.reason });
      }
      if (last !== cursor) store.setMeta(CURSOR, last);
      return d;
    })();
  }

  /** An agent's `alert` opens (once per node and source) and its `alert_clear` resolves an alert. */
  onAgentEvent(node: string, e: Body<"event">): void {
    if (e.kind !== "alert" && e.kind !== "alert_clear") return;
    const f = e.fields ?? {};
    const source = typeof f.source === "string" && f.source !== "" ? f.source : "";
    const key = `agent:${node}:${source || e.message}`;
    if (e.kind === "alert") {
      this.#o.store.open(
        { key, rule: source || "agent", node, severity: agentSeverity(f.severity), message: e.message },
        "agent",
        Math.min(e.at, this.#o.clock.now()),
      );
      return;
    }
    const live = this.#o.store.liveByKey(key);
    if (live) this.#o.store.resolve(live.id, e.message, `node:${node}`);
  }
}
