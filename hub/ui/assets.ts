// The dashboard's files as the hub serves them: embedded in a compiled hub, or bundled on first request from a checkout.
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import type { UiFile } from "./bundle.ts";

/** One file ready to serve: its bytes, gzipped bytes and an ETag. */
export interface UiAsset {
  name: string;
  type: string;
  body: Uint8Array;
  gzip: Uint8Array;
  etag: string;
}

/** The dashboard's files by name (`index.html`, `main-<hash>.js`, ...). */
export type UiAssets = Map<string, UiAsset>;

function prepare(files: UiFile[]): UiAssets {
  const out: UiAssets = new Map();
  for (const f of files) {
    const body = new TextEncoder().encode(f.text);
    out.set(f.name, {
      name: f.name,
      type: f.type,
      body,
      gzip: gzipSync(body, { level: 9 }),
      etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
    });
  }
  return out;
}

/**
 * Where the files come from: `embedded` (a compiled hub carries them, see hub/ui/embed.ts), else
 * `bundle` (Bun.build over hub/ui/web), run once, on the first request that needs them.
 */
export function uiAssetSource(o: {
  embedded?: UiFile[] | undefined;
  bundle: () => Promise<UiFile[]>;
}): () => Promise<UiAssets> {
  let ready: Promise<UiAssets> | undefined;
  return () => {
    ready ??= o.embedded ? Promise.resolve(prepare(o.embedded)) : o.bundle().then(prepare);
    // A failed bundle is tried again on the next request, not remembered.
    ready.catch(() => {
      ready = undefined;
    });
    return ready;
  };
}
