// A named cache on a full disk: writes are refused with 507 and nothing half-stored; reads go on; writes resume with room.
import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { mountTmpfs } from "../support/tmpfs.ts";
import { waitFor } from "../support/wait.ts";

const MiB = 1024 * 1024;

test("disk full: a write-behind write is refused with 507 disk_full, never a crash, and an answered write is never lost; reads go on, and writes resume when room returns", async () => {
  using fs = mountTmpfs(6 * MiB);
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  await using a = await startAgent({
    data: join(fs.path, "agent"),
    nodeId: "a",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: [
      "--caches",
      JSON.stringify({ q: { strategy: "write-behind", replicate: "site" } }),
      "--store-bytes",
      "3MiB",
      "--disk-reserve",
      "64KiB",
    ],
  });
  await waitFor(async () => (await a.status()).connected, { what: "connected" });
  const put = (k: string) => fetch(`${a.apiUrl}/v1/caches/q/${k}`, { method: "PUT", body: "x".repeat(200) });
  expect((await put("before")).status).toBe(200);
  fs.fill("other-program");
  let answered = 1;
  const statuses = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const r = await put(`k${i}`);
    statuses.add(r.status);
    if (r.status === 200) answered++;
    else {
      expect(r.status).toBe(507);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("disk_full");
    }
  }
  expect(statuses.has(507)).toBe(true);
  expect(a.proc.running).toBe(true);
  expect((await fetch(`${a.apiUrl}/v1/caches/q/before`)).status).toBe(200);
  rmSync(join(fs.path, "other-program"));
  await waitFor(async () => (await put("after")).status === 200, {
    timeoutMs: 60_000,
    what: "writes to resume",
  });
  answered++;
  // Every answered write reached the hub once; none of the refused ones did.
  await waitFor(
    async () => {
      const r = await hub.api<{ caches: { name: string; writes: number }[] }>("/api/v1/caches");
      return r.body.caches.find((c) => c.name === "q")?.writes === answered;
    },
    { timeoutMs: 60_000, what: `${answered} writes at the hub` },
  );
}, 150_000);
