// The parent's view of its child hubs: each one's last summary, its roster, its changes; all of it checked.
import type { SummaryBody, TopologyBody, TopologyChangeBody } from "../../shared/protocol/index.ts";
import { decodeRoster } from "./roster.ts";
import { groupKey } from "./summarize.ts";

/** Why something a child sent was refused (counted per child and in /metrics). */
export type RefusalReason =
  | "claim_conflict"
  | "bad_summary"
  | "rate_limited"
  | "stale"
  | "unknown_hub"
  | "malformed";

/** What the parent holds of one child hub. */
export interface ChildState {
  id: string;
  summary: SummaryBody | undefined;
  /** When the last summary or change arrived (this hub's clock). */
  heardAt: number;
  rev: number;
  /** The session the state belongs to (a new session waits for a summary with a roster). */
  session: number;
  roster: Set<string>;
  /** Hubs of its subtree (itself included), from its last accepted summary. */
  hubs: Set<string>;
  refused: Map<RefusalReason, number>;
  /** Change budget: tokens now and when last refilled. */
  tokens: number;
  refilledAt: number;
  /** A summary with a roster is wanted (new session, gap, refused flood). */
  needRoster: boolean;
}

/** A change as the parent records it (the child it came through added). */
export interface ChangeRecord extends TopologyChangeBody {
  via: string;
  /** When this hub received it. */
  received: number;
}

export interface ChildrenOptions {
  hubId: string;
  now: () => number;
  /** Whether a node id is one of this hub's own nodes (agents): no child may claim it. */
  isLocal: (id: string) => boolean;
  /** Whether a child's session is up now. */
  isConnected: (child: string) => boolean;
  /** Changes a child may send per second, and at once (default 1,000 and 5,000). */
  changeRate?: number;
  changeBurst?: number;
  /** Counts a refusal (for /metrics). */
  onRefused?: (child: string, reason: RefusalReason, n: number) => void;
}

/** Outcome of taking one message from a child. */
export interface Taken {
  accepted: number;
  refused: number;
  /** Changes accepted, in order: the caller applies them upwards (its own parent). */
  changes: ChangeRecord[];
  /** The child should be asked for a summary with its roster. */
  resync: boolean;
}

const RECENT = 200;

/** Checks and holds what child hubs report; first claim of a node or hub wins while its owner is connected. */
export class Children {
  readonly #o: ChildrenOptions;
  readonly #children = new Map<string, ChildState>();
  /** Node id → the child whose subtree holds it. */
  readonly #owner = new Map<string, string>();
  /** Hub id → the child whose subtree holds it. */
  readonly #hubOwner = new Map<string, string>();
  readonly #recent: ChangeRecord[] = [];

  constructor(o: ChildrenOptions) {
    this.#o = o;
  }

  /** A child hub's session started: its next summary must bring its roster. */
  onSession(child: string): void {
    const s = this.#state(child);
    s.session += 1;
    s.rev = 0;
    s.needRoster = true;
  }

  get(child: string): ChildState | undefined {
    return this.#children.get(child);
  }

  list(): ChildState[] {
    return [...this.#children.values()];
  }

  /** The child whose subtree holds a node, if any. */
  ownerOf(node: string): string | undefined {
    return this.#owner.get(node);
  }

  /** Recent changes from every child, newest last. */
  recent(limit = 50): ChangeRecord[] {
    return this.#recent.slice(-limit);
  }

  /** Forgets a child (an operator removed it). */
  forget(child: string): void {
    const s = this.#children.get(child);
    if (!s) return;
    for (const id of s.roster) if (this.#owner.get(id) === child) this.#owner.delete(id);
    for (const id of s.hubs) if (this.#hubOwner.get(id) === child) this.#hubOwner.delete(id);
    this.#children.delete(child);
  }

  #state(child: string): ChildState {
    let s = this.#children.get(child);
    if (!s) {
      s = {
        id: child,
        summary: undefined,
        heardAt: 0,
        rev: 0,
        session: 0,
        roster: new Set(),
        hubs: new Set([child]),
        refused: new Map(),
        tokens: this.#o.changeBurst ?? 5000,
        refilledAt: this.#o.now(),
        needRoster: true,
      };
      this.#children.set(child, s);
      this.#hubOwner.set(child, child);
    }
    return s;
  }

  #refuse(s: ChildState, reason: RefusalReason, n = 1): void {
    s.refused.set(reason, (s.refused.get(reason) ?? 0) + n);
    this.#o.onRefused?.(s.id, reason, n);
  }

  // Another child that holds the id and is connected keeps it; one cut off lets it go (a node failed over).
  #heldElsewhere(owner: string | undefined, child: string): boolean {
    return owner !== undefined && owner !== child && this.#o.isConnected(owner);
  }

  /** Takes a child's summary: refused whole when its hubs are not its own, else each node claim checked. */
  takeSummary(child: string, body: SummaryBody): Taken {
    const s = this.#state(child);
    const out: Taken = { accepted: 0, refused: 0, changes: [], resync: false };
    if (body.rev <= s.rev && s.rev > 0) {
      this.#refuse(s, "stale");
      out.refused = 1;
      return out;
    }
    const problem = this.#checkHubs(child, body);
    if (problem) {
      this.#refuse(s, problem);
      out.refused = 1;
      return out;
    }
    let roster = body.roster;
    if (body.roster_z) {
      try {
        roster = decodeRoster(body.roster_z);
      } catch {
        this.#refuse(s, "bad_summary");
        out.refused = 1;
        return out;
      }
    }
    if (!roster && s.needRoster) {
      // A summary without the roster after a new session cannot say which nodes are whose yet.
      out.resync = true;
    }
    s.rev = body.rev;
    s.heardAt = this.#o.now();
    const hubs = new Set(body.hubs.map((h) => h.id));
    for (const id of s.hubs) if (!hubs.has(id) && this.#hubOwner.get(id) === child) this.#hubOwner.delete(id);
    for (const id of hubs) this.#hubOwner.set(id, child);
    s.hubs = hubs;
    if (roster) {
      const next = new Set<string>();
      let conflicts = 0;
      for (const id of roster) {
        if (this.#o.isLocal(id) || this.#heldElsewhere(this.#owner.get(id), child)) conflicts += 1;
        else next.add(id);
      }
      if (conflicts > 0) this.#refuse(s, "claim_conflict", conflicts);
      out.refused += conflicts;
      for (const id of s.roster) if (!next.has(id) && this.#owner.get(id) === child) this.#owner.delete(id);
      for (const id of next) this.#owner.set(id, child);
      s.roster = next;
      s.needRoster = false;
    }
    // Held without the roster: the ids live in the ownership maps, the summary is for counts.
    const { roster: _r, roster_z: _z, ...held } = body;
    s.summary = held;
    out.accepted = 1;
    return out;
  }

  // The child itself must head its list (no parent), every other hub must hang below a listed hub, no hub
  // may be one another child holds or this hub itself, and every group and workload must name a listed hub.
  #checkHubs(child: string, body: SummaryBody): RefusalReason | undefined {
    const head = body.hubs.find((h) => h.id === child);
    if (!head || head.parent !== undefined) return "bad_summary";
    const ids = new Set<string>();
    for (const h of body.hubs) {
      if (ids.has(h.id)) return "bad_summary";
      ids.add(h.id);
      if (h.id === this.#o.hubId || this.#o.isLocal(h.id)) return "claim_conflict";
      const owner = this.#hubOwner.get(h.id);
      if (owner !== undefined && owner !== child && this.#o.isConnected(owner)) return "claim_conflict";
    }
    for (const h of body.hubs) if (h.id !== child && (!h.parent || !ids.has(h.parent))) return "bad_summary";
    for (const g of body.groups) if (!ids.has(g.hub)) return "unknown_hub";
    for (const w of body.workloads) if (!ids.has(w.hub)) return "unknown_hub";
    for (const a of body.alerts ?? []) if (!ids.has(a.hub)) return "unknown_hub";
    return undefined;
  }

  /** Takes a child's change batch: rate-limited as a whole, then each change checked and applied. */
  takeTopology(child: string, body: TopologyBody): Taken {
    const s = this.#state(child);
    const out: Taken = { accepted: 0, refused: 0, changes: [], resync: false };
    const now = this.#o.now();
    const rate = this.#o.changeRate ?? 1000;
    const burst = this.#o.changeBurst ?? 5000;
    s.tokens = Math.min(burst, s.tokens + ((now - s.refilledAt) / 1000) * rate);
    s.refilledAt = now;
    if (body.changes.length > s.tokens) {
      // A flood: refused whole, and the child is asked for a fresh summary once it calms down.
      this.#refuse(s, "rate_limited", body.changes.length);
      out.refused = body.changes.length;
      s.needRoster = true;
      out.resync = true;
      return out;
    }
    s.tokens -= body.changes.length;
    if (body.rev <= s.rev) {
      this.#refuse(s, "stale");
      out.refused = body.changes.length;
      return out;
    }
    if (body.rev !== s.rev + 1 && s.rev > 0) out.resync = true;
    s.rev = body.rev;
    s.heardAt = now;
    let conflicts = 0;
    let unknown = 0;
    for (const c of body.changes) {
      if (!s.hubs.has(c.hub)) {
        unknown += 1;
        continue;
      }
      if (this.#o.isLocal(c.node) || this.#heldElsewhere(this.#owner.get(c.node), child)) {
        conflicts += 1;
        continue;
      }
      if (c.to === null) {
        s.roster.delete(c.node);
        if (this.#owner.get(c.node) === child) this.#owner.delete(c.node);
      } else {
        s.roster.add(c.node);
        this.#owner.set(c.node, child);
      }
      this.#applyToGroups(s, c);
      const rec: ChangeRecord = { ...c, via: child, received: now };
      this.#recent.push(rec);
      out.changes.push(rec);
      out.accepted += 1;
    }
    if (this.#recent.length > RECENT) this.#recent.splice(0, this.#recent.length - RECENT);
    if (conflicts > 0) this.#refuse(s, "claim_conflict", conflicts);
    if (unknown > 0) this.#refuse(s, "unknown_hub", unknown);
    out.refused = conflicts + unknown;
    return out;
  }

  // The summary's counts follow each change at once; the child's next summary states them again.
  #applyToGroups(s: ChildState, c: TopologyChangeBody): void {
    const sum = s.summary;
    if (!sum) return;
    const key = groupKey(c);
    let g = sum.groups.find((x) => groupKey(x) === key);
    if (!g && c.to !== null) {
      g = {
        hub: c.hub,
        level: c.level,
        region: c.region,
        site: c.site,
        ready: 0,
        suspect: 0,
        down: 0,
        draining: 0,
        cpu_free: 0,
        mem_free: 0,
      };
      sum.groups.push(g);
    }
    if (!g) return;
    if (c.from !== null && g[c.from] > 0) g[c.from] -= 1;
    if (c.to !== null) g[c.to] += 1;
    // Free capacity follows the node into and out of ready (the next summary states it exactly).
    const sign = (c.to === "ready" ? 1 : 0) - (c.from === "ready" ? 1 : 0);
    if (sign !== 0) {
      g.cpu_free = Math.max(0, g.cpu_free + sign * (c.cpu_free ?? 0));
      g.mem_free = Math.max(0, g.mem_free + sign * (c.mem_free ?? 0));
    }
    if (c.from === null && c.to !== null) sum.nodes += 1;
    if (c.to === null && c.from !== null && sum.nodes > 0) sum.nodes -= 1;
  }
}
