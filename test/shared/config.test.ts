// Specifications of configuration: precedence, validation, the config file and hot reload.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentConfig, loadAgentConfig, watchAgentConfig } from "../../agent/config/index.ts";
import { loadHubConfig } from "../../hub/config/index.ts";
import {
  ConfigWatcher,
  defineFields,
  loadConfig,
  parseArgs,
  resolveConfig,
  type WatcherTimers,
} from "../../shared/config/index.ts";
import { ConfigError } from "../../shared/errors.ts";

/** A temp directory holding one config file, removed when the test's `using` scope ends. */
function tempConfig(text = "") {
  const dir = mkdtempSync(join(tmpdir(), "novacron-config-"));
  const path = join(dir, "agent.yaml");
  writeFileSync(path, text);
  return {
    dir,
    path,
    write: (t: string) => writeFileSync(path, t),
    /** Replaces the file as editors do: write a temp file beside it, rename it over the original. */
    replace: (t: string) => {
      const tmp = join(dir, ".agent.yaml.swp");
      writeFileSync(tmp, t);
      renameSync(tmp, path);
    },
    [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Collects callback events and hands them out in order, failing if one does not arrive in time. */
function eventQueue<T>() {
  const events: T[] = [];
  const waiters: Array<(event: T) => void> = [];
  return {
    push(event: T) {
      const waiter = waiters.shift();
      if (waiter) waiter(event);
      else events.push(event);
    },
    next(timeoutMs = 5000): Promise<T> {
      const ready = events.shift();
      if (ready !== undefined) return Promise.resolve(ready);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), timeoutMs);
        waiters.push((event) => {
          clearTimeout(timer);
          resolve(event);
        });
      });
    },
  };
}

/** Returns the error `fn` throws, failing the test if it throws none. */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected an error, none was thrown");
}

function runConfig(argv: string[], env: Record<string, string> = {}): AgentConfig {
  const loaded = loadAgentConfig(argv, env);
  if (loaded.action !== "run") throw new Error(`unexpected action ${loaded.action}`);
  return loaded.config;
}

describe("config flags through loading", () => {
  test("config: repeated --label and --capability flags build the map and list, and --hub splits on commas", () => {
    const config = runConfig([
      "--config=",
      "--label",
      "region=eu",
      "--label",
      "site=berlin-3",
      "--capability",
      "gpu",
      "--capability",
      "market:NYSE",
      "--hub",
      "ws://a:1,wss://b",
      "--hub",
      "mqtt://c",
    ]);
    expect(config.labels).toEqual({ region: "eu", site: "berlin-3" });
    expect(config.capabilities).toEqual(["gpu", "market:NYSE"]);
    expect(config.hub).toEqual(["ws://a:1", "wss://b", "mqtt://c"]);
  });

  test("config: --help and --version are handed back even when the rest of the config is broken", () => {
    expect(loadAgentConfig(["--help", "--level", "9"], {}).action).toBe("help");
    expect(loadAgentConfig(["--version"], { NOVACRON_CONFIG: "/nonexistent/agent.yaml" }).action).toBe(
      "version",
    );
  });
});

describe("config resolution", () => {
  test("config: a flag beats the environment, which beats the file, which beats the default", () => {
    using file = tempConfig("level: 2\nlog_level: warn\n");
    const env = { NOVACRON_CONFIG: file.path, NOVACRON_LEVEL: "3" };
    expect(runConfig(["--level", "4"], env).level).toBe(4);
    expect(runConfig([], env).level).toBe(3);
    expect(runConfig([], { NOVACRON_CONFIG: file.path }).level).toBe(2);
    expect(runConfig(["--config", ""], {}).level).toBe(5);
    expect(runConfig([], env).log_level).toBe("warn");
  });

  test("config: defaults are typed: durations in ms, sizes in bytes, listen addresses split", () => {
    const config = runConfig(["--config", ""]);
    expect(config.sample_interval).toBe(1000);
    expect(config.batch_interval).toBe(20_000);
    expect(config.buffer_bytes).toBe(100_000_000);
    expect(config.max_frame_bytes).toBe(2 ** 20);
    expect(config.api).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(config.hub).toEqual([]);
    expect(config.labels).toEqual({});
    expect(Object.isFrozen(config)).toBe(true);
  });

  test("config: an invalid level from the environment names the field, the value and the variable", () => {
    const err = thrown(() => runConfig(["--config", ""], { NOVACRON_LEVEL: "7" }));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe("level");
    expect(err.message).toBe("level: must be an integer from 1 to 5 (got 7 from NOVACRON_LEVEL)");
  });

  test("config: bad durations, sizes, addresses and levels name the field and the flag", () => {
    const cases: Array<[string[], string]> = [
      [["--level", "two"], "level: must be an integer from 1 to 5 (got two from --level)"],
      [
        ["--sample-interval", "50ms"],
        "sample_interval: must be a duration from 100ms to 1h (got 50ms from --sample-interval)",
      ],
      [
        ["--batch-interval", "soon"],
        "batch_interval: must be a duration from 1s to 10m, like 500ms, 10s, 2m or 1h (got soon from --batch-interval)",
      ],
      [
        ["--buffer-bytes", "16KiB"],
        "buffer_bytes: must be a size of at least 64KB (got 16KiB from --buffer-bytes)",
      ],
      [
        ["--max-frame-bytes", "1GiB"],
        "max_frame_bytes: must be a size from 64KiB to 64MiB (got 1GiB from --max-frame-bytes)",
      ],
      [
        ["--api", "8080"],
        "api: must be HOST:PORT with a port from 0 to 65535, like 127.0.0.1:8080 or [::1]:8080 (got 8080 from --api)",
      ],
      [
        ["--log-level", "loud"],
        "log_level: must be one of debug, info, warn or error (got loud from --log-level)",
      ],
      [
        ["--node-id", "-n"],
        "node_id: must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit (got -n from --node-id)",
      ],
      [
        ["--label", "region"],
        "labels: must be k=v pairs separated by commas, with distinct keys (got region from --label)",
      ],
    ];
    for (const [argv, message] of cases) {
      const err = thrown(() => runConfig(["--config", "", ...argv]));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toBe(message);
    }
  });

  test("config: hub URLs must be ws, wss, mqtt or mqtts, and the error names the one bad URL", () => {
    const err = thrown(() => runConfig(["--config", "", "--hub", "ws://ok:1,http://bad:2"]));
    expect((err as ConfigError).field).toBe("hub");
    expect(err.message).toBe(
      "hub: must be ws://, wss://, mqtt:// or mqtts:// URLs (got http://bad:2 from --hub)",
    );
    expect(thrown(() => runConfig(["--config", "", "--hub", "not a url"])).message).toContain('"not a url"');
    expect(runConfig(["--config", ""], { NOVACRON_HUB: "mqtts://broker:8883, wss://hub" }).hub).toEqual([
      "mqtts://broker:8883",
      "wss://hub",
    ]);
  });

  test("config: the file takes YAML lists and maps, or comma strings; env maps are k=v,k=v", () => {
    using file = tempConfig(
      "hub:\n  - ws://a:1\n  - mqtt://b\ncapabilities: gpu, camera\nlabels:\n  region: eu\n  rack: '12'\n" +
        "sample_interval: 2s\nbatch_interval: 5000\nbuffer_bytes: 10MiB\napi: '[::1]:9000'\n",
    );
    const config = runConfig(["--config", file.path]);
    expect(config.hub).toEqual(["ws://a:1", "mqtt://b"]);
    expect(config.capabilities).toEqual(["gpu", "camera"]);
    expect(config.labels).toEqual({ region: "eu", rack: "12" });
    expect(config.sample_interval).toBe(2000);
    expect(config.batch_interval).toBe(5000);
    expect(config.buffer_bytes).toBe(10 * 2 ** 20);
    expect(config.api).toEqual({ host: "::1", port: 9000 });
    const fromEnv = runConfig(["--config", file.path], { NOVACRON_LABELS: "site=b3,zone=a" });
    expect(fromEnv.labels).toEqual({ site: "b3", zone: "a" });
  });

  test("config: an unknown key in the file is an error naming the key, with a suggestion", () => {
    using file = tempConfig("level: 3\nnode-id: n1\n");
    const err = thrown(() => runConfig(["--config", file.path]));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe("node-id");
    expect(err.message).toBe(`node-id: unknown key in ${file.path} (did you mean node_id?)`);
  });

  test("config: the file cannot name another config file", () => {
    using file = tempConfig("config: /elsewhere.yaml\n");
    expect(thrown(() => runConfig(["--config", file.path])).message).toBe(
      `config: cannot be set inside ${file.path}; use --config or NOVACRON_CONFIG`,
    );
  });

  test("config: a value of the wrong YAML type names the field and the file", () => {
    using file = tempConfig("node_id: 42\n");
    expect(thrown(() => runConfig(["--config", file.path])).message).toBe(
      `node_id: must be a string; quote it in YAML (got 42 from ${file.path})`,
    );
  });

  test("config: a YAML syntax error is a ConfigError on `config` with the parser's message and the line", () => {
    using file = tempConfig("level: 3\nhub: [ws://a:1, ws://b:2\nlog_level: info\n");
    const err = thrown(() => runConfig(["--config", file.path]));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe("config");
    expect(err.message).toStartWith(`config: YAML syntax error in ${file.path} near line 2: `);
    expect(err.message.length).toBeGreaterThan(
      `config: YAML syntax error in ${file.path} near line 2: `.length,
    );
  });

  test("config: an empty or comment-only file sets nothing, and a list at the top is refused", () => {
    using file = tempConfig("# nothing yet\n");
    expect(runConfig(["--config", file.path]).level).toBe(5);
    file.write("- level: 3\n");
    expect(thrown(() => runConfig(["--config", file.path])).message).toBe(
      `config: ${file.path} must be a YAML map of settings (key: value), not a list`,
    );
  });

  test("config: a config file named by flag or environment must exist", () => {
    const missing = join(tmpdir(), "novacron-no-such-dir", "agent.yaml");
    const byFlag = thrown(() => runConfig(["--config", missing]));
    expect((byFlag as ConfigError).field).toBe("config");
    expect(byFlag.message).toBe(`config: file not found: ${missing} (from --config)`);
    expect(thrown(() => runConfig([], { NOVACRON_CONFIG: missing })).message).toBe(
      `config: file not found: ${missing} (from NOVACRON_CONFIG)`,
    );
  });

  test("config: a missing file at the default path means running on flags, environment and defaults", () => {
    using file = tempConfig();
    const fields = defineFields([
      {
        key: "config",
        flag: "--config",
        env: "X_CONFIG",
        kind: "string",
        default: join(file.dir, "absent.yaml"),
        inFile: false,
        help: "",
      },
      { key: "level", flag: "--level", env: "X_LEVEL", kind: "int", default: 5, help: "" },
    ]);
    const loaded = loadConfig({ fields, argv: ["--level", "2"], env: {} });
    if (loaded.action !== "run") throw new Error("expected run");
    expect(loaded.config.level).toBe(2);
    expect(loaded.filePath).toBeUndefined();
    expect(loaded.configPath).toBe(join(file.dir, "absent.yaml"));
  });

  test("config: an empty environment variable counts as unset", () => {
    expect(runConfig(["--config", ""], { NOVACRON_LEVEL: "", NOVACRON_HUB: "" }).level).toBe(5);
  });

  test("config: errors never echo tokens or URL passwords", () => {
    using file = tempConfig("join_token: 12345\n");
    expect(thrown(() => runConfig(["--config", file.path])).message).toBe(
      `join_token: must be a string; quote it in YAML (got <hidden> from ${file.path})`,
    );
    const err = thrown(() => loadHubConfig(["--config", "", "--mqtt", "ws://user:secret@broker"], {}));
    expect(err.message).toBe(
      "mqtt: must be an mqtt:// or mqtts:// URL (got ws://user:***@broker from --mqtt)",
    );
  });

  test("config: the hub refuses failure timings that cannot work in order", () => {
    const err = thrown(() =>
      loadHubConfig(["--config", "", "--suspect-after", "30s", "--down-after", "20s"], {}),
    );
    expect((err as ConfigError).field).toBe("down_after");
    expect(err.message).toBe("down_after: must be longer than suspect_after (got 20s, suspect_after is 30s)");
    const ok = loadHubConfig(
      ["--config", "", "--listen", "127.0.0.1:0", "--mqtt", "mqtt://127.0.0.1:1883"],
      {},
    );
    if (ok.action !== "run") throw new Error("expected run");
    expect(ok.config.listen).toEqual({ host: "127.0.0.1", port: 0 });
    expect(ok.config.down_after).toBe(60_000);
  });

  test("config: resolveConfig works on any table and runs field rules after parsing", () => {
    const fields = defineFields([
      {
        key: "even",
        flag: "--even",
        env: "X_EVEN",
        kind: "int",
        default: 2,
        help: "",
        validate: (v) => (v % 2 ? "must be even" : undefined),
      },
      { key: "on", flag: "--on", env: "X_ON", kind: "bool", default: false, help: "" },
    ]);
    expect(resolveConfig({ fields, flags: { on: "true" }, env: { X_EVEN: "4" } })).toEqual({
      even: 4,
      on: true,
    });
    expect(thrown(() => resolveConfig({ fields, env: { X_EVEN: "3" } })).message).toBe(
      "even: must be even (got 3 from X_EVEN)",
    );
    expect(parseArgs(["--on"], fields).values).toEqual({ on: "true" });
  });
});

describe("config watcher", () => {
  type Change = { config: AgentConfig; changed: string[]; restart: string[] };

  function watch(file: ReturnType<typeof tempConfig>, opts: { fsWatch?: boolean } = {}) {
    const loaded = loadAgentConfig(["--config", file.path, "--node-id", "n1"], {});
    if (loaded.action !== "run") throw new Error("expected run");
    const changes = eventQueue<Change>();
    const errors = eventQueue<ConfigError>();
    const watcher = watchAgentConfig(loaded, {
      pollMs: 25,
      debounceMs: 10,
      fsWatch: opts.fsWatch ?? true,
      onChange: (config, changed, restart) => changes.push({ config, changed, restart }),
      onError: (err) => errors.push(err),
    });
    if (!watcher) throw new Error("expected a watcher");
    return { loaded, watcher, changes, errors, [Symbol.dispose]: () => watcher.stop() };
  }

  test("config: the watcher applies a valid change and reports which keys changed", async () => {
    using file = tempConfig("level: 3\nlog_level: info\n");
    using w = watch(file);
    file.write("level: 2\nlog_level: debug\nlabels: {zone: a}\n");
    const change = await w.changes.next();
    expect(change.changed).toEqual(["level", "labels", "log_level"]);
    expect(change.restart).toEqual([]);
    expect(change.config.level).toBe(2);
    expect(change.config.labels).toEqual({ zone: "a" });
    expect(w.watcher.current).toBe(change.config);
  });

  test("config: the watcher keeps the old config on an invalid change and names the bad field", async () => {
    using file = tempConfig("level: 3\n");
    using w = watch(file);
    file.write("level: 9\n");
    const err = await w.errors.next();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.field).toBe("level");
    expect(err.message).toBe(`level: must be an integer from 1 to 5 (got 9 from ${file.path})`);
    expect(w.watcher.current.level).toBe(3);
    file.write("level: 4\n");
    expect((await w.changes.next()).config.level).toBe(4);
  });

  test("config: flags still beat the file after a reload", async () => {
    using file = tempConfig("node_id: from-file\nlevel: 3\n");
    using w = watch(file);
    expect(w.watcher.current.node_id).toBe("n1");
    file.write("node_id: other\nlevel: 1\n");
    const change = await w.changes.next();
    expect(change.changed).toEqual(["level"]);
    expect(change.config.node_id).toBe("n1");
  });

  test("config: a change to a setting that is not hot waits for a restart", async () => {
    using file = tempConfig("api: 127.0.0.1:8080\nlevel: 3\n");
    using w = watch(file);
    file.write("api: 127.0.0.1:9999\nlevel: 2\n");
    const change = await w.changes.next();
    expect(change.changed).toEqual(["level"]);
    expect(change.restart).toEqual(["api"]);
    expect(change.config.api).toEqual({ host: "127.0.0.1", port: 8080 });
  });

  test("config: a change written after the file was read and before the watch began is applied (the agent starts its modules in between)", async () => {
    using file = tempConfig("level: 3\n");
    const loaded = loadAgentConfig(["--config", file.path], {});
    if (loaded.action !== "run") throw new Error("expected run");
    // Same size, so only the modification time tells them apart; the watch starts after the write.
    file.write("level: 1\n");
    const changes = eventQueue<number>();
    const watcher = watchAgentConfig(loaded, {
      pollMs: 60_000,
      debounceMs: 10,
      fsWatch: false,
      onChange: (config) => changes.push(config.level),
      onError: (err) => {
        throw err;
      },
    });
    try {
      expect(await changes.next()).toBe(1);
    } finally {
      watcher?.stop();
    }
  });

  for (const fsWatch of [true, false]) {
    test(`config: the watcher notices a file replaced by rename, as editors save (fs.watch ${fsWatch ? "on" : "off, polling only"})`, async () => {
      using file = tempConfig("level: 3\n");
      using w = watch(file, { fsWatch });
      file.replace("level: 1\n");
      const first = await w.changes.next();
      expect(first.config.level).toBe(1);
      // A second save must be seen too: a watch on the replaced file's old inode would now be deaf.
      file.replace("level: 2\n");
      expect((await w.changes.next()).config.level).toBe(2);
    });
  }

  test("config: a burst of writes reloads once, after the debounce", () => {
    using file = tempConfig("level: 3\n");
    const loaded = loadAgentConfig(["--config", file.path], {});
    if (loaded.action !== "run") throw new Error("expected run");
    const timeouts = new Map<number, () => void>();
    let poll: (() => void) | undefined;
    let nextId = 0;
    const timers: WatcherTimers = {
      setTimeout: (fn) => {
        timeouts.set(++nextId, fn);
        return nextId;
      },
      clearTimeout: (id) => timeouts.delete(id as number),
      setInterval: (fn) => {
        poll = fn;
        return 0;
      },
      clearInterval: () => {
        poll = undefined;
      },
    };
    const levels: number[] = [];
    const watcher = new ConfigWatcher({
      inputs: loaded.inputs,
      current: loaded.config,
      fsWatch: false,
      timers,
      onChange: (next) => levels.push(next.level),
      onError: (err) => {
        throw err;
      },
    });
    for (const level of [4, 1, 2]) {
      file.replace(`level: ${level}\n`);
      poll?.();
    }
    expect(timeouts.size).toBe(1);
    for (const fire of timeouts.values()) fire();
    expect(levels).toEqual([2]);
    watcher.stop();
    expect(poll).toBeUndefined();
  });
});
