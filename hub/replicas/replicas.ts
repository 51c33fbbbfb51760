// Several hubs on one PostgreSQL: who leads the controllers, who holds each node's session, and the
// notices that carry work for a node to the replica that holds it (docs/hub-replicas.md, 3 and 4).
import { randomBytes } from "node:crypto";
import type { Clock, TimerHandle } from "../../shared/clock.ts";
import { randomUUID } from "node:crypto";
import { NovaError, TooLargeError } from "../../shared/errors.ts";
import type { Body } from "../../shared/protocol/index.ts";
import { LogLimiter, type Logger } from "../../shared/log.ts";
import {
  type HubSql,
  holds,
  LeaseKeeper,
  Leases,
  type Notifier,
  openNotifier,
  SessionDirectory,
  type Subscription,
} from "../store/sql/index.ts";
import { type Leadership, NotLeaderError } from "./leadership.ts";

/** What travels between replicas: a pointer (a node, what to send it), never the data itself. */
export type NodeNotice =
  /** `r` holds node `n`'s session from claim epoch `e`: an older session elsewhere is stale. */
  | { k: "claim"; n: string; r: string; e: number }
  /** `r` no longer holds node `n`'s session from its claim of epoch `e`. */
  | { k: "release"; n: string; r: string; e: number }
  /** Send node `n` what the store holds for it now: its desired set, rule sets, hub cache entries, recent verdicts. */
  | { k: "allocs" | "config" | "cache" | "verdicts"; n: string }
  /** End node `n`'s session (its key was reset or revoked), with this reason. */
  | { k: "end"; n: string; why: string }
  /** Replica `r` asks node `n` (request `id`) to do `q` with `a`, answering within `t` ms. */
  | { k: "request"; n: string; id: string; q: string; a: Record<string, unknown>; t: number; r: string }
  /** The answer to request `id` of replica `r` is in `node_replies`. */
  | { k: "reply"; n: string; id: string; r: string }
  /** Replica `r` stored node `n`'s winning write of `key` in cache `c`, partition `p`, scope `s`. */
  | { k: "relay"; n: string; r: string; c: string; p: string; s: string; key: string };

export type Deliverable = "allocs" | "config" | "cache" | "verdicts";

/** The channel every replica of a store listens on. */
export const CHANNEL = "novacron_nodes";

export interface ReplicaOptions {
  sql: HubSql;
  /** The hub's id, shared by its replicas; this replica's id adds a random part (one per process). */
  hubId: string;
  clock: Clock;
  log: Logger;
  /** How long a replica's leases last unrenewed: a dead replica hands over within this (default 10 s). */
  ttlMs?: number;
  /** How often the directory and the members are read again (default 2 s); notices update them at once. */
  refreshMs?: number;
  /**
   * How long the nodes of a replica that died still count as connected (default 30 s, the hub's
   * restart grace): their agents are finding another replica, and only silence can make them suspect.
   */
  graceMs?: number;
}

/** What this replica does for a node whose session it holds, asked by another replica. */
export interface ReplicaHandlers {
  /** Nodes whose sessions this replica holds. */
  local(): Iterable<string>;
  /** Whether this replica holds `node`'s session now. */
  holds(node: string): boolean;
  deliver(node: string, kind: Deliverable): void;
  /** Another replica claimed `node` (claim epoch `epoch`): a session here from an older claim ends. */
  moved(node: string, epoch: number): void;
  end(node: string, reason: string): void;
  /** This replica lost its membership (cut off from the store, or paused): every session here ends. */
  dropAll(reason: string): void;
  /** A named-cache write another replica stored: relay it to this replica's holders. */
  relay(w: { cache: string; part: string; scope: string; origin: string; key: string }): void;
  /** Asks a node whose session this replica holds, for another replica (Gateway.request). */
  request(
    node: string,
    kind: string,
    args: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<Body<"reply">>;
}

interface Remote {
  replica: string;
  epoch: number;
}

/**
 * This process as one replica of a hub on a shared store. It keeps a membership lease
 * (`replica/<id>`, how replicas know who is alive) and competes for the `controller` lease; it claims
 * each node's session in the directory at the node's hello and releases it at the close, and it
 * tells the other replicas both. A node whose session another live replica holds counts as connected
 * here (`elsewhere`): a replica's death makes a node look silent for no longer than its agent takes
 * to reconnect, and no longer than the membership ttl.
 */
export class Replicas implements Leadership {
  readonly id: string;
  readonly directory: SessionDirectory;
  readonly leases: Leases;
  readonly #o: Required<ReplicaOptions>;
  readonly #member: LeaseKeeper;
  readonly #controller: LeaseKeeper;
  readonly #failures: LogLimiter;
  readonly #notifier: Notifier;
  #sub: Subscription | undefined;
  #handlers: ReplicaHandlers | undefined;
  readonly #gained: (() => void)[] = [];
  /** Live members by id, as last read. */
  #members = new Set<string>();
  /** When each replica was last known alive (to give a dead one's nodes their grace). */
  readonly #lastAlive = new Map<string, number>();
  /** Nodes whose sessions other replicas hold, as last read or told. */
  #remote = new Map<string, Remote>();
  /** This replica's claim epoch per node it holds. */
  readonly #claims = new Map<string, number>();
  #timer: TimerHandle | undefined;
  #refreshing: Promise<void> | undefined;
  #stopped = false;
  #listened = false;
  /** When this replica last lost its membership. */
  #lostAt: number | undefined;
  /** Requests this replica asked of another replica's nodes, by id. */
  readonly #asked = new Map<
    string,
    {
      node: string;
      resolve: (r: Body<"reply">) => void;
      reject: (e: Error) => void;
      timer: ReturnType<typeof setTimeout>;
    }
  >();

  constructor(o: ReplicaOptions) {
    this.#o = { ttlMs: 10_000, refreshMs: 2000, graceMs: 30_000, ...o };
    // Also its MQTT uplink route: one topic level (shared/link/topics.ts ROUTE_PATTERN).
    this.id = `${o.hubId.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 160)}.${randomBytes(6).toString("hex")}`;
    this.#failures = new LogLimiter(o.log, { intervalMs: 10_000 });
    this.leases = new Leases(o.sql);
    this.directory = new SessionDirectory(o.sql);
    this.#notifier = openNotifier(o.sql, o.log);
    const onError = (what: string) => (err: unknown) =>
      this.#failures.warn(what, `the ${what} lease could not be renewed`, { error: (err as Error).message });
    this.#member = new LeaseKeeper({
      leases: this.leases,
      name: `replica/${this.id}`,
      holder: this.id,
      ttlMs: this.#o.ttlMs,
      clock: o.clock,
      onGained: () => {
        this.#members.add(this.id);
        // Back after a loss: rows of sessions it ended then still name it; claims from now on stay.
        if (this.#lostAt !== undefined) void this.#releaseStale(this.#o.clock.now());
      },
      // The others no longer count this replica's nodes as connected: its agents must move to a
      // replica that is a member, or the leader would judge them by silence and fail them over.
      onLost: () => {
        this.#members.delete(this.id);
        // A clean stop gives the lease up too: its sessions end with the process.
        if (this.#stopped) return;
        this.#lostAt = o.clock.now();
        o.log.warn("this replica lost its membership; its sessions end until it holds it again", {
          replica: this.id,
        });
        this.#claims.clear();
        this.#handlers?.dropAll("this hub replica lost its membership of the store");
      },
      onError: onError("membership"),
    });
    this.#controller = new LeaseKeeper({
      leases: this.leases,
      name: "controller",
      holder: this.id,
      ttlMs: this.#o.ttlMs,
      clock: o.clock,
      onGained: (epoch) => {
        o.log.info("this replica leads the controllers", { replica: this.id, epoch });
        for (const fn of this.#gained) fn();
      },
      onLost: () => o.log.warn("this replica no longer leads the controllers", { replica: this.id }),
      onError: onError("controller"),
    });
  }

  /** Joins: subscribes to notices, reads the directory, then takes its membership and competes for leading. */
  async start(handlers: ReplicaHandlers): Promise<void> {
    this.#handlers = handlers;
    this.#sub = await this.#notifier.subscribe(
      CHANNEL,
      (payload) => this.#onNotice(payload),
      // After a reconnect of the listening connection: what was missed meanwhile is sent again.
      () => this.#caughtUp(),
    );
    this.#member.start();
    await this.#member.idle();
    await this.refresh();
    this.#controller.start();
    this.#timer = this.#o.clock.setInterval(() => void this.refresh(), this.#o.refreshMs);
  }

  /** Leaves: gives up the leases and the sessions it holds in the directory. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#o.clock.clearInterval(this.#timer);
    for (const [id, a] of this.#asked) {
      clearTimeout(a.timer);
      a.reject(new NovaError("not_found", `the hub stopped before node ${a.node} answered`));
      this.#asked.delete(id);
    }
    await this.#sub?.unsubscribe().catch(() => {});
    await this.#controller.stop();
    await this.#refreshing;
    // The others stop counting these nodes as held here at once, not at their next read.
    const held = new Map(this.#claims);
    this.#claims.clear();
    const dropped = await this.directory.drop(this.id).catch(() => [] as string[]);
    await Promise.all(
      dropped.map((n) =>
        this.#notifier
          .publish(CHANNEL, JSON.stringify({ k: "release", n, r: this.id, e: held.get(n) ?? 0 }))
          .catch(() => {}),
      ),
    );
    await this.#member.stop();
  }

  // --- Leadership

  active(): boolean {
    return this.#controller.epoch !== undefined;
  }

  async fence(tx: HubSql): Promise<void> {
    const epoch = this.#controller.epoch;
    if (epoch === undefined || !(await holds(tx, "controller", this.id, epoch, this.#o.clock.now())))
      throw new NotLeaderError(this.id);
  }

  onGained(fn: () => void): void {
    this.#gained.push(fn);
  }

  /** Resolves once no lease call is out (tests). */
  async idle(): Promise<void> {
    await this.#member.idle();
    await this.#controller.idle();
    await this.#refreshing;
  }

  // --- Sessions

  /** Claims `node`'s session for this replica (at its hello, before the welcome); tells the others. */
  async claim(node: string): Promise<number> {
    // A replica the others do not count as alive takes no sessions (the agent comes back later).
    if (this.#member.epoch === undefined)
      throw new NovaError("store_failed", `hub replica ${this.id} is not a member of the store now`);
    const { epoch } = await this.directory.claim(node, this.id, this.#o.clock.now());
    // Two hellos of one node here may finish their claims out of order: the newest claim stands.
    if (epoch > (this.#claims.get(node) ?? 0)) this.#claims.set(node, epoch);
    this.#remote.delete(node);
    this.#publish({ k: "claim", n: node, r: this.id, e: epoch });
    return epoch;
  }

  /** Whether this replica's claim of `node` at `epoch` still stands (its newest, membership held since). */
  stands(node: string, epoch: number): boolean {
    return this.#claims.get(node) === epoch && this.#member.epoch !== undefined;
  }

  /**
   * This replica's session of `node` from the claim of `epoch` ended; the directory forgets it unless
   * a newer claim (here or elsewhere) came since.
   */
  release(node: string, epoch: number): void {
    if (this.#claims.get(node) !== epoch) return;
    this.#claims.delete(node);
    void this.directory
      .release(node, this.id, epoch)
      .then((released) => {
        if (released) this.#publish({ k: "release", n: node, r: this.id, e: epoch });
      })
      .catch((err: unknown) =>
        this.#failures.warn("release", "a session's end could not be written to the directory", {
          node,
          error: (err as Error).message,
        }),
      );
  }

  /** The live replica other than this one that holds `node`'s session, if any. */
  elsewhere(node: string): string | undefined {
    const r = this.#remote.get(node);
    return r && r.replica !== this.id && this.#members.has(r.replica) ? r.replica : undefined;
  }

  /**
   * Whether `node`'s session was held by a replica that died less than the grace ago (its agent is
   * on its way to another replica): it still counts as connected, judged by its silence alone.
   */
  heldByDeparted(node: string): boolean {
    const r = this.#remote.get(node);
    if (!r || r.replica === this.id || this.#members.has(r.replica)) return false;
    const alive = this.#lastAlive.get(r.replica);
    return alive !== undefined && this.#o.clock.now() - alive < this.#o.graceMs;
  }

  /** Live replicas, this one included while its membership holds. */
  members(): string[] {
    return [...this.#members].sort();
  }

  /**
   * Asks the replica holding `node`'s session to send it what the store now holds of `kind`; false
   * when no live replica holds it (the node gets it at its next hello).
   */
  forward(node: string, kind: Deliverable): boolean {
    // Published even when no holder is known here yet (a claim this replica has not heard of may exist;
    // the holder alone acts on it), but only while another replica is alive to hold it.
    if (this.#members.size > (this.#members.has(this.id) ? 1 : 0)) this.#publish({ k: kind, n: node });
    return this.elsewhere(node) !== undefined;
  }

  /**
   * Asks a node whose session another live replica holds, through that replica (a witness question, a
   * task's logs): the holder asks it and puts the answer in the store. Undefined when no live replica
   * holds the node's session.
   */
  request(
    node: string,
    kind: string,
    args: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<Body<"reply">> | undefined {
    if (this.elsewhere(node) === undefined) return undefined;
    const id = randomUUID();
    const notice: NodeNotice = { k: "request", n: node, id, q: kind, a: args, t: timeoutMs, r: this.id };
    const payload = JSON.stringify(notice);
    if (Buffer.byteLength(payload) > 7000)
      return Promise.reject(
        new TooLargeError(`a request for node ${node} is too large to pass to its replica`, "args"),
      );
    return new Promise((resolve, reject) => {
      // The holder waits timeoutMs for the node; the store and the notices get a little more.
      const timer = setTimeout(() => {
        this.#asked.delete(id);
        reject(
          new NovaError(
            "not_found",
            `node ${node} did not answer within ${timeoutMs} ms (through another replica)`,
          ),
        );
      }, timeoutMs + 2000);
      this.#asked.set(id, { node, resolve, reject, timer });
      void this.#notifier.publish(CHANNEL, payload).catch((err: unknown) => {
        clearTimeout(timer);
        this.#asked.delete(id);
        reject(err as Error);
      });
    });
  }

  // A request another replica asked of a node held here: asked, and the answer stored and announced.
  async #answer(n: Extract<NodeNotice, { k: "request" }>, h: ReplicaHandlers): Promise<void> {
    let body: string;
    try {
      body = JSON.stringify({ reply: await h.request(n.n, n.q, n.a, n.t) });
    } catch (err) {
      body = JSON.stringify({ error: (err as Error).message });
    }
    await this.#o.sql.run("INSERT INTO node_replies (id, body, at) VALUES (?, ?, ?)", [
      n.id,
      body,
      this.#o.clock.now(),
    ]);
    this.#publish({ k: "reply", n: n.n, id: n.id, r: n.r });
  }

  // The answer to one of this replica's requests is in the store: read once, then deleted.
  async #collect(id: string): Promise<void> {
    const asked = this.#asked.get(id);
    if (!asked) return;
    const row = await this.#o.sql.get<{ body: string }>("SELECT body FROM node_replies WHERE id = ?", [id]);
    await this.#o.sql.run("DELETE FROM node_replies WHERE id = ?", [id]);
    if (!row || !this.#asked.delete(id)) return;
    clearTimeout(asked.timer);
    const got = JSON.parse(row.body) as { reply?: Body<"reply">; error?: string };
    if (got.reply) asked.resolve(got.reply);
    else asked.reject(new NovaError("not_found", got.error ?? `node ${asked.node} gave no answer`));
  }

  /** Tells the other replicas of a named-cache write stored here, for their nodes holding the cache. */
  announceCacheWrite(w: { cache: string; part: string; scope: string; origin: string; key: string }): void {
    this.#publish({ k: "relay", n: w.origin, r: this.id, c: w.cache, p: w.part, s: w.scope, key: w.key });
  }

  /** Ends `node`'s session wherever it is held (a key reset on any replica cuts it). */
  endEverywhere(node: string, reason: string): void {
    this.#publish({ k: "end", n: node, why: reason.slice(0, 500) });
  }

  // After a membership loss: the sessions it ended then are released in the directory (those claimed
  // before `since`), and the others are told.
  async #releaseStale(since: number): Promise<void> {
    try {
      const rows = await this.#o.sql.all<{ node: string; epoch: number }>(
        "UPDATE node_sessions SET replica = NULL WHERE replica = ? AND since < ? RETURNING node, epoch",
        [this.id, since],
      );
      for (const r of rows) {
        if (this.#claims.get(r.node) === r.epoch) this.#claims.delete(r.node);
        this.#publish({ k: "release", n: r.node, r: this.id, e: r.epoch });
      }
    } catch (err) {
      this.#failures.warn("stale", "sessions ended at a membership loss could not be released", {
        error: (err as Error).message,
      });
    }
  }

  /** Reads the live members and the directory again. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<void> {
    if (this.#stopped) return;
    try {
      const now = this.#o.clock.now();
      const members = new Set((await this.leases.live("replica/", now)).map((l) => l.holder));
      if (this.#member.epoch !== undefined) members.add(this.id);
      const rows = await this.#o.sql.all<{ node: string; replica: string | null; epoch: number }>(
        "SELECT node, replica, epoch FROM node_sessions",
      );
      const remote = new Map<string, Remote>();
      for (const r of rows) {
        // A claim told while the read was out is newer than what the read saw.
        const told = this.#remote.get(r.node);
        if (told && told.epoch > r.epoch) remote.set(r.node, told);
        else if (r.replica !== null && r.replica !== this.id)
          remote.set(r.node, { replica: r.replica, epoch: r.epoch });
      }
      // A newer claim elsewhere whose notice was missed (the listening connection reconnected): the
      // session here is stale.
      for (const r of rows) {
        const mine = this.#claims.get(r.node);
        if (mine !== undefined && r.epoch > mine && r.replica !== this.id) {
          this.#claims.delete(r.node);
          this.#handlers?.moved(r.node, r.epoch);
        }
      }
      const read = new Set(rows.map((r) => r.node));
      for (const [node, told] of this.#remote) if (!read.has(node)) remote.set(node, told);
      this.#members = members;
      for (const m of members) this.#lastAlive.set(m, now);
      this.#remote = remote;
      // Answers nobody collected (the asker died or gave up) go after five minutes.
      await this.#o.sql.run("DELETE FROM node_replies WHERE at < ?", [now - 300_000]);
    } catch (err) {
      this.#failures.warn("directory", "the session directory could not be read", {
        error: (err as Error).message,
      });
    }
  }

  #publish(n: NodeNotice): void {
    void this.#notifier.publish(CHANNEL, JSON.stringify(n)).catch((err: unknown) =>
      this.#failures.warn("notify", "a notice to the other replicas was not sent", {
        kind: n.k,
        node: n.n,
        error: (err as Error).message,
      }),
    );
  }

  #onNotice(payload: string): void {
    const h = this.#handlers;
    if (!h || this.#stopped) return;
    let n: NodeNotice;
    try {
      n = JSON.parse(payload) as NodeNotice;
      if (typeof n?.n !== "string" || typeof n.k !== "string") throw new Error("no node or kind");
    } catch (err) {
      this.#o.log.warn("a notice from another replica was not understood", { error: (err as Error).message });
      return;
    }
    switch (n.k) {
      case "claim": {
        if (n.r === this.id) return;
        this.#members.add(n.r);
        this.#lastAlive.set(n.r, this.#o.clock.now());
        // Notices may arrive out of order (they go through several connections): epochs only grow.
        if ((this.#remote.get(n.n)?.epoch ?? 0) < n.e) this.#remote.set(n.n, { replica: n.r, epoch: n.e });
        const mine = this.#claims.get(n.n);
        if (mine !== undefined && mine < n.e) {
          this.#claims.delete(n.n);
          h.moved(n.n, n.e);
        }
        return;
      }
      case "release": {
        const r = this.#remote.get(n.n);
        if (r?.replica === n.r && r.epoch <= n.e) this.#remote.delete(n.n);
        return;
      }
      case "end":
        if (h.holds(n.n)) h.end(n.n, n.why);
        return;
      case "request":
        if (n.r !== this.id && h.holds(n.n))
          void this.#answer(n, h).catch((err: unknown) =>
            this.#failures.warn("answer", "a node's answer for another replica could not be stored", {
              node: n.n,
              error: (err as Error).message,
            }),
          );
        return;
      case "relay":
        if (n.r !== this.id) h.relay({ cache: n.c, part: n.p, scope: n.s, origin: n.n, key: n.key });
        return;
      case "reply":
        if (n.r === this.id)
          void this.#collect(n.id).catch((err: unknown) =>
            this.#failures.warn("collect", "a node's answer through another replica could not be read", {
              node: n.n,
              error: (err as Error).message,
            }),
          );
        return;
      case "allocs":
      case "config":
      case "cache":
      case "verdicts":
        if (h.holds(n.n)) h.deliver(n.n, n.k);
        return;
    }
  }

  #caughtUp(): void {
    const h = this.#handlers;
    // The first listen misses nothing: only a reconnect of the listening connection may have.
    if (!this.#listened) {
      this.#listened = true;
      return;
    }
    if (!h) return;
    void this.refresh();
    for (const node of h.local()) {
      h.deliver(node, "allocs");
      h.deliver(node, "config");
    }
  }
}
