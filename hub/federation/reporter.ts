// What a child hub tells its parent: topology changes as they happen, and a summary when it has changed.
import type { Body, MessageType, TopologyChangeBody } from "../../shared/protocol/index.ts";
import { SUMMARY_LIMITS } from "../../shared/protocol/index.ts";
import { encodeRoster } from "./roster.ts";
import {
  type ChildView,
  type LocalNode,
  type LocalWorkload,
  placeLabel,
  type SummaryAlert,
  summarize,
} from "./summarize.ts";

type Status = TopologyChangeBody["to"] & string;

/** Where a node sits and how it is, as the last report said. */
interface Known {
  status: Status;
  level: number;
  region: string;
  site: string;
  cpuFree: number;
  memFree: number;
}

export interface ReporterDeps {
  hubId: string;
  level: number;
  now: () => number;
  /** One of this hub's own nodes (agents, not child hubs) now; undefined when unknown. */
  localNode: (id: string) => Known | undefined;
  /** Every own node, with free capacity, for the summary. */
  localNodes: () => LocalNode[];
  workloads: () => LocalWorkload[];
  children: () => ChildView[];
  /** This hub's own open alerts (the summary adds its children's). */
  alerts?: () => SummaryAlert[];
  /** Node ids of every child's subtree. */
  childRosters: () => Iterable<string>;
  /** Sends a live message to the parent; false when the link is down. */
  send: <T extends MessageType>(type: T, body: Body<T>) => boolean;
  /** How long changes are gathered before they go (default 10 ms). */
  flushMs?: number;
  /**
   * Least time between two summaries that only restate counts and capacity (default 30 s): the parent
   * applies every change to its counts as it arrives, so a summary corrects drift, it does not carry news.
   */
  summaryMinMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
}

/** Least time between two summaries sent because alerts opened or closed (a flapping alert costs at most one per 5 s). */
export const ALERTS_MIN_MS = 5000;

/** Changes past this many at once go as one summary with the roster instead (a site coming back, say). */
export const COALESCE_AT = 1000;

/** Reports this hub's subtree to its parent: each change once, a summary when it differs from the last. */
export class Reporter {
  readonly #d: ReporterDeps;
  readonly #known = new Map<string, Known>();
  readonly #dirty = new Set<string>();
  #pending: TopologyChangeBody[] = [];
  #timer: unknown;
  #rev = 0;
  #lastSummary = "";
  #lastAlerts = "[]";
  #lastSummaryAt = Number.NEGATIVE_INFINITY;
  /** Messages and bytes sent up (for /metrics and the benchmark). */
  readonly sent = { summaries: 0, topology: 0, changes: 0 };

  constructor(d: ReporterDeps) {
    this.#d = d;
  }

  /** Learns the current state without reporting it (at start: the first session's summary says it). */
  prime(): void {
    for (const n of this.#d.localNodes()) this.#known.set(n.id, { ...n });
  }

  /** A node of this hub may have changed (a session began or ended, a liveness transition). */
  markDirty(id: string): void {
    this.#dirty.add(id);
    this.#schedule();
  }

  /** Changes from a child hub, passed on as they are. */
  relay(changes: readonly TopologyChangeBody[]): void {
    for (const c of changes) this.#pending.push(c);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    const set = this.#d.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.#timer = set(() => {
      this.#timer = undefined;
      this.flush();
    }, this.#d.flushMs ?? 10);
  }

  #check(id: string): void {
    const now = this.#d.localNode(id);
    const before = this.#known.get(id);
    if (now && before && now.status === before.status) return;
    if (!now && !before) return;
    if (now) this.#known.set(id, { ...now });
    else this.#known.delete(id);
    const where = now ?? before!;
    this.#pending.push({
      node: id,
      hub: this.#d.hubId,
      level: where.level,
      region: placeLabel(where.region),
      site: placeLabel(where.site),
      from: before?.status ?? null,
      to: now?.status ?? null,
      at: this.#d.now(),
      cpu_free: Math.max(0, Math.round(where.cpuFree)),
      mem_free: Math.max(0, Math.round(where.memFree)),
    });
  }

  /** Sends what is pending: one change batch, or a summary with the roster when too much changed at once. */
  flush(): void {
    for (const id of this.#dirty) this.#check(id);
    this.#dirty.clear();
    if (this.#pending.length === 0) return;
    const changes = this.#pending;
    this.#pending = [];
    if (changes.length > COALESCE_AT) {
      this.sendSummary(true);
      return;
    }
    for (let i = 0; i < changes.length; i += SUMMARY_LIMITS.changes) {
      const body = { rev: this.#rev + 1, changes: changes.slice(i, i + SUMMARY_LIMITS.changes) };
      // Down: the next session opens with a summary that holds all of it.
      if (!this.#d.send("topology", body)) return;
      this.#rev += 1;
      this.sent.topology += 1;
      this.sent.changes += body.changes.length;
    }
  }

  /** Compares every own node with what was reported (drains, anything an event did not say). */
  scan(): void {
    const seen = new Set<string>();
    for (const n of this.#d.localNodes()) {
      seen.add(n.id);
      const k = this.#known.get(n.id);
      if (!k || k.status !== n.status) this.#dirty.add(n.id);
    }
    for (const id of this.#known.keys()) if (!seen.has(id)) this.#dirty.add(id);
    if (this.#dirty.size > 0) this.flush();
  }

  /** The summary now (without rev); `roster` adds every node id of the subtree. */
  build(roster: boolean): Omit<Body<"summary">, "rev"> {
    const body: Omit<Body<"summary">, "rev"> = summarize({
      hubId: this.#d.hubId,
      level: this.#d.level,
      nodes: this.#d.localNodes(),
      workloads: this.#d.workloads(),
      children: this.#d.children(),
      ...(this.#d.alerts ? { alerts: this.#d.alerts() } : {}),
    });
    if (roster) {
      const ids = [...this.#known.keys(), ...this.#d.childRosters()];
      body.roster_z = encodeRoster(ids.slice(0, SUMMARY_LIMITS.roster));
    }
    return body;
  }

  /**
   * Sends a summary: always with `roster` or when `now` (hubs below came or went), otherwise only when it
   * differs from the last one sent and that one is `summaryMinMs` old.
   */
  sendSummary(roster: boolean, now = false): boolean {
    // Alerts opening or closing are news (once per summary period at most): they go without waiting for summaryMinMs.
    const alertsKey = this.#alertsKey();
    const since = this.#d.now() - this.#lastSummaryAt;
    const alertNews = alertsKey !== this.#lastAlerts && since >= ALERTS_MIN_MS;
    if (!roster && !now && !alertNews && since < (this.#d.summaryMinMs ?? 30_000)) return false;
    const body = this.build(roster);
    const key = JSON.stringify({ ...body, roster_z: undefined });
    if (!roster && key === this.#lastSummary) return false;
    const full = { rev: this.#rev + 1, ...body };
    if (!this.#d.send("summary", full)) return false;
    this.#rev += 1;
    this.#lastSummary = key;
    this.#lastAlerts = alertsKey;
    this.#lastSummaryAt = this.#d.now();
    this.sent.summaries += 1;
    return true;
  }

  // Which alerts of the subtree are open or acknowledged, cheaply (without building the summary).
  #alertsKey(): string {
    if (!this.#d.alerts) return "[]";
    const all = [...this.#d.alerts(), ...this.#d.children().flatMap((c) => c.summary?.alerts ?? [])];
    return JSON.stringify(all.map((a) => [a.hub, a.id, a.state]).sort());
  }

  /** A new session with the parent: it learns everything from one summary with the roster. */
  onConnected(): void {
    this.#pending = [];
    for (const id of this.#dirty) this.#check(id);
    this.#dirty.clear();
    this.#pending = [];
    this.#rev = 0;
    this.sendSummary(true);
  }
}
