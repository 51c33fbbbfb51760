// The CLI's contract with scripts and people: settings precedence, exit codes, errors that name the
// problem, --help for every command, shell completion, and the launcher and compiled binary.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { COMMANDS } from "../../cli/commands/index.ts";
import { hasOpenssl, makeTestCa } from "../support/certs.ts";
import { runCli } from "../support/cli.ts";
import { freePort } from "../support/ports.ts";
import { type HubHandle, startHub, tempDir } from "../support/processes.ts";

const ROOT = resolve(import.meta.dir, "../..");
const dir = tempDir("novacron-cli-usage-");
let hub: HubHandle;

beforeAll(async () => {
  hub = await startHub({ data: join(dir.path, "hub") });
}, 60_000);

afterAll(async () => {
  await hub?.[Symbol.asyncDispose]();
  dir[Symbol.dispose]();
});

/** A config file at the default place under a fresh HOME; returns that HOME. */
function homeWithConfig(name: string, yaml: string, mode = 0o600): string {
  const home = join(dir.path, name);
  mkdirSync(join(home, ".config/novacron"), { recursive: true });
  const file = join(home, ".config/novacron/cli.yaml");
  writeFileSync(file, yaml);
  chmodSync(file, mode);
  return home;
}

describe("cli: settings", () => {
  test("hub and token: a flag beats NOVACRON_*, which beats ~/.config/novacron/cli.yaml", async () => {
    const dead = `http://127.0.0.1:${freePort()}`;
    const home = homeWithConfig("precedence", `hub: ${hub.url}\ntoken: ${hub.adminToken}\n`);
    // The file alone is enough.
    const fromFile = await runCli(["nodes", "--json"], { env: { HOME: home } });
    expect(fromFile.code).toBe(0);
    expect(fromFile.json<{ nodes: unknown[] }>().nodes).toEqual([]);
    // The environment beats the file: the dead hub is tried, and named.
    const fromEnv = await runCli(["nodes"], { env: { HOME: home, NOVACRON_HUB: dead } });
    expect(fromEnv.code).toBe(3);
    expect(fromEnv.stderr).toContain(`cannot reach the hub at ${dead}`);
    // The flag beats the environment.
    const fromFlag = await runCli(["nodes", "--hub", hub.url], { env: { HOME: home, NOVACRON_HUB: dead } });
    expect(fromFlag.code).toBe(0);
    // Same order for the token: a wrong one in the environment is refused, and its source named.
    const badEnv = await runCli(["nodes"], { env: { HOME: home, NOVACRON_TOKEN: "wrong" } });
    expect(badEnv.code).toBe(4);
    expect(badEnv.stderr).toContain("refused the token from NOVACRON_TOKEN (401");
    const flagWins = await runCli(["nodes", "--token", hub.adminToken], {
      env: { HOME: home, NOVACRON_TOKEN: "wrong" },
    });
    expect(flagWins.code).toBe(0);
  }, 60_000);

  test("--config names another file; a missing one, an unknown key or a bad URL exits 2 naming it", async () => {
    const file = join(dir.path, "other.yaml");
    writeFileSync(file, `hub: ${hub.url}\ntoken: ${hub.adminToken}\n`, { mode: 0o600 });
    expect((await runCli(["nodes", "--config", file])).code).toBe(0);
    expect((await runCli(["nodes"], { env: { NOVACRON_CLI_CONFIG: file } })).code).toBe(0);
    const missing = await runCli(["nodes", "--config", join(dir.path, "absent.yaml")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("absent.yaml");
    expect(missing.stderr).toContain("file not found");
    const typo = join(dir.path, "typo.yaml");
    writeFileSync(typo, "hubb: http://x\n");
    const t = await runCli(["nodes", "--config", typo]);
    expect(t.code).toBe(2);
    expect(t.stderr).toContain("hubb: unknown key");
    expect(t.stderr).toContain("did you mean hub?");
    const url = await runCli(["nodes", "--hub", "ftp://h", "--token", "x"]);
    expect(url.code).toBe(2);
    expect(url.stderr).toContain("hub: must be an http:// or https:// URL");
  }, 60_000);

  test("a config file that holds a token and others can read gets a warning", async () => {
    const home = homeWithConfig("loose", `hub: ${hub.url}\ntoken: ${hub.adminToken}\n`, 0o644);
    const r = await runCli(["nodes"], { env: { HOME: home } });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("holds a token and others can read it: chmod 600");
  }, 60_000);

  test("no token anywhere exits 2 and says where one goes", async () => {
    const r = await runCli(["nodes"], { hub: hub.url });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no token: give --token, set NOVACRON_TOKEN");
  }, 30_000);
});

describe("cli: exit codes and errors", () => {
  test("an unreachable hub exits 3 and names its URL", async () => {
    const url = `http://127.0.0.1:${freePort()}`;
    const r = await runCli(["workloads"], { hub: url, token: "t" });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`cannot reach the hub at ${url}: connection refused`);
  }, 30_000);

  test("a hub that accepts the connection and never answers exits 3 after --timeout", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const url = `http://127.0.0.1:${silent.port}`;
      const r = await runCli(["nodes", "--timeout", "300ms"], { hub: url, token: "t" });
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(`cannot reach the hub at ${url}: no answer within 300 ms (--timeout)`);
      const bad = await runCli(["nodes", "--timeout", "forever"], { hub: url, token: "t" });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("timeout:");
    } finally {
      silent.stop(true);
    }
  }, 30_000);

  test("a wrong token exits 4 and says the hub refused it (401)", async () => {
    const r = await runCli(["nodes"], { hub: hub.url, token: "stolen-guess" });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/refused the token from NOVACRON_TOKEN \(401 unauthorized/);
    const j = await runCli(["nodes", "--json"], { hub: hub.url, token: "stolen-guess" });
    expect(j.code).toBe(4);
    expect(JSON.parse(j.stderr)).toMatchObject({ error: { exit: 4, code: "unauthorized" } });
    expect(j.stdout).toBe("");
  }, 30_000);

  test("bad usage exits 2 and names the flag, argument or command", async () => {
    const cases: [string[], string][] = [
      [["nodes", "--stauts", "down"], 'unknown flag --stauts for "nodes" (did you mean --status?)'],
      [["node", "show"], '"node show" needs ID'],
      [["node", "show", "a", "b"], 'unexpected argument "b"'],
      [["node"], '"node" needs one of: show, drain, undrain'],
      [["node", "shwo", "x"], 'unknown command "node shwo"'],
      [["wrokloads"], 'unknown command "wrokloads" (did you mean workloads?)'],
      [["logs", "web", "--lines", "0"], "--lines must be a whole number from 1 to 10000"],
      [["logs", "web", "--lines"], "flag --lines needs a value"],
      [["nodes", "--json=yes"], "flag --json takes no value"],
      [["tokens", "create", "ci", "--role", "root"], "--role must be one of viewer, operator, admin"],
      [["audit", "--since", "yesterday"], "--since must be a duration before now"],
      [["top", "--json"], "--json needs --once"],
      [["completion", "fish"], "completion needs a shell: bash or zsh"],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args, { hub: hub.url, token: hub.adminToken });
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toContain(message);
    }
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("Usage: novacron COMMAND");
  }, 60_000);

  test("the hub refusing a request exits 1 with its code, message and field", async () => {
    const r = await runCli(["logs", "ghost"], { hub: hub.url, token: hub.adminToken });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the hub answered 404 not_found: no workload ghost");
    const file = join(dir.path, "bad-plan.json");
    writeFileSync(file, JSON.stringify({ placement: { levels: [4, 2] } }));
    const p = await runCli(["plan", "-f", file, "--json"], { hub: hub.url, token: hub.adminToken });
    expect(p.code).toBe(1);
    const err = JSON.parse(p.stderr) as { error: { code: string; field?: string } };
    expect(err.error.code).toBe("bad_request");
    expect(err.error.field).toContain("levels");
  }, 30_000);
});

describe.skipIf(!hasOpenssl())("cli: a hub on https", () => {
  test("a hub whose certificate the CLI cannot verify exits 3 naming the URL; --ca or NOVACRON_CA trusts its CA", async () => {
    const ca = makeTestCa(dir.path, "cli-ca");
    await using tlsHub = await startHub({
      data: join(dir.path, "tls-hub"),
      args: ["--tls-cert", ca.serverCert, "--tls-key", ca.serverKey],
      apiTls: { ca: ca.pem.ca },
    });
    const untrusted = await runCli(["nodes"], { hub: tlsHub.url, token: tlsHub.adminToken });
    expect(untrusted.code).toBe(3);
    expect(untrusted.stderr).toContain(`cannot reach the hub at ${tlsHub.url}`);
    expect(untrusted.stderr.toLowerCase()).toMatch(/certificate|self.signed|verify/);
    const trusted = await runCli(["nodes", "--ca", ca.ca, "--json"], {
      hub: tlsHub.url,
      token: tlsHub.adminToken,
    });
    expect(trusted.code).toBe(0);
    expect(trusted.json<{ nodes: unknown[] }>().nodes).toEqual([]);
    const byEnv = await runCli(["nodes"], {
      hub: tlsHub.url,
      token: tlsHub.adminToken,
      env: { NOVACRON_CA: ca.ca },
    });
    expect(byEnv.code).toBe(0);
    const missing = await runCli(["nodes", "--ca", join(dir.path, "no-ca.pem")], {
      hub: tlsHub.url,
      token: "t",
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("ca: cannot read");
  }, 60_000);
});

describe("cli: help, completion, launcher and binary", () => {
  test("--help for the program and for every command exits 0 with its usage and flags", async () => {
    const top = await runCli(["--help"]);
    expect(top.code).toBe(0);
    for (const c of COMMANDS) expect(top.stdout).toContain(c.words.join(" "));
    expect(top.stdout).toContain("Exit codes:");
    for (const c of COMMANDS) {
      const r = await runCli([...c.words, "--help"]);
      expect({ cmd: c.words, code: r.code }).toEqual({ cmd: c.words, code: 0 });
      expect(r.stdout).toContain(`Usage: novacron ${c.words.join(" ")}`);
      for (const f of c.flags) expect(r.stdout).toContain(f.name);
    }
    expect((await runCli(["help", "apply"])).stdout).toContain("Usage: novacron apply -f FILE [--yes]");
    expect((await runCli(["--version"])).stdout).toMatch(/^novacron \d+\.\d+\.\d+/);
  }, 120_000);

  test("completion bash completes commands, subcommands, flags and flag values in a real bash", async () => {
    const script = await runCli(["completion", "bash"]);
    expect(script.code).toBe(0);
    const file = join(dir.path, "completion.bash");
    writeFileSync(file, script.stdout);
    const complete = async (...words: string[]) => {
      const p = Bun.spawn(
        [
          "bash",
          "-c",
          `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _novacron; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { stdout: "pipe", stderr: "pipe" },
      );
      const out = await new Response(p.stdout).text();
      expect(await p.exited).toBe(0);
      return out.trim().split("\n").filter(Boolean);
    };
    expect(await complete("novacron", "no")).toEqual(["nodes", "node"]);
    expect(await complete("novacron", "node", "")).toEqual(["show", "drain", "undrain"]);
    expect(await complete("novacron", "tokens", "create", "ci", "--role", "")).toEqual([
      "viewer",
      "operator",
      "admin",
    ]);
    expect(await complete("novacron", "apply", "--y")).toEqual(["--yes"]);
    expect(await complete("novacron", "alerts", "--state", "o")).toEqual(["open"]);
    const zsh = await runCli(["completion", "zsh"]);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout).toContain("#compdef novacron");
    expect(zsh.stdout).toContain("complete -F _novacron novacron");
  }, 60_000);

  test("npx novacron from the checkout runs the CLI with only Node.js on the PATH", async () => {
    const path = (process.env.PATH ?? "")
      .split(":")
      .filter((p) => !p.includes("node_modules/.bin") && !Bun.which("bun", { PATH: p }))
      .join(":");
    const r = await runCli(["novacron", "nodes", "--json"], {
      hub: hub.url,
      token: hub.adminToken,
      command: ["npx", "--no-install"],
      env: { PATH: path, npm_config_update_notifier: "false" },
    });
    expect(r.stderr).not.toContain("novacron");
    expect(r.code).toBe(0);
    expect(r.json<{ nodes: unknown[] }>().nodes).toEqual([]);
  }, 120_000);

  test("npm run build --component cli makes a binary that works like bun cli/main.ts", async () => {
    const out = join(dir.path, "dist");
    const build = Bun.spawn(
      [process.execPath, "scripts/build.ts", "--out", out, "--target", "linux-x64", "--component", "cli"],
      { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
    );
    const log = await new Response(build.stdout).text();
    expect(await build.exited).toBe(0);
    expect(log).toContain("novacron-linux-x64");
    const bin = join(out, "novacron-linux-x64");
    const r = await runCli(["nodes", "--json"], { hub: hub.url, token: hub.adminToken, command: [bin] });
    expect(r.code).toBe(0);
    expect(r.json<{ nodes: unknown[] }>().nodes).toEqual([]);
    const bad = await runCli(["nodes"], { hub: hub.url, token: "nope", command: [bin] });
    expect(bad.code).toBe(4);
  }, 300_000);
});
