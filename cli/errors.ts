// The CLI's typed errors, each with the exit code a script can rely on (documented in `novacron --help`).

/** Exit codes of `novacron`. */
export const EXIT = {
  ok: 0,
  /** The hub refused the request or failed (4xx other than 401/403, 5xx), or a check failed. */
  refused: 1,
  /** Bad flag, missing argument, unreadable or invalid file, bad config. */
  usage: 2,
  /** The hub could not be reached (refused connection, DNS, TLS, timeout). */
  unreachable: 3,
  /** The hub answered 401 or 403. */
  unauthorized: 4,
  /** `apply` or `workload delete` showed its plan but changed nothing: no `--yes`, or the prompt was declined. */
  notApplied: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Base of every error the CLI reports; `exit` is the process exit code. */
export class CliError extends Error {
  readonly exit: ExitCode;
  constructor(exit: ExitCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.exit = exit;
    this.name = new.target.name;
  }
}

/** A bad command line, file or setting; `field` names the flag, argument or key when there is one. */
export class UsageError extends CliError {
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super(EXIT.usage, message);
    this.field = field;
  }
}

/** The hub answered with an error status. */
export class HubError extends CliError {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  constructor(status: number, code: string, message: string, field?: string) {
    super(status === 401 || status === 403 ? EXIT.unauthorized : EXIT.refused, message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** No answer from the hub at all. */
export class UnreachableError extends CliError {
  readonly url: string;
  constructor(url: string, reason: string, options?: { cause?: unknown }) {
    super(EXIT.unreachable, `cannot reach the hub at ${url}: ${reason}`, options);
    this.url = url;
  }
}

/** A plan that was shown and not applied. */
export class NotAppliedError extends CliError {
  constructor(message: string) {
    super(EXIT.notApplied, message);
  }
}

/** A check that ran and failed (audit verify). */
export class CheckFailedError extends CliError {
  constructor(message: string) {
    super(EXIT.refused, message);
  }
}
