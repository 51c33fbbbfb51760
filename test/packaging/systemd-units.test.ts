// The systemd units: they verify, and they carry the sandbox and restart policy the agent needs.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../support/processes.ts";
import { artefacts, ROOT, sh } from "./_artefacts.ts";

const analyze = Bun.which("systemd-analyze");
if (!analyze)
  console.warn("SKIPPING systemd-analyze checks: systemd is not installed (apt-get install systemd)");

const unit = (name: string) => readFileSync(join(ROOT, "systemd", `${name}.service`), "utf8");

/** The unit's [Service] settings as key → values (a key may repeat). */
function settings(text: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) map.set(m[1]!, [...(map.get(m[1]!) ?? []), m[2]!]);
  }
  return map;
}

describe("systemd units", () => {
  beforeAll(() => artefacts(), 300_000);

  test.skipIf(!analyze)("units: systemd-analyze verify passes on both, with no warning", async () => {
    const dist = await artefacts();
    using dir = tempDir();
    // verify checks that ExecStart= exists: point it at the built binaries, change nothing else.
    const files = ["novacron-agent", "novacron-hub"].map((name) => {
      const path = join(dir.path, `${name}.service`);
      writeFileSync(path, unit(name).replace(`/usr/bin/${name}`, dist.path(`${name}-linux-x64`)));
      return path;
    });
    const r = await sh([analyze!, "verify", ...files]);
    expect(r.out + r.err).toBe("");
    expect(r.code).toBe(0);
  });

  test.skipIf(!analyze)(
    "units: systemd-analyze security rates both exposure levels OK (below 2.0)",
    async () => {
      for (const name of ["novacron-agent", "novacron-hub"]) {
        const r = await sh([
          analyze!,
          "security",
          "--offline=yes",
          "--no-pager",
          join(ROOT, "systemd", `${name}.service`),
        ]);
        const score = /Overall exposure level for .*: ([\d.]+) (\w+)/.exec(r.out + r.err);
        expect(score).not.toBeNull();
        expect(Number(score![1])).toBeLessThan(2);
      }
    },
  );

  test("units: dedicated user, state and config directories, restart with back-off, clean SIGTERM", () => {
    for (const [name, user, state] of [
      ["novacron-agent", "novacron", "novacron"],
      ["novacron-hub", "novacron-hub", "novacron-hub"],
    ] as const) {
      const s = settings(unit(name));
      expect(s.get("User")).toEqual([user]);
      expect(s.get("StateDirectory")).toEqual([state]);
      expect(s.get("ConfigurationDirectory")).toEqual(["novacron"]);
      expect(s.get("ExecStart")?.[0]).toStartWith(`/usr/bin/${name} `);
      expect(s.get("ExecStart")?.[0]).toContain(`--data /var/lib/${state}`);
      expect(s.get("Restart")).toEqual(["on-failure"]);
      expect(Number.parseInt(s.get("RestartSec")?.[0] ?? "0", 10)).toBeGreaterThanOrEqual(2);
      expect(s.get("RestartPreventExitStatus")).toEqual(["2"]);
      expect(s.get("KillSignal")).toEqual(["SIGTERM"]);
      // The agent leaves its supervised workloads running across its own restarts (it re-adopts them).
      expect(s.get("KillMode")).toEqual([name === "novacron-agent" ? "process" : "mixed"]);
      expect(s.get("WantedBy")).toEqual(["multi-user.target"]);
    }
  });

  test("units: hardened, yet /proc and /sys stay readable and the JIT can run", () => {
    for (const name of ["novacron-agent", "novacron-hub"]) {
      const s = settings(unit(name));
      for (const [key, value] of [
        ["NoNewPrivileges", "yes"],
        ["ProtectSystem", "strict"],
        ["ProtectHome", "yes"],
        ["PrivateTmp", "yes"],
        ["CapabilityBoundingSet", ""],
        ["AmbientCapabilities", ""],
        ["ProtectKernelTunables", "yes"],
        ["ProtectControlGroups", "yes"],
        ["RestrictSUIDSGID", "yes"],
        ["SystemCallArchitectures", "native"],
      ]) {
        expect(s.get(key!)).toEqual([value!]);
      }
      // ProcSubset=pid would hide /proc/stat, /proc/meminfo and /proc/loadavg from the collector.
      expect(s.has("ProcSubset")).toBe(false);
      expect(s.has("InaccessiblePaths")).toBe(false);
      // JavaScriptCore's JIT needs writable and executable memory.
      expect(s.has("MemoryDenyWriteExecute")).toBe(false);
    }
  });
});
