// MQTT topic layout of the protocol (DESIGN section 4).
import type { FrameTopic } from "./transport.ts";

export const TOPIC_ROOT = "novacron/v1";

/** Topic an agent publishes a message of `type` on. */
export const upTopic = (node: string, type: FrameTopic): string => `${TOPIC_ROOT}/up/${node}/${type}`;
/** Topic the hub publishes a message of `type` to one node on. */
export const downTopic = (node: string, type: FrameTopic): string => `${TOPIC_ROOT}/down/${node}/${type}`;
/** Retained presence topic of a node; its Last Will marks it offline. */
export const presenceTopic = (node: string): string => `${TOPIC_ROOT}/presence/${node}`;
/**
 * Topic an agent publishes on once a hub replica named its route in the handshake (message 2): its
 * frames then reach that replica alone, not whichever member of the shared subscription.
 */
export const routedUpTopic = (route: string, node: string, type: FrameTopic): string =>
  `${TOPIC_ROOT}/via/${route}/${node}/${type}`;
/** What one replica subscribes to (not shared): the frames of the sessions it holds. */
export const routedWildcard = (route: string): string => `${TOPIC_ROOT}/via/${route}/+/+`;
/** A route is one topic level: no wildcards, no separators. */
export const ROUTE_PATTERN = /^[A-Za-z0-9._-]{1,200}$/;
/** Everything agents publish (the hub subscribes to this, shared between replicas). */
export const UP_WILDCARD = `${TOPIC_ROOT}/up/+/+`;
export const PRESENCE_WILDCARD = `${TOPIC_ROOT}/presence/+`;

/**
 * Splits `novacron/v1/up/<node>/<type>`, `.../via/<route>/<node>/<type>` (an uplink routed to one
 * replica) or `.../presence/<node>`; undefined for anything else.
 */
export function parseTopic(
  topic: string,
): { dir: "up" | "down" | "presence"; node: string; type?: string; route?: string } | undefined {
  const parts = topic.split("/");
  if (parts[0] !== "novacron" || parts[1] !== "v1") return undefined;
  const dir = parts[2];
  if (dir === "via") {
    const [route, node, type] = parts.slice(3);
    return parts.length === 6 && route && node && type ? { dir: "up", node, type, route } : undefined;
  }
  const node = parts[3];
  if (!node) return undefined;
  if (dir === "presence" && parts.length === 4) return { dir, node };
  if ((dir === "up" || dir === "down") && parts.length === 5) return { dir, node, type: parts[4] };
  return undefined;
}
