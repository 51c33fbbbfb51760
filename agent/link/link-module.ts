// The link module: the session with the hub (hello, batches, acks, heartbeats) and what the hub's own messages do.
import type { LinkStatus } from "../../shared/link/index.ts";
import type { Body, Message } from "../../shared/protocol/index.ts";
import { RequestError, UnavailableError } from "../../shared/errors.ts";
import { readPemFile, tlsMaterial } from "../../shared/tls.ts";
import { SOFTWARE_VERSION } from "../../shared/version.ts";
import type { LocalCache, NamedCaches } from "../cache/index.ts";
import { type Inventory, inventory } from "../collect/index.ts";
import type { AgentConfig } from "../config/index.ts";
import type { Module, ModuleContext } from "../module.ts";
import type { AgentStore } from "../store/index.ts";
import type { RulesRunner } from "../rules/index.ts";
import type { Fencing, TaskManager } from "../tasks/index.ts";
import { HubLink, type Identity } from "./hub-link.ts";
import { handleHubMessage } from "./hub-messages.ts";

/** Config keys that change what the agent says about itself in hello. */
const IDENTITY_KEYS = ["level", "labels", "capabilities", "join_token", "hub_key", "caches"];

export interface LinkModuleDeps {
  store: () => AgentStore | undefined;
  tasks: () => TaskManager | undefined;
  cache: () => LocalCache | undefined;
  /** The named caches: the hub's replicas and declarations go to them. */
  named?: () => NamedCaches | undefined;
  /** Edge-side fencing: keeps allocs it stopped out of the hub's desired set. */
  fencing: () => Fencing | undefined;
  /** The rule runner: hub rule sets and the hub's verdicts on decisions go to it. */
  rules: () => RulesRunner | undefined;
}

/** The hub link: one session over WebSocket or MQTT, or none when the agent runs standalone. */
export class LinkModule implements Module {
  readonly name = "link";
  readonly #ctx: ModuleContext;
  readonly #d: LinkModuleDeps;
  #hub: HubLink | undefined;
  #inventory: Inventory | undefined;
  /** Hub messages that authenticated but could not be applied (a cache key over the limit, say). */
  #hubMessagesRefused = 0;
  /** Requests to the hub waiting for their reply, by id. */
  readonly #waiting = new Map<string, (reply: Body<"reply">) => void>();
  #nextRequest = 0;

  constructor(ctx: ModuleContext, deps: LinkModuleDeps) {
    this.#ctx = ctx;
    this.#d = deps;
  }

  async start(): Promise<void> {
    const cfg = this.#ctx.config();
    const store = this.#d.store();
    if (!store) throw new Error("the store is not open");
    this.#inventory = await inventoryOrFallback();
    // Read once: a certificate renewed on disk takes effect at the next restart.
    const tls = tlsMaterial({
      ca: readPemFile("hub_ca", cfg.hub_ca, "certificate"),
      cert: readPemFile("tls_cert", cfg.tls_cert, "certificate"),
      key: readPemFile("tls_key", cfg.tls_key, "private key"),
    });
    if (
      tls &&
      cfg.hub.length > 0 &&
      !cfg.hub.some((url) => url.startsWith("wss:") || url.startsWith("mqtts:"))
    )
      this.#ctx.log.warn("TLS settings given, but no hub endpoint is wss:// or mqtts://: they are not used");
    this.#hub = new HubLink({
      endpoints: [...cfg.hub],
      identity: this.#identity(),
      store,
      log: this.#ctx.log.child("link"),
      clock: this.#ctx.clock,
      heartbeatMs: cfg.heartbeat_interval,
      maxFrameBytes: cfg.max_frame_bytes,
      tls,
      onMessage: (msg) => this.#fromHub(msg),
      allocGeneration: () => this.#d.tasks()?.appliedGeneration() ?? 0,
    });
    if (cfg.hub.length === 0) this.#ctx.log.info("no hub configured: running standalone");
    this.#hub.link.start();
  }

  async stop(): Promise<void> {
    await this.#hub?.link.stop();
  }

  /** The session's state (undefined before start). */
  status(): LinkStatus | undefined {
    return this.#hub?.link.status();
  }

  /** The outbox has something new. */
  notify(): void {
    this.#hub?.link.notify();
  }

  /** Frames refused on the hub link: forged, replayed, from an untrusted hub, acks above what was sent. */
  refused(): Record<string, number> {
    const out: Record<string, number> = Object.fromEntries(this.#hub?.refused ?? []);
    const acks = this.#hub?.link.status().acksRefused ?? 0;
    if (acks > 0) out.ack_above_sent = acks;
    if (this.#hubMessagesRefused > 0) out.unappliable = this.#hubMessagesRefused;
    return out;
  }

  configChanged(next: AgentConfig, changed: readonly string[]): void {
    if (changed.includes("heartbeat_interval")) this.#hub?.link.setHeartbeat(next.heartbeat_interval);
    if (changed.some((k) => IDENTITY_KEYS.includes(k))) this.#hub?.setIdentity(this.#identity());
    if (changed.includes("hub")) this.#hub?.link.setEndpoints([...next.hub]);
  }

  // Hub-to-node messages other than acks. One the agent cannot apply is refused and reported, never a crash.
  #fromHub(msg: Message): void {
    const live = this.#hub?.link;
    try {
      handleHubMessage(msg, {
        tasks: this.#d.tasks(),
        fencing: this.#d.fencing(),
        cache: this.#d.cache(),
        named: this.#d.named?.(),
        log: this.#ctx.log,
        reply: (body) => live?.sendLive("reply", body),
        onReply: (reply) => {
          this.#waiting.get(reply.id)?.(reply);
          this.#waiting.delete(reply.id);
        },
        rules: this.#d.rules(),
      });
    } catch (err) {
      const field = err instanceof RequestError && err.field ? `${err.field}: ` : "";
      const reason = `${field}${(err as Error).message}`;
      const message = `${msg.t} refused: ${reason}`;
      this.#hubMessagesRefused += 1;
      this.#ctx.log.warn("hub message refused", { type: msg.t, error: reason });
      if (msg.t === "command") live?.sendLive("reply", { id: msg.b.id, ok: false, body: message });
      else live?.sendLive("error", { code: "bad_body", message });
    }
  }

  /**
   * Reads a key of a strong cache at the hub: its value and stamp, null when the hub has none.
   * UnavailableError when there is no session, or no answer within `timeoutMs`.
   */
  readCache(
    cache: string,
    key: string,
    replicate: Body<"cache_read">["replicate"],
    timeoutMs = 5000,
  ): Promise<{ value?: Uint8Array | string; hlc?: string } | null> {
    const live = this.#hub?.link;
    const id = `read-${++this.#nextRequest}`;
    return new Promise((resolve, reject) => {
      const timer = this.#ctx.clock.setTimeout(() => {
        this.#waiting.delete(id);
        reject(
          new UnavailableError("hub_unreachable", `the hub did not answer a read within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#waiting.set(id, (reply) => {
        this.#ctx.clock.clearTimeout(timer);
        if (!reply.ok)
          reject(new UnavailableError("hub_unreachable", `the hub refused the read: ${String(reply.body)}`));
        else resolve((reply.body as { value?: Uint8Array | string; hlc?: string } | null) ?? null);
      });
      if (!live?.status().connected || !live.sendLive("cache_read", { id, cache, key, replicate })) {
        this.#ctx.clock.clearTimeout(timer);
        this.#waiting.delete(id);
        reject(new UnavailableError("hub_unreachable", "no session with the hub"));
      }
    });
  }

  #identity(): Identity {
    const cfg = this.#ctx.config();
    const inv = this.#inventory;
    return {
      nodeId: cfg.node_id,
      level: cfg.level,
      labels: { ...cfg.labels },
      capabilities: [...cfg.capabilities],
      joinToken: cfg.join_token,
      hubKeys: [...cfg.hub_key],
      resources: inv ? { ...inv } : {},
      version: SOFTWARE_VERSION,
      caches: Object.entries(cfg.caches)
        .filter(([, spec]) => spec.replicate !== "none")
        .map(([name, spec]) => ({ name, replicate: spec.replicate, prefetch: spec.prefetch })),
    };
  }
}

// Inventory is for the hello only; a failure there must never keep the agent from running.
async function inventoryOrFallback(): Promise<Inventory | undefined> {
  try {
    return await inventory();
  } catch {
    return undefined;
  }
}
