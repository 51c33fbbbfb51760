// The chaos soak's fleet: a broker, a hub and agents as real processes, each link through a proxy, restarted when they die.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mosquittoBinary } from "../test/support/mosquitto.ts";
import { freePort } from "../test/support/ports.ts";
import { mountTmpfs } from "./_chaos-disk.ts";
import { ChaosProc } from "./_chaos-procs.ts";
import { type LinkProxy, startLinkProxy } from "./_chaos-proxy.ts";

export const ADMIN_TOKEN = "chaos-admin-token";
export const JOIN_TOKEN = "chaos-join-token";
const bun = process.execPath;

/** A process the soak keeps alive: killed on purpose (expected) or dying by itself (an unexpected exit). */
export interface Member {
  name: string;
  proc: ChaosProc;
  ready: RegExp;
  /** Set while the soak itself holds the process down. */
  held: boolean;
  /** Busy with an event (no second event takes it until the first one ends). */
  busy: boolean;
  unexpectedExits: number;
  /** Start of the current run of unfrozen uptime (ms), or undefined while down or frozen. */
  upSince: number | undefined;
  /** Closed windows of unfrozen uptime. */
  upWindows: [number, number][];
}

export interface AgentMember extends Member {
  id: string;
  transport: "ws" | "mqtt";
  tmpfs: boolean;
  data: string;
  config: string;
  apiUrl: string;
  proxy: LinkProxy;
  linkBusy: boolean;
  diskBusy: boolean;
  pushes: boolean;
}

export interface Fleet {
  broker: Member;
  hub: Member & { url: string; data: string; brokerProxy: LinkProxy; linkBusy: boolean };
  agents: AgentMember[];
  /** Starts a member that is down (after a kill or a crash) and waits for its ready line. */
  start(m: Member): Promise<void>;
  /** Kills a member with SIGKILL and holds it down until start(). */
  kill(m: Member): Promise<void>;
  freeze(m: Member): void;
  thaw(m: Member): void;
  /** Closes the uptime windows (sampling stops here). */
  endUptime(): void;
  stopAll(): Promise<void>;
}

export interface FleetOptions {
  out: string;
  agents: number;
  tmpfsAgents: number;
  tmpfsMb: number;
  tmpfsBufferBytes: string;
  pushers: number;
  /** An event line for the run's log. */
  log: (kind: string, target: string, detail?: string) => void;
  /** The agent config file's keys (sample_interval, batch_interval, ...). */
  agentConfig: Record<string, string | number>;
}

/** Writes an agent's YAML config (the agent reloads it live). */
export function writeAgentConfig(path: string, values: Record<string, string | number>): void {
  writeFileSync(
    path,
    `${Object.entries(values)
      .map(([k, v]) => `${k}: ${v}`)
      .join("\n")}\n`,
  );
}

const MARGIN_MS = 3000;

/** Starts the broker, the hub and the agents (tmpfs first), all joined, each link through its own proxy. */
export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const { out, log } = opts;
  const logs = join(out, "logs");
  mkdirSync(logs, { recursive: true });
  mkdirSync(join(out, "config"), { recursive: true });
  let supervising = true;
  let counting = true;
  const restartTimers = new Set<Timer>();
  // Uptime windows, with margins off both ends: every second inside one should have been sampled.
  const markUp = (m: Member) => {
    if (counting) m.upSince = Date.now() + MARGIN_MS;
  };
  const markDown = (m: Member) => {
    if (m.upSince === undefined) return;
    const end = Date.now() - MARGIN_MS;
    if (end > m.upSince) m.upWindows.push([m.upSince, end]);
    m.upSince = undefined;
  };

  const member = <T extends Member>(m: T): T => {
    let failures = 0;
    let lastStart = 0;
    m.proc.onExit = (code, signal, pid) => {
      markDown(m);
      if (m.held || !supervising) return;
      m.unexpectedExits += 1;
      const tail = m.proc.recent
        .slice(-12)
        .map((l) => `      | ${l}`)
        .join("\n");
      log("unexpected-exit", m.name, `pid ${pid} code=${code} signal=${signal}; last lines:\n${tail}`);
      failures = Date.now() - lastStart > 60_000 ? 1 : failures + 1;
      const wait = Math.min(30_000, 1000 * 2 ** Math.min(failures, 5));
      const timer = setTimeout(() => {
        restartTimers.delete(timer);
        if (!supervising || m.proc.running || m.held) return;
        lastStart = Date.now();
        log("restart", m.name, `after unexpected exit (waited ${wait} ms, attempt ${failures})`);
        m.proc.start(m.ready).then(
          () => markUp(m),
          (err) => log("start-failed", m.name, (err as Error).message),
        );
      }, wait);
      restartTimers.add(timer);
    };
    return m;
  };
  const base = (name: string, proc: ChaosProc, ready: RegExp): Member => ({
    name,
    proc,
    ready,
    held: false,
    busy: false,
    unexpectedExits: 0,
    upSince: undefined,
    upWindows: [],
  });

  // Broker: plain, no persistence (a kill -9 loses whatever it had queued, as it would).
  const mosquitto = mosquittoBinary();
  if (!mosquitto) throw new Error("mosquitto is not installed (apt-get install mosquitto)");
  const brokerPort = freePort();
  const brokerConf = join(out, "config", "mosquitto.conf");
  writeFileSync(
    brokerConf,
    [
      `listener ${brokerPort} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      "max_queued_messages 100000",
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      "log_type notice",
      "log_type information",
      ...(process.getuid?.() === 0 ? ["user root"] : []),
      "",
    ].join("\n"),
  );
  const broker = member(
    base(
      "broker",
      new ChaosProc("broker", [mosquitto, "-c", brokerConf], join(logs, "broker.log")),
      /Opening ipv4 listen socket|running/i,
    ),
  );
  await broker.proc.start(broker.ready, 10_000);
  markUp(broker);

  // Hub: its MQTT client goes through a proxy too, so the hub-broker path can go silent.
  const hubPort = freePort();
  const hubData = join(out, "hub");
  const brokerProxy = startLinkProxy(freePort(), brokerPort);
  const hubProc = new ChaosProc(
    "hub",
    [
      bun,
      "hub/main.ts",
      "serve",
      "--data",
      hubData,
      "--listen",
      `127.0.0.1:${hubPort}`,
      "--admin-token",
      ADMIN_TOKEN,
      "--join-token",
      JOIN_TOKEN,
      "--mqtt",
      `mqtt://127.0.0.1:${brokerProxy.port}`,
    ],
    join(logs, "hub.log"),
  );
  const hub = Object.assign(member(base("hub", hubProc, /hub listening/)), {
    url: `http://127.0.0.1:${hubPort}`,
    data: hubData,
    brokerProxy,
    linkBusy: false,
  });
  await hub.proc.start(hub.ready);
  markUp(hub);
  const hubKey = readFileSync(join(hubData, "hub.pub"), "utf8").trim();
  log("fleet", "hub", `listening on ${hub.url}, broker on ${brokerPort}, hub_key=${hubKey}`);

  // Agents: even numbers over WebSocket, odd over MQTT; the first ones on small tmpfs disks; the ones after
  // them (on ordinary disks) receive pushed points.
  const agents: AgentMember[] = [];
  for (let i = 0; i < opts.agents; i++) {
    const id = `a${String(i + 1).padStart(2, "0")}`;
    const transport = i % 2 === 0 ? "ws" : "mqtt";
    const tmpfs = i < opts.tmpfsAgents;
    const pushes = !tmpfs && i < opts.tmpfsAgents + opts.pushers;
    const data = join(out, "agents", id);
    if (tmpfs) mountTmpfs(data, opts.tmpfsMb);
    else mkdirSync(data, { recursive: true });
    const config = join(out, "config", `${id}.yaml`);
    writeAgentConfig(config, {
      ...opts.agentConfig,
      ...(tmpfs ? { buffer_bytes: opts.tmpfsBufferBytes } : {}),
    });
    const proxy = startLinkProxy(freePort(), transport === "ws" ? hubPort : brokerPort);
    const apiPort = freePort();
    const proc = new ChaosProc(
      id,
      [
        bun,
        "agent/main.ts",
        "run",
        "--data",
        data,
        "--node-id",
        id,
        "--api",
        `127.0.0.1:${apiPort}`,
        "--hub",
        `${transport}://127.0.0.1:${proxy.port}`,
        "--join-token",
        JOIN_TOKEN,
        "--hub-key",
        hubKey,
        "--config",
        config,
        "--level",
        "4",
        "--label",
        `chaos=${transport}${tmpfs ? "-tmpfs" : ""}`,
      ],
      join(logs, `${id}.log`),
    );
    const a: AgentMember = Object.assign(member(base(id, proc, /local API listening/)), {
      id,
      transport: transport as "ws" | "mqtt",
      tmpfs,
      data,
      config,
      apiUrl: `http://127.0.0.1:${apiPort}`,
      proxy,
      linkBusy: false,
      diskBusy: false,
      pushes,
    });
    agents.push(a);
  }
  await Promise.all(
    agents.map(async (a) => {
      await a.proc.start(a.ready);
      markUp(a);
    }),
  );
  log(
    "fleet",
    "agents",
    agents
      .map((a) => `${a.id}=${a.transport}${a.tmpfs ? "/tmpfs" : ""}${a.pushes ? "/pushed" : ""}`)
      .join(" "),
  );

  const all: Member[] = [broker, hub, ...agents];
  return {
    broker,
    hub,
    agents,
    async start(m) {
      m.held = false;
      if (m.proc.running) return;
      await m.proc.start(m.ready);
      markUp(m);
    },
    async kill(m) {
      m.held = true;
      markDown(m);
      await m.proc.stop("SIGKILL");
    },
    freeze(m) {
      markDown(m);
      m.proc.signal("SIGSTOP");
    },
    thaw(m) {
      if (m.proc.signal("SIGCONT")) markUp(m);
    },
    endUptime() {
      for (const m of all) markDown(m);
      counting = false;
    },
    async stopAll() {
      supervising = false;
      for (const t of restartTimers) clearTimeout(t);
      await Promise.all(agents.map((a) => a.proc.stop("SIGTERM")));
      // A tmpfs goes with its mount: keep a copy of those agents' stores for a post-mortem.
      for (const a of agents) {
        if (!a.tmpfs) continue;
        try {
          cpSync(a.data, `${a.data}.saved`, { recursive: true });
        } catch (err) {
          log("copy-failed", a.id, (err as Error).message);
        }
      }
      await hub.proc.stop("SIGTERM");
      await broker.proc.stop("SIGKILL");
      for (const a of agents) a.proxy.stop();
      brokerProxy.stop();
      for (const m of all) m.proc.close();
    },
  };
}
