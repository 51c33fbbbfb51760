// The dashboard in a real browser (chromium) against a real hub with real agents.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { artifactDir, browserMissing, launchBrowser } from "../support/browser.ts";
import { loop, pids } from "../support/marked-procs.ts";
import { type AgentHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const missing = browserMissing();
if (missing) console.log(`dashboard tests skipped: ${missing}`);

test.skipIf(!!missing)(
  "dashboard: the overview shows every node with its tier and health, a killed agent turns suspect on the open page, a workload created through the page runs on an agent, and a placement dry run draws its explanation",
  async () => {
    using dir = tempDir();
    const shots = artifactDir("dashboard");
    await using hub = await startHub({ data: join(dir.path, "hub") });
    const agents: AgentHandle[] = [];
    const nodes: [string, number, Record<string, string>][] = [
      ["core-1", 2, { region: "eu-west", site: "ams-1" }],
      ["metro-1", 3, { region: "eu-west", site: "par-2" }],
      ["gate-1", 4, { region: "us-east", site: "nyc-7" }],
    ];
    try {
      for (const [id, level, labels] of nodes) {
        agents.push(
          await startAgent({
            data: join(dir.path, id),
            nodeId: id,
            hub: hub.wsUrl,
            joinToken: hub.joinToken,
            args: [
              "--level",
              String(level),
              ...Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]),
              "--heartbeat-interval",
              "1s",
              "--batch-interval",
              "1s",
            ],
          }),
        );
      }
      await waitFor(
        async () =>
          (await hub.api<{ nodes: { connected: boolean }[] }>("/api/v1/nodes")).body.nodes?.filter(
            (n) => n.connected,
          ).length === 3,
        { what: "three connected nodes", timeoutMs: 60_000 },
      );

      await using browser = await launchBrowser();
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const pageErrors: string[] = [];
      // Every form control on every page visited has a label a screen reader announces.
      const unlabelled: string[] = [];
      // Read in one go, as the page stands at one instant: element by element, a control the page
      // re-rendered meanwhile was read detached, and a detached control has no label.
      const checkLabels = async (where: string) => {
        const found = await page.evaluate(() => {
          const doc = (
            globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<unknown> } }
          ).document;
          return Array.from(doc.querySelectorAll("input, select, textarea"))
            .map((e) => e as { labels: { length: number } | null; outerHTML: string })
            .filter((e) => (e.labels?.length ?? 0) === 0)
            .map((e) => e.outerHTML);
        });
        for (const html of found) unlabelled.push(`${where}: ${html}`);
      };
      page.on("pageerror", (e) => pageErrors.push(e.message));
      // A browser asking for / gets the dashboard; the token goes in once, then in headers only.
      await page.goto(`${hub.url}/`);
      expect(new URL(page.url()).pathname).toBe("/ui/");
      await page.getByLabel("Operator token").fill("not-the-token");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByText("That token was not accepted").waitFor();
      // By keyboard alone: Tab to the field, type, Enter.
      await page.reload();
      await page.getByLabel("Operator token").waitFor();
      await page.keyboard.press("Tab");
      expect(
        await page.evaluate(
          () =>
            (globalThis as unknown as { document: { activeElement: { id: string } } }).document.activeElement
              .id,
        ),
      ).toBe("token");
      await page.keyboard.type(hub.adminToken);
      await page.keyboard.press("Enter");

      // The overview: every node, its tier and its health.
      for (const [id, level] of nodes) {
        const row = page.locator(`tr[data-node="${id}"]`);
        await row.locator('[data-health="ready"]').waitFor({ timeout: 60_000 });
        expect(await row.locator("[data-tier]").textContent()).toBe(String(level));
      }
      await page.locator('.live[data-live="live"]').waitFor({ timeout: 30_000 });
      await page.getByRole("button", { name: /Tier 4 · access edge/ }).waitFor();
      await page.screenshot({ path: join(shots, "overview.png"), fullPage: true });
      await checkLabels("overview");
      expect(await page.evaluate(() => sessionStorage.getItem("novacron.token"))).toBe(hub.adminToken);
      expect(page.url()).not.toContain(hub.adminToken);

      // Killing an agent turns its node suspect on the page that is open: no reload.
      await page.evaluate(() => {
        (globalThis as unknown as { stayed: boolean }).stayed = true;
      });
      await agents[2]!.proc.kill("SIGKILL");
      await page.locator('tr[data-node="gate-1"] [data-health="suspect"]').waitFor({ timeout: 60_000 });
      expect(await page.evaluate(() => (globalThis as unknown as { stayed?: boolean }).stayed)).toBe(true);
      await page.screenshot({ path: join(shots, "overview-suspect.png"), fullPage: true });

      // A workload created through the page's form runs on an agent.
      const mark = `dash-${Date.now()}`;
      await page.getByRole("link", { name: "Workloads" }).click();
      await checkLabels("workloads");
      await page.getByLabel("Name", { exact: true }).fill("web-made");
      await page.getByLabel("Command").fill("/bin/sh");
      await page.getByLabel("Replicas").fill("1");
      await page.getByRole("radio", { name: "JSON" }).check();
      const spec = {
        name: "web-made",
        driver: "exec",
        command: "/bin/sh",
        args: loop(mark),
        replicas: 1,
        nodes: ["metro-1"],
        resources: { cpu_millis: 10, mem_mb: 16 },
      };
      await page.getByLabel("Workload spec (JSON)").fill(JSON.stringify(spec));
      await page.getByRole("button", { name: "Create" }).click();
      await page.getByRole("heading", { name: "Workload web-made" }).waitFor();
      await page.locator('[data-alloc] [data-status="running"]').waitFor({ timeout: 60_000 });
      expect((await pids(mark)).length).toBe(1);
      await page.screenshot({ path: join(shots, "workload.png"), fullPage: true });

      // A placement dry run draws its explanation: score bars per node and what filtered the rest.
      await page.getByRole("link", { name: "Placement" }).click();
      await page.getByLabel(/Placement request/).fill(
        JSON.stringify({
          name: "probe",
          replicas: 1,
          resources: { cpu_millis: 10 },
          placement: { levels: [2, 3] },
        }),
      );
      await page.getByRole("button", { name: "Dry run" }).click();
      await page.locator(".score-bars li").first().waitFor();
      const candidates: { node: string | null; width: number }[] = [];
      for (const li of await page.locator(".score-bars li").all()) {
        let width = 0;
        for (const seg of await li.locator(".seg").all()) width += (await seg.boundingBox())?.width ?? 0;
        candidates.push({ node: await li.getAttribute("data-candidate"), width });
      }
      expect(candidates.map((c) => c.node).sort()).toEqual(["core-1", "metro-1"]);
      for (const c of candidates) expect(c.width).toBeGreaterThan(10);
      // gate-1 is out twice over (suspect, and at level 4): counted under the first filter.
      const filtered = page.locator(".filter-bars li");
      expect(await filtered.count()).toBeGreaterThan(0);
      expect(await filtered.first().locator(".bar").boundingBox()).not.toBeNull();
      expect(await page.locator(".filter-bars").textContent()).toContain("gate-1");
      await page.screenshot({ path: join(shots, "placement.png"), fullPage: true });
      await checkLabels("placement");
      // The node page: its history holds the reason it turned suspect; charts have their own controls.
      await page.goto(`${hub.url}/ui/#/nodes/gate-1`);
      await page.getByText("connection closed").first().waitFor();
      await checkLabels("node");
      await page.screenshot({ path: join(shots, "node-suspect.png"), fullPage: true });
      // A chart of one of a live node's series: the chart library loads on this first chart.
      await page.goto(`${hub.url}/ui/#/nodes/metro-1`);
      await page.locator("#series-name option").first().waitFor({ state: "attached", timeout: 60_000 });
      await page.getByLabel("Series", { exact: true }).selectOption("cpu.util");
      await page.getByRole("button", { name: "Draw" }).click();
      await page.locator(".chart canvas").waitFor();
      expect(await page.locator(".chart figcaption").textContent()).toMatch(/^cpu\.util: \d+ points/);
      await page.screenshot({ path: join(shots, "node-chart.png"), fullPage: true });
      await page.getByRole("link", { name: "Alerts" }).click();
      await page.getByRole("tab", { name: "History" }).waitFor();
      await checkLabels("alerts");
      await page.screenshot({ path: join(shots, "alerts.png"), fullPage: true });

      expect(pageErrors).toEqual([]);
      expect(unlabelled).toEqual([]);
    } finally {
      for (const a of agents) await a.proc.kill("SIGKILL");
    }
  },
  240_000,
);
