// End to end: offline rules on a real agent pause its tasks, raise alerts, and report decisions the hub checks.
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

interface TaskJson {
  alloc: string;
  status: string;
  paused: boolean;
}

test("a rule fires after its duration: it pauses low-priority tasks, raises an alert at the hub, and its decision is logged and checked; a reload clears it; a bad rule file is refused", async () => {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  const config = join(dir.path, "agent.yaml");
  const rules = (when: string) =>
    `rules:\n  - name: memory-watch\n    when: "${when}"\n    for: 1s\n    severity: warning\n    actions: [{alert: "memory is being used"}, {pause_tasks_below: 5}]\n    clear_actions: [{resume_tasks: true}]\n`;
  writeFileSync(config, `batch_interval: 1s\nheartbeat_interval: 1s\n${rules("mem.used_pct >= 0")}`);
  await using agent = await startAgent({
    data: join(dir.path, "agent"),
    nodeId: "ruled",
    hub: hub.wsUrl,
    joinToken: hub.joinToken,
    args: ["--config", config],
  });
  await hub.api("/api/v1/workloads", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      name: "low",
      driver: "exec",
      command: "/bin/sleep",
      args: ["600"],
      priority: 3,
      nodes: ["ruled"],
    }),
  });
  const tasks = async () =>
    ((await (await fetch(`${agent.apiUrl}/v1/tasks`)).json()) as { tasks: TaskJson[] }).tasks;
  await waitFor(async () => (await tasks())[0]?.paused === true, {
    what: "the low-priority task to be paused by the rule",
  });
  const local = (await (await fetch(`${agent.apiUrl}/v1/decisions`)).json()) as {
    decisions: { rule: string; kind: string }[];
  };
  expect(local.decisions.some((d) => d.rule === "memory-watch" && d.kind === "fire")).toBe(true);
  await waitFor(
    async () => {
      const a = await hub.api<{ alerts: { node: string; state: string; message: string }[] }>(
        "/api/v1/alerts",
      );
      return a.body.alerts.some(
        (x) => x.node === "ruled" && x.state === "raised" && x.message === "memory is being used",
      );
    },
    { what: "the alert at the hub" },
  );
  const checked = await waitFor(
    async () => {
      const d = await hub.api<{ decisions: { rule: string; verdict: string; reason: string }[] }>(
        "/api/v1/nodes/ruled/decisions",
      );
      return d.body.decisions.find((x) => x.rule === "memory-watch");
    },
    { what: "the decision at the hub" },
  );
  // The hub's policy has no rule of that name: it says so rather than guessing.
  expect(checked.verdict).toBe("unknown");

  // A bad rule file: refused, naming the rule and the field; the running rules stay.
  const mark = agent.proc.lines.length;
  writeFileSync(config, `batch_interval: 1s\nheartbeat_interval: 1s\n${rules("mem.used_pct => 0")}`);
  const refused = await agent.proc.waitForLine(/configuration refused/, 10_000, mark);
  expect(refused.input).toContain("memory-watch");
  expect(refused.input).toContain("when");
  expect((await tasks())[0]?.paused).toBe(true);

  // A changed condition: the firing rule is cleared by the reload, and the task resumes.
  writeFileSync(config, `batch_interval: 1s\nheartbeat_interval: 1s\n${rules("mem.used_pct < 0")}`);
  await waitFor(async () => (await tasks())[0]?.paused === false, {
    what: "the task resumed after the reload",
  });
  await waitFor(
    async () => {
      const a = await hub.api<{ alerts: { state: string }[] }>("/api/v1/alerts");
      return a.body.alerts.some((x) => x.state === "cleared");
    },
    { what: "the alert cleared at the hub" },
  );
}, 60_000);
