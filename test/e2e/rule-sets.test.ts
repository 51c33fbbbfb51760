// End to end: the hub distributes a custom rule; it fires offline on the agent (even after a restart with no hub), and its decision gets a real verdict.
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

interface DecisionJson {
  id: number;
  rule: string;
  kind: string;
  validated: boolean;
  rule_set: string | null;
  rule_set_rev: number | null;
  verdict: string | null;
}

test("a rule set from the hub overrides the local rule of its name, survives an agent restart with no hub, fires offline, and its decisions get agree from the hub after reconnect (validated only then)", async () => {
  using dir = tempDir();
  const hubData = join(dir.path, "hub");
  const first = await startHub({ data: hubData });
  const config = join(dir.path, "agent.yaml");
  // The local rule of the same name never fires (and uses a retired spelling, warned about once).
  writeFileSync(
    config,
    `batch_interval: 1s
heartbeat_interval: 1s
rules:
  - name: offline-hot
    when: "mem.used_pct < 0 && state.connected == 0"
    actions: [{alert: "the local version"}]
`,
  );
  await using agent = await startAgent({
    data: join(dir.path, "agent"),
    nodeId: "gw-17",
    hub: first.wsUrl,
    joinToken: first.joinToken,
    args: ["--config", config, "--label", "site=plant-7"],
  });
  const warnings = agent.proc.lines.filter((l) => l.includes("retired expression spelling"));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(
    /\(offline-hot\)\.when: \\?"&&\\?" at column 18 is a retired spelling; write \\?"and/,
  );
  expect(warnings[0]).toContain(config);

  const put = await first.api<{ rev: number }>("/api/v1/rule-sets/plant", {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      target: { labels: { site: "plant-7" } },
      rules: [
        {
          name: "offline-hot",
          when: "mem.used_pct >= 0 and state.connected == 0",
          for: "1s",
          actions: [{ alert: "memory in use while offline" }],
        },
      ],
    }),
  });
  expect(put).toMatchObject({ status: 201, body: { rev: 1 } });
  const running = async () => (await agent.status()).rules as { rule_sets: { name: string; rev: number }[] };
  await waitFor(async () => (await running()).rule_sets[0]?.rev === 1, { what: "the agent to run plant@1" });
  // The hub learns what the node runs.
  await waitFor(
    async () => {
      const r = await first.api<{ applied: { node: string; rev: number }[] }>("/api/v1/rule-sets/plant");
      return r.body.applied.some((a) => a.node === "gw-17" && a.rev === 1);
    },
    { what: "the hub to hear that gw-17 runs plant@1" },
  );

  // The hub goes away, and the agent restarts with no hub: the distributed set comes back from its store.
  await first.proc.kill("SIGTERM");
  await agent.restart();
  expect((await running()).rule_sets).toEqual([{ name: "plant", rev: 1 }]);
  const decisions = async () =>
    ((await (await fetch(`${agent.apiUrl}/v1/decisions`)).json()) as { decisions: DecisionJson[] }).decisions;
  const fired = await waitFor(
    async () => (await decisions()).find((d) => d.rule === "offline-hot" && d.kind === "fire"),
    { what: "the hub's rule to fire offline" },
  );
  expect(fired).toMatchObject({ rule_set: "plant", rule_set_rev: 1, validated: false, verdict: null });
  const alertsOffline = agent.proc.lines.filter((l) => l.includes("rule fired"));
  expect(alertsOffline.length).toBeGreaterThan(0);
  // Still no verdict while the hub is down.
  await Bun.sleep(1500);
  expect((await decisions()).every((d) => !d.validated)).toBe(true);

  // The hub is back: the decision is judged by the rule it distributed, and the verdict reaches the agent.
  await using hub = await startHub({ data: hubData, port: first.port });
  const judged = await waitFor(
    async () => {
      const d = (await decisions()).find((x) => x.id === fired.id);
      return d?.validated ? d : undefined;
    },
    { what: "the verdict to come back to the agent", timeoutMs: 30_000 },
  );
  expect(judged).toMatchObject({ validated: true, verdict: "agree" });
  const atHub = await hub.api<{
    decisions: { rule: string; kind: string; verdict: string; rule_set: string }[];
  }>("/api/v1/nodes/gw-17/decisions");
  const ours = atHub.body.decisions.filter((d) => d.rule === "offline-hot");
  expect(ours.find((d) => d.kind === "fire")).toMatchObject({ verdict: "agree", rule_set: "plant" });
  expect(ours.filter((d) => d.verdict === "unknown")).toEqual([]);
}, 120_000);
