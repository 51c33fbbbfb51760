// The agent's modules and their one lifecycle: listed here once, started in order, stopped in reverse.
import type { Server } from "bun";
import { redactUrl } from "../shared/config/index.ts";
import { ConfigError, RequestError } from "../shared/errors.ts";
import type { LogLevel, Logger } from "../shared/log.ts";
import { readPemFile, tlsMaterial } from "../shared/tls.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { encodeCbor, type Message, type MessageType } from "../shared/protocol/index.ts";
import { SOFTWARE_VERSION } from "../shared/version.ts";
import { type AgentStatus, createLocalApi } from "./api/index.ts";
import { registerAgentMetrics } from "./agent-metrics.ts";
import { type Inventory, inventory } from "./collect/index.ts";
import { type AgentConfig, DEFAULT_API } from "./config/index.ts";
import { handleHubMessage } from "./hub-messages.ts";
import { HubLink, type Identity } from "./link/index.ts";
import { type Clock, systemClock } from "../shared/clock.ts";
import { AgentStore, MetricBuffer } from "./store/index.ts";
import { LocalCache } from "./cache/index.ts";
import { RulesRunner } from "./rules-runner.ts";
import { type Sampling, startSampling } from "./sampling-loop.ts";
import { StreamRunner } from "./stream-runner.ts";
import { MqttIngest } from "./stream/index.ts";
import { TaskManager } from "./tasks/index.ts";

/** How many ports past the default the local API tries when the default one is taken. */
const API_FALLBACK_PORTS = 19;
/** One part of the agent with a start/stop lifecycle; stop() is safe even if start() failed. */
export interface Module {
  readonly name: string;
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
}

/** A running agent: its modules, its state for the local API, and hot config. */
export class Agent {
  #config: AgentConfig;
  readonly #log: Logger;
  readonly metrics = new MetricsRegistry();
  readonly #abort = new AbortController();
  #store: AgentStore | undefined;
  #buffer: MetricBuffer | undefined;
  #hub: HubLink | undefined;
  #sampling: Sampling | undefined;
  /** Hub messages that authenticated but could not be applied (a cache key over the limit, say). */
  #hubMessagesRefused = 0;
  #tasks: TaskManager | undefined;
  #rules: RulesRunner | undefined;
  #stream: StreamRunner | undefined;
  #cache: LocalCache | undefined;
  #mqttIngest: MqttIngest | undefined;
  /** Sampling interval a rule asked for, over the configured one. */
  #ruleInterval: number | undefined;
  #offlineSince: number | undefined;
  #server: Server<unknown> | undefined;
  #inventory: Inventory | undefined;
  #started: Module[] = [];
  #firstSampleAt: number | undefined;
  readonly #startedAt: number;
  #configRevision = 1;
  #reclaimTimer: ReturnType<Clock["setInterval"]> | undefined;
  /** Time and timers for every module: the system clock, or a test's fake one. */
  readonly #clock: Clock;

  constructor(config: AgentConfig, log: Logger, opts: { clock?: Clock } = {}) {
    this.#config = config;
    this.#log = log;
    this.#clock = opts.clock ?? systemClock;
    this.#startedAt = this.#clock.now();
  }

  get config(): AgentConfig {
    return this.#config;
  }

  /** Address the local API listens on (after start). */
  get apiUrl(): string | undefined {
    return this.#server ? `http://${this.#config.api.host}:${this.#server.port}` : undefined;
  }

  /** The modules, in start order. */
  #modules(): Module[] {
    return [
      {
        name: "store",
        start: async () => {
          // Room for the envelope: a batch must fit in one frame the hub accepts.
          const maxBodyBytes = Math.floor(this.#config.max_frame_bytes * 0.9);
          this.#store = new AgentStore(this.#config.data, {
            bufferBytes: this.#config.buffer_bytes,
            maxBodyBytes,
          });
          const since = Number(this.#store.getState("offline_since"));
          if (since > 0) this.#offlineSince = since;
          // Pages freed by acks and drops go back to the file system, so the file shrinks after a catch-up.
          this.#reclaimTimer = this.#clock.setInterval(() => this.#store?.reclaim(), 60_000);
          this.#buffer = new MetricBuffer(this.#store, this.#config.sample_interval);
          // Ticks staged before a crash are packed now, so they leave with the first flush.
          this.#buffer.flush(this.#clock.now());
        },
        stop: async () => {
          this.#clock.clearInterval(this.#reclaimTimer);
          this.#buffer?.flush(this.#clock.now());
          this.#store?.close();
        },
      },
      {
        name: "tasks",
        // Before the link: workloads come back from the local store even with no hub at all.
        start: async () => {
          this.#tasks = new TaskManager({
            db: this.#store!.db,
            dataDir: this.#config.data,
            log: this.#log.child("tasks"),
            clock: this.#clock,
            events: {
              onStatus: (e) => this.#report("alloc_status", e),
              onResult: (e) => this.#report("task_result", e),
            },
          });
          await this.#tasks.start();
        },
        stop: async () => {
          // Supervised processes keep running; the next start re-adopts them.
          await this.#tasks?.stop();
        },
      },
      {
        name: "cache",
        start: async (signal) => {
          this.#cache = new LocalCache({
            db: this.#store!.db,
            budgetBytes: this.#config.cache_bytes,
            policy: this.#config.cache_policy as "lru" | "lfu",
            clock: this.#clock,
          });
          this.#cache.start(signal);
        },
        stop: async () => this.#cache?.stop(),
      },
      {
        name: "stream",
        start: async () => {
          this.#stream = new StreamRunner(this.#config.pipelines, {
            log: this.#log.child("stream"),
            onAlert: (a) =>
              this.#report("event", {
                kind: "alert",
                at: a.t,
                message: a.message,
                fields: {
                  severity: a.severity,
                  source: `pipeline:${a.pipeline}`,
                  series: a.series,
                  value: a.value,
                },
              }),
          });
          // Points published by local applications to a broker on the host, when configured.
          const { url, topics } = this.#config.ingest_mqtt;
          if (url !== "") {
            this.#mqttIngest = new MqttIngest({
              url,
              topics,
              clientId: `novacron-agent-${this.#config.node_id}-ingest`,
              log: this.#log.child("mqtt-ingest"),
              clock: this.#clock,
              ingest: (points) => this.#stream?.ingest(points),
            });
            this.#mqttIngest.start();
          }
        },
        stop: async () => {
          await this.#mqttIngest?.stop();
        },
      },
      {
        name: "rules",
        start: async () => {
          this.#rules = new RulesRunner(this.#config.rules, {
            db: this.#store!.db,
            log: this.#log.child("rules"),
            clock: this.#clock,
            tasks: () => this.#tasks,
            cache: () => this.#cache,
            buffer: {
              downsample: () => {
                const store = this.#store!;
                return store.downsampler.run(store.outbox, 0);
              },
              prune: (before) => this.#store!.outbox.dropBulkBefore(before),
            },
            report: (type, body) => this.#report(type, body),
            setSampleInterval: (ms) => {
              this.#ruleInterval = ms;
              this.#buffer?.setInterval(this.#sampleInterval(), this.#clock.now());
            },
          });
        },
        stop: async () => {},
      },
      this.#collectModule(),
      {
        name: "link",
        start: async () => this.#startLink(),
        stop: async () => {
          await this.#hub?.link.stop();
        },
      },
      {
        name: "api",
        start: async () => this.#startApi(),
        stop: async () => {
          this.#server?.stop(true);
        },
      },
    ];
  }

  /** Starts every module in order; on failure stops what started and rethrows. */
  async start(): Promise<void> {
    for (const m of this.#modules()) {
      try {
        await m.start(this.#abort.signal);
        this.#started.push(m);
      } catch (err) {
        this.#log.error(`module ${m.name} failed to start`, { error: (err as Error).message });
        await this.stop();
        throw err;
      }
    }
    this.#registerMetrics();
  }

  /** Stops modules in reverse order; everything staged is packed into the outbox first. */
  async stop(): Promise<void> {
    this.#abort.abort();
    for (const m of this.#started.reverse()) {
      try {
        await m.stop();
      } catch (err) {
        this.#log.warn(`module ${m.name} did not stop cleanly`, { error: (err as Error).message });
      }
    }
    this.#started = [];
  }

  #collectModule(): Module {
    return {
      name: "collect",
      start: async () => {
        this.#sampling = startSampling({
          log: this.#log,
          clock: this.#clock,
          host: { proc: this.#config.host_proc, sys: this.#config.host_sys, root: this.#config.host_root },
          interval: () => this.#sampleInterval(),
          diskInterval: () => this.#config.disk_interval,
          batchInterval: () => this.#config.batch_interval,
          probes: () => this.#config.probes,
          probeInterval: () => this.#config.probe_interval,
          onTick: (ts, values, now) => {
            if (this.#stream) Object.assign(values, this.#stream.tick(values, now));
            this.#buffer!.add(ts, values);
            this.#firstSampleAt ??= now;
            this.#rules?.evaluate(values, this.#ruleState(now), now);
          },
          flush: (now) => this.#buffer!.flush(now),
          notify: () => this.#hub?.link.notify(),
        });
      },
      stop: async () => this.#sampling?.stop(),
    };
  }

  async #startLink(): Promise<void> {
    const cfg = this.#config;
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
      this.#log.warn("TLS settings given, but no hub endpoint is wss:// or mqtts://: they are not used");
    this.#hub = new HubLink({
      endpoints: [...cfg.hub],
      identity: this.#identity(),
      store: this.#store!,
      log: this.#log.child("link"),
      clock: this.#clock,
      heartbeatMs: cfg.heartbeat_interval,
      maxFrameBytes: cfg.max_frame_bytes,
      tls,
      onMessage: (msg) => this.#fromHub(msg),
      allocGeneration: () => this.#tasks?.appliedGeneration() ?? 0,
    });
    if (cfg.hub.length === 0) this.#log.info("no hub configured: running standalone");
    this.#hub.link.start();
  }

  // A must-deliver report: into the outbox (durable), then out when the link can.
  #report(type: MessageType, body: object): void {
    const clean = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
    this.#store?.outbox.append(type, encodeCbor(clean), 0, this.#clock.now());
    this.#hub?.link.notify();
  }

  // Hub-to-node messages other than acks. One the agent cannot apply is refused and reported, never a crash.
  #fromHub(msg: Message): void {
    try {
      handleHubMessage(msg, {
        tasks: this.#tasks,
        cache: this.#cache,
        log: this.#log,
        reply: (body) => this.#hub?.link.sendLive("reply", body),
      });
    } catch (err) {
      const field = err instanceof RequestError && err.field ? `${err.field}: ` : "";
      const reason = `${field}${(err as Error).message}`;
      const message = `${msg.t} refused: ${reason}`;
      this.#hubMessagesRefused += 1;
      this.#log.warn("hub message refused", { type: msg.t, error: reason });
      if (msg.t === "command") this.#hub?.link.sendLive("reply", { id: msg.b.id, ok: false, body: message });
      else this.#hub?.link.sendLive("error", { code: "bad_body", message });
    }
  }

  #sampleInterval(): number {
    return this.#ruleInterval ?? this.#config.sample_interval;
  }

  // What rule conditions may read besides series: the link, the buffer, the tasks.
  #ruleState(now: number) {
    const connected = this.#hub?.link.status().connected ?? false;
    // Kept in the store, so that a restart while offline does not start the count again.
    if (connected && this.#offlineSince !== undefined) {
      this.#offlineSince = undefined;
      this.#store?.setState("offline_since", "");
    } else if (!connected && this.#offlineSince === undefined) {
      this.#offlineSince = now;
      this.#store?.setState("offline_since", String(now));
    }
    const tasks = this.#tasks?.counts();
    return {
      connected,
      offline_s: this.#offlineSince === undefined ? 0 : (now - this.#offlineSince) / 1000,
      buffer_fill: (this.#store?.outbox.bytes ?? 0) / this.#config.buffer_bytes,
      tasks_running: tasks?.running ?? 0,
      tasks_paused: tasks?.paused ?? 0,
    };
  }

  /** The decision log, newest first. */
  decisions(limit = 100) {
    return this.#rules?.list(limit) ?? [];
  }

  /** The local API's task list. */
  tasks(): ReturnType<TaskManager["list"]> {
    return this.#tasks?.list() ?? [];
  }

  #identity(): Identity {
    const cfg = this.#config;
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
    };
  }

  async #startApi(): Promise<void> {
    const app = createLocalApi({
      metrics: this.metrics,
      status: () => this.status(),
      tasks: () => this.tasks(),
      logs: (alloc, lines) => this.#tasks?.logs(alloc, lines),
      decisions: (limit) => this.decisions(limit),
      ingest: (points) => this.#stream?.ingest(points),
      now: () => this.#clock.now(),
      cache: () => this.#cache,
    });
    const { host, port } = this.#config.api;
    // The default port is often taken (a second agent on the host, or anything else on 8080): the
    // agent then takes the next free one and says where. A port given on purpose is kept or refused.
    const byDefault = `${host}:${port}` === DEFAULT_API;
    const last = byDefault ? port + API_FALLBACK_PORTS : port;
    for (let p = port; ; p++) {
      try {
        this.#server = Bun.serve({ hostname: host, port: p, fetch: app.fetch });
        break;
      } catch (err) {
        const inUse =
          (err as { code?: string }).code === "EADDRINUSE" || /in use/i.test((err as Error).message);
        if (!inUse) throw err;
        if (p >= last) {
          throw new ConfigError(
            "api",
            byDefault
              ? `ports ${port}-${last} on ${host} are all in use; give the local API another address with --api HOST:PORT`
              : `${host}:${port} is in use; give the local API another address with --api HOST:PORT`,
          );
        }
      }
    }
    const moved = this.#server!.port !== port ? { default_port_taken: port } : {};
    this.#log.info("local API listening", { url: this.apiUrl, ...moved });
  }

  /** What /v1/status reports. */
  status(): AgentStatus {
    const link = this.#hub?.link.status();
    const ob = this.#store?.outbox.stats();
    return {
      node_id: this.#config.node_id,
      connected: link?.connected ?? false,
      hub: link?.endpoint ? redactUrl(link.endpoint) : null,
      outbox: { pending: ob?.pending ?? 0, oldest_ms: ob?.oldestMs ?? null, bytes: ob?.bytes ?? 0 },
      samples: {
        produced: this.#buffer?.produced() ?? 0,
        dropped: ob?.droppedSamples ?? 0,
        downsampled: ob?.downsampledSamples ?? 0,
        staged_ticks: this.#buffer?.stagedTicks() ?? 0,
      },
      link: {
        last_acked: link?.lastAcked ?? 0,
        rtt_ms: link?.rttMs ?? null,
        rtt_max_ms: link?.rttMaxMs ?? null,
        clock_offset_ms: link?.clockOffsetMs ?? null,
        sessions: link?.reconnects ?? 0,
        refused: this.#refused(),
      },
      config: {
        revision: this.#configRevision,
        level: this.#config.level,
        labels: this.#config.labels,
        sample_interval_ms: this.#config.sample_interval,
        batch_interval_ms: this.#config.batch_interval,
        heartbeat_interval_ms: this.#config.heartbeat_interval,
        buffer_bytes: this.#config.buffer_bytes,
        log_level: this.#config.log_level,
      },
      ingest_mqtt: this.#mqttIngest?.stats() ?? null,
      tasks: {
        count: this.#tasks?.counts().total ?? 0,
        limits_enforced: this.#tasks?.limitsEnforced() ?? false,
        limits: this.#tasks?.limitsReason() ?? "",
      },
      started_ms: this.#startedAt,
      first_sample_ms: this.#firstSampleAt ?? null,
      version: SOFTWARE_VERSION,
    };
  }

  /** Applies a new, already validated config; keys that need a restart are reported, not applied. */
  applyConfig(next: AgentConfig, changed: string[], restartKeys: string[]): void {
    this.#config = next;
    this.#configRevision += 1;
    if (changed.includes("sample_interval"))
      this.#buffer?.setInterval(this.#sampleInterval(), this.#clock.now());
    if (changed.includes("batch_interval")) this.#sampling?.batchIntervalChanged();
    if (changed.includes("cache_bytes")) this.#cache?.setBudget(next.cache_bytes);
    if (changed.includes("pipelines")) {
      try {
        this.#stream?.replace(next.pipelines);
      } catch (err) {
        this.#log.error("pipelines refused; keeping the running ones", { error: (err as Error).message });
      }
    }
    if (changed.includes("rules")) {
      try {
        this.#rules?.replace(next.rules);
      } catch (err) {
        this.#log.error("rules refused; keeping the running ones", { error: (err as Error).message });
      }
    }
    if (changed.includes("buffer_bytes")) this.#store?.outbox.setBudget(next.buffer_bytes);
    if (changed.includes("heartbeat_interval")) this.#hub?.link.setHeartbeat(next.heartbeat_interval);
    if (changed.includes("log_level")) this.#log.setLevel(next.log_level as LogLevel);
    if (changed.some((k) => ["level", "labels", "capabilities", "join_token", "hub_key"].includes(k))) {
      this.#hub?.setIdentity(this.#identity());
    }
    if (changed.includes("hub")) this.#hub?.link.setEndpoints([...next.hub]);
    this.#log.info("configuration reloaded", {
      changed: changed.join(",") || "none",
      revision: this.#configRevision,
    });
    if (restartKeys.length > 0)
      this.#log.warn("changed settings take effect after a restart", { keys: restartKeys.join(",") });
  }

  /** An invalid config file: the running config stays. */
  rejectConfig(err: ConfigError): void {
    this.#log.error("configuration refused; keeping the running one", { error: err.message });
  }

  #registerMetrics(): void {
    registerAgentMetrics(this.metrics, {
      produced: () => this.#buffer?.produced() ?? 0,
      outbox: () => this.#store?.outbox,
      link: () => this.#hub?.link.status(),
      refused: () => this.#refused(),
    });
  }

  // Frames refused on the hub link: forged, replayed, from an untrusted hub, acks above what was sent.
  #refused(): Record<string, number> {
    const out: Record<string, number> = Object.fromEntries(this.#hub?.refused ?? []);
    const acks = this.#hub?.link.status().acksRefused ?? 0;
    if (acks > 0) out.ack_above_sent = acks;
    if (this.#hubMessagesRefused > 0) out.unappliable = this.#hubMessagesRefused;
    return out;
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
