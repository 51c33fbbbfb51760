// Parsers for the value formats config accepts: durations, byte sizes, listen addresses, lists, k=v maps.

/** A `host:port` address to listen on; `host` has no brackets (`::1`, not `[::1]`). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;

/** Parses "500ms", "1s", "2m", "1h", "1m30s" or a plain number of ms into whole ms; undefined if invalid. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (/^\d+$/.test(s)) return Number(s);
  if (s === "") return undefined;
  DURATION_PART.lastIndex = 0;
  let total = 0;
  let end = 0;
  for (let m = DURATION_PART.exec(s); m !== null; m = DURATION_PART.exec(s)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ""] ?? Number.NaN);
    end = DURATION_PART.lastIndex;
  }
  // Sub-millisecond remainders ("1.5ms") would be rounded silently, so they are refused instead.
  return end === s.length && Number.isSafeInteger(total) ? total : undefined;
}

/** Formats ms in the largest unit that divides it exactly ("1s", "90s", "250ms"). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const) {
    if (ms !== 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const BYTE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** Parses "100MB" (10^6), "64KiB" (2^10), "1GiB" or a plain number of bytes; undefined if invalid. */
export function parseBytes(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = m[2] === "" ? 1 : BYTE_UNITS[(m[2] ?? "").toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Number(m[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Formats bytes in the largest unit that divides them exactly, binary units first ("1MiB", "100MB"). */
export function formatBytes(bytes: number): string {
  for (const unit of ["TiB", "GiB", "MiB", "KiB", "TB", "GB", "MB", "KB"]) {
    const size = BYTE_UNITS[unit.toLowerCase()] ?? 1;
    if (bytes !== 0 && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}

/** Parses "host:port" or "[v6]:port" (port 0-65535); undefined if invalid. */
export function parseListen(text: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.%\w]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  // An empty host would mean "every interface"; that must be written out (0.0.0.0) to be chosen.
  const host = m[1] ?? m[2] ?? "";
  return host === "" ? undefined : { host, port };
}

/** Formats a listen address back to "host:port", bracketing IPv6 hosts. */
export function formatListen(addr: ListenAddress): string {
  return addr.host.includes(":") ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}

/** Splits "a, b,,c" into ["a", "b", "c"]. */
export function parseList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** Parses "k=v,k2=v2" into a map; undefined if a pair has no "=", an empty key, or a key repeats. */
export function parseMap(text: string): Record<string, string> | undefined {
  const pairs = new Map<string, string>();
  for (const pair of parseList(text)) {
    const eq = pair.indexOf("=");
    const key = pair.slice(0, eq).trim();
    if (eq < 0 || key === "" || pairs.has(key)) return undefined;
    pairs.set(key, pair.slice(eq + 1).trim());
  }
  // fromEntries defines own properties, so a "__proto__" key stays a plain label.
  return Object.fromEntries(pairs);
}

/** Whether `text` is an absolute URL with a host and one of `schemes` (written like "ws:" or "mqtts:"). */
export function isUrl(text: string, schemes: readonly string[]): boolean {
  if (!URL.canParse(text)) return false;
  const url = new URL(text);
  return schemes.includes(url.protocol) && url.host !== "";
}

/** The text with the password of a URL in it hidden (`mqtt://user:***@host`), for logs and error messages. */
export function redactUrl(text: string): string {
  if (!URL.canParse(text)) return text;
  const password = new URL(text).password;
  return password === "" ? text : text.replace(`:${password}@`, ":***@");
}
