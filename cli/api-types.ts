// The JSON shapes of the hub's answers as the CLI reads them (the fields it shows; the hub may send more).
export type { Candidate, FilterCount, Plan } from "../hub/placement/index.ts";

export interface NodeSummary {
  id: string;
  level: number;
  status: string;
  connected: boolean;
  labels: Record<string, string>;
  capabilities: string[];
  last_seen: number | null;
}

export interface NodeDetail extends NodeSummary {
  resources?: Record<string, number>;
  version?: string;
  transport?: string;
  first_seen?: number;
  ingest?: Record<string, number>;
}

export interface AllocView {
  id: string;
  node: string;
  workload: string;
  status: string;
  generation: number;
  version: number;
  desired?: string;
  healthy?: boolean | null;
  restarts?: number;
  pid?: number | null;
  message?: string | null;
  updated?: number;
}

export interface WorkloadView {
  name: string;
  driver: string;
  command: string;
  args: string[];
  replicas: number;
  version: number;
  rollout_status: unknown;
  created: number;
  updated: number;
  pending_reason?: string;
  allocs: AllocView[];
  placement_explanation?: unknown;
  [k: string]: unknown;
}

/** An alert: the contract's shape (hub alerting), or the older agent-raised record. */
export interface AlertView {
  id: string | number;
  source?: string;
  rule?: string;
  node?: string | null;
  severity?: string;
  state?: string;
  message?: string;
  started_at?: number;
  updated_at?: number;
  at?: number;
  acknowledged_by?: string | null;
}

export interface TokenView {
  id: string;
  name: string;
  role: string;
  created_at: number;
  expires_at: number | null;
  revoked_at?: number | null;
  last_used_at?: number | null;
  token?: string;
}

export interface AuditEntry {
  seq: number;
  at: number;
  actor: string;
  action: string;
  object: string;
  before: string | null;
  after: string | null;
  hash: string;
  prev_hash: string;
}

export interface AuditVerify {
  ok: boolean;
  entries: number;
  first_bad?: { seq: number; reason: string };
}
