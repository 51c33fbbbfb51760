// The stream module: pipelines over every sample and pushed point, and the optional MQTT ingest from a local broker.
import type { AgentConfig } from "../config/index.ts";
import type { Module, ModuleContext } from "../module.ts";
import type { IngestPoint } from "./ingest-body.ts";
import { MqttIngest, type MqttIngestStats } from "./mqtt-ingest.ts";
import { StreamRunner } from "./stream-runner.ts";

export interface StreamModuleDeps {
  /** Stores pushed points (and what the pipelines made of them), each at its own time, durably. */
  /**
   * False when the points could not be stored (a full disk): they are counted as dropped. Undefined
   * when the store is not open: nothing was taken.
   */
  stagePoints: (points: readonly IngestPoint[], now: number) => boolean | undefined;
  /** Points refused as invalid: counted as produced and dropped (reason invalid). */
  invalid: (points: number) => void;
}

/** Stream pipelines and the points local applications push (over the local API or a local broker). */
export class StreamModule implements Module {
  readonly name = "stream";
  readonly #ctx: ModuleContext;
  #runner: StreamRunner | undefined;
  #mqttIngest: MqttIngest | undefined;
  readonly #d: StreamModuleDeps;

  constructor(ctx: ModuleContext, deps: StreamModuleDeps) {
    this.#ctx = ctx;
    this.#d = deps;
  }

  async start(): Promise<void> {
    const cfg = this.#ctx.config();
    this.#runner = new StreamRunner(cfg.pipelines, {
      log: this.#ctx.log.child("stream"),
      source: cfg.config,
      onAlert: (a) =>
        this.#ctx.report("event", {
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
    const { url, topics } = cfg.ingest_mqtt;
    if (url !== "") {
      this.#mqttIngest = new MqttIngest({
        url,
        topics,
        clientId: `novacron-agent-${cfg.node_id}-ingest`,
        log: this.#ctx.log.child("mqtt-ingest"),
        clock: this.#ctx.clock,
        ingest: (points) => this.ingest(points),
        invalid: (points) => this.#d.invalid(points),
      });
      this.#mqttIngest.start();
    }
  }

  async stop(): Promise<void> {
    await this.#mqttIngest?.stop();
  }

  /**
   * Points a local application pushed: alerts go out at once; the points and what the pipelines make
   * of them are stored durably at their own times before the caller hears `accepted`. False when
   * they could not be stored (a full disk; counted as dropped, reason disk); undefined when the store
   * is not open (nothing taken).
   */
  ingest(points: readonly IngestPoint[]): boolean | undefined {
    const timed = this.#runner ? this.#runner.ingest(points) : points;
    return this.#d.stagePoints(timed, this.#ctx.clock.now());
  }

  /** Points refused as invalid (counted as produced and dropped, reason invalid). */
  invalid(points: number): void {
    this.#d.invalid(points);
  }

  /** The newest pushed value of each series since the last call (the rules see them with the next tick). */
  takePushed(): Record<string, number> | undefined {
    return this.#runner?.takePushed();
  }

  /** One tick through the pipelines; returns the series to store with it (pipeline outputs, pushed points). */
  tick(values: Record<string, number>, now: number): Record<string, number> {
    return this.#runner ? this.#runner.tick(values, now) : {};
  }

  mqttIngestStats(): MqttIngestStats | null {
    return this.#mqttIngest?.stats() ?? null;
  }

  configChanged(next: AgentConfig, changed: readonly string[]): void {
    if (!changed.includes("pipelines")) return;
    try {
      this.#runner?.replace(next.pipelines);
    } catch (err) {
      this.#ctx.log.error("pipelines refused; keeping the running ones", { error: (err as Error).message });
    }
  }
}
