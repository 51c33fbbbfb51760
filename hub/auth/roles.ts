// Which role a request needs: one table of method + route to the least role, default by method.

/** Operator roles, weakest first: each holds every right of the ones before it. */
export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** True when `held` is at least `needed`. */
export function roleAllows(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** Methods that read; everything else changes something. */
export const READ_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Routes that need more than their method's default, first match wins. Anything not listed needs
 * `viewer` to read and `operator` to change, so a route added later is covered without a line here.
 */
const RULES: { methods: "read" | "change"; path: RegExp; role: Role; why: string }[] = [
  { methods: "change", path: /^\/api\/v1\/tokens(\/|$)/, role: "admin", why: "operator tokens" },
  { methods: "change", path: /^\/api\/v1\/join-tokens(\/|$)/, role: "admin", why: "join tokens" },
  { methods: "change", path: /^\/api\/v1\/nodes\/[^/]+\/reset-key$/, role: "admin", why: "node key reset" },
  { methods: "change", path: /^\/api\/v1\/(hub|config)(\/|$)/, role: "admin", why: "hub config" },
];

/** The least role that may send `method` to `path` (a request path under /api/v1). */
export function requiredRole(method: string, path: string): Role {
  const reads = READ_METHODS.has(method.toUpperCase());
  for (const r of RULES) {
    if ((r.methods === "read") === reads && r.path.test(path)) return r.role;
  }
  return reads ? "viewer" : "operator";
}
