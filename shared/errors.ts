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
  | "unauthorized"
  | "too_large"
  | "conflict"
  | "hub_unreachable"
  | "not_confirmed"
  | "disk_full"
  | "store_failed";

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

/** A request that conflicts with the current state (an alert already acknowledged or resolved). */
export class ConflictError extends NovaError {
  constructor(message: string) {
    super("conflict", message);
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

/** A request over a size limit (a body, or what it would send an agent); `field` names what is too large. */
export class TooLargeError extends NovaError {
  readonly field: string;
  constructor(message: string, field: string) {
    super("too_large", message);
    this.field = field;
  }
}

/**
 * A request that needs the hub while it cannot be reached (`hub_unreachable`), or that the hub did not
 * confirm in time (`not_confirmed`: the write is queued and will still arrive). HTTP 503 / 504.
 */
export class UnavailableError extends NovaError {
  constructor(code: "hub_unreachable" | "not_confirmed", message: string) {
    super(code, message);
  }
}

/** A write refused because the local disk is full (or below its reserve): nothing was stored. HTTP 507. */
export class DiskFullError extends NovaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("disk_full", message, options);
  }
}

/**
 * A statement the hub's store could not run: `store` names the back end and where it is (never a
 * password), `statement` the SQL text; `unavailable` when the store could not be reached at all.
 */
export class StoreError extends NovaError {
  readonly store: string;
  readonly statement: string | undefined;
  readonly unavailable: boolean;
  constructor(
    store: string,
    statement: string | undefined,
    message: string,
    options?: { cause?: unknown; unavailable?: boolean },
  ) {
    super(
      "store_failed",
      `${store}: ${message}${statement ? ` (in: ${statement.replace(/\s+/g, " ").trim().slice(0, 200)})` : ""}`,
      options,
    );
    this.store = store;
    this.statement = statement;
    this.unavailable = options?.unavailable ?? false;
  }
}
