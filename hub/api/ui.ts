// /ui/: the dashboard's files, served by the hub itself (no second server, no CDN).
import type { Context, Hono } from "hono";
import type { UiAssets } from "../ui/index.ts";
import { describeRoute } from "./openapi.ts";

// The pages call only this hub; nothing inline but styles, nothing framed.
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** True when the client asks for a web page (a browser's Accept: text/html), not JSON. */
export const wantsHtml = (accept: string | undefined): boolean =>
  !!accept && accept.includes("text/html") && !accept.startsWith("application/json");

function serve(c: Context, assets: UiAssets, name: string): Response {
  const a = assets.get(name);
  if (!a) return c.json({ error: { code: "not_found", message: `no dashboard file ${name}` } }, 404);
  const headers: Record<string, string> = {
    ...SECURITY_HEADERS,
    "content-type": a.type,
    etag: a.etag,
    vary: "accept-encoding",
    // Scripts are named by their hash; the page is not, so it is checked every time.
    "cache-control": name === "index.html" ? "no-cache" : "public, max-age=31536000, immutable",
  };
  if (c.req.header("if-none-match") === a.etag) return new Response(null, { status: 304, headers });
  const gzip = /\bgzip\b/.test(c.req.header("accept-encoding") ?? "");
  if (gzip) headers["content-encoding"] = "gzip";
  return new Response(gzip ? a.gzip : a.body, { headers });
}

/** Adds GET /ui/ and /ui/{file} to `app` (public: the files hold no data; every call they make sends the operator's token). */
export function mountUi(app: Hono, assets: () => Promise<UiAssets>): void {
  // A hub compiled without the build's entry has no pages to give: it says so instead of a 500.
  const answer = async (c: Context, name: (c: Context) => string) => {
    let files: UiAssets;
    try {
      files = await assets();
    } catch (err) {
      const message = `the dashboard is not available on this hub: ${(err as Error).message}`;
      return c.json({ error: { code: "unavailable", message } }, 503);
    }
    return serve(c, files, name(c));
  };
  app.get(
    "/ui",
    describeRoute({ summary: "the dashboard (redirect to /ui/)", public: true, contentType: "text/html" }),
    (c) => c.redirect("/ui/", 301),
  );
  app.get(
    "/ui/",
    describeRoute({ summary: "the dashboard's page", public: true, contentType: "text/html" }),
    (c) => answer(c, () => "index.html"),
  );
  app.get(
    "/ui/:file",
    describeRoute({
      summary: "the dashboard's scripts and styles",
      public: true,
      contentType: "application/javascript",
    }),
    (c) => answer(c, (c) => c.req.param("file") ?? ""),
  );
}
