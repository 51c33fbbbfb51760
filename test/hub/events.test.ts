// Specification of alerts and offline decisions at the hub: stored once from reliable messages, listed by the API.
import { expect, test } from "bun:test";
import { encodeFrame, envelope } from "../../shared/protocol/index.ts";
import { joinNode, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";

test("alerts and decisions from a node are stored exactly once and listed; the hub's policy check gives each decision a verdict", async () => {
  using dir = tempDir();
  using core = await openHubCore(dir.path, {
    checkDecision: (_node, d) =>
      Number(d.inputs["cpu.util"]) > 80
        ? { verdict: "agree", reason: "cpu.util > 80 holds for the inputs" }
        : { verdict: "disagree", reason: "cpu.util > 80 does not hold for the inputs" },
  });
  {
    const { peer } = await joinNode(core, "n1");
    const send = async (q: number, f: Uint8Array) => {
      core.gateway.onFrame(peer, f);
      await core.ingest.flush();
      return q;
    };
    const alert = envelope(
      "event",
      "n1",
      {
        kind: "alert",
        at: 1000,
        message: "CPU above 80%",
        fields: { severity: "warning", source: "rule:cpu-hot" },
      },
      { q: 1 },
    );
    await send(1, encodeFrame(alert));
    await send(1, encodeFrame(alert)); // a resend: must not be stored twice
    await send(
      2,
      encodeFrame(
        envelope(
          "decision_validation",
          "n1",
          {
            rule: "cpu-hot",
            at: 1000,
            kind: "fire",
            action: "pause_tasks_below:5",
            inputs: { "cpu.util": 91 },
          },
          { q: 2 },
        ),
      ),
    );
    await send(
      3,
      encodeFrame(
        envelope(
          "decision_validation",
          "n1",
          {
            rule: "cpu-hot",
            at: 2000,
            kind: "fire",
            action: "pause_tasks_below:5",
            inputs: { "cpu.util": 42 },
          },
          { q: 3 },
        ),
      ),
    );
    await send(
      4,
      encodeFrame(
        envelope(
          "event",
          "n1",
          {
            kind: "alert_clear",
            at: 5000,
            message: "CPU back under 70%",
            fields: { severity: "warning", source: "rule:cpu-hot" },
          },
          { q: 4 },
        ),
      ),
    );
    const get = async (path: string) =>
      (await core.app.request(path, { headers: { authorization: "Bearer admin" } })).json();
    const alerts = (await get("/api/v1/alerts")) as {
      alerts: { state: string; severity: string; message: string }[];
    };
    expect(alerts.alerts.map((a) => [a.state, a.severity, a.message])).toEqual([
      ["cleared", "warning", "CPU back under 70%"],
      ["raised", "warning", "CPU above 80%"],
    ]);
    const decisions = (await get("/api/v1/nodes/n1/decisions")) as {
      decisions: { verdict: string; at: number }[];
    };
    expect(decisions.decisions.map((d) => [d.at, d.verdict])).toEqual([
      [2000, "disagree"],
      [1000, "agree"],
    ]);
    expect(
      (await core.app.request("/api/v1/alerts?limit=0", { headers: { authorization: "Bearer admin" } }))
        .status,
    ).toBe(400);
  }
});
