// Protocol version and wire limits shared by every sender and receiver.

/** The protocol version this build speaks; a frame with another version is refused. */
export const PROTOCOL_VERSION = 2;

/** Default ceiling on one encoded frame. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
