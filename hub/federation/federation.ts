// Federation wired: child hubs' reports checked and held, this hub's own report to its parent, forwarded queries.
import { NovaError } from "../../shared/errors.ts";
import { LogLimiter, type Logger } from "../../shared/log.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import type { Body, Message, TopologyChangeBody } from "../../shared/protocol/index.ts";
import type { Failover } from "../failover/index.ts";
import type { Gateway } from "../gateway/index.ts";
import type { FleetState } from "../placement/index.ts";
import type { Registry } from "../registry/index.ts";
import type { WorkloadStore } from "../workloads/index.ts";
import { Children, type RefusalReason } from "./children.ts";
import type { HubSql } from "../store/sql/index.ts";
import { Intents } from "./intents.ts";
import { localNode, localNodes, localWorkloads } from "./local-view.ts";
import { driftOf, type ReconcileEntry, staleCopies } from "./reconnect.ts";
import { Reporter } from "./reporter.ts";
import { RolloutApplier } from "./rollout-applier.ts";
import { subtreeHubs } from "./subtree-placement.ts";
import { httpStatus, TwoLevelPlacer } from "./two-level.ts";
import type { ChildView, SummaryAlert } from "./summarize.ts";
import { buildTree, type TreeHub } from "./tree.ts";
import { Uplink } from "./uplink.ts";
import { type Leadership, soleLeader } from "../replicas/leadership.ts";

/** Paths a parent may ask a child hub to answer from its own API: reads of one node, or of one workload. */
export const FORWARDABLE =
  /^\/api\/v1\/(nodes\/[A-Za-z0-9._-]{1,128}(\/series|\/metrics)?|workloads\/[A-Za-z0-9._-]{1,128})(\?[^#]*)?$/;

/** A request to this hub's own API, as the admin (what a parent asked for, checked first). */
export type LocalFetch = (
  method: "GET" | "POST" | "PUT" | "DELETE",
  path: string,
  body?: unknown,
) => Promise<{ status: number; body: unknown }>;

export interface ParentOptions {
  endpoints: string[];
  joinToken: string;
  dataDir: string;
  heartbeatMs: number;
  maxFrameBytes: number;
}

export interface FederationOptions {
  /** Whether this hub runs federation's rounds (lost children, staged rollouts) now (hub/replicas). */
  leader?: Leadership;
  hubId: string;
  level: number;
  registry: Registry;
  gateway: () => Gateway | undefined;
  workloads: WorkloadStore;
  fleet: () => FleetState;
  failover: Failover;
  metrics: MetricsRegistry;
  log: Logger;
  now: () => number;
  /** Answers from this hub's own API (a query or a workload the parent sent down). */
  localFetch: LocalFetch;
  /** The hub's store: workloads placed into a child's domain (intents) and staged rollouts. */
  sql: HubSql;
  /** This hub's parent, when it has one. */
  parent?: ParentOptions;
  /** How often own nodes are compared with what was reported, and the summary rebuilt (default 2 s). */
  summaryEveryMs?: number;
  /** Least time between two summaries that only restate counts and capacity (default 30 s). */
  summaryMinMs?: number;
  /** Changes a child may send per second and at once. */
  changeRate?: number;
  changeBurst?: number;
  /** This hub's own open and acknowledged alerts, for the summary to its parent. */
  alerts?: () => SummaryAlert[];
  /** How often staged rollouts in progress take a step (default 1 s). */
  rolloutEveryMs?: number;
}

/** Hubs below a child that its previous summary had cut off and this one has connected. */
function hubsBack(before: Body<"summary"> | undefined, now: Body<"summary">): Set<string> {
  const was = new Map((before?.hubs ?? []).map((h) => [h.id, h.connected]));
  return new Set(now.hubs.filter((h) => h.connected && was.get(h.id) === false).map((h) => h.id));
}

/** An alert of a subtree as the parent shows it. */
export interface SubtreeAlert extends SummaryAlert {
  /** The child hub whose summary carried it. */
  via: string;
  /** Whether the link to that child is up. */
  connected: boolean;
  /** How old the summary that carried it is, in ms. */
  age_ms: number;
}

/** A forwarded answer: the owning hub's status and body. */
export interface Forwarded {
  status: number;
  body: unknown;
}

/** The hub's place in a tree of hubs: children below it, maybe a parent above. */
export class Federation {
  readonly children: Children;
  readonly uplink: Uplink | undefined;
  readonly reporter: Reporter | undefined;
  /** Two-level placement: workloads this hub places into a child's domain, and its intents. */
  readonly placer: TwoLevelPlacer;
  /** Staged rollouts across child domains: a canary subtree first, then the others. */
  readonly rollouts: RolloutApplier;
  readonly #o: FederationOptions;
  readonly #countRefused: (by?: number, labels?: Record<string, string>) => void;
  readonly #countTaken: (by?: number, labels?: Record<string, string>) => void;
  readonly #resyncAsked = new Map<string, number>();
  readonly #resyncWaiting = new Set<string>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #lostTimer: ReturnType<typeof setInterval> | undefined;
  #rolloutTimer: ReturnType<typeof setInterval> | undefined;
  /** Children found lost, and when: their workloads were offered to siblings once. */
  readonly #lost = new Map<string, number>();
  #checking = false;
  /** What the reconciles on children's return found and did, newest last (bounded). */
  readonly #reconciled: ReconcileEntry[] = [];
  readonly #reconciling = new Set<string>();

  constructor(o: FederationOptions) {
    this.#o = o;
    this.placer = new TwoLevelPlacer({
      intents: new Intents(o.sql),
      hubs: () => this.#childViews().flatMap((c) => subtreeHubs(c.id, c.connected, c.summary)),
      request: (child, kind, args, timeoutMs) => {
        const gw = o.gateway();
        if (!gw) return Promise.reject(new Error("the gateway is not up"));
        return gw.request(child, kind, args, timeoutMs);
      },
      now: o.now,
    });
    this.rollouts = new RolloutApplier({
      sql: o.sql,
      hubs: () => this.#childViews().flatMap((c) => subtreeHubs(c.id, c.connected, c.summary)),
      placedSingly: async (name) => (await this.placer.intents()).some((i) => i.name === name),
      request: (child, kind, args, timeoutMs) => {
        const gw = o.gateway();
        if (!gw) return Promise.reject(new Error("the gateway is not up"));
        return gw.request(child, kind, args, timeoutMs);
      },
      now: o.now,
    });
    const m = o.metrics;
    this.#countRefused = m.counter(
      "novacron_hub_federation_refused_total",
      "What child hubs sent that was refused (claim_conflict, bad_summary, rate_limited, stale, unknown_hub), by reason",
    );
    this.#countTaken = m.counter(
      "novacron_hub_federation_accepted_total",
      "Summaries and topology changes accepted from child hubs, by kind",
    );
    this.children = new Children({
      hubId: o.hubId,
      now: o.now,
      isLocal: (id) => {
        const n = o.registry.get(id);
        return n !== undefined && n.kind !== "hub";
      },
      isConnected: (child) => o.registry.isConnected(child),
      ...(o.changeRate ? { changeRate: o.changeRate } : {}),
      ...(o.changeBurst ? { changeBurst: o.changeBurst } : {}),
      onRefused: (child, reason: RefusalReason, n) => {
        this.#countRefused(n, { reason });
        o.log.warn("child hub report refused", { child, reason, count: n });
      },
    });
    m.gauge("novacron_hub_federation_children", "Child hubs by link state", () => {
      const hubs = o.registry.list().filter((n) => n.kind === "hub");
      const up = hubs.filter((n) => o.registry.isConnected(n.id)).length;
      return [
        [{ state: "connected" }, up],
        [{ state: "disconnected" }, hubs.length - up],
      ];
    });
    if (o.parent) {
      const reporter = new Reporter({
        hubId: o.hubId,
        level: o.level,
        now: o.now,
        localNode: (id) => localNode(o.registry, o.workloads.view, id),
        localNodes: () => localNodes(this.#o.fleet()),
        workloads: () => localWorkloads(this.#o.workloads.view),
        children: () => this.#childViews(),
        childRosters: () => this.#childRosters(),
        ...(o.alerts ? { alerts: o.alerts } : {}),
        send: (type, body) => this.uplink?.send(type, body) ?? false,
        ...(o.summaryMinMs !== undefined ? { summaryMinMs: o.summaryMinMs } : {}),
      });
      this.reporter = reporter;
      this.uplink = new Uplink({
        hubId: o.hubId,
        level: o.level,
        endpoints: o.parent.endpoints,
        joinToken: o.parent.joinToken,
        dataDir: o.parent.dataDir,
        heartbeatMs: o.parent.heartbeatMs,
        maxFrameBytes: o.parent.maxFrameBytes,
        log: o.log.child("uplink"),
        onStateChange: (up) => {
          if (up) queueMicrotask(() => reporter.onConnected());
        },
        onCommand: (kind, args) => this.#command(kind, args),
      });
      m.gauge("novacron_hub_federation_parent_connected", "1 when the link to the parent hub is up", () => [
        [{}, this.uplink?.connected ? 1 : 0],
      ]);
      m.gauge("novacron_hub_federation_sent", "Messages sent to the parent hub, by kind", () => [
        [{ kind: "summary" }, reporter.sent.summaries],
        [{ kind: "topology" }, reporter.sent.topology],
        [{ kind: "change" }, reporter.sent.changes],
      ]);
      // Every session start or end and every liveness transition of an own node is a change to report.
      const previous = o.registry.onLiveness;
      o.registry.onLiveness = (id, connected) => {
        previous?.(id, connected);
        // A child hub's link coming or going is news for the parent: its subtree's state changed.
        if (o.registry.get(id)?.kind === "hub") setTimeout(() => reporter.sendSummary(false, true), 0);
        else reporter.markDirty(id);
      };
      o.failover.transitionListeners.push((t) => reporter.markDirty(t.node));
    }
  }

  /** Starts the link to the parent and the periodic summary. */
  start(): void {
    // Lost children: checked every 2 s on any hub (a hub with no children checks nothing).
    // A round that fails (the store away) is logged; the next one tries again.
    const failures = new LogLimiter(this.#o.log, { intervalMs: 10_000 });
    const failed = (what: string) => (err: unknown) =>
      failures.warn(what, `${what} failed; tried again next round`, { error: (err as Error).message });
    const leader = this.#o.leader ?? soleLeader;
    this.#lostTimer = setInterval(() => {
      if (leader.active()) void this.#checkLost().catch(failed("the lost-children check"));
    }, 2000);
    this.#lostTimer.unref?.();
    // Staged rollouts in progress: one round a second (none in progress, none asked).
    this.#rolloutTimer = setInterval(() => {
      if (leader.active()) void this.rollouts.tick().catch(failed("a staged rollouts round"));
    }, this.#o.rolloutEveryMs ?? 1000);
    this.#rolloutTimer.unref?.();
    if (!this.reporter || !this.uplink) return;
    this.reporter.prime();
    this.uplink.start();
    this.#timer = setInterval(() => {
      this.reporter?.scan();
      if (this.uplink?.connected) this.reporter?.sendSummary(false);
    }, this.#o.summaryEveryMs ?? 2000);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#lostTimer);
    clearInterval(this.#rolloutTimer);
    await this.uplink?.stop();
  }

  /**
   * A child is lost, not just cut off from this hub, when the failover monitor has it `lost` (silent
   * past down_after) and its own nodes witness it: some of them have since joined a sibling (their
   * fallback hub). Cut off only from this hub, its agents stay with it and nothing moves.
   */
  async #checkLost(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      for (const c of this.children.list()) {
        // A copy that could not be stopped at a returning hub is tried again while that hub is up.
        if (
          this.#o.registry.isConnected(c.id) &&
          c.summary &&
          staleCopies(await this.placer.intents(), c.hubs).length > 0
        )
          void this.#reconcileChild(c.id, undefined, false).catch((err: unknown) =>
            this.#o.log.warn("a child's copies could not be reconciled", {
              child: c.id,
              error: (err as Error).message,
            }),
          );
        if (this.#lost.has(c.id)) {
          if (this.#o.registry.isConnected(c.id)) this.#lost.delete(c.id);
          continue;
        }
        if (this.#o.failover.monitor.get(c.id)?.health !== "lost") continue;
        const gone = [...c.roster].filter((id) => {
          const owner = this.children.ownerOf(id);
          return owner !== undefined && owner !== c.id;
        });
        if (gone.length === 0) continue;
        this.#lost.set(c.id, this.#o.now());
        const evidence = `${gone.length} of its ${c.roster.size} nodes joined a sibling (${gone.slice(0, 3).join(", ")})`;
        this.#o.log.warn("child hub lost", { child: c.id, evidence });
        const moved = await this.placer.replaceLost(c.id, evidence);
        if (moved.length > 0)
          this.#o.log.warn("workloads placed again below a sibling", { child: c.id, moved: moved.join(",") });
      }
    } finally {
      this.#checking = false;
    }
  }

  /** A session began: a child hub's next summary must carry its roster. */
  onSession(node: string, hello: Body<"hello">): void {
    if (hello.kind === "hub") this.children.onSession(node);
  }

  /** A child hub's summary or change batch (from the gateway); refusals are counted, never thrown. */
  onSubtree(node: string, msg: Extract<Message, { t: "summary" | "topology" }>): void {
    const hubsBefore = msg.t === "summary" ? this.children.get(node)?.hubs.size : undefined;
    const before = msg.t === "summary" ? this.children.get(node)?.summary : undefined;
    const taken =
      msg.t === "summary" ? this.children.takeSummary(node, msg.b) : this.children.takeTopology(node, msg.b);
    // New hubs below: the parent hears of them before any change of theirs is passed on.
    const fresh = msg.t === "summary" && (msg.b.roster !== undefined || msg.b.roster_z !== undefined);
    if (
      taken.accepted > 0 &&
      (fresh || (hubsBefore !== undefined && this.children.get(node)?.hubs.size !== hubsBefore))
    )
      this.reporter?.sendSummary(false, true);
    // A session's first summary: the child is back (from a cut or a loss), and both sides are compared;
    // so are hubs further down whose own link came back (the child's summary says so).
    if (taken.accepted > 0 && msg.t === "summary") {
      const back = fresh ? undefined : hubsBack(before, msg.b);
      if (fresh || (back && back.size > 0))
        void this.#reconcileChild(node, back).catch((err: unknown) =>
          this.#o.log.warn("a child's copies could not be reconciled", {
            child: node,
            error: (err as Error).message,
          }),
        );
    }
    if (taken.accepted > 0)
      this.#countTaken(taken.accepted, { kind: msg.t === "summary" ? "summary" : "change" });
    if (taken.resync) this.#askResync(node);
    if (taken.changes.length > 0 && this.reporter) {
      this.reporter.relay(
        taken.changes.map(({ via: _via, received: _received, ...c }): TopologyChangeBody => c),
      );
    }
  }

  /** What the reconciles on children's return found and did, newest first. */
  reconciled(): ReconcileEntry[] {
    return [...this.#reconciled].reverse();
  }

  /**
   * A child is back. Precedence: a workload moved away from a hub declared lost stays where it was
   * moved (the parent's move wins) and the copy left at the returning hub is stopped, so nothing runs
   * twice; a workload the hub below changed or removed while cut off keeps that change (the operator on
   * site acted on what they saw) and the parent's intent shows the drift. Each case is reported.
   */
  async #reconcileChild(child: string, only?: ReadonlySet<string>, full = true): Promise<void> {
    if (this.#reconciling.has(child)) return;
    this.#reconciling.add(child);
    try {
      const st = this.children.get(child);
      if (!st?.summary) return;
      // Every hub of the subtree, or only those at or below the hubs whose link came back.
      const routes = new Map(
        subtreeHubs(child, true, st.summary)
          .filter((h) => !only || h.route.some((r) => only.has(r)))
          .map((h) => [h.id, h.route]),
      );
      const record = (e: Omit<ReconcileEntry, "at" | "child">) => {
        const entry = { at: this.#o.now(), child, ...e };
        this.#reconciled.push(entry);
        if (this.#reconciled.length > 500) this.#reconciled.splice(0, this.#reconciled.length - 500);
        this.#o.log.warn("reconciled with a returning child hub", {
          child,
          workload: e.workload,
          hub: e.hub,
          winner: e.winner,
          outcome: e.outcome,
        });
      };
      for (const stale of staleCopies(await this.placer.intents(), new Set(routes.keys()))) {
        const move = stale.intent.moves![stale.move]!;
        const [first, ...rest] = routes.get(stale.hub)!;
        let outcome: string;
        try {
          const reply = await this.#o
            .gateway()
            ?.request(
              first!,
              "fed_apply",
              { method: "DELETE", name: stale.intent.name, route: rest },
              15_000,
            );
          const status = (reply?.body as { status?: unknown } | null)?.status;
          if (!reply?.ok || (status !== 200 && status !== 404))
            throw new Error(`answered ${String(status ?? reply?.body)}`);
          outcome = status === 404 ? "no copy left there" : "the copy there was stopped and removed";
        } catch (err) {
          // Reported on a return; the retries while the hub stays up are quiet.
          if (full)
            record({
              workload: stale.intent.name,
              hub: stale.hub,
              changed_here: `moved to ${move.to} while ${move.from} was lost`,
              changed_there: null,
              winner: "parent",
              outcome: `the copy there could not be stopped yet (${(err as Error).message}); tried again every 2 s while it is up`,
            });
          continue;
        }
        // The intent on disk: the move's stale copy is dealt with.
        const stoppedAt = this.#o.now();
        await this.placer.update(stale.intent.name, (current) =>
          current.moves?.[stale.move]
            ? {
                ...current,
                moves: current.moves.map((m, i) => (i === stale.move ? { ...m, stopped: stoppedAt } : m)),
              }
            : current,
        );
        record({
          workload: stale.intent.name,
          hub: stale.hub,
          changed_here: `moved to ${move.to} while ${move.from} was lost (${move.evidence})`,
          changed_there: null,
          winner: "parent",
          outcome,
        });
      }
      // Workloads held in the returning subtree: what the hub there changed while cut off stands.
      for (const intent of full ? await this.placer.intents() : []) {
        if (!intent.route.includes(child) || !routes.has(intent.hub)) continue;
        const [first, ...rest] = intent.route;
        try {
          const reply = await this.#o
            .gateway()
            ?.request(first!, "fed_query", { path: `/api/v1/workloads/${intent.name}`, route: rest }, 10_000);
          if (!reply?.ok) continue;
          const r = (reply.body ?? {}) as { status?: unknown; body?: unknown };
          const drift = driftOf(intent, typeof r.status === "number" ? r.status : 0, r.body);
          if (!drift) continue;
          record({
            workload: intent.name,
            hub: intent.hub,
            changed_here: null,
            changed_there: drift,
            winner: "holding hub",
            outcome: "the change at the holding hub stands; the intent here shows the drift",
          });
        } catch {
          // Not answering yet: its next return compares again.
        }
      }
    } finally {
      this.#reconciling.delete(child);
    }
  }

  // Asks a child for a summary with its roster, at most once every 5 s (a flood is not rewarded at once).
  #askResync(child: string): void {
    // One request waiting per child at most, however many refusals asked for it.
    if (this.#resyncWaiting.has(child)) return;
    const now = this.#o.now();
    const last = this.#resyncAsked.get(child) ?? Number.NEGATIVE_INFINITY;
    if (now - last < 5000) {
      this.#resyncWaiting.add(child);
      const timer = setTimeout(
        () => {
          this.#resyncWaiting.delete(child);
          this.#askResync(child);
        },
        5000 - (now - last) + 10,
      );
      timer.unref?.();
      return;
    }
    this.#resyncAsked.set(child, now);
    this.#o.gateway()?.sendTo(child, "command", { id: `resync:${now}`, kind: "fed_resync", args: {} });
  }

  async #command(kind: string, args: Record<string, unknown>): Promise<unknown> {
    if (kind === "fed_resync") {
      this.reporter?.sendSummary(true);
      return { hub: this.#o.hubId };
    }
    const route = args.route ?? [];
    if (!Array.isArray(route) || route.length > 8 || !route.every((r) => typeof r === "string"))
      throw new NovaError("bad_body", "route must be a list of at most 8 hub ids");
    // Not for this hub: passed on to the next hub of the route, which must be a child of this one.
    if (route.length > 0) return this.#relay(kind, route as string[], args);
    if (kind === "fed_apply") return this.#applyHere(args);
    if (kind === "fed_place") {
      const answer = await this.#o.localFetch("POST", "/api/v1/workloads", args.spec);
      return { status: answer.status, body: this.#stamp(answer.body) };
    }
    // fed_query: a read of one node or workload, answered by this hub's API (which forwards further down itself).
    const path = args.path;
    if (typeof path !== "string" || !FORWARDABLE.test(path))
      throw new NovaError(
        "bad_body",
        "path must be a GET of /api/v1/nodes/{id}, .../series, .../metrics or /api/v1/workloads/{name}",
      );
    const answer = await this.#o.localFetch("GET", path);
    return { status: answer.status, body: this.#stamp(answer.body) };
  }

  // A staged rollout's change to this hub's own workload: a create, a new version, or a removal.
  async #applyHere(args: Record<string, unknown>): Promise<unknown> {
    const { method, name } = args;
    if (method !== "POST" && method !== "PUT" && method !== "DELETE")
      throw new NovaError("bad_body", "method must be POST, PUT or DELETE");
    if (typeof name !== "string" || !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name))
      throw new NovaError("bad_body", "name must be a workload name");
    if (method !== "DELETE" && (!args.spec || typeof args.spec !== "object"))
      throw new NovaError("bad_body", "spec must be a workload spec");
    if (method !== "DELETE" && (args.spec as { name?: unknown }).name !== name)
      throw new NovaError("bad_body", "spec.name must be the workload's name");
    const answer = await this.#o.localFetch(
      method,
      method === "POST" ? "/api/v1/workloads" : `/api/v1/workloads/${name}`,
      method === "DELETE" ? undefined : args.spec,
    );
    return { status: answer.status, body: this.#stamp(answer.body) };
  }

  // The hub that answered, unless a hub further down already said it.
  #stamp(body: unknown): unknown {
    if (body && typeof body === "object" && !Array.isArray(body) && !("hub" in body))
      (body as Record<string, unknown>).hub = this.#o.hubId;
    return body;
  }

  async #relay(kind: string, route: string[], args: Record<string, unknown>): Promise<unknown> {
    const [next, ...rest] = route;
    const gw = this.#o.gateway();
    if (this.#o.registry.get(next!)?.kind !== "hub" || !gw)
      throw new NovaError("not_found", `${next} is not a child hub of ${this.#o.hubId}`);
    const reply = await gw.request(next!, kind, { ...args, route: rest }, 10_000);
    if (!reply.ok) throw new NovaError("bad_body", `${next}: ${String(reply.body)}`);
    return reply.body;
  }

  /** Whether a node lives below a child hub (a query for it is forwarded there). */
  owns(node: string): boolean {
    return this.children.ownerOf(node) !== undefined;
  }

  /** Forwards a GET for a node below a child hub to that child, which answers or forwards further. */
  async forward(node: string, path: string): Promise<Forwarded | undefined> {
    const child = this.children.ownerOf(node);
    const gw = this.#o.gateway();
    if (!child || !gw) return undefined;
    const started = this.#o.now();
    const unavailable = (why: string): Forwarded => ({
      status: 503,
      body: { error: { code: "unavailable", message: `node ${node} is below child hub ${child}: ${why}` } },
    });
    let reply: Body<"reply">;
    try {
      reply = await gw.request(child, "fed_query", { path }, 10_000);
    } catch (err) {
      return unavailable((err as Error).message);
    }
    if (!reply.ok) return unavailable(String(reply.body));
    const r = reply.body as { status?: unknown; body?: unknown } | null;
    const status = httpStatus(r?.status);
    const body = r?.body;
    if (body && typeof body === "object" && !Array.isArray(body)) {
      const b = body as Record<string, unknown>;
      b.via = [child, ...(Array.isArray(b.via) ? b.via : [])];
      b.age_ms = this.#o.now() - started;
    }
    return { status, body };
  }

  /**
   * Open (and acknowledged) alerts of the subtrees below, as their last summaries said: each with the
   * hub that raised it, the child it came through, how long it has been open and how old the report is.
   */
  subtreeAlerts(state: "open" | "acknowledged" | "all", limit: number, node?: string): SubtreeAlert[] {
    const now = this.#o.now();
    const out: SubtreeAlert[] = [];
    for (const c of this.#childViews()) {
      const st = this.children.get(c.id);
      const age = Math.max(0, now - (st?.heardAt ?? now - c.ageMs));
      for (const a of c.summary?.alerts ?? []) {
        if (state !== "all" && a.state !== state) continue;
        if (node !== undefined && a.node !== node) continue;
        out.push({ ...a, via: c.id, connected: c.connected, open_ms: a.open_ms + age, age_ms: age });
      }
    }
    return out.sort((a, b) => a.open_ms - b.open_ms || a.hub.localeCompare(b.hub)).slice(0, limit);
  }

  /** The tree below this hub, with per-subtree health and freshness. */
  topology(): {
    hub: string;
    at: number;
    age_ms: number;
    parent: unknown;
    tree: TreeHub;
    changes: unknown[];
  } {
    const now = this.#o.now();
    const tree = buildTree({
      hubId: this.#o.hubId,
      level: this.#o.level,
      now,
      nodes: localNodes(this.#o.fleet()),
      workloads: localWorkloads(this.#o.workloads.view),
      children: this.#childViews().map((c) => ({
        id: c.id,
        level: c.level,
        connected: c.connected,
        lastHeard: now - c.ageMs,
        summary: c.summary,
        refused: Object.fromEntries(this.children.get(c.id)?.refused ?? []),
      })),
    });
    const link = this.uplink?.hub.link.status();
    return {
      hub: this.#o.hubId,
      at: now,
      age_ms: 0,
      parent: this.uplink ? { connected: link?.connected ?? false, endpoint: link?.endpoint ?? null } : null,
      tree,
      changes: this.children.recent(),
    };
  }

  #childViews(): ChildView[] {
    const now = this.#o.now();
    return this.#o.registry
      .list()
      .filter((n) => n.kind === "hub")
      .map((n) => {
        const heard = Math.max(this.#o.registry.lastHeard(n.id) ?? 0, n.last_seen);
        return {
          id: n.id,
          level: n.level,
          connected: this.#o.registry.isConnected(n.id),
          ageMs: Math.max(0, now - heard),
          summary: this.children.get(n.id)?.summary,
        };
      });
  }

  *#childRosters(): Iterable<string> {
    for (const c of this.children.list()) yield* c.roster;
  }
}
