// Public surface of ingest.
export { type AckSender, Ingest, type Verdict } from "./ingest.ts";
