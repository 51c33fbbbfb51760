// Public surface of the wire protocol.
export { decodeCbor, decodeFrame, encodeCbor, encodeFrame, encodeFrameRawBody, envelope } from "./codec.ts";
export type { Envelope, Message } from "./envelope.ts";
export * from "./messages.ts";
export { DEFAULT_MAX_FRAME_BYTES, PROTOCOL_VERSION } from "./version.ts";
