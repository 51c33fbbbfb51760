// Specification of the hub's rule sets: CRUD with revisions, bad bodies named, distribution to targeted nodes, real verdicts.
import { describe, expect, test } from "bun:test";
import { type Body, envelope, type Message } from "../../shared/protocol/index.ts";
import { joinNode, openHubCore } from "../support/hub-core.ts";
import { tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const AUTH = { authorization: "Bearer admin", "content-type": "application/json" };

const HOT = {
  rules: [
    {
      name: "vibration-high",
      when: "sensor.vibration_g > 5",
      for: "10s",
      actions: [{ alert: "vibration over 5 g" }],
    },
  ],
  target: { labels: { site: "plant-7" } },
};

async function call(
  core: { app: { request: (p: string, i?: RequestInit) => Response | Promise<Response> } },
  method: string,
  path: string,
  body?: unknown,
) {
  const res = await core.app.request(path, {
    method,
    headers: AUTH,
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: a JSON body checked field by field with expect()
  return { status: res.status, json: (await res.json()) as any };
}

const configs = (received: Message[]) =>
  received.filter((m) => m.t === "config").map((m) => m.b as Body<"config">);

describe("rule sets: the API", () => {
  test("PUT creates revision 1 and each PUT a new one; GET shows now or any revision; DELETE removes it but keeps revisions rising", async () => {
    using dir = tempDir();
    using core = await openHubCore(dir.path);
    const created = await call(core, "PUT", "/api/v1/rule-sets/plant", HOT);
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: "plant", rev: 1, target: HOT.target, warnings: [] });
    const changed = { ...HOT, rules: [{ ...HOT.rules[0], when: "sensor.vibration_g > 6" }] };
    const second = await call(core, "PUT", "/api/v1/rule-sets/plant", changed);
    expect(second.status).toBe(200);
    expect(second.json.rev).toBe(2);
    const now = await call(core, "GET", "/api/v1/rule-sets/plant");
    expect(now.json).toMatchObject({ name: "plant", rev: 2, revisions: [1, 2], rules: changed.rules });
    const first = await call(core, "GET", "/api/v1/rule-sets/plant?rev=1");
    expect(first.json.rules).toEqual(HOT.rules);
    const list = await call(core, "GET", "/api/v1/rule-sets");
    expect(list.json.rule_sets).toEqual([
      expect.objectContaining({ name: "plant", rev: 2, rules: 1, target: HOT.target }),
    ]);
    expect(list.json.config_rev).toBe(2);
    expect((await call(core, "DELETE", "/api/v1/rule-sets/plant")).json).toMatchObject({
      deleted: true,
      rev: 2,
    });
    expect((await call(core, "GET", "/api/v1/rule-sets/plant")).status).toBe(404);
    expect((await call(core, "DELETE", "/api/v1/rule-sets/plant")).status).toBe(404);
    // The old revisions stay, for decisions made under them.
    expect((await call(core, "GET", "/api/v1/rule-sets/plant?rev=2")).status).toBe(200);
    const again = await call(core, "PUT", "/api/v1/rule-sets/plant", HOT);
    expect(again.status).toBe(201);
    expect(again.json.rev).toBe(3);
    expect((await call(core, "GET", "/api/v1/rule-sets")).json.config_rev).toBe(4);
  });

  test("bad bodies get a 400 naming the field; retired spellings are accepted and listed", async () => {
    using dir = tempDir();
    using core = await openHubCore(dir.path);
    const bad = async (body: unknown, field: string, message: RegExp, name = "plant") => {
      const r = await call(core, "PUT", `/api/v1/rule-sets/${name}`, body);
      expect({ status: r.status, field: r.json.error?.field }).toEqual({ status: 400, field });
      expect(r.json.error.message).toMatch(message);
    };
    await bad("{not json", "body", /not valid JSON/);
    await bad([], "body", /JSON object with rules and target/);
    await bad({}, "rules", /^rules: is required/);
    await bad({ rules: "cpu.util > 80" }, "rules", /must be a list of rules/);
    await bad({ rules: [], extra: 1 }, "extra", /unknown field "extra"/);
    await bad({ rules: [], target: { levels: [5, 1] } }, "target.levels", /\[min, max\] within 1-5/);
    await bad({ rules: [], target: { labels: { site: 7 } } }, "target.labels.site", /string/);
    await bad(
      { rules: [{ name: "x", when: "cpu.util => 80", actions: [{ alert: "a" }] }] },
      "rules[0] (x).when",
      /unknown operator "=>" at column 10/,
    );
    await bad({ rules: [{ name: "x", when: "cpu.util > 80" }] }, "rules[0] (x).actions", /is required/);
    await bad({ rules: [] }, "name", /must be 1-64 letters/, "bad%20name");
    expect((await call(core, "GET", "/api/v1/rule-sets/plant?rev=x")).json.error.field).toBe("rev");
    expect((await call(core, "GET", "/api/v1/rule-sets")).json.rule_sets).toEqual([]);
    const retired = await call(core, "PUT", "/api/v1/rule-sets/plant", {
      rules: [{ name: "x", when: "cpu.util > 80 && mem.used_pct > 50", actions: [{ alert: "a" }] }],
    });
    expect(retired.status).toBe(201);
    expect(retired.json.warnings).toEqual([
      'rules[0] (x).when: "&&" at column 15 is a retired spelling; write "and"',
    ]);
    const unauth = await core.app.request("/api/v1/rule-sets");
    expect(unauth.status).toBe(401);
  });
});

describe("rule sets: distribution and verdicts", () => {
  test("a node gets the sets that target it (at once, and on its next session); others do not; a delete sends an empty set", async () => {
    using dir = tempDir();
    using core = await openHubCore(dir.path);
    const inPlant = await joinNode(core, "gw-1", { labels: { site: "plant-7" } });
    const elsewhere = await joinNode(core, "gw-2", { labels: { site: "plant-9" } });
    // A hub that never held a rule set sends no config at all (the sessions' own sends have run by now).
    await Bun.sleep(20);
    expect(configs(inPlant.received)).toEqual([]);
    const put = await call(core, "PUT", "/api/v1/rule-sets/plant", HOT);
    expect(put.json.delivered_now).toEqual(["gw-1"]);
    expect(configs(inPlant.received)).toEqual([
      { rev: 1, config: { rule_sets: [{ name: "plant", rev: 1, rules: HOT.rules }] } },
    ]);
    expect(configs(elsewhere.received)).toEqual([]);
    // A node-id target and a level range reach their nodes too; sets come sorted by name.
    await call(core, "PUT", "/api/v1/rule-sets/all-l4", { rules: [], target: { levels: [4, 4] } });
    expect(configs(elsewhere.received).at(-1)).toEqual({
      rev: 2,
      config: { rule_sets: [{ name: "all-l4", rev: 1, rules: [] }] },
    });
    expect(configs(inPlant.received).at(-1)?.config.rule_sets).toEqual([
      { name: "all-l4", rev: 1, rules: [] },
      { name: "plant", rev: 1, rules: HOT.rules },
    ]);
    // The next session of a node starts with its sets.
    const back = await joinNode(
      core,
      "gw-2",
      { labels: { site: "plant-9" } },
      { key: elsewhere.key, join: false },
    );
    await waitFor(() => configs(back.received).length > 0, { what: "the config sent at the next session" });
    expect(configs(back.received)).toEqual([
      { rev: 2, config: { rule_sets: [{ name: "all-l4", rev: 1, rules: [] }] } },
    ]);
    await call(core, "DELETE", "/api/v1/rule-sets/all-l4");
    expect(configs(back.received).at(-1)).toEqual({ rev: 3, config: { rule_sets: [] } });
    const detail = await call(core, "GET", "/api/v1/rule-sets/plant");
    expect(detail.json.targets).toEqual(["gw-1"]);
  });

  test("a decision from a distributed rule is judged by the rule at the revision the node ran: agree or disagree, never unknown, and the verdict goes back to the node", async () => {
    using dir = tempDir();
    using core = await openHubCore(dir.path);
    const node = await joinNode(core, "gw-1", { labels: { site: "plant-7" } });
    await call(core, "PUT", "/api/v1/rule-sets/plant", HOT);
    await call(core, "PUT", "/api/v1/rule-sets/plant", {
      ...HOT,
      rules: [{ ...HOT.rules[0], when: "sensor.vibration_g > 50" }],
    });
    let q = 0;
    const decide = async (body: Partial<Body<"decision_validation">>) => {
      node.send(
        envelope(
          "decision_validation",
          "gw-1",
          {
            rule: "vibration-high",
            at: 1000 + q,
            kind: "fire",
            action: "fire: alert",
            inputs: { "sensor.vibration_g": 7 },
            ...body,
          } as Body<"decision_validation">,
          { q: ++q },
        ),
      );
      await core.ingest.flush();
    };
    // Revision 1 said > 5: 7 holds there, although revision 2 says > 50.
    await decide({ id: 11, rule_set: "plant", rule_set_rev: 1, condition: "sensor.vibration_g > 5" });
    await decide({ id: 12, rule_set: "plant", rule_set_rev: 2, condition: "sensor.vibration_g > 50" });
    await decide({ id: 13, rule_set: "plant", rule_set_rev: 1, condition: "sensor.vibration_g > 1" });
    await decide({ id: 14, rule_set: "plant", rule_set_rev: 1, rule: "no-such-rule" });
    // The node's own rule, which the hub does not hold: honestly unknown.
    await decide({ id: 15, rule: "my-own-rule" });
    await Bun.sleep(0);
    const got = await call(core, "GET", "/api/v1/nodes/gw-1/decisions");
    const byId = (at: number) => got.json.decisions.find((d: { at: number }) => d.at === at);
    expect(byId(1000)).toMatchObject({ verdict: "agree", rule_set: "plant", rule_set_rev: 1 });
    expect(byId(1001)).toMatchObject({ verdict: "disagree", rule_set: "plant", rule_set_rev: 2 });
    expect(byId(1001).reason).toContain("sensor.vibration_g > 50 does not hold");
    expect(byId(1002).verdict).toBe("disagree");
    expect(byId(1002).reason).toContain('the node ran "sensor.vibration_g > 1"');
    expect(byId(1003).verdict).toBe("disagree");
    expect(byId(1004).verdict).toBe("unknown");
    // Every verdict went back to the node under the decision's id in its log.
    const sent = node.received
      .filter((m) => m.t === "command" && m.b.kind === "decision_verdicts")
      .flatMap((m) => (m.b as Body<"command">).args.verdicts as { id: number; verdict: string }[]);
    expect(sent.map((v) => [v.id, v.verdict])).toEqual([
      [11, "agree"],
      [12, "disagree"],
      [13, "disagree"],
      [14, "disagree"],
      [15, "unknown"],
    ]);
    // And again at the node's next session, in case the first send was lost with the connection.
    const back = await joinNode(
      core,
      "gw-1",
      { labels: { site: "plant-7" } },
      { key: node.key, join: false },
    );
    const resent = await waitFor(
      () => back.received.find((m) => m.t === "command" && m.b.kind === "decision_verdicts"),
      { what: "the verdicts sent again at the next session" },
    );
    expect(resent.t).toBe("command");
    expect((resent!.b as Body<"command">).args.verdicts).toHaveLength(5);
  });
});
