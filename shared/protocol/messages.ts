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
const epochId = v.pipe(
  v.string(),
  v.regex(ID_PATTERN, "must be 1-128 letters, digits, '.', '_' or '-'"),
  v.maxLength(64),
);
/** Samples an agent counted, as it reports them (and as the hub tells them back to a restored store). */
const SampleCounters = v.object({ produced: count, dropped: count });

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
  /**
   * The epoch of the agent's store: a random id made with the store. A store restored from a snapshot
   * or copied elsewhere comes back with an epoch the hub knows and a `seq_high` below what it holds.
   */
  epoch: v.optional(epochId),
  /** The last wire sequence number the agent's store handed out (every number up to it may have been sent). */
  seq_high: v.optional(seq),
  /** The named caches this node holds and whose writes it shares: the hub replicates to it within that scope. */
  caches: v.optional(
    v.pipe(
      v.array(
        v.object({
          name: v.pipe(v.string(), v.maxLength(64)),
          replicate: v.picklist(["none", "site", "region", "level", "fleet"]),
          /** Entries it wants at hello, hottest first (absent: the hub's default, 1000). */
          prefetch: v.optional(count),
        }),
      ),
      v.maxLength(256),
    ),
  ),
  /** `hub`: a child hub that stands for its whole subtree (it sends `summary` and `topology`); absent: an agent. */
  kind: v.optional(v.picklist(["agent", "hub"])),
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
  /**
   * The hello's epoch is one the hub has stored up to `last_acked` from, and the store is behind it: a
   * restored snapshot or a copy. Its numbered messages are the ones the hub stored; it starts a new epoch.
   */
  restored: v.optional(v.boolean()),
  /**
   * The node's counters as the hub last saw them (produced never below what it stored plus what was
   * dropped), so a store that is behind carries them on instead of going back.
   */
  counters: v.optional(SampleCounters),
  /**
   * Most reliable messages the node may have unacked in this session (the hub's in-flight budget
   * shared out over its fleet); the node uses the smaller of this and its own window.
   */
  window: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  /** The hub takes `summary` and `topology` from a child hub (absent from hubs of earlier versions). */
  subtrees: v.optional(v.boolean()),
});

export const Heartbeat = v.object({
  /** Messages waiting in the agent's outbox. */
  pending: count,
  /** Last round-trip time the agent measured, in ms. */
  rtt: v.optional(v.number()),
  /** The store's epoch the counters below belong to (sent with them). */
  epoch: v.optional(epochId),
  /** Samples produced since the store (or the node's first store) was made. Sent now and then, not every beat. */
  produced: v.optional(count),
  /** Samples dropped, in all; `dropped_by` splits them by reason. */
  dropped: v.optional(count),
  dropped_by: v.optional(
    v.pipe(
      v.record(v.pipe(v.string(), v.maxLength(32)), count),
      v.check((r) => Object.keys(r).length <= 16, "at most 16 reasons"),
    ),
  ),
  /** Samples the agent holds, not yet acknowledged (its outbox). */
  held: v.optional(count),
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
  /**
   * A rollup's id on the agent (the outbox row it took the place of). A copy of the store sending the
   * same fold again carries the same id, which with the same content tells the hub it holds it.
   */
  fold: v.optional(count),
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
  /** The decision's id in the agent's log: the hub's verdict comes back under it. */
  id: v.optional(count),
  /** The hub rule set and revision the rule came from; absent for the node's own rules. */
  rule_set: v.optional(v.pipe(v.string(), v.maxLength(64))),
  rule_set_rev: v.optional(count),
});

export const Event = v.object({
  kind: v.string(),
  at: ms,
  message: v.string(),
  fields: v.optional(v.record(v.string(), v.unknown())),
});

/** Node → hub, through the outbox (exactly once, in order): a write to a named cache. */
export const CacheWrite = v.object({
  cache: v.pipe(v.string(), v.maxLength(64)),
  key: v.pipe(v.string(), v.maxLength(1024)),
  /** Absent for a delete. */
  value: v.optional(v.union([v.string(), v.instance(Uint8Array)])),
  /** The write's hybrid clock stamp: last writer wins by it, on every node and at the hub. */
  hlc: v.pipe(v.string(), v.maxLength(160)),
  /** Which nodes get it: those holding the cache in the writer's site, region, level, or all. */
  replicate: v.picklist(["none", "site", "region", "level", "fleet"]),
  ttl_ms: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
});

/** Node → hub, live: read a key of a strong cache at the hub (answered by a `reply` with the same id). */
export const CacheRead = v.object({
  id: v.pipe(v.string(), v.maxLength(64)),
  cache: v.pipe(v.string(), v.maxLength(64)),
  key: v.pipe(v.string(), v.maxLength(1024)),
  replicate: v.picklist(["none", "site", "region", "level", "fleet"]),
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

// Federation: what a child hub tells its parent about its subtree. Bounded everywhere: a child is untrusted input.
const shortText = v.pipe(v.string(), v.maxLength(64));
const hubLevel = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(5));
export const NODE_STATUSES = ["ready", "suspect", "down", "draining"] as const;
/** Most hubs, groups and workloads a summary may list; most nodes a roster may name. */
export const SUMMARY_LIMITS = {
  hubs: 256,
  groups: 4096,
  workloads: 2048,
  roster: 100_000,
  changes: 2000,
  alerts: 200,
};

/** A hub of the subtree: the child itself (its parent is the receiver) and the hubs below it. */
export const SummaryHub = v.object({
  id: nodeId,
  /** The hub it links to (absent for the child itself). */
  parent: v.optional(nodeId),
  level: hubLevel,
  /** Whether its link to its parent is up, as the parent sees it. */
  connected: v.boolean(),
  /** How old what the reporter knows of it was when the summary was built, in ms. */
  age_ms: count,
});

/** Nodes of one hub at one level, region and site: counts by status and free capacity. */
export const SummaryGroup = v.object({
  hub: nodeId,
  level: hubLevel,
  region: shortText,
  site: shortText,
  ready: count,
  suspect: count,
  down: count,
  draining: count,
  /** Free CPU (millicores) and memory (MiB) over the group's ready nodes. */
  cpu_free: count,
  mem_free: count,
});

/** A workload of the subtree and its health. */
export const SummaryWorkload = v.object({
  hub: nodeId,
  name: v.pipe(v.string(), v.maxLength(128)),
  replicas: count,
  running: count,
  healthy: count,
});

/** An alert open (or acknowledged) somewhere in the subtree: the hub that raised it, and how long it has been open. */
export const SummaryAlert = v.object({
  hub: nodeId,
  /** The alert's id at that hub. */
  id: count,
  rule: shortText,
  node: v.nullable(nodeId),
  severity: shortText,
  state: v.picklist(["open", "acknowledged"]),
  message: v.pipe(v.string(), v.maxLength(256)),
  /** How long it had been open when the summary was built, in ms. */
  open_ms: count,
});

/** Child hub → parent: its whole subtree, compact (counts, not nodes); live, the next one replaces it. */
export const Summary = v.object({
  /** Rises with every summary and change batch of the child's session. */
  rev: count,
  hubs: v.pipe(v.array(SummaryHub), v.maxLength(SUMMARY_LIMITS.hubs)),
  groups: v.pipe(v.array(SummaryGroup), v.maxLength(SUMMARY_LIMITS.groups)),
  workloads: v.pipe(v.array(SummaryWorkload), v.maxLength(SUMMARY_LIMITS.workloads)),
  /** Nodes in the subtree (hubs not counted). */
  nodes: count,
  /** Open alerts of the subtree, most severe and newest first (absent from hubs of earlier versions). */
  alerts: v.optional(v.pipe(v.array(SummaryAlert), v.maxLength(SUMMARY_LIMITS.alerts))),
  /** Every node id of the subtree: in the first summary of a session and when the parent asks again. */
  roster: v.optional(v.pipe(v.array(nodeId), v.maxLength(SUMMARY_LIMITS.roster))),
  /** The roster as zstd-compressed ids, one per line (what a child of this version sends; see roster.ts). */
  roster_z: v.optional(v.instance(Uint8Array)),
});

/** One node of the subtree changing: joined (`from` null), changed status, or forgotten (`to` null). */
export const TopologyChange = v.object({
  node: nodeId,
  hub: nodeId,
  level: hubLevel,
  region: shortText,
  site: shortText,
  from: v.nullable(v.picklist(NODE_STATUSES)),
  to: v.nullable(v.picklist(NODE_STATUSES)),
  /** When the hub that owns the node saw it (its clock). */
  at: ms,
  /** The node's free CPU (millicores) and memory (MiB) now: the parent's capacity follows it into and out of ready. */
  cpu_free: v.optional(count),
  mem_free: v.optional(count),
});

/** Child hub → parent: topology changes as they happen (live; a new session starts with a summary). */
export const Topology = v.object({
  rev: count,
  changes: v.pipe(v.array(TopologyChange), v.minLength(1), v.maxLength(SUMMARY_LIMITS.changes)),
});

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
  cache_write: CacheWrite,
  cache_read: CacheRead,
  summary: Summary,
  topology: Topology,
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
  "cache_write",
]);

export type HelloBody = Body<"hello">;
export type WelcomeBody = Body<"welcome">;
export type HeartbeatBody = Body<"heartbeat">;
export type MetricsBatchBody = Body<"metrics_batch">;
export type AckBody = Body<"ack">;
export type ErrorBody = Body<"error">;
export type SummaryBody = Body<"summary">;
export type TopologyBody = Body<"topology">;
export type TopologyChangeBody = v.InferOutput<typeof TopologyChange>;
