// TLS material for links and servers: PEM files named in config, read once at start, and what a TLS failure means.
import { readFileSync } from "node:fs";
import { ConfigError } from "./errors.ts";

/** PEM contents (not paths) for one side of a TLS connection. */
export interface TlsMaterial {
  /** CA certificates that verify the peer; without them a client trusts the well-known public roots. */
  ca?: string;
  /** This side's certificate (chain). */
  cert?: string;
  /** This side's private key. */
  key?: string;
}

/** What a PEM file must hold. */
export type PemKind = "certificate" | "private key";

const PEM_BLOCK: Readonly<Record<PemKind, RegExp>> = {
  certificate: /-----BEGIN CERTIFICATE-----/,
  "private key": /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/,
};

// The file's text, or what is wrong with it.
function loadPem(path: string, kind: PemKind): { pem: string } | { problem: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    return {
      problem: `cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    };
  }
  return PEM_BLOCK[kind].test(text) ? { pem: text } : { problem: `the file holds no PEM ${kind}` };
}

/** A field rule: the value is empty, or the path of a readable file holding a PEM `kind`. */
export function pemFile(kind: PemKind): (path: string) => string | undefined {
  return (path) => {
    if (path === "") return undefined;
    const loaded = loadPem(path, kind);
    return "problem" in loaded ? loaded.problem : undefined;
  };
}

/** The one `tls_key` setting of both processes: the private key of their --tls-cert. */
export const tlsKeyField = {
  key: "tls_key",
  flag: "--tls-key",
  env: "NOVACRON_TLS_KEY",
  kind: "string",
  default: "",
  metavar: "FILE",
  help: "PEM private key of --tls-cert",
  validate: pemFile("private key"),
} as const;

/** Reads the PEM file a field names (undefined for an empty path); throws ConfigError naming the field. */
export function readPemFile(field: string, path: string, kind: PemKind): string | undefined {
  if (path === "") return undefined;
  const loaded = loadPem(path, kind);
  if ("problem" in loaded) throw new ConfigError(field, `${loaded.problem} (${path})`);
  return loaded.pem;
}

/** For a config cross-check: names the missing half when only one of a certificate and its key is set. */
export function unpairedCertKey(
  cert: { field: string; path: string },
  key: { field: string; path: string },
): { field: string; message: string } | undefined {
  const pair = "a certificate and its private key go together";
  if (cert.path !== "" && key.path === "")
    return { field: key.field, message: `must be set with ${cert.field} (${pair})` };
  if (key.path !== "" && cert.path === "")
    return { field: cert.field, message: `must be set with ${key.field} (${pair})` };
  return undefined;
}

/** The parts that are present; undefined when none is. */
export function tlsMaterial(parts: TlsMaterial): TlsMaterial | undefined {
  const present = Object.fromEntries(Object.entries(parts).filter(([, v]) => v !== undefined));
  return Object.keys(present).length > 0 ? (present as TlsMaterial) : undefined;
}

/**
 * Bun TLS options for a client that verifies its server. Verification is explicit, so that
 * NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment cannot turn it off behind the config's back.
 */
export function clientTlsOptions(material: TlsMaterial | undefined): TlsMaterial & {
  rejectUnauthorized: true;
} {
  return { ...material, rejectUnauthorized: true };
}

// Alerts a server sends when it refuses this client's certificate (OpenSSL names, as in Bun's messages).
const ALERTS: Readonly<Record<string, string>> = {
  CERTIFICATE_REQUIRED: "the server requires a client certificate",
  UNKNOWN_CA: "the server does not trust the CA of this client's certificate",
  BAD_CERTIFICATE: "the server refused this client's certificate",
  CERTIFICATE_UNKNOWN: "the server refused this client's certificate",
  UNSUPPORTED_CERTIFICATE: "the server refused this client's certificate",
  CERTIFICATE_EXPIRED: "the server says this client's certificate has expired",
  CERTIFICATE_REVOKED: "the server says this client's certificate is revoked",
};

// Codes Bun gives when the server's certificate fails verification (the node:tls names).
const VERIFY_CODE = /CERT|SELF_SIGNED|UNABLE_TO_|INVALID_CA|PATH_LENGTH|INVALID_PURPOSE|HOSTNAME_MISMATCH/;

/** Whether `err` is a TLS failure: a certificate that failed verification, or an alert from the peer. */
export function isTlsError(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  return VERIFY_CODE.test(code) || /_ALERT_|SSL routines|TLS handshake/.test(err.message);
}

/**
 * Why a TLS connection failed, in words, with OpenSSL's or Bun's name for it, e.g.
 * "certificate verify failed: self signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN)".
 */
export function describeTlsError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  const alert = /(?:TLSV1|SSLV3)_ALERT_([A-Z_]+)/.exec(err.message)?.[1];
  if (alert !== undefined) {
    return `${ALERTS[alert] ?? "the server ended the TLS handshake"} (TLS alert ${alert.toLowerCase()})`;
  }
  const text = err.message.replace(/^TLS handshake failed: /, "");
  if (VERIFY_CODE.test(code)) return `certificate verify failed: ${text} (${code})`;
  return code ? `${text} (${code})` : text;
}
