// Public surface of the live feed behind GET /api/v1/stream.
export { type Listener, LiveFeed, type LiveSources } from "./live-feed.ts";
export {
  type AllocView,
  alertKey,
  diffSnapshots,
  emptySnapshot,
  encodeEvent,
  type NodeView,
  type Snapshot,
  type StreamEvent,
} from "./snapshot-diff.ts";
