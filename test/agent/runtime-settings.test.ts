// The compiled agent's JavaScriptCore settings: applied by re-executing itself at start, overridable from the environment.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { missingDefaults, RUNTIME_DEFAULTS } from "../../agent/runtime-settings.ts";
import { freePort } from "../support/ports.ts";
import { Proc, tempDir } from "../support/processes.ts";

const ROOT = resolve(import.meta.dir, "../..");

describe("runtime settings", () => {
  test("a compiled agent re-executes with the settings the environment does not give; one given is kept; off skips them; bun run never re-executes", () => {
    expect(missingDefaults({}, true)).toEqual({ ...RUNTIME_DEFAULTS });
    expect(missingDefaults({ BUN_JSC_useJIT: "true" }, true)).toBeUndefined();
    expect(missingDefaults({ NOVACRON_RUNTIME_DEFAULTS: "off" }, true)).toBeUndefined();
    expect(missingDefaults({}, false)).toBeUndefined();
  });

  test("the compiled agent runs with the JIT off in its own environment, under the same pid, and keeps an operator's BUN_JSC_useJIT", async () => {
    using dir = tempDir();
    const bin = join(dir.path, "novacron-agent");
    const build = Bun.spawnSync(
      [process.execPath, "build", "--compile", "--minify", "agent/main.ts", "--outfile", bin],
      { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
    );
    expect(build.exitCode).toBe(0);
    const envOf = (pid: number) =>
      Object.fromEntries(
        readFileSync(`/proc/${pid}/environ`, "utf8")
          .split("\0")
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
      );
    for (const [given, expected] of [
      [undefined, "false"],
      ["true", "true"],
    ] as const) {
      const env: Record<string, string> = given ? { BUN_JSC_useJIT: given } : {};
      const args = ["run", "--data", join(dir.path, `data-${given}`), "--api", `127.0.0.1:${freePort()}`];
      const agent = new Proc("agent", [bin, ...args], env);
      agent.start();
      try {
        await agent.waitForLine(/local API listening/);
        expect(envOf(agent.pid!).BUN_JSC_useJIT).toBe(expected);
        // One process: the one spawned, now running the agent (not a child of it).
        expect(readFileSync(`/proc/${agent.pid}/cmdline`, "utf8").split("\0")[1]).toBe("run");
      } finally {
        await agent.kill("SIGTERM");
      }
    }
  });
});
