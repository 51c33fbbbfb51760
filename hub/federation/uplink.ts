// A child hub's link to its parent: the agent's link (one outbox, one reconnect loop, Noise, key pinning) as a node of kind hub.
import { Database, type Statement } from "bun:sqlite";
import { join } from "node:path";
import type { Clock } from "../../shared/clock.ts";
import { HubLink, Outbox } from "../../shared/link/index.ts";
import type { Logger } from "../../shared/log.ts";
import type { Body, Message, MessageType } from "../../shared/protocol/index.ts";
import { SOFTWARE_VERSION } from "../../shared/version.ts";

/** The child hub's side of the link on disk: DIR/uplink.db holds its node key, the parent keys it pinned, an outbox. */
export class UplinkStore {
  readonly db: Database;
  readonly outbox: Outbox;
  readonly #get: Statement;
  readonly #set: Statement;

  constructor(dataDir: string) {
    this.db = new Database(join(dataDir, "uplink.db"), { create: true, strict: true });
    this.db.run("PRAGMA journal_mode = WAL");
    this.db.run("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    // Summaries and changes are live (the next summary replaces a lost one): the outbox stays empty but
    // gives the session its epoch and numbering, as for any node.
    this.outbox = new Outbox(this.db, { budgetBytes: 1 << 20 });
    this.#get = this.db.query("SELECT value FROM state WHERE key = ?");
    this.#set = this.db.query(
      "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
  }

  getState(key: string): string | undefined {
    return (this.#get.get(key) as { value: string } | null)?.value;
  }

  setState(key: string, value: string): void {
    this.#set.run(key, value);
  }

  close(): void {
    this.db.close();
  }
}

export interface UplinkOptions {
  hubId: string;
  level: number;
  endpoints: string[];
  joinToken: string;
  dataDir: string;
  heartbeatMs: number;
  maxFrameBytes: number;
  log: Logger;
  clock?: Clock;
  /** The session came up (send the first summary) or went down. */
  onStateChange: (connected: boolean) => void;
  /** A command from the parent; its answer goes back as the reply's body (a throw answers ok: false). */
  onCommand: (kind: string, args: Record<string, unknown>) => Promise<unknown> | unknown;
}

/** Commands a parent sends its child hubs; anything else (an agent's commands) is answered as not handled. */
export const HUB_COMMANDS: ReadonlySet<string> = new Set([
  "fed_resync",
  "fed_query",
  "fed_place",
  "fed_apply",
]);

/** Links this hub to its parent and carries what the reporter sends and the parent's commands. */
export class Uplink {
  readonly store: UplinkStore;
  readonly hub: HubLink;
  readonly #o: UplinkOptions;
  /** The parent's last welcome said it takes `summary` and `topology`. */
  #parentTakesSubtrees = false;

  constructor(o: UplinkOptions) {
    this.#o = o;
    this.store = new UplinkStore(o.dataDir);
    this.hub = new HubLink({
      endpoints: o.endpoints,
      identity: {
        nodeId: o.hubId,
        level: o.level,
        labels: {},
        capabilities: [],
        joinToken: o.joinToken,
        hubKeys: [],
        resources: {},
        version: SOFTWARE_VERSION,
        kind: "hub",
      },
      store: this.store,
      log: o.log,
      ...(o.clock ? { clock: o.clock } : {}),
      heartbeatMs: o.heartbeatMs,
      maxFrameBytes: o.maxFrameBytes,
      onStateChange: (up) => o.onStateChange(up),
      onWelcome: (w) => {
        this.#parentTakesSubtrees = w.subtrees === true;
        if (!this.#parentTakesSubtrees)
          o.log.warn(
            "the parent hub does not take subtree reports (an earlier version): it sees this hub as one node",
            {
              hub: w.hub_id,
            },
          );
      },
      onMessage: (msg) => this.#fromParent(msg),
    });
  }

  start(): void {
    this.hub.link.start();
  }

  #stopped = false;

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.hub.link.stop();
    this.store.close();
  }

  get connected(): boolean {
    return this.hub.link.status().connected;
  }

  /** Sends a live message to the parent; false when the link is down, or a report the parent does not take. */
  send<T extends MessageType>(type: T, body: Body<T>): boolean {
    if ((type === "summary" || type === "topology") && !this.#parentTakesSubtrees) return false;
    return this.hub.link.sendLive(type, body);
  }

  // The parent treats this hub as a node: desired sets, rule sets and cache puts are for agents and ignored.
  #fromParent(msg: Message): void {
    if (msg.t !== "command") return;
    const { id, kind, args } = msg.b;
    if (!HUB_COMMANDS.has(kind)) {
      this.send("reply", { id, ok: false, body: `${kind} is not something a hub does` });
      return;
    }
    Promise.resolve()
      .then(() => this.#o.onCommand(kind, args))
      .then(
        (body) => this.send("reply", { id, ok: true, body }),
        (err: Error) => this.send("reply", { id, ok: false, body: err.message }),
      );
  }
}
