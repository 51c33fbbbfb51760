// The CLI's pure parts: the spec diff apply prints, reading the hub's /metrics, and command-line parsing.
import { describe, expect, test } from "bun:test";
import { parseCommandLine } from "../../cli/argv.ts";
import { COMMANDS } from "../../cli/commands/index.ts";
import { UsageError } from "../../cli/errors.ts";
import { fleetValues } from "../../cli/prom-text.ts";
import { age } from "../../cli/render.ts";
import { diffSpecs, diffText } from "../../cli/spec-diff.ts";
import { specOf, validateSpec } from "../../cli/spec-file.ts";

describe("cli: spec diff", () => {
  test("names every changed, added and removed leaf by its dotted path; an equal spec has no changes", () => {
    const a = validateSpec({ name: "w", driver: "exec", command: "/bin/true", env: { A: "1" } }, "a");
    const b = validateSpec(
      { name: "w", driver: "exec", command: "/bin/false", env: { B: "2" }, resources: { mem_mb: 64 } },
      "b",
    );
    expect(diffSpecs(a, a)).toEqual([]);
    const changes = diffSpecs(a, b);
    expect(changes).toEqual([
      { path: "command", kind: "change", before: "/bin/true", after: "/bin/false" },
      { path: "env.A", kind: "remove", before: "1" },
      { path: "env.B", kind: "add", after: "2" },
      { path: "resources.mem_mb", kind: "change", before: 0, after: 64 },
    ]);
    expect(diffText(changes).split("\n")).toEqual([
      '~ command: "/bin/true" => "/bin/false"',
      '- env.A: "1"',
      '+ env.B: "2"',
      "~ resources.mem_mb: 0 => 64",
    ]);
  });

  test("the hub's view of a workload (version, allocs, ...) compares equal to the spec it came from", () => {
    const spec = validateSpec({ name: "w", driver: "exec", command: "/bin/true", replicas: 2 }, "f");
    const view = {
      ...spec,
      version: 3,
      allocs: [{ id: "x" }],
      rollout_status: "idle",
      created: 1,
      updated: 2,
    };
    expect(diffSpecs(specOf(view), spec)).toEqual([]);
  });

  test("an invalid spec is refused naming the file and the field", () => {
    expect(() => validateSpec({ name: "w", driver: "exec", command: "" }, "w.yaml")).toThrow(
      "w.yaml: command: must not be empty",
    );
  });
});

describe("cli: /metrics", () => {
  test("reads each node's newest values, with the mount label kept and other families ignored", () => {
    const text = [
      "# HELP novacron_node_cpu_util cpu.util",
      "# TYPE novacron_node_cpu_util gauge",
      'novacron_node_cpu_util{node="gw-1"} 12.5',
      'novacron_node_disk_used_pct{node="gw-1",mount="/"} 40',
      'novacron_node_mem_used_pct{node="gw-\\"2"} 7 1700000000000',
      'novacron_hub_sessions{hub="h"} 3',
      "novacron_node_broken{node=} x",
    ].join("\n");
    const v = fleetValues(text);
    expect(Object.fromEntries(v.get("gw-1") ?? [])).toEqual({ cpu_util: 12.5, "disk_used_pct/": 40 });
    expect(v.get('gw-"2')?.get("mem_used_pct")).toBe(7);
    expect(v.size).toBe(2);
  });
});

describe("cli: command line", () => {
  test("finds the longest command, its arguments and flags, wherever the global flags are", () => {
    const line = parseCommandLine(
      ["--json", "node", "drain", "gw-1", "--deadline=5m", "--hub", "http://h"],
      COMMANDS,
    );
    expect(line.command?.words).toEqual(["node", "drain"]);
    expect(line.parsed.args).toEqual({ ID: "gw-1" });
    expect(line.parsed.flags).toEqual({ "--deadline": "5m", "--hub": "http://h" });
    expect([...line.parsed.switches]).toEqual(["--json"]);
    const audit = parseCommandLine(["audit", "verify"], COMMANDS);
    expect(audit.command?.words).toEqual(["audit", "verify"]);
    const apply = parseCommandLine(["apply", "-f", "-", "-y"], COMMANDS);
    expect(apply.parsed.flags["--file"]).toBe("-");
    expect(apply.parsed.switches.has("--yes")).toBe(true);
  });

  test("a flag of another command is refused for this one, naming it", () => {
    expect(() => parseCommandLine(["nodes", "--yes"], COMMANDS)).toThrow(UsageError);
    expect(() => parseCommandLine(["nodes", "--yes"], COMMANDS)).toThrow('unknown flag --yes for "nodes"');
  });

  test("ages read as people say them", () => {
    const now = 1_000_000_000;
    expect(age(now - 500, now)).toBe("now");
    expect(age(now - 42_000, now)).toBe("42s ago");
    expect(age(now - 3 * 3_600_000, now)).toBe("3h ago");
    expect(age(null, now)).toBe("never");
  });
});
