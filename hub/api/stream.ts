// GET /api/v1/stream: the live feed as server-sent events, read with fetch() and a bearer header.
import { Hono } from "hono";
import { encodeEvent, type LiveFeed } from "../live/index.ts";
import { describeRoute } from "./openapi.ts";

/** How often a comment line keeps an idle stream (and the proxies on its way) open. */
export const KEEPALIVE_MS = 15_000;

/** Bun's server, when the hub passes it to the app: a stream must not hit the idle timeout. */
interface ServerEnv {
  server?: { timeout?(req: Request, seconds: number): void };
}

/** How often an open stream checks that its token is still good (revoked or expired: the stream ends). */
export const RECHECK_MS = 5_000;

export interface StreamOptions {
  keepaliveMs?: number;
  recheckMs?: number;
  /**
   * Whether the request's Authorization header would still be let in, asked again while the stream
   * is open: a token revoked after the stream began must not go on reading the fleet.
   */
  stillAllowed?: (authorization: string) => Promise<boolean>;
}

/** Routes under /api/v1/stream (mounted behind the API's authentication). */
export function streamApi(feed: LiveFeed, o: StreamOptions = {}): Hono<{ Bindings: ServerEnv }> {
  const keepaliveMs = o.keepaliveMs ?? KEEPALIVE_MS;
  const app = new Hono<{ Bindings: ServerEnv }>();
  app.get(
    "/",
    describeRoute({
      summary: "live events (node, alloc, failover, alert) as server-sent events",
      contentType: "text/event-stream",
    }),
    (c) => {
      c.env?.server?.timeout?.(c.req.raw, 0);
      const authorization = c.req.header("authorization") ?? "";
      const enc = new TextEncoder();
      let close = () => {};
      const body = new ReadableStream<Uint8Array>({
        start(ctl) {
          const send = (text: string) => ctl.enqueue(enc.encode(text));
          send(": novacron live feed\n\n");
          const unsubscribe = feed.subscribe((e) => {
            try {
              send(encodeEvent(e));
            } catch {
              close();
            }
          });
          const keepalive = setInterval(() => {
            try {
              send(": keepalive\n\n");
            } catch {
              close();
            }
          }, keepaliveMs);
          const recheck = o.stillAllowed
            ? setInterval(async () => {
                if (await o.stillAllowed!(authorization).catch(() => false)) return;
                close();
                try {
                  send(": the token is no longer accepted\n\n");
                  ctl.close();
                } catch {}
              }, o.recheckMs ?? RECHECK_MS)
            : undefined;
          close = () => {
            clearInterval(keepalive);
            clearInterval(recheck);
            unsubscribe();
          };
          c.req.raw.signal.addEventListener("abort", () => close(), { once: true });
        },
        cancel() {
          close();
        },
      });
      return new Response(body, {
        headers: {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-store",
          "x-accel-buffering": "no",
        },
      });
    },
  );
  return app;
}
