// `tokens list|create|revoke`: operator tokens with roles.
import type { TokenView } from "../api-types.ts";
import { arg, defineCommand } from "../command.ts";
import { age, jsonText, table, when } from "../render.ts";

export const ROLES = ["viewer", "operator", "admin"] as const;

export const tokensListCommand = defineCommand({
  words: ["tokens", "list"],
  summary: "list operator tokens (never their secrets)",
  args: [],
  flags: [],
  async run(ctx) {
    const { tokens } = await ctx.client.get<{ tokens: TokenView[] }>("/api/v1/tokens");
    if (ctx.json) return ctx.out(jsonText({ tokens }));
    const now = ctx.now();
    if (tokens.length === 0) return ctx.out("no tokens (the bootstrap admin token is not listed)");
    ctx.out(
      table(
        ["ID", "NAME", "ROLE", "CREATED", "EXPIRES", "LAST USED", "REVOKED"],
        tokens.map((t) => [
          t.id,
          t.name,
          t.role,
          when(t.created_at),
          t.expires_at === null ? "never" : when(t.expires_at),
          age(t.last_used_at, now),
          t.revoked_at ? when(t.revoked_at) : "-",
        ]),
      ),
    );
  },
});

export const tokensCreateCommand = defineCommand({
  words: ["tokens", "create"],
  summary: "mint a token with a role; its secret is printed once",
  args: [{ name: "NAME" }],
  flags: [
    { name: "--role", value: "ROLE", help: "viewer, operator or admin (default viewer)", choices: ROLES },
    { name: "--expires-in", value: "DURATION", help: "lifetime, e.g. 24h (default: never expires)" },
  ],
  async run(ctx, p) {
    const body: Record<string, string> = { name: arg(p, "NAME"), role: p.flags["--role"] ?? "viewer" };
    if (p.flags["--expires-in"] !== undefined) body.expires_in = p.flags["--expires-in"];
    const t = await ctx.client.post<TokenView>("/api/v1/tokens", body);
    if (ctx.json) return ctx.out(jsonText(t));
    ctx.err(
      `token ${t.id} (${t.name}, role ${t.role}, expires ${t.expires_at === null ? "never" : when(t.expires_at)}); the secret below is shown only now:`,
    );
    ctx.out(t.token ?? "");
  },
});

export const tokensRevokeCommand = defineCommand({
  words: ["tokens", "revoke"],
  summary: "revoke a token: it stops working at once",
  args: [{ name: "ID" }],
  flags: [],
  async run(ctx, p) {
    const id = arg(p, "ID");
    const answer = await ctx.client.delete<{ id: string; revoked_at: number }>(
      `/api/v1/tokens/${encodeURIComponent(id)}`,
    );
    if (ctx.json) return ctx.out(jsonText(answer));
    ctx.out(`revoked token ${answer.id} at ${when(answer.revoked_at)}`);
  },
});
