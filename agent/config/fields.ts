// The agent's settings: one row per flag, file key and NOVACRON_* variable (docs/stable-interfaces.md).
import { hostname } from "node:os";
import { type CacheSpec, parseCacheSpecs } from "../../shared/cache/index.ts";
import { commonFields, defineFields } from "../../shared/config/index.ts";
import { ConfigError, RequestError } from "../../shared/errors.ts";
import { ID_PATTERN } from "../../shared/protocol/index.ts";
import { decodeKey } from "../../shared/secure/index.ts";
import { compileRules, DEFAULT_RULES } from "../../shared/rules/index.ts";
import { pemFile, tlsKeyField } from "../../shared/tls.ts";
import { compilePipelines, MQTT_INGEST_OFF, parseMqttIngestConfig } from "../stream/index.ts";

/** The local API's address when none is given; if its port is taken, the agent tries the next ones. */
export const DEFAULT_API = "127.0.0.1:8080";

/** Where the agent looks for its file when neither --config nor NOVACRON_CONFIG names one. */
export const DEFAULT_AGENT_CONFIG_PATH = "/etc/novacron/agent.yaml";

/** The agent's field table. */
export const agentFields = defineFields([
  {
    key: "data",
    flag: "--data",
    env: "NOVACRON_DATA",
    kind: "string",
    default: "/var/lib/novacron",
    metavar: "DIR",
    help: "directory for the local store and credentials",
  },
  {
    key: "hub",
    flag: "--hub",
    env: "NOVACRON_HUB",
    kind: "url-list",
    schemes: ["ws:", "wss:", "mqtt:", "mqtts:"],
    default: [],
    repeatable: true,
    hot: true,
    help: "hub endpoints in order of preference (ws://, wss://, mqtt://, mqtts://); none runs standalone",
  },
  {
    key: "hub_ca",
    flag: "--hub-ca",
    env: "NOVACRON_HUB_CA",
    kind: "string",
    default: "",
    metavar: "FILE",
    help: "PEM CA certificates that verify wss:// hubs and mqtts:// brokers; empty: the well-known public roots",
    validate: pemFile("certificate"),
  },
  {
    key: "tls_cert",
    flag: "--tls-cert",
    env: "NOVACRON_TLS_CERT",
    kind: "string",
    default: "",
    metavar: "FILE",
    help: "PEM client certificate for mutual TLS with the hub or the broker; needs --tls-key",
    validate: pemFile("certificate"),
  },
  tlsKeyField,
  {
    key: "node_id",
    flag: "--node-id",
    env: "NOVACRON_NODE_ID",
    kind: "string",
    default: () => hostname(),
    metavar: "ID",
    help: "this node's id",
    validate: (v) =>
      ID_PATTERN.test(v)
        ? undefined
        : "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
  },
  {
    key: "level",
    flag: "--level",
    env: "NOVACRON_LEVEL",
    kind: "int",
    min: 1,
    max: 5,
    default: 5,
    metavar: "1-5",
    hot: true,
    help: "tier of this node, 1 (core) to 5 (device)",
  },
  {
    key: "labels",
    flag: "--label",
    env: "NOVACRON_LABELS",
    kind: "map",
    default: {},
    repeatable: true,
    metavar: "k=v",
    hot: true,
    help: "a label such as region=eu or site=berlin-3",
  },
  {
    key: "probes",
    flag: "--probe",
    env: "NOVACRON_PROBES",
    kind: "map",
    default: {},
    repeatable: true,
    metavar: "name=host:port",
    hot: true,
    help: "a latency target measured by TCP connect time, e.g. market:NYSE=10.0.0.5:443",
    validate: (probes) => {
      for (const [name, addr] of Object.entries(probes)) {
        if (!/^[^\s:]+(:[^\s:]+)*$/.test(name)) return `probe name "${name}" is not valid`;
        const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(addr);
        if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
          return `probe ${name}: "${addr}" is not host:port`;
      }
      return undefined;
    },
  },
  {
    key: "probe_interval",
    flag: "--probe-interval",
    env: "NOVACRON_PROBE_INTERVAL",
    kind: "duration",
    min: "1s",
    max: "1h",
    default: "10s",
    hot: true,
    help: "how often the latency probes run",
  },
  {
    key: "rules",
    flag: "--rules",
    env: "NOVACRON_RULES",
    kind: "custom",
    default: DEFAULT_RULES as unknown[],
    parse: (raw: unknown): unknown[] => {
      // Checked (and compiled once to find errors) at load; the agent compiles the accepted list again.
      compileRules(raw, "rules");
      return raw as unknown[];
    },
    hot: true,
    help: "offline rules (YAML list in the file; JSON as a flag)",
    defaultHelp: "four rules: max CPU 80%, memory 85%, disk 90%, min 1 GB free memory",
  },
  {
    key: "pipelines",
    flag: "--pipelines",
    env: "NOVACRON_PIPELINES",
    kind: "custom",
    default: [] as unknown[],
    parse: (raw: unknown): unknown[] => {
      compilePipelines({ pipelines: raw });
      return raw as unknown[];
    },
    hot: true,
    help: "stream pipelines over any series (YAML list in the file; JSON as a flag)",
  },
  {
    key: "ingest_mqtt",
    flag: "--ingest-mqtt",
    env: "NOVACRON_INGEST_MQTT",
    kind: "custom",
    default: MQTT_INGEST_OFF,
    parse: parseMqttIngestConfig,
    help: 'ingest points published to a local broker, e.g. {"url":"mqtt://127.0.0.1:1883","topics":["sensors/#"]} (a map in the file; JSON as a flag)',
    defaultHelp: "none (off)",
  },
  {
    key: "cache_bytes",
    flag: "--cache-bytes",
    env: "NOVACRON_CACHE_BYTES",
    kind: "bytes",
    min: "64KiB",
    default: "100MB",
    hot: true,
    help: "byte budget of the local key/value cache",
  },
  {
    key: "cache_policy",
    flag: "--cache-policy",
    env: "NOVACRON_CACHE_POLICY",
    kind: "string",
    oneOf: ["lru", "lfu"],
    default: "lru",
    help: "what the cache evicts first when full: least recently or least frequently used",
  },
  {
    key: "caches",
    flag: "--caches",
    env: "NOVACRON_CACHES",
    kind: "custom",
    default: {} as Record<string, CacheSpec>,
    parse: (raw: unknown): Record<string, CacheSpec> => {
      try {
        return parseCacheSpecs(raw);
      } catch (err) {
        if (err instanceof RequestError && err.field)
          throw new ConfigError(err.field, err.message.replace(`${err.field}: `, ""));
        throw err;
      }
    },
    hot: true,
    help: 'named caches, e.g. {"prices":{"strategy":"write-behind","consistency":"read-your-writes","replicate":"site"}} (a map in the file; JSON as a flag)',
    defaultHelp: "none",
  },
  {
    key: "host_proc",
    flag: "--host-proc",
    env: "NOVACRON_HOST_PROC",
    kind: "string",
    default: "/proc",
    metavar: "DIR",
    help: "the host's /proc (in a container, where the host's is mounted, e.g. /host/proc)",
  },
  {
    key: "host_sys",
    flag: "--host-sys",
    env: "NOVACRON_HOST_SYS",
    kind: "string",
    default: "/sys",
    metavar: "DIR",
    help: "the host's /sys (in a container: /host/sys)",
  },
  {
    key: "host_root",
    flag: "--host-root",
    env: "NOVACRON_HOST_ROOT",
    kind: "string",
    default: "/",
    metavar: "DIR",
    help: "the host's / for disk usage (in a container: /host/root)",
  },
  {
    key: "capabilities",
    flag: "--capability",
    env: "NOVACRON_CAPABILITIES",
    kind: "list",
    default: [],
    repeatable: true,
    metavar: "NAME",
    hot: true,
    help: "a capability such as gpu, camera or market:NYSE",
  },
  {
    key: "join_token",
    flag: "--join-token",
    env: "NOVACRON_JOIN_TOKEN",
    kind: "string",
    default: "",
    metavar: "T",
    secret: true,
    hot: true,
    help: "token for joining a hub the first time (it never travels: the node proves it knows it)",
  },
  {
    key: "hub_key",
    flag: "--hub-key",
    env: "NOVACRON_HUB_KEY",
    kind: "list",
    default: [],
    repeatable: true,
    metavar: "KEY",
    hot: true,
    help: "public key of a hub this node trusts (the hub prints it); without one, the first hub that proves it knows the join token is trusted from then on",
    validate: (keys) => {
      for (const k of keys) if (!decodeKey(k)) return `${k} is not a hub key (43 characters of base64url)`;
      return undefined;
    },
  },
  {
    key: "api",
    flag: "--api",
    env: "NOVACRON_API",
    kind: "listen",
    default: DEFAULT_API,
    help: "address of the local HTTP API (with the default, a taken port moves it to the next free one, up to 8099)",
  },
  {
    key: "config",
    flag: "--config",
    env: "NOVACRON_CONFIG",
    kind: "string",
    default: DEFAULT_AGENT_CONFIG_PATH,
    metavar: "FILE",
    inFile: false,
    help: "YAML config file; a missing default file is skipped, a missing named one is an error",
  },
  {
    key: "sample_interval",
    flag: "--sample-interval",
    env: "NOVACRON_SAMPLE_INTERVAL",
    kind: "duration",
    min: "100ms",
    max: "1h",
    default: "1s",
    hot: true,
    help: "how often host metrics are sampled",
  },
  {
    key: "disk_interval",
    flag: "--disk-interval",
    env: "NOVACRON_DISK_INTERVAL",
    kind: "duration",
    // Disk usage is costly to read and slow to change; below a second it would only burn CPU.
    min: "1s",
    default: "30s",
    hot: true,
    help: "how often disk usage is sampled",
  },
  {
    key: "batch_interval",
    flag: "--batch-interval",
    env: "NOVACRON_BATCH_INTERVAL",
    kind: "duration",
    min: "1s",
    max: "10m",
    default: "20s",
    hot: true,
    help: "how often samples are batched and sent to the hub",
  },
  {
    key: "heartbeat_interval",
    flag: "--heartbeat-interval",
    env: "NOVACRON_HEARTBEAT_INTERVAL",
    kind: "duration",
    min: "1s",
    max: "5m",
    default: "10s",
    hot: true,
    help: "how often a heartbeat is sent to the hub",
  },
  {
    key: "buffer_bytes",
    flag: "--buffer-bytes",
    env: "NOVACRON_BUFFER_BYTES",
    kind: "bytes",
    // Small enough for a sensor gateway with little flash; below this one batch would not fit.
    min: "64KB",
    default: "100MB",
    hot: true,
    help: "disk budget of the offline buffer (over it, old data is downsampled, then dropped)",
  },
  {
    key: "store_bytes",
    flag: "--store-bytes",
    env: "NOVACRON_STORE_BYTES",
    kind: "bytes",
    // 0 is "auto". Below 512KiB the WAL of one write, the -shm file and the ballast would leave no room.
    validate: (v) => (v === 0 || v >= 512 * 1024 ? undefined : "must be 0 (auto) or at least 512KiB"),
    default: 0,
    hot: true,
    help: "bound on the local store's files on disk (agent.db, its WAL and -shm, store.reserve); 0: 2 x buffer_bytes + cache_bytes + 16MiB",
  },
  {
    key: "disk_reserve",
    flag: "--disk-reserve",
    env: "NOVACRON_DISK_RESERVE",
    kind: "bytes",
    default: "32MiB",
    hot: true,
    help: "free space kept on the data directory's file system (at most 5% of it); below it the store takes no new data",
  },
  ...commonFields,
]);
