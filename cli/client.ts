// The hub's API as the CLI uses it: bearer auth, JSON in and out, and every failure as a typed CliError.
import { readFileSync } from "node:fs";
import { HubError, UnreachableError, UsageError } from "./errors.ts";

/** How to reach the hub. */
export interface HubClientOptions {
  readonly hub: string;
  readonly token: string;
  /** Where the token came from, named when the hub refuses it. */
  readonly tokenFrom?: string;
  /** PEM path of the CA that signed the hub's certificate; empty for the system's CAs. */
  readonly ca?: string;
  readonly timeoutMs?: number;
}

type Query = Record<string, string | number | undefined>;

/** A client of one hub. */
export class HubClient {
  readonly base: string;
  readonly #token: string;
  readonly #tokenFrom: string;
  readonly #tls: { ca: string } | undefined;
  readonly #timeoutMs: number;

  constructor(opts: HubClientOptions) {
    this.base = opts.hub.replace(/\/+$/, "");
    this.#token = opts.token;
    this.#tokenFrom = opts.tokenFrom ?? "--token";
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    if (opts.ca) {
      try {
        this.#tls = { ca: readFileSync(opts.ca, "utf8") };
      } catch (err) {
        throw new UsageError(`ca: cannot read ${opts.ca}: ${(err as Error).message}`, "ca");
      }
    }
  }

  /** The full URL of an API path with its query (undefined values left out). */
  url(path: string, query: Query = {}): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
    const qs = q.toString();
    return `${this.base}${path}${qs ? `?${qs}` : ""}`;
  }

  /** GET a JSON answer. */
  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>("GET", path, { query });
  }

  /** POST a JSON body (or none). */
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, { body });
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", path, { body });
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>("DELETE", path, {});
  }

  /** GET a text answer (Prometheus /metrics). */
  async text(path: string): Promise<string> {
    const res = await this.#fetch("GET", this.url(path), undefined);
    const text = await res.text();
    if (!res.ok) throw this.#error(res.status, text, "GET", path);
    return text;
  }

  /** Sends one request; throws HubError (status), UnreachableError (no answer) or UsageError (no token). */
  async request<T>(method: string, path: string, opts: { query?: Query; body?: unknown }): Promise<T> {
    if (this.#token === "" && path.startsWith("/api/")) {
      throw new UsageError(
        "no token: give --token, set NOVACRON_TOKEN, or write `token: ...` in ~/.config/novacron/cli.yaml " +
          "(the hub's admin token is in its data directory, admin.token)",
        "token",
      );
    }
    const res = await this.#fetch(method, this.url(path, opts.query), opts.body);
    const text = await res.text();
    if (!res.ok) throw this.#error(res.status, text, method, path);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new HubError(res.status, "bad_answer", `the hub's answer to ${method} ${path} is not JSON`);
    }
  }

  async #fetch(method: string, url: string, body: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.#token !== "") headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    try {
      return await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.#timeoutMs),
        ...(this.#tls ? { tls: this.#tls } : {}),
      });
    } catch (err) {
      const e = err as Error & { code?: string };
      const reason =
        e.name === "TimeoutError"
          ? `no answer within ${this.#timeoutMs} ms (--timeout)`
          : e.code === "ConnectionRefused" || e.code === "ECONNREFUSED"
            ? "connection refused (is the hub running, and is --hub right?)"
            : (e.message ?? String(err));
      throw new UnreachableError(this.base, reason, { cause: err });
    }
  }

  #error(status: number, text: string, method: string, path: string): HubError {
    let code = `http_${status}`;
    let message = text.trim().slice(0, 300) || `HTTP ${status}`;
    let field: string | undefined;
    try {
      const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown; field?: unknown } })
        .error;
      if (e && typeof e.code === "string") code = e.code;
      if (e && typeof e.message === "string") message = e.message;
      if (e && typeof e.field === "string") field = e.field;
    } catch {}
    const what = `${method} ${path}`;
    if (status === 401) {
      return new HubError(
        status,
        code,
        `the hub refused the token from ${this.#tokenFrom} (401 ${code}: ${message}) on ${what}`,
        field,
      );
    }
    if (status === 403) {
      return new HubError(
        status,
        code,
        `the token's role may not do this (403 ${code}: ${message}) on ${what}`,
      );
    }
    const named = field ? ` [field ${field}]` : "";
    return new HubError(status, code, `the hub answered ${status} ${code}: ${message}${named}`, field);
  }
}
