// Specification of the store's size settings: store_bytes and disk_reserve, and old configs without them.
import { expect, test } from "bun:test";
import { loadAgentConfig } from "../../agent/config/index.ts";
import { ConfigError } from "../../shared/errors.ts";

function load(argv: string[], env: Record<string, string> = {}) {
  const loaded = loadAgentConfig(["--config=", ...argv], env);
  if (loaded.action !== "run") throw new Error(`unexpected action ${loaded.action}`);
  return loaded.config;
}

test("config: a config without store_bytes or disk_reserve stays valid (auto bound, 32 MiB reserve)", () => {
  const c = load(["--buffer-bytes", "1MB"]);
  expect(c.buffer_bytes).toBe(1_000_000);
  expect(c.store_bytes).toBe(0);
  expect(c.disk_reserve).toBe(32 * 1024 * 1024);
});

test("config: store_bytes and disk_reserve from flags and the environment", () => {
  const c = load(["--store-bytes", "8MiB"], { NOVACRON_DISK_RESERVE: "64KiB" });
  expect(c.store_bytes).toBe(8 * 1024 * 1024);
  expect(c.disk_reserve).toBe(64 * 1024);
});

test("config: a store_bytes too small to hold the WAL, -shm and ballast is refused, naming the field", () => {
  let err: unknown;
  try {
    load(["--store-bytes", "100KB"]);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as ConfigError).field).toBe("store_bytes");
  expect((err as Error).message).toContain("512KiB");
});
