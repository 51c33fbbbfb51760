// The parent's checks of child hubs' reports, and the summary's bounds, as pure code.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadHubConfig } from "../../hub/config/index.ts";
import type { SummaryBody } from "../../shared/protocol/index.ts";
import { SUMMARY_LIMITS } from "../../shared/protocol/index.ts";
import { Children, placeSubtree, subtreeHubs, summarize } from "../../hub/federation/index.ts";
import { decodeRoster, encodeRoster } from "../../hub/federation/roster.ts";
import { tempDir } from "../support/processes.ts";

const summary = (
  child: string,
  rev: number,
  roster?: string[],
  extra: Partial<SummaryBody> = {},
): SummaryBody => ({
  rev,
  hubs: [{ id: child, level: 3, connected: true, age_ms: 0 }],
  groups: [],
  workloads: [],
  nodes: roster?.length ?? 0,
  ...(roster ? { roster_z: encodeRoster(roster) } : {}),
  ...extra,
});

function setup(connected = new Set(["a", "b"]), local = new Set(["here"])) {
  let now = 1_000_000;
  const refused: string[] = [];
  const children = new Children({
    hubId: "top",
    now: () => now,
    isLocal: (id) => local.has(id),
    isConnected: (c) => connected.has(c),
    changeRate: 100,
    changeBurst: 200,
    onRefused: (child, reason, n) => refused.push(`${child}:${reason}:${n}`),
  });
  return { children, refused, advance: (ms: number) => (now += ms), connected };
}

const change = (node: string, hub: string, to: "ready" | "down" | null = "ready") => ({
  node,
  hub,
  level: 4,
  region: "eu",
  site: "s1",
  from: null,
  to,
  at: 0,
});

describe("federation: a parent's checks of its child hubs", () => {
  test("the first child to claim a node keeps it while connected; a sibling's claim is refused and counted", () => {
    const { children, refused } = setup();
    children.onSession("a");
    children.onSession("b");
    expect(children.takeSummary("a", summary("a", 1, ["n1", "n2"])).accepted).toBe(1);
    const t = children.takeSummary("b", summary("b", 1, ["n2", "n3", "here"]));
    expect(t.refused).toBe(2);
    expect(children.ownerOf("n2")).toBe("a");
    expect(children.ownerOf("n3")).toBe("b");
    expect(children.ownerOf("here")).toBeUndefined();
    expect(refused).toEqual(["b:claim_conflict:2"]);
    // A change that claims a sibling's node is refused too; the rest of the batch is taken.
    const c = children.takeTopology("b", { rev: 2, changes: [change("n1", "b"), change("n4", "b")] });
    expect(c.accepted).toBe(1);
    expect(children.ownerOf("n1")).toBe("a");
    expect(children.ownerOf("n4")).toBe("b");
  });

  test("a node whose child is cut off may be claimed by a sibling (an agent failed over to its fallback hub)", () => {
    const { children, connected } = setup();
    children.takeSummary("a", summary("a", 1, ["n1"]));
    children.takeSummary("b", summary("b", 1, []));
    connected.delete("a");
    expect(children.takeTopology("b", { rev: 2, changes: [change("n1", "b")] }).accepted).toBe(1);
    expect(children.ownerOf("n1")).toBe("b");
  });

  test("a summary that lists a sibling's hub, or hubs not hanging below the child, is refused whole", () => {
    const { children } = setup();
    children.takeSummary(
      "a",
      summary("a", 1, ["n1"], { hubs: [{ id: "a", level: 3, connected: true, age_ms: 0 }] }),
    );
    const stolen = summary("b", 1, ["x"], {
      hubs: [
        { id: "b", level: 3, connected: true, age_ms: 0 },
        { id: "a", parent: "b", level: 4, connected: true, age_ms: 0 },
      ],
    });
    expect(children.takeSummary("b", stolen).accepted).toBe(0);
    const orphan = summary("b", 2, [], {
      hubs: [
        { id: "b", level: 3, connected: true, age_ms: 0 },
        { id: "c", parent: "nowhere", level: 4, connected: true, age_ms: 0 },
      ],
    });
    expect(children.takeSummary("b", orphan).accepted).toBe(0);
    const foreignGroup = summary("b", 3, [], {
      groups: [
        {
          hub: "zz",
          level: 4,
          region: "",
          site: "",
          ready: 1,
          suspect: 0,
          down: 0,
          draining: 0,
          cpu_free: 0,
          mem_free: 0,
        },
      ],
    });
    expect(children.takeSummary("b", foreignGroup).accepted).toBe(0);
    expect(Object.fromEntries(children.get("b")!.refused)).toEqual({
      claim_conflict: 1,
      bad_summary: 1,
      unknown_hub: 1,
    });
    expect(children.ownerOf("x")).toBeUndefined();
  });

  test("a flood of changes past the burst is refused whole, asks for a resync, and the budget refills with time", () => {
    const { children, advance } = setup();
    children.takeSummary("a", summary("a", 1, []));
    const batch = (rev: number, n: number) => ({
      rev,
      changes: Array.from({ length: n }, (_, i) => change(`f${rev}-${i}`, "a")),
    });
    expect(children.takeTopology("a", batch(2, 150)).accepted).toBe(150);
    const flood = children.takeTopology("a", batch(3, 150));
    expect(flood).toMatchObject({ accepted: 0, refused: 150, resync: true });
    advance(2000);
    expect(children.takeTopology("a", batch(4, 150)).accepted).toBe(150);
    expect(children.get("a")!.refused.get("rate_limited")).toBe(150);
  });

  test("changes move the held counts at once, and a stale batch is refused", () => {
    const { children } = setup();
    children.takeSummary("a", summary("a", 1, []));
    children.takeTopology("a", { rev: 2, changes: [change("n1", "a"), change("n2", "a")] });
    children.takeTopology("a", {
      rev: 3,
      changes: [{ ...change("n1", "a", "down"), from: "ready" as const }],
    });
    const g = children.get("a")!.summary!.groups[0]!;
    expect([g.ready, g.down]).toEqual([1, 1]);
    expect(children.takeTopology("a", { rev: 3, changes: [change("n9", "a")] }).accepted).toBe(0);
  });
});

describe("federation: summaries and rosters are bounded", () => {
  test("a summary stays within the protocol's limits however many hubs and groups the tree holds", () => {
    const child = (i: number) => ({
      id: `c${i}`,
      level: 3,
      connected: true,
      ageMs: 10,
      summary: {
        rev: 1,
        hubs: [{ id: `c${i}`, level: 3, connected: true, age_ms: 0 }],
        groups: Array.from({ length: 100 }, (_, g) => ({
          hub: `c${i}`,
          level: 4,
          region: "eu",
          site: `s${g}`,
          ready: g,
          suspect: 0,
          down: 0,
          draining: 0,
          cpu_free: 0,
          mem_free: 0,
        })),
        workloads: [],
        nodes: 4950,
      },
    });
    const s = summarize({
      hubId: "top",
      level: 2,
      nodes: [],
      workloads: [],
      children: Array.from({ length: 300 }, (_, i) => child(i)),
    });
    expect(s.hubs.length).toBe(SUMMARY_LIMITS.hubs);
    expect(s.groups.length).toBe(SUMMARY_LIMITS.groups);
    // The largest groups are the ones kept.
    expect(Math.min(...s.groups.map((g) => g.ready))).toBeGreaterThan(50);
    expect(s.nodes).toBe(300 * 4950);
  });

  test("a roster round-trips, and a bomb or a string that is no node id is refused", () => {
    expect(decodeRoster(encodeRoster(["a", "b-1", "c.2"]))).toEqual(["a", "b-1", "c.2"]);
    expect(() =>
      decodeRoster(new Uint8Array(Bun.zstdCompressSync(new Uint8Array(64 << 20).fill(97)))),
    ).toThrow(/over the limit|decompress/);
    expect(() => decodeRoster(encodeRoster(["ok", "not an id"]))).toThrow(/not a node id/);
  });
});

describe("federation: two-level placement, the parent's half", () => {
  const group = (hub: string, level: number, region: string, ready: number, cpu: number) => ({
    hub,
    level,
    region,
    site: "s",
    ready,
    suspect: 0,
    down: 1,
    draining: 0,
    cpu_free: cpu,
    mem_free: cpu,
  });
  const tree: SummaryBody = {
    rev: 1,
    hubs: [
      { id: "regional", level: 2, connected: true, age_ms: 0 },
      { id: "metro-a", parent: "regional", level: 3, connected: true, age_ms: 5 },
      { id: "metro-b", parent: "regional", level: 3, connected: true, age_ms: 5 },
      { id: "metro-c", parent: "regional", level: 3, connected: false, age_ms: 90_000 },
      { id: "metro-d", parent: "regional", level: 3, connected: true, age_ms: 5 },
    ],
    groups: [
      group("metro-a", 4, "eu", 3, 3000),
      group("metro-b", 4, "us", 5, 9000),
      group("metro-c", 4, "eu", 9, 9000),
      group("metro-d", 4, "eu", 1, 100),
      group("regional", 2, "eu", 2, 9000),
    ],
    workloads: [],
    nodes: 30,
  };
  const req = (placement: Record<string, unknown>) => ({
    replicas: 3,
    resources: { cpu_millis: 500, mem_mb: 256 },
    placement,
  });

  test("filters by link, level, region and free capacity, each hub under the first filter that removed it, and routes the choice", () => {
    const plan = placeSubtree(subtreeHubs("regional", true, tree), req({ levels: [4, 4], regions: ["eu"] }));
    expect(plan.chosen).toMatchObject({ hub: "metro-a", route: ["regional", "metro-a"], ready: 3 });
    expect(plan.filtered).toEqual([
      { hub: "regional", filter: "level", detail: "no ready node at levels 4-4" },
      { hub: "metro-b", filter: "region", detail: "no ready node in eu" },
      { hub: "metro-c", filter: "health", detail: "link to it is down" },
      { hub: "metro-d", filter: "resources", detail: "free 100 millicores / 100 MiB, needs 1500 / 768" },
    ]);
    // A region as a label selector means the same.
    expect(
      placeSubtree(subtreeHubs("regional", true, tree), req({ labels: { region: "us" } })).chosen?.hub,
    ).toBe("metro-b");
    // The whole subtree below a cut child is out.
    expect(placeSubtree(subtreeHubs("regional", false, tree), req({})).chosen).toBeUndefined();
  });

  test("the score has its parts: more room left and more of the nodes ready ranks higher", () => {
    const plan = placeSubtree(subtreeHubs("regional", true, tree), req({ levels: [4, 4] }));
    expect(plan.candidates.map((c) => c.hub)).toEqual(["metro-b", "metro-a"]);
    const [b, a] = plan.candidates;
    expect(b!.parts.resources).toBeGreaterThan(a!.parts.resources);
    const expected = 100 * (0.5 * b!.parts.resources + 0.3 * b!.parts.availability + 0.2 * b!.parts.level);
    expect(b!.score).toBeCloseTo(expected, 1);
  });
});

describe("federation: a hub's parent in its config", () => {
  const run = (argv: string[], env: Record<string, string> = {}) => {
    const r = loadHubConfig(["--config", "", ...argv], env);
    if (r.action !== "run") throw new Error("expected run");
    return r.config;
  };

  test("--parent, --parent-join-token and --level come from flags, NOVACRON_* variables or the file", () => {
    expect(run([])).toMatchObject({ parent: [], parent_join_token: "", level: 1 });
    const flags = run(["--parent", "ws://a:8091,wss://b:8091", "--parent-join-token", "t1", "--level", "3"]);
    expect(flags).toMatchObject({
      parent: ["ws://a:8091", "wss://b:8091"],
      parent_join_token: "t1",
      level: 3,
    });
    const env = run([], {
      NOVACRON_PARENT: "mqtt://broker:1883",
      NOVACRON_PARENT_JOIN_TOKEN: "t2",
      NOVACRON_LEVEL: "2",
    });
    expect(env).toMatchObject({ parent: ["mqtt://broker:1883"], parent_join_token: "t2", level: 2 });
    using dir = tempDir();
    const file = join(dir.path, "hub.yaml");
    writeFileSync(file, "parent: [ws://regional:8091]\nparent_join_token: t3\nlevel: 3\n");
    const r = loadHubConfig(["--config", file], {});
    if (r.action !== "run") throw new Error("expected run");
    expect(r.config).toMatchObject({ parent: ["ws://regional:8091"], parent_join_token: "t3", level: 3 });
  });

  test("a bad parent URL or level is refused with the field's name", () => {
    const bad = (argv: string[]) => {
      try {
        run(argv);
      } catch (err) {
        return err as Error;
      }
      throw new Error("expected an error");
    };
    expect(bad(["--parent", "http://a:8091"]).message).toMatch(/^parent: /);
    expect(bad(["--level", "9"]).message).toMatch(/^level: /);
  });
});
