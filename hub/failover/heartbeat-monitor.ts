// Node liveness as a component that writes: each node's state, and every transition recorded with its reason.
import type { Clock, TimerHandle } from "../../shared/clock.ts";
import type { WitnessReport } from "./witnesses.ts";

/** A node's liveness as the monitor decides it. */
export type NodeHealth = "ready" | "suspect" | "disconnected" | "lost";

/** One recorded change of a node's liveness. */
export interface Transition {
  node: string;
  from: NodeHealth;
  to: NodeHealth;
  at: number;
  /** Why, in words: "connection closed", "no heartbeat for 27 s (suspect_after 25 s)". */
  reason: string;
  /**
   * What else is known: e.g. that the node's whole site went silent at once. Witness reports (peers
   * that still reach the node) go here too when they exist.
   */
  evidence: string[];
}

export interface MonitorPolicy {
  /** Silence after which a connected node is suspect (missed heartbeats). */
  suspectAfterMs: number;
  /** Time a suspect node gets to come back before it counts as disconnected (absorbs reconnect blips). */
  disconnectAfterMs: number;
  /** Silence after which a node is lost. */
  downAfterMs: number;
  /** After the hub starts, nothing is declared worse than suspect for this long. */
  restartGraceMs: number;
  /** Each node's timeouts are stretched by up to this share (fixed per node), so a fleet never expires together. */
  jitter: number;
  /** How often every node is re-evaluated. */
  tickMs: number;
}

/** What the monitor reads about nodes: the registry's liveness, narrowed. */
export interface LivenessSource {
  /** Every known node with its stored last-seen time and labels. */
  list(): { id: string; last_seen: number; labels: Record<string, string> }[];
  isConnected(id: string): boolean;
  /** Last time this hub process heard from the node. */
  lastHeard(id: string): number | undefined;
  /** How many nodes `list` holds (cheap): a count above the monitor's means nodes to take in. */
  count?(): number;
}

interface Entry {
  health: NodeHealth;
  /** When the node left ready (or the hub started without hearing from it). */
  troubleSince: number;
  /** When the current state began. */
  since: number;
  reason: string;
  evidence: string[];
  /** 0..1, fixed per node: the share of `jitter` its timeouts are stretched by. */
  spread: number;
  site: string | undefined;
  closedAt: number | undefined;
  /** The last witnesses' report while the node is out of contact (cleared when it is ready again). */
  witness: WitnessReport | undefined;
  /** Witnesses are being asked about it and none has reported yet since it left ready. */
  asking: boolean;
}

/** A node as the failover reconciler sees it. */
export interface NodeLiveness {
  health: NodeHealth;
  since: number;
  troubleSince: number;
  reason: string;
  evidence: string[];
  /**
   * Out of contact but not dead: its whole site is out at once, or peers still reach it. Its copies
   * are frozen in place unless the workload asks to move them. Also true while the first round of
   * witnesses is out (a few seconds at most): what they say decides whether it is dead.
   */
  partitioned: boolean;
}

// A stable 0..1 number per node id (FNV-1a), so a node's jitter is the same on every evaluation.
function spreadOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  // Murmur3's finaliser: ids that differ in their last character still land far apart.
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 0x1_0000_0000;
}

/** The evidence a node carries when its whole site is out of contact. */
export const partitionNote = (site: string, nodes: number) =>
  `site ${site}: all ${nodes} nodes out of contact (partition)`;

const secs = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/**
 * Owns node liveness. A closed session (WebSocket close, MQTT Last Will) makes a node suspect at
 * once; silence does after `suspectAfterMs`; a node still out after `disconnectAfterMs` is
 * disconnected, and after `downAfterMs` of silence lost. Each change is written through
 * `onTransition` (events, metrics, and the failover pass that acts on it).
 */
export class HeartbeatMonitor {
  readonly #src: LivenessSource;
  readonly #clock: Clock;
  readonly #onTransition: (t: Transition) => void;
  readonly #startedAt: number;
  readonly #nodes = new Map<string, Entry>();
  #policy: MonitorPolicy;
  #timer: TimerHandle | undefined;

  constructor(o: {
    source: LivenessSource;
    policy: MonitorPolicy;
    clock: Clock;
    onTransition: (t: Transition) => void;
  }) {
    this.#src = o.source;
    this.#policy = o.policy;
    this.#clock = o.clock;
    this.#onTransition = o.onTransition;
    this.#startedAt = o.clock.now();
    // A hub that just woke has heard from nobody: every known node starts suspect, within the grace.
    for (const n of o.source.list())
      this.#track(n.id, n.labels, "suspect", "the hub started and has not heard from it yet");
  }

  /** Starts the periodic evaluation. */
  start(): void {
    this.#timer ??= this.#clock.setInterval(() => this.evaluate(), this.#policy.tickMs);
  }

  stop(): void {
    this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** New timeouts (hot reload); they apply from the next evaluation. */
  setPolicy(policy: MonitorPolicy): void {
    this.#policy = policy;
  }

  /** A session started (true) or ended (false). */
  onLiveness(id: string, connected: boolean, labels: Record<string, string> = {}): void {
    const now = this.#clock.now();
    const e = this.#nodes.get(id) ?? this.#track(id, labels, connected ? "ready" : "suspect", "first seen");
    if (labels.site !== undefined) e.site = labels.site;
    if (!connected) e.closedAt = now;
    this.#evaluateOne(id, e, now);
  }

  /** The node's liveness now (undefined for a node never seen). */
  get(id: string): NodeLiveness | undefined {
    const e = this.#nodes.get(id);
    if (!e) return undefined;
    const seen = e.witness !== undefined && e.witness.reached > 0;
    const asking = e.asking && e.witness === undefined;
    const evidence =
      e.witness && !e.evidence.includes(e.witness.note) ? [...e.evidence, e.witness.note] : e.evidence;
    return {
      health: e.health,
      since: e.since,
      troubleSince: e.troubleSince,
      reason: e.reason,
      evidence: asking ? [...evidence, "witnesses asked, no answer yet"] : evidence,
      partitioned: seen || asking,
    };
  }

  /** A round of witnesses is out for a node out of contact: its copies wait for their answer. */
  witnessAsked(node: string): void {
    const e = this.#nodes.get(node);
    if (e && e.health !== "ready") e.asking = true;
  }

  /**
   * What the witnesses said about a node out of contact (ignored once it is ready again). A round in
   * which no peer answered says nothing: an earlier answer stands.
   */
  setWitness(report: WitnessReport): void {
    const e = this.#nodes.get(report.node);
    if (!e || e.health === "ready") return;
    e.asking = false;
    if (report.asked > 0 && report.answered === 0 && e.witness && e.witness.answered > 0) return;
    e.witness = report;
    this.#evaluateOne(report.node, e, this.#clock.now());
  }

  /**
   * Every tracked node's liveness. A node out of contact whose whole site (two nodes or more) is out
   * too carries the evidence of a site partition, however the site went out (one by one or at once).
   */
  all(): Map<string, NodeLiveness> {
    const sites = new Map<string, { total: number; out: number }>();
    for (const e of this.#nodes.values()) {
      if (e.site === undefined) continue;
      const c = sites.get(e.site) ?? { total: 0, out: 0 };
      c.total += 1;
      if (e.health !== "ready") c.out += 1;
      sites.set(e.site, c);
    }
    const out = new Map<string, NodeLiveness>();
    for (const [id, e] of this.#nodes) {
      const l = this.get(id)!;
      const c = e.site !== undefined ? sites.get(e.site) : undefined;
      const note = c && c.total >= 2 && c.out === c.total ? partitionNote(e.site!, c.total) : undefined;
      if (note && !l.evidence.includes(note)) l.evidence = [...l.evidence, note];
      if (note) l.partitioned = true;
      out.set(id, l);
    }
    return out;
  }

  /** Nodes per state, for /metrics. */
  counts(): Record<NodeHealth, number> {
    const c: Record<NodeHealth, number> = { ready: 0, suspect: 0, disconnected: 0, lost: 0 };
    for (const e of this.#nodes.values()) c[e.health] += 1;
    return c;
  }

  /**
   * This hub begins to lead failover (hub/replicas): what it judged while another replica led was never
   * recorded, so every node it does not hold ready is judged again from here. Each starts suspect; the
   * next evaluation moves it by its last-heard time (its own or the stored one), and each change is
   * recorded. A node not heard from since this process started still gets the restart grace. Ready
   * nodes are left as they are (the leader before saw them ready too, and a fleet's worth of
   * "suspect -> ready" entries would bury the log at every hand-over).
   */
  rebase(reason: string): void {
    const now = this.#clock.now();
    for (const e of this.#nodes.values()) {
      if (e.health === "ready") continue;
      e.health = "suspect";
      e.since = now;
      e.troubleSince = now;
      e.reason = reason;
      e.evidence = [];
      e.closedAt = undefined;
      e.witness = undefined;
      e.asking = false;
    }
  }

  /** Re-evaluates every node now. */
  evaluate(): void {
    // Nodes that joined through another replica on the same store are followed too: this one may
    // lead failover when that one dies.
    if (this.#src.count !== undefined && this.#src.count() > this.#nodes.size)
      for (const n of this.#src.list())
        if (!this.#nodes.has(n.id)) this.#track(n.id, n.labels, "suspect", "not heard from by this hub yet");
    const now = this.#clock.now();
    for (const [id, e] of this.#nodes) this.#evaluateOne(id, e, now);
  }

  #track(id: string, labels: Record<string, string>, health: NodeHealth, reason: string): Entry {
    const now = this.#clock.now();
    const e: Entry = {
      health,
      troubleSince: now,
      since: now,
      reason,
      evidence: [],
      spread: spreadOf(id),
      site: labels.site,
      closedAt: undefined,
      witness: undefined,
      asking: false,
    };
    this.#nodes.set(id, e);
    return e;
  }

  #evaluateOne(id: string, e: Entry, now: number): void {
    const p = this.#policy;
    const stretch = 1 + p.jitter * e.spread;
    const heardHere = this.#src.lastHeard(id);
    const heard = Math.max(heardHere ?? 0, this.#startedAt);
    const silence = now - heard;
    const suspectAfter = p.suspectAfterMs * stretch;
    const connected = this.#src.isConnected(id);
    if (connected && silence < suspectAfter) {
      e.closedAt = undefined;
      e.witness = undefined;
      e.asking = false;
      this.#set(id, e, "ready", now, "connected and heard from");
      return;
    }
    let reason: string;
    if (e.health === "ready") {
      // Leaving ready: trouble began at the close, or when the heartbeats stopped counting.
      e.troubleSince = connected ? heard + suspectAfter : (e.closedAt ?? now);
      reason = connected
        ? `no heartbeat for ${secs(silence)} (suspect_after ${secs(suspectAfter)})`
        : "connection closed";
    } else reason = e.reason;
    // The grace is for nodes this hub process has not heard from yet: it cannot know about them.
    const inGrace = heardHere === undefined && now - this.#startedAt < p.restartGraceMs;
    // A node its neighbours still reach is partitioned, not dead: it stays disconnected.
    const seen = e.witness !== undefined && e.witness.reached > 0;
    if (!inGrace && !seen && silence >= p.downAfterMs * stretch) {
      reason = `silent for ${secs(silence)} (down_after ${secs(p.downAfterMs * stretch)})`;
      this.#set(id, e, "lost", now, reason);
      return;
    }
    if (!inGrace && now - e.troubleSince >= p.disconnectAfterMs * stretch) {
      if (e.health !== "disconnected" && e.health !== "lost")
        reason = `out of contact for ${secs(now - e.troubleSince)} (${e.reason})`;
      // Lost stays lost until the node is heard from again, or its neighbours say they reach it.
      if (seen && e.health === "lost") reason = e.witness!.note;
      this.#set(id, e, e.health === "lost" && !seen ? "lost" : "disconnected", now, reason);
      return;
    }
    this.#set(id, e, "suspect", now, reason);
  }

  #set(id: string, e: Entry, to: NodeHealth, now: number, reason: string): void {
    if (e.health === to) return;
    const from = e.health;
    e.health = to;
    e.since = now;
    e.reason = reason;
    e.evidence = to === "ready" ? [] : this.#evidence(id, e);
    if (to !== "ready" && e.witness) e.evidence = [...e.evidence, e.witness.note];
    this.#onTransition({ node: id, from, to, at: now, reason, evidence: e.evidence });
  }

  // A node whose whole site (two nodes or more) is out at once is behind a partition of that site.
  #evidence(id: string, e: Entry): string[] {
    if (e.site === undefined) return [];
    let total = 0;
    let out = 0;
    for (const [other, x] of this.#nodes) {
      if (x.site !== e.site) continue;
      total += 1;
      if (other === id || x.health !== "ready") out += 1;
    }
    return total >= 2 && out === total ? [partitionNote(e.site, total)] : [];
  }
}
