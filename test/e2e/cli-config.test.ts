// End to end: command-line errors, and config files that change under a running agent.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Proc, startAgent, startHub, tempDir } from "../support/processes.ts";
import { writeAgentConfig } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";

async function run(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([process.execPath, ...args], {
    cwd: join(import.meta.dir, "../.."),
    env: { ...process.env, NOVACRON_CONFIG: "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { out, err, code };
}

describe("command line", () => {
  for (const [main, sub] of [
    ["agent/main.ts", "run"],
    ["hub/main.ts", "serve"],
  ] as const) {
    test(`${main}: --version and --help print and exit 0`, async () => {
      const v = await run([main, "--version"]);
      expect(v.code).toBe(0);
      expect(v.out).toMatch(/^novacron-(agent|hub) \d+\.\d+\.\d+/);
      const h = await run([main, sub, "--help"]);
      expect(h.code).toBe(0);
      expect(h.out).toMatch(/--data/);
      expect(h.out).toMatch(/NOVACRON_DATA/);
    });

    test(`${main}: a bad flag exits 2 with a message naming it`, async () => {
      const r = await run([main, sub, "--nodeid", "x"]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/--nodeid/);
    });
  }

  test("agent: an invalid environment value exits 2 naming the field and the variable", async () => {
    using dir = tempDir();
    const r = await run(["agent/main.ts", "run", "--data", dir.path], { NOVACRON_LEVEL: "7" });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/level/);
    expect(r.err).toMatch(/NOVACRON_LEVEL/);
  });
});

describe("config file under a running agent", () => {
  test("an invalid value is refused naming the field and the old config stays; a valid change applies without restart", async () => {
    using dir = tempDir();
    await using hub = await startHub({ data: join(dir.path, "hub") });
    const config = join(dir.path, "agent.yaml");
    writeAgentConfig(config, { level: 3, labels: { site: "plant-1" }, heartbeat_interval: "1s" });
    await using agent = await startAgent({
      data: join(dir.path, "agent"),
      nodeId: "cfg",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--config", config],
    });
    const pid = agent.proc.pid;
    await waitFor(async () => (await agent.status()).connected, { what: "agent connected" });
    const before = await agent.status();
    expect(before.config.level).toBe(3);

    const mark = agent.proc.lines.length;
    writeAgentConfig(config, { level: 9, labels: { site: "plant-1" }, heartbeat_interval: "1s" });
    const refusal = await agent.proc.waitForLine(/configuration refused/, 10_000, mark);
    expect(refusal.input).toMatch(/level/);
    const during = await agent.status();
    expect(during.config.level).toBe(3);
    expect(during.config.revision).toBe(before.config.revision);

    writeAgentConfig(config, {
      level: 2,
      labels: { site: "plant-7" },
      heartbeat_interval: "1s",
      sample_interval: "2s",
    });
    const after = await waitFor(
      async () => {
        const s = await agent.status();
        return s.config.level === 2 ? s : undefined;
      },
      { what: "the new config to apply" },
    );
    expect(after.config.labels).toEqual({ site: "plant-7" });
    expect(after.config.sample_interval_ms).toBe(2000);
    expect(after.config.revision).toBe((before.config.revision as number) + 1);
    expect(agent.proc.pid).toBe(pid);
    // The hub hears of the new identity through a fresh hello.
    await waitFor(
      async () => {
        const r = await hub.api<{ level: number; labels: Record<string, string> }>("/api/v1/nodes/cfg");
        return r.body.level === 2 && r.body.labels.site === "plant-7";
      },
      { what: "the hub to see level 2 and site plant-7" },
    );
  }, 60_000);
});

describe("local API address", () => {
  test("two agents on one host with no --api: the second takes the next free port and says where; a port given on purpose that is taken is refused, naming the flag", async () => {
    using dir = tempDir();
    // Hold the default port, as a second agent (or anything else on 8080) would find it.
    let holder: ReturnType<typeof Bun.serve> | undefined;
    try {
      holder = Bun.serve({ hostname: "127.0.0.1", port: 8080, fetch: () => new Response("taken") });
    } catch {
      // Something else on this machine holds it already: the case under test all the same.
    }
    const started: Proc[] = [];
    try {
      for (const name of ["first", "second"]) {
        const p = new Proc(`agent:${name}`, [
          process.execPath,
          "agent/main.ts",
          "run",
          "--data",
          join(dir.path, name),
          "--node-id",
          name,
        ]);
        p.start();
        started.push(p);
        await p.waitForLine(/local API listening/);
      }
      const urls = started.map(
        (p) =>
          /local API listening url=(\S+)/.exec(p.lines.find((l) => l.includes("local API listening"))!)![1]!,
      );
      expect(new Set(urls).size).toBe(2);
      for (const [i, url] of urls.entries()) {
        expect(url).not.toBe("http://127.0.0.1:8080");
        expect(started[i]!.lines.some((l) => l.includes("default_port_taken=8080"))).toBe(true);
        expect((await fetch(`${url}/healthz`)).status).toBe(200);
      }
      const taken = new URL(urls[0]!).host;
      const refused = await run(["agent/main.ts", "run", "--data", join(dir.path, "third"), "--api", taken]);
      expect(refused.code).toBe(1);
      expect(refused.err).toContain(
        `api: ${taken} is in use; give the local API another address with --api HOST:PORT`,
      );
    } finally {
      for (const p of started) await p.kill("SIGTERM");
      holder?.stop(true);
    }
  }, 60_000);
});

test("a shorter batch_interval applied live takes effect at once, not after the old interval ran out", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  const config = join(dir.path, "agent.yaml");
  writeAgentConfig(config, { sample_interval: "1s", batch_interval: "30s", heartbeat_interval: "1s" });
  await using agent = await startAgent({
    data: join(dir.path, "agent"),
    nodeId: "batchy",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--config", config],
  });
  await waitFor(async () => (await agent.status()).connected, { what: "connected" });
  const changedAt = Date.now();
  writeAgentConfig(config, { sample_interval: "1s", batch_interval: "1s", heartbeat_interval: "1s" });
  await waitFor(
    async () => {
      const r = await hub.api<{ ingest?: { samples: number } }>("/api/v1/nodes/batchy");
      return (r.body.ingest?.samples ?? 0) > 0;
    },
    { what: "samples at the hub", timeoutMs: 25_000 },
  );
  // The old 30 s wait would have held the first batch for about half a minute.
  expect(Date.now() - changedAt).toBeLessThan(10_000);
}, 60_000);

test("the hub's --help says only what the hub does: it does not reload its config or move workloads, and it names the dashboard it serves", async () => {
  const help = await run(["hub/main.ts", "--help"]);
  expect(help.code).toBe(0);
  expect(help.out).toContain("--down-after");
  expect(help.out).not.toContain("reloads live");
  expect(help.out).not.toMatch(/workloads move/);
  expect(help.out).toContain("the dashboard (/ui/)");
  // The agent does reload its file: there the marker is true.
  expect((await run(["agent/main.ts", "--help"])).out).toContain("reloads live");
});
