// Assembles a running hub: store, registry, ingest, gateway (WebSocket + MQTT) and the HTTP API.
import type { Server } from "bun";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../shared/log.ts";
import { MetricsRegistry } from "../shared/metrics.ts";
import { createApi } from "./api/index.ts";
import type { HubConfig } from "./config/index.ts";
import { Gateway, MqttGateway, upgradeAgent, wsHandlers } from "./gateway/index.ts";
import { Ingest } from "./ingest/index.ts";
import { Registry } from "./registry/index.ts";
import { openHubDb } from "./store/db.ts";

export interface RunningHub {
  url: string;
  port: number;
  adminToken: string;
  joinToken: string;
  stop(): Promise<void>;
}

// Uses the given token, else the one stored in DIR/<name>.token, else a new one written there (0600).
function token(dir: string, name: string, given: string, log: Logger): string {
  if (given) return given;
  const path = join(dir, `${name}.token`);
  if (existsSync(path)) return readFileSync(path, "utf8").trim();
  const fresh = randomBytes(24).toString("base64url");
  writeFileSync(path, `${fresh}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  log.info(`generated ${name} token`, { path });
  return fresh;
}

const promName = (series: string) => `novacron_node_${series.replace(/[^a-zA-Z0-9_]/g, "_")}`;

/** Starts a hub and returns once it listens. */
export async function startHub(cfg: HubConfig, log: Logger): Promise<RunningHub> {
  const db = openHubDb(cfg.data);
  const adminToken = token(cfg.data, "admin", cfg.admin_token, log);
  const joinToken = token(cfg.data, "join", cfg.join_token, log);
  const metrics = new MetricsRegistry();
  const registry = new Registry(db, {
    suspectAfterMs: cfg.suspect_after,
    downAfterMs: cfg.down_after,
    restartGraceMs: cfg.restart_grace,
  });
  let gateway: Gateway | undefined;
  const ingest = new Ingest(db, {
    log: log.child("ingest"),
    metrics,
    acks: (node, upto) => gateway?.sendTo(node, "ack", { upto }),
  });
  gateway = new Gateway({
    hubId: cfg.hub_id,
    registry,
    ingest,
    log: log.child("gateway"),
    metrics,
    joinToken: () => joinToken,
    heartbeatMs: cfg.heartbeat_interval,
    maxFrameBytes: cfg.max_frame_bytes,
  });
  metrics.gauge("novacron_hub_nodes", "Known nodes by status", () => {
    const by = new Map<string, number>();
    for (const n of registry.list()) by.set(registry.status(n), (by.get(registry.status(n)) ?? 0) + 1);
    return [...by].map(([status, n]) => [{ status }, n]);
  });
  // One scrape of the hub covers the fleet: the newest value of every node's series.
  const rendered = () => {
    const lines: string[] = [];
    for (const [node, series] of ingest.latest()) {
      for (const [name, [, value]] of series) {
        const m = /^([^{]+)(?:\{(.*)\})?$/.exec(name);
        const extra = m?.[2] ? `,${m[2]}` : "";
        lines.push(`${promName(m?.[1] ?? name)}{node="${node}"${extra}} ${value}`);
      }
    }
    return lines.join("\n");
  };
  const app = createApi({ registry, ingest, metrics, adminToken: () => adminToken });
  const { host: hostname, port } = cfg.listen;
  const handlers = wsHandlers(gateway, cfg.max_frame_bytes);
  const server: Server<unknown> = Bun.serve({
    hostname,
    port,
    fetch: async (req, srv) => {
      if (upgradeAgent(req, srv as never)) return undefined;
      const res = await app.fetch(req);
      if (new URL(req.url).pathname === "/metrics" && res.ok) {
        const fleet = rendered();
        return new Response(`${await res.text()}${fleet ? `${fleet}\n` : ""}`, { headers: res.headers });
      }
      return res;
    },
    websocket: handlers as never,
  });
  const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${server.port}`;
  log.info("hub listening", {
    http: url,
    agents: `ws://${hostname}:${server.port}/v1/agent`,
    hub_id: cfg.hub_id,
  });

  let mqttGateway: MqttGateway | undefined;
  if (cfg.mqtt) {
    mqttGateway = new MqttGateway({ gateway, log: log.child("mqtt"), url: cfg.mqtt, hubId: cfg.hub_id });
    await mqttGateway.start();
  }
  const flushSeen = setInterval(() => registry.flushSeen(), 5000);

  return {
    url,
    port: server.port ?? port,
    adminToken,
    joinToken,
    async stop() {
      clearInterval(flushSeen);
      await mqttGateway?.stop();
      server.stop(true);
      ingest.flush();
      registry.flushSeen();
      db.close();
    },
  };
}
