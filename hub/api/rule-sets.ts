// /api/v1/rule-sets: rule sets for nodes picked by ids, level range or labels, with revisions; the hub judges decisions by them.
import { Hono } from "hono";
import * as v from "valibot";
import { NotFoundError, RequestError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import { targets } from "../cache/index.ts";
import type { Registry } from "../registry/index.ts";
import { checkRuleSetName, parseRuleSetPut, RuleSetPut, type RuleSets } from "../rule-sets/index.ts";
import { jsonBody } from "./json-body.ts";
import { describeRoute } from "./openapi.ts";

/** Routes for rule sets. */
export function ruleSetsApi(deps: { ruleSets: RuleSets; registry: Registry; log?: Logger }): Hono {
  const app = new Hono();
  const connected = (id: string) => deps.registry.isConnected(id);
  const appliedBy = async (name: string) =>
    (await deps.ruleSets.applied()).flatMap((a) =>
      a.rule_sets.filter((s) => s.name === name).map((s) => ({ node: a.node, rev: s.rev, at: a.at })),
    );

  app.get("/", describeRoute({ summary: "rule sets with their revisions and targets" }), async (c) => {
    const { rev, sets } = await deps.ruleSets.current();
    return c.json({
      config_rev: rev,
      rule_sets: sets.map((r) => ({
        name: r.name,
        rev: r.rev,
        target: r.target,
        rules: r.rules.length,
        updated: r.updated,
      })),
    });
  });

  app.get(
    "/:name",
    describeRoute({
      summary: "one rule set (or one revision), the nodes it targets and what they run",
      query: v.object({ rev: v.optional(v.string()) }),
    }),
    async (c) => {
      const name = c.req.param("name");
      checkRuleSetName(name);
      const revText = c.req.query("rev");
      const rev = revText === undefined ? undefined : Number(revText);
      if (rev !== undefined && (!Number.isInteger(rev) || rev < 1)) {
        throw new RequestError("rev must be a revision number (1, 2, ...)", "rev");
      }
      const record = await deps.ruleSets.get(name, rev);
      if (!record) {
        throw new NotFoundError(
          rev === undefined ? `no rule set named ${name}` : `no revision ${rev} of rule set ${name}`,
        );
      }
      const fleet = deps.registry.list();
      return c.json({
        ...record,
        revisions: await deps.ruleSets.revisions(name),
        // The nodes it is for now (for the current revision), and what each node last reported it runs.
        targets: rev === undefined ? fleet.filter((n) => targets(record.target, n)).map((n) => n.id) : [],
        applied: await appliedBy(name),
      });
    },
  );

  app.put(
    "/:name",
    describeRoute({ summary: "create or change a rule set (a new revision)", body: RuleSetPut }),
    async (c) => {
      const name = c.req.param("name");
      checkRuleSetName(name);
      const body = parseRuleSetPut(await jsonBody(c));
      const { record, created, delivered } = await deps.ruleSets.put(
        name,
        body,
        deps.registry.list(),
        connected,
      );
      for (const w of body.warnings) deps.log?.warn(`retired expression spelling: rule set ${name}: ${w}`);
      deps.log?.info("rule set stored", { name, rev: record.rev, delivered_now: delivered.length });
      return c.json({ ...record, warnings: body.warnings, delivered_now: delivered }, created ? 201 : 200);
    },
  );

  app.delete("/:name", describeRoute({ summary: "delete a rule set (nodes drop it)" }), async (c) => {
    const name = c.req.param("name");
    checkRuleSetName(name);
    const { rev, delivered } = await deps.ruleSets.remove(name, deps.registry.list(), connected);
    deps.log?.info("rule set deleted", { name, rev });
    return c.json({ name, deleted: true, rev, delivered_now: delivered });
  });
  return app;
}
