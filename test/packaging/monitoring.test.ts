// The shipped Prometheus rules and Grafana dashboard: checked by promtool, and every metric they use is one a live hub exports.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const DIR = resolve(import.meta.dir, "../../packaging/monitoring");
const RULES = join(DIR, "prometheus-rules.yml");
// (prometheus-rules.test.yml beside it holds promtool's unit tests of those rules.)
const DASHBOARD = join(DIR, "grafana-dashboard.json");
const promtool = Bun.which("promtool") ?? (Bun.which("/usr/bin/promtool") ? "/usr/bin/promtool" : null);
if (!promtool)
  console.warn("SKIPPING promtool checks: promtool is not installed (apt-get install prometheus)");

async function run(cmd: string[]): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return { code: await p.exited, out: out + err };
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets: { refId: string; expr: string }[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string }[] };
}

// Grafana's import placeholder for the data source chosen when the dashboard is imported.
const PROMETHEUS_INPUT = ["$", "{DS_PROMETHEUS}"].join("");

/** The metric names a PromQL expression reads (our own families; `up` is Prometheus's). */
const metricsIn = (expr: string) => [...expr.matchAll(/\bnovacron_[a-z0-9_]+/g)].map((m) => m[0]);

/** What is wrong with a dashboard's structure, or with the metrics its queries use (empty: nothing). */
function dashboardProblems(d: Dashboard, exported: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  if (typeof d.uid !== "string" || d.uid === "") problems.push("no uid");
  if (typeof d.title !== "string" || d.title === "") problems.push("no title");
  if (!Number.isInteger(d.schemaVersion) || d.schemaVersion < 30)
    problems.push("schemaVersion missing or old");
  if (!Array.isArray(d.panels) || d.panels.length === 0) return [...problems, "no panels"];
  const ids = new Set<number>();
  const cells = new Set<string>();
  const vars = new Set((d.templating?.list ?? []).map((v) => v.name));
  for (const p of d.panels) {
    const where = `panel ${p.id} (${p.title})`;
    if (ids.has(p.id)) problems.push(`${where}: duplicate id`);
    ids.add(p.id);
    if (!["timeseries", "stat", "gauge", "table", "bargauge"].includes(p.type))
      problems.push(`${where}: type ${p.type}`);
    if (p.datasource?.uid !== PROMETHEUS_INPUT)
      problems.push(`${where}: datasource is not the Prometheus input`);
    const g = p.gridPos;
    if (!g || g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1 || g.y < 0)
      problems.push(`${where}: gridPos out of the grid`);
    else
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          if (cells.has(`${x},${y}`)) problems.push(`${where}: overlaps another panel at ${x},${y}`);
          cells.add(`${x},${y}`);
        }
    if (!Array.isArray(p.targets) || p.targets.length === 0) problems.push(`${where}: no query`);
    for (const t of p.targets ?? []) {
      if (!t.refId || !t.expr) problems.push(`${where}: a target without refId or expr`);
      for (const v of t.expr.matchAll(/\$(\w+)/g))
        if (!vars.has(v[1]!)) problems.push(`${where}: unknown variable $${v[1]}`);
      const used = metricsIn(t.expr);
      if (used.length === 0) problems.push(`${where}: query ${t.refId} reads no novacron metric`);
      for (const m of used) if (!exported.has(m)) problems.push(`${where}: ${m} is not exported by the hub`);
    }
  }
  return [...new Set(problems)];
}

/** Metric family names in a Prometheus text exposition (TYPE lines and sample names). */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const typed = /^# TYPE (\S+)/.exec(line);
    if (typed) names.add(typed[1]!);
    else if (line && !line.startsWith("#")) names.add(/^[^{ ]+/.exec(line)![0]);
  }
  return names;
}

describe("monitoring files", () => {
  let dir: ReturnType<typeof tempDir>;
  let hub: HubHandle;
  let agent: AgentHandle;
  let exported: Set<string>;

  beforeAll(async () => {
    dir = tempDir();
    hub = await startHub({ data: join(dir.path, "hub") });
    agent = await startAgent({
      data: join(dir.path, "agent"),
      nodeId: "scraped",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--batch-interval", "1s"],
    });
    // The node series the dashboard charts reach /metrics once the agent's first batches are in.
    exported = await waitFor(
      async () => {
        const names = exportedNames(await (await fetch(`${hub.url}/metrics`)).text());
        return ["novacron_node_disk_used_pct", "novacron_node_cpu_util", "novacron_node_mem_used_pct"].every(
          (n) => names.has(n),
        )
          ? names
          : undefined;
      },
      { timeoutMs: 60_000, what: "the node's series in the hub's /metrics" },
    );
  }, 90_000);

  afterAll(async () => {
    await agent?.[Symbol.asyncDispose]();
    await hub?.[Symbol.asyncDispose]();
    dir?.[Symbol.dispose]();
  });

  test.skipIf(!promtool)("prometheus rules: promtool check rules finds no error", async () => {
    const r = await run([promtool!, "check", "rules", RULES]);
    expect(r.out).toContain("SUCCESS");
    expect(r.code).toBe(0);
  });

  test.skipIf(!promtool)(
    "prometheus rules: promtool's unit tests fire nodes-down, disk-full and hub-down at the minute their `for` ends, not before",
    async () => {
      const r = await run([promtool!, "test", "rules", join(DIR, "prometheus-rules.test.yml")]);
      expect(r.out).toContain("SUCCESS");
      expect(r.code).toBe(0);
    },
  );

  test("prometheus rules: every metric they read is one a live hub exports", () => {
    const text = readFileSync(RULES, "utf8");
    const used = [...new Set(metricsIn(text))];
    expect(used.length).toBeGreaterThan(5);
    expect(used.filter((m) => !exported.has(m))).toEqual([]);
  });

  test("grafana dashboard: its structure holds and every panel's query reads metrics a live hub exports", () => {
    const d = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;
    expect(dashboardProblems(d, exported)).toEqual([]);
    // The check can fail: a panel on a metric the hub does not export, or overlapping another, is named.
    const broken = structuredClone(d);
    broken.panels[0]!.targets[0]!.expr = "sum(novacron_hub_made_up_total)";
    broken.panels[1]!.gridPos = { ...d.panels[0]!.gridPos };
    const problems = dashboardProblems(broken, exported);
    expect(problems.some((p) => p.includes("novacron_hub_made_up_total is not exported"))).toBe(true);
    expect(problems.some((p) => p.includes("overlaps"))).toBe(true);
  });

  test.skipIf(!promtool)(
    "grafana dashboard: every panel's query parses as PromQL (promtool, as recording rules)",
    async () => {
      using tmp = tempDir();
      const d = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;
      const rules = d.panels.flatMap((p) =>
        p.targets.map((t) => ({
          record: `dashboard:panel_${p.id}_${t.refId}`,
          expr: t.expr.replaceAll("$instance", ".*"),
        })),
      );
      const file = join(tmp.path, "dashboard-queries.yml");
      writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboard", rules }] }));
      const r = await run([promtool!, "check", "rules", file]);
      expect(r.out).toContain(`SUCCESS: ${rules.length} rules found`);
      // And a broken query is caught the same way.
      writeFileSync(
        file,
        JSON.stringify({
          groups: [{ name: "x", rules: [{ record: "x:y", expr: "sum(rate(novacron_hub_nodes[5m]" }] }],
        }),
      );
      expect((await run([promtool!, "check", "rules", file])).code).not.toBe(0);
    },
  );
});
