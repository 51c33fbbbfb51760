// Public surface of alerts and decisions on the hub.
export { type AlertRecord, type DecisionCheck, type DecisionRecord, EventStore } from "./event-store.ts";
