// Assembles a running hub: store, registry, ingest, gateway (WebSocket + MQTT) and the HTTP API.

import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "bun";
import type { Logger } from "../shared/log.ts";
import { readPemFile, type TlsMaterial, tlsMaterial } from "../shared/tls.ts";
import type { HubConfig } from "./config/index.ts";
import { createHubCore } from "./core.ts";
import { decisionPolicy } from "./events/index.ts";
import { AGENT_PATH, MqttGateway, upgradeAgent, wsHandlers } from "./gateway/index.ts";
import { openHubDb } from "./store/db.ts";
import { Replicas } from "./replicas/index.ts";
import { systemClock } from "../shared/clock.ts";
import { ConfigError } from "../shared/errors.ts";
import { type HubSql, migrate, openPostgres, wrapSqlite } from "./store/sql/index.ts";
import {
  decodeKey,
  encodeKey,
  generateKeyPair,
  type KeyPair,
  keyPairFromSecret,
} from "../shared/secure/index.ts";

export interface RunningHub {
  url: string;
  port: number;
  adminToken: string;
  joinToken: string;
  /** The hub's public key (base64url), for agents to pin with --hub-key. */
  hubKey: string;
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

// The hub's static key: made on first start, kept in DIR/hub.key (0600); its public half in DIR/hub.pub.
function loadHubKey(dir: string, log: Logger): KeyPair {
  const path = join(dir, "hub.key");
  if (existsSync(path)) {
    const secret = decodeKey(readFileSync(path, "utf8"));
    if (!secret) throw new Error(`${path} does not hold a hub key (43 characters of base64url)`);
    return keyPairFromSecret(secret);
  }
  const kp = generateKeyPair();
  writeFileSync(path, `${encodeKey(kp.secret)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  writeFileSync(join(dir, "hub.pub"), `${encodeKey(kp.publicKey)}\n`, { mode: 0o644 });
  log.info("generated the hub key", { path, hub_key: encodeKey(kp.publicKey) });
  return kp;
}

// Bun.serve's TLS: the hub's certificate and key, and with a client CA, mutual TLS refused in the handshake.
function serverTls(cfg: HubConfig) {
  const cert = readPemFile("tls_cert", cfg.tls_cert, "certificate");
  const key = readPemFile("tls_key", cfg.tls_key, "private key");
  if (cert === undefined || key === undefined) return undefined;
  const clientCa = readPemFile("tls_client_ca", cfg.tls_client_ca, "certificate");
  if (clientCa === undefined) return { cert, key };
  // `ca` alone does not ask for a certificate: requestCert does, and rejectUnauthorized refuses the rest.
  return { cert, key, ca: clientCa, requestCert: true, rejectUnauthorized: true };
}

// What the hub's own MQTT client presents to an mqtts:// broker and verifies it with.
function brokerTls(cfg: HubConfig): TlsMaterial | undefined {
  return tlsMaterial({
    ca: readPemFile("mqtt_ca", cfg.mqtt_ca, "certificate"),
    cert: readPemFile("mqtt_cert", cfg.mqtt_cert, "certificate"),
    key: readPemFile("mqtt_key", cfg.mqtt_key, "private key"),
  });
}

/**
 * The hub's store: SQLite in DIR/hub.db (one hub), or the PostgreSQL `store` names, migrated to this
 * version before anything else reads it.
 */
async function openStore(cfg: HubConfig, log: Logger): Promise<{ sql: HubSql; close(): Promise<void> }> {
  if (cfg.store === "") {
    const db = await openHubDb(cfg.data);
    return {
      sql: wrapSqlite(db),
      close: async () => db.close(),
    };
  }
  // The tokens and the hub key stay in DIR whatever the store.
  mkdirSync(cfg.data, { recursive: true, mode: 0o750 });
  const sql = openPostgres(cfg.store);
  try {
    const applied = await migrate(sql);
    log.info("store ready", { store: sql.store, migrations_applied: applied.length });
  } catch (err) {
    await sql.close().catch(() => {});
    throw err;
  }
  return { sql, close: () => sql.close() };
}

/** Starts a hub and returns once it listens. */
export async function startHub(cfg: HubConfig, log: Logger): Promise<RunningHub> {
  // Read before anything opens, so a bad file stops the start with the field's name.
  const tls = serverTls(cfg);
  const mqttTls = brokerTls(cfg);
  const store = await openStore(cfg, log);
  const adminToken = token(cfg.data, "admin", cfg.admin_token, log);
  const joinToken = token(cfg.data, "join", cfg.join_token, log);
  const hubKey = loadHubKey(cfg.data, log);
  // On PostgreSQL every hub is a replica: others may share the store (docs/hub-replicas.md).
  let replicas: Replicas | undefined;
  if (store.sql.dialect === "postgres") {
    if (cfg.parent.length > 0) {
      await store.close();
      throw new ConfigError(
        "parent",
        "a hub on a shared PostgreSQL store cannot link to a parent hub yet (the link's identity is kept per process); run the child hub on SQLite",
      );
    }
    replicas = new Replicas({
      sql: store.sql,
      hubId: cfg.hub_id,
      clock: systemClock,
      log: log.child("replicas"),
      graceMs: cfg.restart_grace,
      ttlMs: cfg.lease_ttl,
    });
    log.info("this hub is a replica on a shared store", { replica: replicas.id, store: store.sql.store });
  }
  const core = await createHubCore(store.sql, {
    ...(replicas ? { replicas } : {}),
    hubId: cfg.hub_id,
    joinToken,
    adminToken,
    metricsAuth: cfg.metrics_auth,
    maxBodyBytes: cfg.api_body_limit,
    maxSeriesPerNode: cfg.max_series_per_node,
    heartbeatMs: cfg.heartbeat_interval,
    maxFrameBytes: cfg.max_frame_bytes,
    statusPolicy: {
      suspectAfterMs: cfg.suspect_after,
      downAfterMs: cfg.down_after,
      restartGraceMs: cfg.restart_grace,
      jitter: 0.1,
      keyLifetimeMs: cfg.key_lifetime,
      acceptLegacyCredentials: cfg.legacy_credentials,
    },
    failover: {
      disconnectAfterMs: cfg.disconnect_after,
      migrationTriggers: cfg.migration_triggers,
      lostGcAfterMs: cfg.lost_gc_after,
    },
    alerting: {
      intervalMs: cfg.alert_interval,
      retryBaseMs: cfg.webhook_retry_base,
      retryMaxMs: cfg.webhook_retry_max,
    },
    hubKey,
    bulk: { inFlight: cfg.in_flight },
    secureLimits: {
      admissionsPerSecond: cfg.admit_rate,
      admissionBurst: Math.max(1, Math.floor(cfg.admit_rate / 2)),
    },
    log,
    checkDecision: decisionPolicy(),
    level: cfg.level,
    ...(cfg.parent.length > 0
      ? {
          parent: {
            endpoints: [...cfg.parent],
            joinToken: cfg.parent_join_token,
            dataDir: cfg.data,
            heartbeatMs: Math.min(cfg.heartbeat_interval, 1000),
            maxFrameBytes: cfg.max_frame_bytes,
          },
        }
      : {}),
  });
  const { secure, app } = core;
  const { host: hostname, port } = cfg.listen;
  const handlers = wsHandlers(secure, cfg.max_frame_bytes);
  const server: Server<unknown> = Bun.serve({
    hostname,
    port,
    ...(tls ? { tls } : {}),
    // The server goes to the app as its env: a live stream turns off its own idle timeout.
    fetch: (req, srv) => (upgradeAgent(req, srv as never) ? undefined : app.fetch(req, { server: srv })),
    websocket: handlers as never,
  });
  const host = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${server.port}`;
  const url = `${tls ? "https" : "http"}://${host}`;
  log.info("hub listening", {
    http: url,
    agents: `${tls ? "wss" : "ws"}://${host}${AGENT_PATH}`,
    hub_id: cfg.hub_id,
    hub_key: encodeKey(hubKey.publicKey),
    ...(tls ? { tls: "requestCert" in tls ? "mutual" : "on" } : {}),
  });

  let mqttGateway: MqttGateway | undefined;
  if (cfg.mqtt) {
    mqttGateway = new MqttGateway({
      sessions: secure,
      log: log.child("mqtt"),
      url: cfg.mqtt,
      hubId: cfg.hub_id,
      tls: mqttTls,
      ...(replicas ? { route: replicas.id } : {}),
    });
    await mqttGateway.start();
  }
  const flushSeen = setInterval(() => {
    void core.flushSeen();
    secure.sweep();
  }, 5000);

  return {
    url,
    port: server.port ?? port,
    adminToken,
    joinToken,
    hubKey: encodeKey(hubKey.publicKey),
    async stop() {
      clearInterval(flushSeen);
      await mqttGateway?.stop();
      await core.federation.stop();
      server.stop(true);
      core.close();
      await core.settled();
      await store.close();
    },
  };
}
