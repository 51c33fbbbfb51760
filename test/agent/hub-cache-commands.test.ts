// The agent's side of hub cache commands: a forged or malformed cache_put / cache_delete is refused naming the field.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { LocalCache } from "../../agent/cache/index.ts";
import { handleHubMessage } from "../../agent/link/index.ts";
import { AgentStore } from "../../agent/store/index.ts";
import { RequestError } from "../../shared/errors.ts";
import { createLogger } from "../../shared/log.ts";
import { envelope, type Message } from "../../shared/protocol/index.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { tempDir } from "../support/processes.ts";

function harness() {
  const dir = tempDir("novacron-hubcache-");
  const store = new AgentStore(join(dir.path, "data"), { bufferBytes: 1 << 20 });
  const cache = new LocalCache({ db: store.db, clock: new FakeClock(), budgetBytes: 1 << 20, policy: "lru" });
  const replies: unknown[] = [];
  const apply = (kind: string, args: Record<string, unknown>) =>
    handleHubMessage(envelope("command", "hub", { id: "c1", kind, args }) as Message, {
      tasks: undefined,
      cache,
      log: createLogger("test", { level: "error" }),
      reply: (b) => replies.push(b),
    });
  return {
    cache,
    apply,
    [Symbol.dispose]() {
      cache.stop();
      store.close();
      dir[Symbol.dispose]();
    },
  };
}

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof RequestError) return err.field;
    throw err;
  }
  throw new Error("accepted");
}

test("hub cache commands: a key over 256 bytes, a key or value that is not a string, or a bad version is refused naming the field, and nothing is stored", () => {
  using h = harness();
  expect(fieldOf(() => h.apply("cache_put", { key: "€".repeat(90), value: "x", version: 1 }))).toBe("key");
  expect(fieldOf(() => h.apply("cache_put", { key: 42, value: "x", version: 1 }))).toBe("key");
  expect(fieldOf(() => h.apply("cache_put", { key: "k", value: { a: 1 }, version: 1 }))).toBe("value");
  expect(fieldOf(() => h.apply("cache_put", { key: "k", value: "x", version: -1 }))).toBe("version");
  expect(fieldOf(() => h.apply("cache_put", { key: "k", value: "x", version: "7" }))).toBe("version");
  expect(fieldOf(() => h.apply("cache_put", { key: "k", value: "x", version: 1, ttl_ms: 2 ** 60 }))).toBe(
    "ttl_ms",
  );
  expect(fieldOf(() => h.apply("cache_delete", { key: "k" }))).toBe("version");
  expect(h.cache.stats().entries).toBe(0);
  h.apply("cache_put", { key: "k", value: "x", version: 1 });
  expect(h.cache.get("k")?.value).toBe("x");
  h.apply("cache_delete", { key: "k", version: 1 });
  expect(h.cache.get("k")).toBeUndefined();
});
