// The one envelope every message travels in, and the typed union of decoded messages.
import type { Body, MessageType } from "./messages.ts";

/** A message of kind T as it travels: version, type, sender, sequence, time, body. */
export interface Envelope<T extends MessageType = MessageType> {
  /** Protocol version. */
  v: number;
  /** Message type. */
  t: T;
  /** Sender id (node id or hub id). */
  s: string;
  /** Per-sender sequence number; only on reliable messages. */
  q?: number;
  /**
   * Lowest sequence number still held in the sender's outbox when sent. A receiver that has
   * stored up to N accepts q > N+1 only when q equals this: everything between was dropped by
   * the sender's stated overflow policy (and counted there), not lost in transit.
   */
  base?: number;
  /** Sender's clock, ms since the epoch. */
  ts: number;
  b: Body<T>;
}

/** Discriminated union of every decoded message. */
export type Message = { [T in MessageType]: Envelope<T> }[MessageType];
