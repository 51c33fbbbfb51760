// Throwaway certificate authorities made with openssl at test time: a CA, a server certificate for 127.0.0.1, a client one.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Paths of one CA's files, and their PEM text for in-process clients. */
export interface TestCa {
  /** The CA certificate (PEM file). */
  ca: string;
  /** A server certificate for 127.0.0.1 and localhost, and its key. */
  serverCert: string;
  serverKey: string;
  /** A client certificate and its key. */
  clientCert: string;
  clientKey: string;
  /** PEM text of the files above, for Bun's fetch `tls` option. */
  pem: { ca: string; clientCert: string; clientKey: string };
}

/** Whether the openssl binary is on the PATH. */
export function hasOpenssl(): boolean {
  return Bun.which("openssl") !== null;
}

function openssl(dir: string, args: string[]): void {
  const run = Bun.spawnSync(["openssl", ...args], { cwd: dir, stdout: "pipe", stderr: "pipe" });
  if (run.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${run.stderr.toString()}`);
}

// A P-256 key and a certificate for `subject`, signed by the CA `name`, with the extensions in `ext`.
function issue(dir: string, name: string, file: string, subject: string, ext: string[]): void {
  writeFileSync(join(dir, `${file}.ext`), `${ext.join("\n")}\n`);
  openssl(dir, [
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${file}.key`,
    "-out",
    `${file}.csr`,
    "-subj",
    subject,
  ]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${file}.csr`,
    "-CA",
    `${name}-ca.pem`,
    "-CAkey",
    `${name}-ca.key`,
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    `${file}.ext`,
    "-out",
    `${file}.pem`,
  ]);
}

/** Makes a CA called `name` in `dir`, with a server certificate (IP:127.0.0.1, DNS:localhost) and a client certificate. */
export function makeTestCa(dir: string, name: string): TestCa {
  openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${name}-ca.key`,
    "-out",
    `${name}-ca.pem`,
    "-days",
    "1",
    "-subj",
    `/CN=${name} test CA`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  issue(dir, name, `${name}-server`, "/CN=127.0.0.1", [
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "extendedKeyUsage=serverAuth",
  ]);
  issue(dir, name, `${name}-client`, `/CN=${name} test client`, ["extendedKeyUsage=clientAuth"]);
  const path = (file: string) => join(dir, file);
  const files = {
    ca: path(`${name}-ca.pem`),
    serverCert: path(`${name}-server.pem`),
    serverKey: path(`${name}-server.key`),
    clientCert: path(`${name}-client.pem`),
    clientKey: path(`${name}-client.key`),
  };
  const read = (file: string) => readFileSync(file, "utf8");
  return {
    ...files,
    pem: { ca: read(files.ca), clientCert: read(files.clientCert), clientKey: read(files.clientKey) },
  };
}
