// `alerts` (open, acknowledged, history) and `ack ID`.
import type { AlertView } from "../api-types.ts";
import { arg, defineCommand, intFlag } from "../command.ts";
import { age, cell, jsonText, table } from "../render.ts";

export const alertsCommand = defineCommand({
  words: ["alerts"],
  summary: "list alerts, newest first",
  args: [],
  flags: [
    {
      name: "--state",
      value: "STATE",
      help: "open, acknowledged, resolved or all (default: the hub's)",
      choices: ["open", "acknowledged", "resolved", "all"],
    },
    { name: "--node", value: "ID", help: "only alerts of this node" },
    { name: "--limit", value: "N", help: "at most this many (default: the hub's)" },
  ],
  async run(ctx, p) {
    const { alerts } = await ctx.client.get<{ alerts: AlertView[] }>("/api/v1/alerts", {
      state: p.flags["--state"],
      node: p.flags["--node"],
      limit: intFlag(p, "--limit", 1, 10_000),
    });
    if (ctx.json) return ctx.out(jsonText({ alerts }));
    const now = ctx.now();
    if (alerts.length === 0) return ctx.out("no alerts");
    ctx.out(
      table(
        ["ID", "STATE", "SEVERITY", "NODE", "RULE", "SINCE", "MESSAGE"],
        alerts.map((a) => [
          String(a.id),
          cell(a.state),
          cell(a.severity),
          cell(a.node),
          cell(a.rule ?? a.source),
          age(a.started_at ?? a.at, now),
          cell(a.message),
        ]),
      ),
    );
  },
});

export const ackCommand = defineCommand({
  words: ["ack"],
  summary: "acknowledge an alert (it stays until resolved, but no longer counts as open)",
  args: [{ name: "ID" }],
  flags: [{ name: "--comment", value: "TEXT", help: "why, for the record" }],
  async run(ctx, p) {
    const id = arg(p, "ID");
    const comment = p.flags["--comment"];
    const answer = await ctx.client.post<{ alert: AlertView & { acknowledged_by?: string | null } }>(
      `/api/v1/alerts/${encodeURIComponent(id)}/ack`,
      comment !== undefined ? { comment } : {},
    );
    if (ctx.json) return ctx.out(jsonText(answer));
    const by = answer.alert.acknowledged_by ? ` by ${answer.alert.acknowledged_by}` : "";
    ctx.out(`acknowledged alert ${answer.alert.id}${by}: ${cell(answer.alert.message)}`);
  },
});
