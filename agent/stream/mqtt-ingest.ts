// Ingests points that local applications publish to MQTT topics, parsed exactly like POST /v1/ingest bodies.
import { type Clock, sleep, systemClock } from "../../shared/clock.ts";
import { redactUrl } from "../../shared/config/index.ts";
import { RequestError } from "../../shared/errors.ts";
import { backoffDelay } from "../../shared/link/index.ts";
import type { Logger } from "../../shared/log.ts";
import { type IncomingMessage, MqttClient } from "../../shared/mqtt/index.ts";
import { type IngestPoint, parseIngestBody } from "./ingest-body.ts";
import { MAX_SERIES_CHARS, SERIES_PATTERN } from "./series-name.ts";

export interface MqttIngestOptions {
  /** mqtt:// or mqtts:// (user:password@ allowed). */
  url: string;
  /** Topic filters; '+' and '#' allowed. */
  topics: readonly string[];
  clientId: string;
  log: Logger;
  /** Receives the points of each good message, in arrival order. */
  ingest: (points: IngestPoint[]) => void;
  /** A payload refused as invalid (counted as one point dropped, reason invalid). */
  invalid?: (points: number) => void;
  clock?: Clock;
  /** Reconnect back-off; defaults to 250 ms doubling up to 5 s, jittered. */
  backoff?: { baseMs: number; capMs: number; random?: () => number };
  /** At most one bad-payload warning per this many ms; the others are counted. Default 10 s. */
  logEveryMs?: number;
}

export interface MqttIngestStats {
  /** Subscribed to the broker right now. */
  connected: boolean;
  /** Successful connect-and-subscribe rounds, the first one included. */
  connects: number;
  /** Messages received, retained ones included. */
  messages: number;
  /** Points handed to ingest. */
  points: number;
  /** Messages dropped because their payload is not a valid ingest body. */
  bad_payloads: number;
  /** Retained messages the broker replayed on subscribe, not ingested. */
  retained_skipped: number;
}

// A bare number is short; anything longer goes straight to the body parser, which bounds its size.
const MAX_BARE_BYTES = 64;
const BARE_NUMBER = /^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$/;

/**
 * Parses one MQTT payload: a /v1/ingest body in JSON or CBOR, or a bare number (`21.5`) for the series
 * named by the topic's last level (`sensors/room1.temp`). Throws RequestError naming what is wrong.
 */
export function parseMqttPayload(topic: string, payload: Uint8Array, now: number): IngestPoint[] {
  // A CBOR map or list starts with a byte of 0x80 or more; JSON text and a bare number start with ASCII
  // (or the UTF-8 byte order mark, 0xEF 0xBB 0xBF).
  const first = payload[0] ?? 0;
  if (first >= 0x80 && !(first === 0xef && payload[1] === 0xbb && payload[2] === 0xbf)) {
    return parseIngestBody(payload, "application/cbor", now);
  }
  if (payload.byteLength <= MAX_BARE_BYTES) {
    const text = new TextDecoder().decode(payload);
    if (BARE_NUMBER.test(text)) return [barePoint(topic, Number(text), now)];
  }
  return parseIngestBody(payload, "application/json", now);
}

function barePoint(topic: string, value: number, now: number): IngestPoint {
  if (!Number.isFinite(value)) throw new RequestError("must be a finite number", "value");
  const series = topic.slice(topic.lastIndexOf("/") + 1);
  if (series.length === 0 || series.length > MAX_SERIES_CHARS || !SERIES_PATTERN.test(series)) {
    throw new RequestError(
      `a bare number needs a topic whose last level is a series name (letters, digits, '_' and '.'); "${series.slice(0, 60)}" is not`,
      "topic",
    );
  }
  return { series, t: now, value };
}

/** One subscription to the local broker that feeds every message's points to `ingest`; reconnects by itself. */
export class MqttIngest {
  readonly #opts: MqttIngestOptions;
  readonly #clock: Clock;
  readonly #abort = new AbortController();
  #client: MqttClient | undefined;
  #loop: Promise<void> | undefined;
  #stopped = false;
  #lastWarnAt = Number.NEGATIVE_INFINITY;
  #unlogged = 0;
  readonly #stats: MqttIngestStats = {
    connected: false,
    connects: 0,
    messages: 0,
    points: 0,
    bad_payloads: 0,
    retained_skipped: 0,
  };

  constructor(opts: MqttIngestOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
  }

  /** Starts the connect loop in the background: the agent works on while the broker is away. */
  start(): void {
    if (this.#loop || this.#stopped) return;
    this.#loop = this.#run();
  }

  /** Unsubscribes by closing the connection; safe before start() and twice. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.#client?.end();
    await this.#loop;
    this.#stats.connected = false;
  }

  stats(): MqttIngestStats {
    return { ...this.#stats };
  }

  async #run(): Promise<void> {
    const { url, topics, clientId, log } = this.#opts;
    const where = { url: redactUrl(url) };
    let attempt = 0;
    while (!this.#stopped) {
      let client: MqttClient | undefined;
      try {
        const c = await MqttClient.connect(url, {
          clientId,
          clean: true,
          keepaliveSec: 30,
          connectTimeoutMs: 3000,
        });
        client = c;
        if (this.#stopped) {
          await c.end();
          return;
        }
        this.#client = c;
        const ended = new Promise<string>((resolve) => c.onClose(resolve));
        c.onMessage((m) => this.#onMessage(m));
        // QoS 1, so a publisher's QoS 1 holds up to this agent.
        const granted = await c.subscribe(topics.map((topic) => ({ topic, qos: 1 as const })));
        const refused = topics.filter((_, i) => granted[i] === 0x80);
        if (refused.length > 0) log.warn("broker refused MQTT ingest topics", { ...where, topics: refused });
        this.#stats.connected = true;
        this.#stats.connects++;
        log.info("subscribed to MQTT ingest topics", { ...where, topics });
        attempt = 0;
        const reason = await ended;
        this.#stats.connected = false;
        if (!this.#stopped) log.warn("MQTT ingest connection lost", { ...where, reason });
      } catch (err) {
        this.#stats.connected = false;
        client?.destroy();
        if (!this.#stopped)
          log.warn("cannot reach MQTT broker for ingest", { ...where, error: err as Error });
      }
      if (this.#stopped) return;
      const delay = backoffDelay(attempt++, this.#opts.backoff ?? { baseMs: 250, capMs: 5000 });
      await sleep(this.#clock, delay, this.#abort.signal);
    }
  }

  #onMessage(m: IncomingMessage): void {
    this.#stats.messages++;
    // A retained message is an old value the broker replays on every subscribe; ingesting it again
    // would stamp it with a new time.
    if (m.retain) {
      this.#stats.retained_skipped++;
      return;
    }
    let points: IngestPoint[];
    try {
      points = parseMqttPayload(m.topic, m.payload, this.#clock.now());
    } catch (err) {
      this.#stats.bad_payloads++;
      this.#opts.invalid?.(1);
      const field = err instanceof RequestError ? err.field : undefined;
      this.#warnRateLimited("bad payload on an MQTT ingest topic, dropped", {
        topic: m.topic,
        field,
        error: err as Error,
      });
      return;
    }
    if (points.length === 0) return;
    this.#stats.points += points.length;
    try {
      this.#opts.ingest(points);
    } catch (err) {
      this.#warnRateLimited("ingest of MQTT points failed", { topic: m.topic, error: err as Error });
    }
  }

  // A publisher stuck in a loop of bad payloads must not flood the journal: one line per interval,
  // saying how many were not logged since the last one.
  #warnRateLimited(msg: string, fields: Record<string, unknown>): void {
    const now = this.#clock.now();
    if (now - this.#lastWarnAt < (this.#opts.logEveryMs ?? 10_000)) {
      this.#unlogged++;
      return;
    }
    this.#opts.log.warn(msg, { ...fields, not_logged_since_last: this.#unlogged || undefined });
    this.#lastWarnAt = now;
    this.#unlogged = 0;
  }
}
