// Hub replicas on one shared store: leadership of the controllers, the session directory, notices.
export { type Leadership, NotLeaderError, soleLeader } from "./leadership.ts";
export {
  CHANNEL,
  type Deliverable,
  type NodeNotice,
  type ReplicaHandlers,
  type ReplicaOptions,
  Replicas,
} from "./replicas.ts";
