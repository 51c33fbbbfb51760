// Typed errors shared by agent and hub: each has a stable code and an optional cause.

export type ErrorCode =
  | "frame_too_large"
  | "bad_cbor"
  | "bad_envelope"
  | "unsupported_version"
  | "unknown_type"
  | "bad_body"
  | "auth_failed"
  | "hello_required"
  | "bad_config"
  | "bad_flag"
  | "bad_request"
  | "not_found"
  | "unauthorized";

/** Base of every error the project raises on purpose. */
export class NovaError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A frame or message that breaks the wire protocol. */
export class ProtocolError extends NovaError {
  /** Sequence number and sender base of the refused message, when its envelope was readable. */
  seq: number | undefined;
  base: number | undefined;
}

/** An agent or peer that failed to authenticate. */
export class AuthError extends NovaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("auth_failed", message, options);
  }
}

/** A configuration value (file, flag or environment) that is not valid; `field` names it. */
export class ConfigError extends NovaError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super("bad_config", `${field}: ${message}`, options);
    this.field = field;
  }
}

/** A command-line flag that is unknown or malformed. */
export class FlagError extends NovaError {
  constructor(message: string) {
    super("bad_flag", message);
  }
}

/** Something asked for by name that does not exist (a node, a workload, an allocation). */
export class NotFoundError extends NovaError {
  constructor(message: string) {
    super("not_found", message);
  }
}

/** A bad API request; `field` names the offending part of the body or query. */
export class RequestError extends NovaError {
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super("bad_request", message);
    this.field = field;
  }
}
