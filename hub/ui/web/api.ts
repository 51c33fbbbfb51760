// The dashboard's one way to the hub: every call sends the operator's token as a bearer header.

const KEY = "novacron.token";

export const token = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (t: string) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An error reply of the API: `{"error":{"code","message","field"?}}` with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
  /** The route is not on this hub (an older hub, or a part not built into it). */
  get missing(): boolean {
    return this.status === 404 && this.code === "not_found" && this.message.startsWith("no route");
  }
}

type Listener = () => void;
const signedOut = new Set<Listener>();
/** Called when the hub refuses the token (401): the page asks for another. */
export const onSignedOut = (fn: Listener) => {
  signedOut.add(fn);
  return () => signedOut.delete(fn);
};

/** Calls the API; resolves with the parsed JSON body or rejects with an ApiError. */
export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${token.get() ?? ""}`,
    accept: "application/json",
  };
  let body: string | undefined;
  if (init.body !== undefined) {
    headers["content-type"] = "application/json";
    body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
  }
  let res: Response;
  try {
    res = await fetch(path, {
      method: init.method ?? "GET",
      headers,
      ...(body !== undefined ? { body } : {}),
    });
  } catch (err) {
    throw new ApiError(0, "unreachable", `the hub did not answer: ${(err as Error).message}`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
    if (res.status === 401) for (const fn of signedOut) fn();
    throw new ApiError(
      res.status,
      e?.code ?? `http_${res.status}`,
      e?.message ?? (text || res.statusText),
      e?.field,
    );
  }
  return json as T;
}

/** The message to show for a failed call, naming the field when the API did. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.missing) return "not available on this hub";
    return `${err.field ? `${err.field}: ` : ""}${err.message} (${err.status || "no answer"})`;
  }
  return String((err as Error)?.message ?? err);
}

/** One server-sent event from GET /api/v1/stream. */
export interface LiveEvent {
  event: string;
  data: Record<string, unknown>;
}

/** Parses server-sent event text; returns the complete events and the unfinished rest. */
export function parseSse(buffer: string): { events: LiveEvent[]; rest: string } {
  const events: LiveEvent[] = [];
  const blocks = buffer.split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    if (!data) continue;
    try {
      events.push({ event, data: JSON.parse(data) });
    } catch {}
  }
  return { events, rest };
}

/**
 * Reads GET /api/v1/stream with fetch() (the token in a header, never in the URL) and reconnects
 * with back-off until `signal` aborts. `state` hears "live" or "reconnecting".
 */
export async function followStream(
  onEvent: (e: LiveEvent) => void,
  state: (s: "live" | "reconnecting" | "unavailable") => void,
  signal: AbortSignal,
): Promise<void> {
  let wait = 1000;
  while (!signal.aborted) {
    try {
      const res = await fetch("/api/v1/stream", {
        headers: { authorization: `Bearer ${token.get() ?? ""}`, accept: "text/event-stream" },
        signal,
      });
      if (res.status === 401) {
        for (const fn of signedOut) fn();
        return;
      }
      if (res.status === 404) {
        state("unavailable");
        return;
      }
      if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
      state("live");
      wait = 1000;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const parsed = parseSse(buffer + value.replace(/\r\n/g, "\n"));
        buffer = parsed.rest;
        for (const e of parsed.events) onEvent(e);
      }
    } catch {
      if (signal.aborted) return;
    }
    state("reconnecting");
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 15_000);
  }
}
