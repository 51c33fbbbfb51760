// Specifications of the config value parsers, command-line parsing and --help text.
import { describe, expect, test } from "bun:test";
import { agentFields, agentHelp } from "../../agent/config/index.ts";
import {
  defineFields,
  formatBytes,
  formatDuration,
  formatListen,
  helpText,
  parseArgs,
  parseBytes,
  parseDuration,
  parseList,
  parseListen,
  parseMap,
} from "../../shared/config/index.ts";
import { FlagError } from "../../shared/errors.ts";

describe("config parsers", () => {
  test("config: durations accept ms, s, m, h, compounds and plain numbers of ms", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("1s")).toBe(1000);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("1m30s")).toBe(90_000);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("250")).toBe(250);
    expect(parseDuration(" 10s ")).toBe(10_000);
  });

  test("config: durations refuse units, signs and fractions of a millisecond they do not know", () => {
    for (const bad of ["", "s", "1x", "-1s", "1.5ms", "1s2", "1 s", "ten"])
      expect(parseDuration(bad)).toBeUndefined();
  });

  test("config: byte sizes use 10^n for kB/MB/GB and 2^n for KiB/MiB/GiB", () => {
    expect(parseBytes("100MB")).toBe(100_000_000);
    expect(parseBytes("64KiB")).toBe(65_536);
    expect(parseBytes("1GiB")).toBe(2 ** 30);
    expect(parseBytes("1MiB")).toBe(2 ** 20);
    expect(parseBytes("2kb")).toBe(2000);
    expect(parseBytes("1.5KiB")).toBe(1536);
    expect(parseBytes("4096")).toBe(4096);
    for (const bad of ["", "MB", "1XB", "-1", "0.5B", "1 2MB"]) expect(parseBytes(bad)).toBeUndefined();
  });

  test("config: listen addresses take host:port and [ipv6]:port with a port from 0 to 65535", () => {
    expect(parseListen("127.0.0.1:8080")).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(parseListen("[::1]:8080")).toEqual({ host: "::1", port: 8080 });
    expect(parseListen("localhost:0")).toEqual({ host: "localhost", port: 0 });
    expect(parseListen("0.0.0.0:65535")).toEqual({ host: "0.0.0.0", port: 65535 });
    for (const bad of ["8080", ":80", "h:65536", "::1:8080", "h:-1", "h:http", "h:", "[::1]"]) {
      expect(parseListen(bad)).toBeUndefined();
    }
  });

  test("config: k=v maps and comma lists trim spaces and refuse broken pairs", () => {
    expect(parseMap("region=eu, zone = a,empty=")).toEqual({ region: "eu", zone: "a", empty: "" });
    expect(parseMap("")).toEqual({});
    for (const bad of ["region", "=eu", "a=1,a=2"]) expect(parseMap(bad)).toBeUndefined();
    expect(parseList(" gpu, camera,,market:NYSE ")).toEqual(["gpu", "camera", "market:NYSE"]);
  });

  test("config: formatting picks the largest exact unit, so help shows defaults as they are written", () => {
    expect(formatDuration(1000)).toBe("1s");
    expect(formatDuration(90_000)).toBe("90s");
    expect(formatDuration(250)).toBe("250ms");
    expect(formatBytes(2 ** 20)).toBe("1MiB");
    expect(formatBytes(100_000_000)).toBe("100MB");
    expect(formatListen({ host: "::1", port: 80 })).toBe("[::1]:80");
  });
});

describe("config flags", () => {
  test("config: flags take `--flag value` and `--flag=value`, and repeatable flags collect every value", () => {
    const args = parseArgs(
      [
        "--level",
        "3",
        "--node-id=n1",
        "--label",
        "a=1",
        "--label=b=2",
        "--hub",
        "ws://a,ws://b",
        "--version",
      ],
      agentFields,
      { booleans: ["--help", "--version"] },
    );
    expect(args.values).toEqual({
      level: "3",
      node_id: "n1",
      labels: ["a=1", "b=2"],
      hub: ["ws://a,ws://b"],
    });
    expect([...args.booleans]).toEqual(["--version"]);
  });

  test("config: an unknown flag is a FlagError that names it and suggests the nearest", () => {
    expect(() => parseArgs(["--nodeid", "x"], agentFields)).toThrow(FlagError);
    expect(() => parseArgs(["--nodeid", "x"], agentFields)).toThrow(
      "unknown flag --nodeid (did you mean --node-id?)",
    );
    expect(() => parseArgs(["-v"], agentFields)).toThrow("unknown flag -v");
    expect(() => parseArgs(["serve"], agentFields)).toThrow('unexpected argument "serve"');
  });

  test("config: a flag without its value is a FlagError naming the flag", () => {
    expect(() => parseArgs(["--level"], agentFields)).toThrow(new FlagError("flag --level needs a value"));
    expect(() => parseArgs(["--level", "--hub", "ws://h"], agentFields)).toThrow(
      "flag --level needs a value",
    );
    expect(() => parseArgs(["--help=yes"], agentFields, { booleans: ["--help"] })).toThrow(
      "flag --help takes no value",
    );
  });
});

describe("config help", () => {
  test("config: --help lists every flag with its variable, file key and default", () => {
    const text = agentHelp();
    expect(text).toStartWith("Usage: novacron-agent run");
    for (const field of agentFields) {
      expect(text).toContain(field.flag);
      expect(text).toContain(`env ${field.env}`);
    }
    expect(text).toContain(
      "env NOVACRON_SAMPLE_INTERVAL, file key sample_interval, default 1s, reloads live",
    );
    expect(text).toContain("env NOVACRON_API, file key api, default 127.0.0.1:8080");
    expect(text).toContain("--label k=v (repeatable)");
    expect(text).toContain("--help");
    const small = helpText(
      defineFields([{ key: "a", flag: "--a", env: "A", kind: "bytes", default: 2 ** 20, help: "size" }]),
      "x",
    );
    expect(small).toContain("--a SIZE");
    expect(small).toContain("default 1MiB");
  });
});
