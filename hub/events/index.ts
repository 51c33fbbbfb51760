// Public surface of alerts and decisions on the hub.
export { decisionPolicy } from "./decision-policy.ts";
export { type AlertRecord, type DecisionCheck, type DecisionRecord, EventStore } from "./event-store.ts";
