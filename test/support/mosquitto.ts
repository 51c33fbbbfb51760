// A private Mosquitto broker on a free port, so tests never touch a system broker.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { Proc } from "./processes.ts";

/** Path of the mosquitto binary, or undefined when it is not installed. */
export function mosquittoBinary(): string | undefined {
  return (
    Bun.which("mosquitto") ?? Bun.which("mosquitto", { PATH: "/usr/sbin:/usr/local/sbin:/sbin" }) ?? undefined
  );
}

export interface Broker extends AsyncDisposable {
  url: string;
  port: number;
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Starts mosquitto on 127.0.0.1 with a config written to `dir`: an open broker, or the text that
 * `config` returns for the port it is given (it must listen there on 127.0.0.1). `tls` lines
 * (cafile, certfile, keyfile, require_certificate ...) make the open broker's listener a TLS one,
 * and the URL mqtts://.
 */
export async function startMosquitto(
  dir: string,
  opts: { config?: (port: number) => string; tls?: readonly string[] } = {},
): Promise<Broker> {
  const bin = mosquittoBinary();
  if (!bin) throw new Error("mosquitto is not installed");
  const port = freePort();
  const conf = join(dir, "mosquitto.conf");
  // Started as root, mosquitto drops to the user "mosquitto", who cannot read keys in our 0700 temp dir;
  // "user root" keeps it root (a broker started by any other user keeps that user anyway).
  const tls = opts.tls ? [...opts.tls, ...(process.getuid?.() === 0 ? ["user root"] : [])] : [];
  writeFileSync(
    conf,
    opts.config?.(port) ??
      [
        `listener ${port} 127.0.0.1`,
        ...tls,
        "allow_anonymous true",
        "persistence false",
        "max_queued_messages 100000",
        "",
      ].join("\n"),
  );
  let proc: Proc | undefined;
  const start = async () => {
    proc = new Proc("mosquitto", [bin, "-c", conf, "-v"]);
    proc.start();
    await proc.waitForLine(/running|Opening ipv4 listen socket/i, 10_000);
  };
  await start();
  return {
    url: `${opts.tls ? "mqtts" : "mqtt"}://127.0.0.1:${port}`,
    port,
    start,
    async stop() {
      await proc?.kill("SIGKILL");
    },
    async restart(downMs = 0) {
      await proc?.kill("SIGKILL");
      if (downMs > 0) await Bun.sleep(downMs);
      await start();
    },
    async [Symbol.asyncDispose]() {
      await proc?.kill("SIGKILL");
    },
  };
}
