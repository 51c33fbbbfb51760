// MQTT topic layout of the protocol (DESIGN section 4).
import type { FrameTopic } from "./transport.ts";

export const TOPIC_ROOT = "novacron/v1";

/** Topic an agent publishes a message of `type` on. */
export const upTopic = (node: string, type: FrameTopic): string => `${TOPIC_ROOT}/up/${node}/${type}`;
/** Topic the hub publishes a message of `type` to one node on. */
export const downTopic = (node: string, type: FrameTopic): string => `${TOPIC_ROOT}/down/${node}/${type}`;
/** Retained presence topic of a node; its Last Will marks it offline. */
export const presenceTopic = (node: string): string => `${TOPIC_ROOT}/presence/${node}`;
/** Everything agents publish (the hub subscribes to this, shared between replicas). */
export const UP_WILDCARD = `${TOPIC_ROOT}/up/+/+`;
export const PRESENCE_WILDCARD = `${TOPIC_ROOT}/presence/+`;

/** Splits `novacron/v1/up/<node>/<type>` or `.../presence/<node>`; undefined for anything else. */
export function parseTopic(
  topic: string,
): { dir: "up" | "down" | "presence"; node: string; type?: string } | undefined {
  const parts = topic.split("/");
  if (parts[0] !== "novacron" || parts[1] !== "v1") return undefined;
  const dir = parts[2];
  const node = parts[3];
  if (!node) return undefined;
  if (dir === "presence" && parts.length === 4) return { dir, node };
  if ((dir === "up" || dir === "down") && parts.length === 5) return { dir, node, type: parts[4] };
  return undefined;
}
