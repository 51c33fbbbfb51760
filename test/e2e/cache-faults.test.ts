// Every strategy through a hub kill and an agent kill -9 in the middle of the traffic (real hub, real agent).
import { expect, test } from "bun:test";
import { join } from "node:path";
import { figures, get, node, put } from "../support/cache-nodes.ts";
import { startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

test("through a hub kill and an agent kill -9 mid-traffic, each strategy keeps its promise: cache-aside and write-behind writes that were answered survive, write-behind's reach the hub once each, every confirmed write-through write is at the hub, read-through serves its copies without the origin, strong never answers an unflagged stale value", async () => {
  using dir = tempDir();
  let originHits = 0;
  const origin = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      originHits++;
      return new Response(`ref ${new URL(req.url).pathname.slice(1)}`);
    },
  });
  try {
    await using hub = await startHub({ data: join(dir.path, "hub") });
    await using a = await node(hub, dir.path, "a", {
      aside: { strategy: "cache-aside", replicate: "none" },
      behind: { strategy: "write-behind", replicate: "site" },
      through: { strategy: "write-through", replicate: "site", ack_timeout_ms: 3000 },
      strong: { consistency: "strong", replicate: "site", offline: "error" },
      ref: { strategy: "read-through", origin: `http://127.0.0.1:${origin.port}/`, replicate: "none" },
    });
    // Answered writes, by cache: key → last value answered 200 (write-through/strong: confirmed).
    const answered: Record<string, Map<string, string>> = {
      aside: new Map(),
      behind: new Map(),
      through: new Map(),
      strong: new Map(),
    };
    let behindAnswered = 0;
    let strongUnflaggedWhileDown = 0;
    let strongRefusedWhileDown = 0;
    let hubDown = false;
    let stop = false;
    let i = 0;
    const traffic = (async () => {
      while (!stop) {
        const n = i++;
        const key = `k${n % 20}`;
        for (const cache of Object.keys(answered)) {
          try {
            const r = await put(a, cache, key, `${cache}-${n}`);
            if (r.status === 200) {
              answered[cache]!.set(key, `${cache}-${n}`);
              if (cache === "behind") behindAnswered++;
            }
          } catch {
            // the agent is down (kill -9): this write was never answered
          }
        }
        try {
          // Counted only for reads that began once the hub process had exited: nothing can answer them.
          const down = hubDown;
          const s = await get(a, "strong", key);
          if (down && s.status === 200 && !s.stale) strongUnflaggedWhileDown++;
          if (down && s.status === 503) strongRefusedWhileDown++;
          await get(a, "ref", `doc${n % 5}`);
        } catch {}
        await Bun.sleep(2);
      }
    })();
    await waitFor(() => i > 30, { what: "traffic" });
    await hub.proc.kill("SIGKILL");
    hubDown = true;
    await waitFor(async () => !(await a.status()).connected, { what: "a to see the hub gone" });
    const atKill = i;
    await waitFor(() => i > atKill + 30, { what: "traffic while the hub is down" });
    hubDown = false;
    await hub.restart();
    await waitFor(async () => (await a.status()).connected, { what: "a reconnected" });
    const atRestart = i;
    await waitFor(() => i > atRestart + 30, { what: "traffic after the hub came back" });
    await a.proc.kill("SIGKILL");
    await Bun.sleep(200);
    await a.restart();
    await waitFor(async () => (await a.status()).connected, { what: "a back after kill -9" });
    const atAgent = i;
    await waitFor(() => i > atAgent + 30, { what: "traffic after the agent came back" });
    stop = true;
    await traffic;

    expect(strongUnflaggedWhileDown).toBe(0);
    expect(strongRefusedWhileDown).toBeGreaterThan(0);
    // cache-aside and write-behind: every answered write is on the node, the last one per key.
    for (const cache of ["aside", "behind"])
      for (const [key, value] of answered[cache]!) expect((await get(a, cache, key)).value).toBe(value);
    // write-behind: each answered write reached the hub once (an unanswered one, cut by the kill, may
    // or may not have been stored before it: at most one per kill).
    await waitFor(async () => ((await a.status()).caches as { queue: { depth: number } }).queue.depth === 0, {
      what: "the queue drained",
    });
    const behind = (await figures(hub, "behind"))!;
    expect(behind.writes).toBeGreaterThanOrEqual(behindAnswered);
    expect(behind.writes).toBeLessThanOrEqual(behindAnswered + 1);
    expect(behind).toMatchObject({ repeated: 0, out_of_order: 0 });
    // write-through and strong: every confirmed write is at the hub (it or a later write of the key).
    for (const cache of ["through", "strong"]) {
      for (const [key, value] of answered[cache]!) {
        const at = await hub.api<{ entries: { value: string }[] }>(`/api/v1/caches/${cache}/entries/${key}`);
        const n = (v: string) => Number(v.split("-")[1]);
        expect(n(at.body.entries[0]!.value)).toBeGreaterThanOrEqual(n(value));
      }
    }
    // read-through: its copies survived the kill -9; reading them again costs the origin nothing.
    const before = originHits;
    for (let d = 0; d < 5; d++) expect((await get(a, "ref", `doc${d}`)).value).toBe(`ref doc${d}`);
    expect(originHits).toBe(before);
  } finally {
    origin.stop(true);
  }
}, 180_000);
