// Public surface of the secure session layer: the XX handshake, sealed data frames, join-token proofs.
export {
  DATA_OVERHEAD,
  decodeKey,
  encodeKey,
  FRAME,
  frameKind,
  HANDSHAKE_ID_BYTES,
  handshakeId,
  joinTokenKey,
  keysEqual,
  type OpenFailure,
  PROLOGUE,
  parseJoinToken,
  ReplayWindow,
  type Refusal,
  readRefusal,
  refuseFrame,
  SESSION_PROTOCOL,
  SecureChannel,
} from "./channel.ts";
export {
  HubBusyError,
  hubTokenProof,
  type InitiatorOptions,
  legacyProof,
  nodeTokenProof,
  type RefusedReason,
  SecureTransport,
} from "./initiator.ts";
export { generateKeyPair, type KeyPair, keyPairFromSecret, NoiseError, XXHandshake } from "./noise.ts";
