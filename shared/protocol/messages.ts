// Message kinds of the wire protocol: one schema per kind, and the union they form.
import * as v from "valibot";
import { ALLOC_STATUSES, AllocSpec } from "../workload/spec.ts";

import { ID_PATTERN } from "../ids.ts";

export { ID_PATTERN };

const nodeId = v.pipe(v.string(), v.regex(ID_PATTERN, "must be 1-128 letters, digits, '.', '_' or '-'"));
const ms = v.pipe(v.number(), v.integer(), v.minValue(0));
const seq = v.pipe(v.number(), v.integer(), v.minValue(0));
const count = v.pipe(v.number(), v.integer(), v.minValue(0));
/** Generations rise by one per change; anything near 2^53 is not from a hub and would lock a node out. */
export const MAX_GENERATION = 2 ** 40;
const generation = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_GENERATION));

export const Resources = v.object({
  cpu_cores: v.optional(count),
  mem_bytes: v.optional(count),
  disk_bytes: v.optional(count),
  arch: v.optional(v.string()),
  os: v.optional(v.string()),
});

export const Hello = v.object({
  node_id: nodeId,
  level: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(5)),
  labels: v.record(v.string(), v.string()),
  capabilities: v.array(v.string()),
  resources: Resources,
  version: v.string(),
  boot_id: v.string(),
  /** Highest sequence number the agent believes the hub has acknowledged. */
  last_acked: seq,
  /**
   * Proof of a join token, for a node id the hub does not know yet: the token's id and an HMAC
   * bound to this session's handshake hash (the token itself never travels).
   */
  join: v.optional(v.object({ id: v.pipe(v.string(), v.maxLength(64)), proof: v.instance(Uint8Array) })),
  /** Proof of a credential a protocol 1 hub issued, so an upgraded node keeps its id without a join token. */
  legacy: v.optional(v.instance(Uint8Array)),
  /** MQTT: the secret this connection's Last Will carries, so the hub can tell it from a forged one. */
  presence: v.optional(v.pipe(v.string(), v.maxLength(64))),
  /** Generation of the desired allocation set the agent last applied (a hub that lost it must go above). */
  alloc_generation: v.optional(generation),
});

export const Welcome = v.object({
  hub_id: v.string(),
  server_time: ms,
  last_acked: seq,
  config_rev: count,
  heartbeat_ms: ms,
  /** When the node's key stops being valid for a plain reconnect (it can still renew with it after that). */
  key_expires: v.optional(ms),
  /** The hub asks the node to rotate its key now (past two thirds of its lifetime, expired, or by an operator). */
  rotate_key: v.optional(v.boolean()),
});

export const Heartbeat = v.object({
  /** Messages waiting in the agent's outbox. */
  pending: count,
  /** Last round-trip time the agent measured, in ms. */
  rtt: v.optional(v.number()),
});

export const MetricsBatch = v.object({
  /** First tick's time (ms since epoch). */
  start: ms,
  /** Time between ticks in ms. */
  interval: v.pipe(ms, v.minValue(1)),
  ticks: v.pipe(count, v.minValue(1)),
  /** Number of (time, series, value) samples the batch holds. */
  samples: count,
  /** Columnar encoding of series names and values (see metrics-codec). */
  data: v.instance(Uint8Array),
  /** 1 when `data` is zstd-compressed. */
  z: v.optional(v.picklist([0, 1])),
  /**
   * 1 when the batch is a 1-minute rollup of fine samples the agent had no room to keep (see
   * rollup.ts): `samples` then counts the fine samples it stands for.
   */
  rollup: v.optional(v.picklist([0, 1])),
});

export const TaskResult = v.object({
  alloc: v.string(),
  workload: v.string(),
  exit_code: v.nullable(v.number()),
  signal: v.optional(v.string()),
  started_ms: v.optional(ms),
  duration_ms: ms,
  output_tail: v.string(),
});

export const AllocStatus = v.object({
  alloc: v.string(),
  workload: v.string(),
  version: v.optional(count),
  status: v.picklist(ALLOC_STATUSES),
  generation,
  message: v.optional(v.string()),
  pid: v.optional(count),
  restarts: v.optional(count),
  healthy: v.optional(v.boolean()),
});

/** A decision the agent took on its own (offline rules), for the hub to check against its policy. */
export const DecisionValidation = v.object({
  rule: v.string(),
  at: ms,
  /** `fire` or `clear`, and what was done. */
  kind: v.optional(v.picklist(["fire", "clear"])),
  action: v.string(),
  /** The series and state values the rule's condition read when it decided. */
  inputs: v.record(v.string(), v.unknown()),
  /** The rule's condition as the agent held it, so the hub can tell a policy difference from a bad reading. */
  condition: v.optional(v.string()),
});

export const Event = v.object({
  kind: v.string(),
  at: ms,
  message: v.string(),
  fields: v.optional(v.record(v.string(), v.unknown())),
});

export const Ack = v.object({
  /** Every reliable sequence number up to and including this one is durably stored. */
  upto: seq,
  /** The envelope `ts` of the heartbeat this answers, when it answers one (the ack's own `ts` is the hub's clock). */
  echo: v.optional(ms),
});

export const Config = v.object({ rev: count, config: v.record(v.string(), v.unknown()) });

/** The whole desired allocation set of one node; a higher generation replaces a lower one. */
export const Allocs = v.object({ generation, allocs: v.array(AllocSpec) });

/** Node → hub, inside a session (which proves the current key): replace my key with this one. */
export const Rekey = v.object({ key: v.pipe(v.instance(Uint8Array), v.length(32)) });

/** Hub → node: the new key is recorded; the old one is still taken until the node uses the new one. */
export const Rekeyed = v.object({ key: v.pipe(v.instance(Uint8Array), v.length(32)), expires: ms });

export const Command = v.object({
  id: v.string(),
  kind: v.string(),
  args: v.record(v.string(), v.unknown()),
});

/** A node's answer to a `command` (live, not stored: the hub waits for it or gives up). */
export const Reply = v.object({ id: v.string(), ok: v.boolean(), body: v.unknown() });

/** Sent by either side before it closes a session because of bad input or failed auth. */
export const ErrorMessage = v.object({ code: v.string(), message: v.string(), ref: v.optional(seq) });

/** Schema of each message kind's body, keyed by the envelope's `t`. */
export const BODY_SCHEMAS = {
  hello: Hello,
  welcome: Welcome,
  heartbeat: Heartbeat,
  metrics_batch: MetricsBatch,
  task_result: TaskResult,
  alloc_status: AllocStatus,
  decision_validation: DecisionValidation,
  event: Event,
  ack: Ack,
  config: Config,
  allocs: Allocs,
  command: Command,
  reply: Reply,
  error: ErrorMessage,
  rekey: Rekey,
  rekeyed: Rekeyed,
} as const;

export type MessageType = keyof typeof BODY_SCHEMAS;
export type Body<T extends MessageType> = v.InferOutput<(typeof BODY_SCHEMAS)[T]>;

/** Message kinds that go through the outbox: they carry a sequence number and must not be lost. */
export const RELIABLE_TYPES: ReadonlySet<MessageType> = new Set([
  "metrics_batch",
  "task_result",
  "alloc_status",
  "decision_validation",
  "event",
]);

export type HelloBody = Body<"hello">;
export type WelcomeBody = Body<"welcome">;
export type HeartbeatBody = Body<"heartbeat">;
export type MetricsBatchBody = Body<"metrics_batch">;
export type AckBody = Body<"ack">;
export type ErrorBody = Body<"error">;
