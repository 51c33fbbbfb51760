// The hub's settings: one row per flag, file key and NOVACRON_* variable (DESIGN.md section 11).
import { hostname } from "node:os";
import { commonFields, defineFields, isUrl } from "../../shared/config/index.ts";
import { ID_PATTERN } from "../../shared/protocol/index.ts";

/** Where the hub looks for its file when neither --config nor NOVACRON_CONFIG names one. */
export const DEFAULT_HUB_CONFIG_PATH = "/etc/novacron/hub.yaml";

/** The hub's field table. */
export const hubFields = defineFields([
  {
    key: "data",
    flag: "--data",
    env: "NOVACRON_DATA",
    kind: "string",
    default: "/var/lib/novacron-hub",
    metavar: "DIR",
    help: "directory for the hub's database and generated tokens",
  },
  {
    key: "listen",
    flag: "--listen",
    env: "NOVACRON_LISTEN",
    kind: "listen",
    default: "127.0.0.1:8091",
    help: "address of the HTTP API, dashboard and WebSocket gateway",
  },
  {
    key: "mqtt",
    flag: "--mqtt",
    env: "NOVACRON_MQTT",
    kind: "string",
    default: "",
    metavar: "URL",
    help: "MQTT broker to serve agents through (mqtt:// or mqtts://); empty for none",
    validate: (v) =>
      v === "" || isUrl(v, ["mqtt:", "mqtts:"]) ? undefined : "must be an mqtt:// or mqtts:// URL",
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
    help: "token agents present to join; empty generates one into DIR/join.token",
  },
  {
    key: "admin_token",
    flag: "--admin-token",
    env: "NOVACRON_ADMIN_TOKEN",
    kind: "string",
    default: "",
    metavar: "T",
    secret: true,
    hot: true,
    help: "bearer token of the admin API; empty generates one into DIR/admin.token",
  },
  {
    key: "config",
    flag: "--config",
    env: "NOVACRON_CONFIG",
    kind: "string",
    default: DEFAULT_HUB_CONFIG_PATH,
    metavar: "FILE",
    inFile: false,
    help: "YAML config file; a missing default file is skipped, a missing named one is an error",
  },
  {
    key: "hub_id",
    flag: "--hub-id",
    env: "NOVACRON_HUB_ID",
    kind: "string",
    default: () => hostname(),
    metavar: "ID",
    help: "this hub's id",
    validate: (v) =>
      ID_PATTERN.test(v)
        ? undefined
        : "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
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
    help: "heartbeat period the hub asks of its agents",
  },
  {
    key: "suspect_after",
    flag: "--suspect-after",
    env: "NOVACRON_SUSPECT_AFTER",
    kind: "duration",
    min: "1s",
    default: "25s",
    hot: true,
    help: "silence after which a node is marked suspect",
  },
  {
    key: "down_after",
    flag: "--down-after",
    env: "NOVACRON_DOWN_AFTER",
    kind: "duration",
    min: "1s",
    default: "60s",
    hot: true,
    help: "silence after which a node is marked down and its workloads move",
  },
  {
    key: "restart_grace",
    flag: "--restart-grace",
    env: "NOVACRON_RESTART_GRACE",
    kind: "duration",
    default: "30s",
    hot: true,
    help: "after a hub restart, time agents get to reconnect before any is marked down",
  },
  {
    key: "key_lifetime",
    flag: "--key-lifetime",
    env: "NOVACRON_KEY_LIFETIME",
    kind: "duration",
    min: "1s",
    default: "720h",
    help: "how long a node key is good for; past two thirds of it the hub asks the node for a new one (an expired key still renews)",
  },
  ...commonFields,
]);
