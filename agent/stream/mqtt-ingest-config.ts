// Validates the `ingest_mqtt:` section of the agent config: the local broker and the topic filters to ingest from.
import { ConfigError } from "../../shared/errors.ts";
import { parseBrokerUrl } from "../../shared/mqtt/index.ts";

/** Where local MQTT ingest subscribes; an empty `url` (and no topics) means off. */
export interface MqttIngestConfig {
  readonly url: string;
  readonly topics: readonly string[];
}

/** The default: no MQTT ingest. */
export const MQTT_INGEST_OFF: MqttIngestConfig = Object.freeze({ url: "", topics: Object.freeze([]) });

const KEYS = new Set(["url", "topics"]);
// MQTT 3.1.1 section 1.5.3: a topic filter is 1-65535 bytes of UTF-8.
const MAX_FILTER_BYTES = 65_535;

/**
 * Checks an `ingest_mqtt` value, e.g. `{url: "mqtt://127.0.0.1:1883", topics: ["sensors/#"]}`; absent or
 * null is off. Throws ConfigError naming the field, e.g. `ingest_mqtt.topics.1`.
 */
export function parseMqttIngestConfig(raw: unknown, field = "ingest_mqtt"): MqttIngestConfig {
  if (raw === undefined || raw === null) return MQTT_INGEST_OFF;
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(
      field,
      'must be a map such as {url: "mqtt://127.0.0.1:1883", topics: ["sensors/#"]}',
    );
  }
  const doc = raw as Record<string, unknown>;
  for (const k of Object.keys(doc)) {
    if (!KEYS.has(k)) throw new ConfigError(`${field}.${k}`, "unknown key (expected url and topics)");
  }
  const url = doc.url ?? "";
  const topics = doc.topics ?? [];
  if (typeof url !== "string") throw new ConfigError(`${field}.url`, "must be a string");
  if (!Array.isArray(topics)) throw new ConfigError(`${field}.topics`, "must be a list of topic filters");
  if (url === "" && topics.length === 0) return MQTT_INGEST_OFF;
  // One without the other is a half-written section: refusing it beats silently ingesting nothing.
  if (url === "") throw new ConfigError(`${field}.url`, "is required when topics are set");
  if (topics.length === 0)
    throw new ConfigError(`${field}.topics`, "needs at least one topic filter when url is set");
  checkBrokerUrl(url, `${field}.url`);
  for (const [i, t] of topics.entries()) checkFilter(t, `${field}.topics.${i}`);
  return Object.freeze({ url, topics: Object.freeze([...(topics as string[])]) });
}

function checkBrokerUrl(url: string, at: string): void {
  let host: string;
  try {
    host = parseBrokerUrl(url).host;
  } catch {
    // The URL is not echoed: it may carry a password.
    throw new ConfigError(at, "must be an mqtt:// or mqtts:// URL, like mqtt://127.0.0.1:1883");
  }
  if (host === "") throw new ConfigError(at, "must name the broker's host, like mqtt://127.0.0.1:1883");
}

/** An MQTT 3.1.1 topic filter: '+' is a whole level, '#' a whole last level. */
function checkFilter(filter: unknown, at: string): void {
  if (typeof filter !== "string" || filter === "") throw new ConfigError(at, "must be a non-empty string");
  if (new TextEncoder().encode(filter).length > MAX_FILTER_BYTES || filter.includes("\u0000")) {
    throw new ConfigError(at, `must be at most ${MAX_FILTER_BYTES} bytes with no NUL character`);
  }
  const levels = filter.split("/");
  levels.forEach((level, i) => {
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1)) {
      throw new ConfigError(at, `"${filter}": '#' must be the whole last level, as in sensors/#`);
    }
    if (level.includes("+") && level !== "+") {
      throw new ConfigError(at, `"${filter}": '+' must be a whole level, as in sensors/+/temp`);
    }
  });
}
