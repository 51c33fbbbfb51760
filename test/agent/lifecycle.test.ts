// The agent's one module lifecycle: started in order, stopped in reverse, and stopped even when a start fails.
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { Agent } from "../../agent/agent.ts";
import { type AgentConfig, loadAgentConfig } from "../../agent/config/index.ts";
import { AgentStore, MetricBuffer } from "../../agent/store/index.ts";
import { ConfigError } from "../../shared/errors.ts";
import { createLogger } from "../../shared/log.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { freePort } from "../support/ports.ts";
import { tempDir } from "../support/processes.ts";

/** Files under `dir` this process holds open (from /proc/self/fd). */
function openFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch {}
  }
  return out;
}

function agentConfig(data: string, args: string[] = []): AgentConfig {
  const api = args.includes("--api") ? [] : ["--api", `127.0.0.1:${freePort()}`];
  const loaded = loadAgentConfig(["--data", data, "--node-id", "life", ...api, ...args], {});
  if (loaded.action !== "run") throw new Error("config did not load");
  return loaded.config;
}

function agentWithLog(config: AgentConfig, clock: FakeClock) {
  const lines: string[] = [];
  const agent = new Agent(config, createLogger("agent", { write: (l) => lines.push(l) }), { clock });
  return { agent, lines };
}

test("agent lifecycle: a module whose start fails is stopped too (a corrupt staged tick fails the store's start; its database handle and reclaim timer are released)", async () => {
  using dir = tempDir();
  const data = join(dir.path, "agent");
  // A tick staged before a crash, then damaged on disk: packing it at start fails after the store opened.
  const store = new AgentStore(data, { bufferBytes: 1_000_000 });
  new MetricBuffer(store, 1000).add(1_718_000_000_000, { "cpu.util": 12.5 });
  store.close();
  const db = new Database(join(data, "agent.db"));
  db.run("UPDATE ticks SET data = x'1c1c1c'");
  db.close();

  const clock = new FakeClock();
  const { agent, lines } = agentWithLog(agentConfig(data), clock);
  let error: unknown;
  await agent.start().catch((err) => {
    error = err;
  });
  expect(error).toBeInstanceOf(Error);
  expect(lines.some((l) => l.includes("module store failed to start"))).toBe(true);
  // Nothing of the store is left behind: no handle on its files, no timer on the clock.
  expect(openFilesUnder(data)).toEqual([]);
  expect(clock.pending).toBe(0);
});

test("agent lifecycle: when the local API's port is taken, every module that started is stopped in reverse (no timers, no database handle, no listener)", async () => {
  using dir = tempDir();
  const data = join(dir.path, "agent");
  const taken = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    const clock = new FakeClock();
    // A hub that is not there: the link has a reconnect timer pending when the API fails.
    const config = agentConfig(data, [
      "--api",
      `127.0.0.1:${taken.port}`,
      "--hub",
      `ws://127.0.0.1:${freePort()}`,
      "--join-token",
      "t",
    ]);
    const { agent, lines } = agentWithLog(config, clock);
    let error: unknown;
    await agent.start().catch((err) => {
      error = err;
    });
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).field).toBe("api");
    expect(lines.some((l) => l.includes("module api failed to start"))).toBe(true);
    expect(openFilesUnder(data)).toEqual([]);
    expect(clock.pending).toBe(0);
    expect(agent.apiUrl).toBeUndefined();
    // Stopped cleanly: the store was packed and closed, so a new agent opens it and runs.
    const again = agentWithLog(agentConfig(data), clock);
    await again.agent.start();
    expect((await fetch(`${again.agent.apiUrl}/healthz`)).status).toBe(200);
    expect(clock.pending).toBeGreaterThan(0);
    await again.agent.stop();
    expect(clock.pending).toBe(0);
    expect(openFilesUnder(data)).toEqual([]);
  } finally {
    taken.stop(true);
  }
});
