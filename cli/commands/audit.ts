// `audit` (who changed what, when) and `audit verify` (the hash chain is whole).
import type { AuditEntry, AuditVerify } from "../api-types.ts";
import { defineCommand, intFlag } from "../command.ts";
import { parseTimeFlag } from "../durations.ts";
import { CheckFailedError } from "../errors.ts";
import { jsonText, table, when } from "../render.ts";

export const auditCommand = defineCommand({
  words: ["audit"],
  summary: "the audit log: every change and every automatic decision of the hub",
  args: [],
  flags: [
    { name: "--since", value: "TIME", help: "from this time: 1h (ago), ms since the epoch, or an ISO date" },
    { name: "--until", value: "TIME", help: "up to this time (same forms)" },
    { name: "--actor", value: "ACTOR", help: "only entries of this actor (token:NAME, bootstrap, hub)" },
    { name: "--object", value: "OBJECT", help: "only entries about this object" },
    { name: "--limit", value: "N", help: "at most this many entries" },
  ],
  async run(ctx, p) {
    const now = ctx.now();
    const { entries } = await ctx.client.get<{ entries: AuditEntry[] }>("/api/v1/audit", {
      since: parseTimeFlag(p.flags["--since"], "--since", now),
      until: parseTimeFlag(p.flags["--until"], "--until", now),
      actor: p.flags["--actor"],
      object: p.flags["--object"],
      limit: intFlag(p, "--limit", 1, 100_000),
    });
    if (ctx.json) return ctx.out(jsonText({ entries }));
    if (entries.length === 0) return ctx.out("no entries");
    ctx.out(
      table(
        ["SEQ", "AT", "ACTOR", "ACTION", "OBJECT"],
        entries.map((e) => [String(e.seq), when(e.at), e.actor, e.action, e.object]),
      ),
    );
  },
});

export const auditVerifyCommand = defineCommand({
  words: ["audit", "verify"],
  summary: "check the audit log's hash chain; exits 1 and names the first bad entry if it was edited",
  args: [],
  flags: [],
  async run(ctx) {
    const v = await ctx.client.get<AuditVerify>("/api/v1/audit/verify");
    if (ctx.json) ctx.out(jsonText(v));
    else if (v.ok) ctx.out(`audit log intact: ${v.entries} entries verified`);
    if (!v.ok) {
      const bad = v.first_bad ? `entry ${v.first_bad.seq}: ${v.first_bad.reason}` : "no entry named";
      throw new CheckFailedError(`audit log broken after ${v.entries} entries; first bad ${bad}`);
    }
  },
});
