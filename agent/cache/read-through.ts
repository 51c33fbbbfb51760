// Read-through misses: one origin fetch per key at a time for all concurrent readers, and a stale copy when the origin fails.
import { checkValue } from "../../shared/cache/index.ts";
import { UnavailableError } from "../../shared/errors.ts";
import type { CacheValue } from "./named-store.ts";

export interface Fetched {
  value: CacheValue;
  /** True when the origin failed and this is the old copy. */
  stale: boolean;
}

/** Coalesces misses per key and fetches ORIGIN/KEY (the key percent-encoded). */
export class OriginFetcher {
  readonly #fetch: (url: string) => Promise<Response>;
  readonly #inflight = new Map<string, Promise<Fetched | undefined>>();

  constructor(fetcher: (url: string) => Promise<Response>) {
    this.#fetch = fetcher;
  }

  /**
   * The origin's value of `key` in `cache` (undefined on 404), fetched once for every caller waiting on it;
   * `store` keeps a fetched value. When the origin fails, `stale` is served flagged, or the failure
   * is an UnavailableError when there is no copy.
   */
  get(
    cache: string,
    origin: string,
    key: string,
    stale: CacheValue | undefined,
    store: (value: CacheValue) => void,
    count: (what: "fetched" | "coalesced" | "stale") => void,
  ): Promise<Fetched | undefined> {
    const id = `${cache}\u0000${key}`;
    const running = this.#inflight.get(id);
    if (running) {
      count("coalesced");
      // Each reader of a stale fallback is served stale.
      return running.then((r) => {
        if (r?.stale) count("stale");
        return r;
      });
    }
    const p = (async (): Promise<Fetched | undefined> => {
      count("fetched");
      try {
        const res = await this.#fetch(`${origin.replace(/\/$/, "")}/${encodeURIComponent(key)}`);
        if (res.status === 404) {
          await res.arrayBuffer();
          return undefined;
        }
        if (!res.ok) throw new Error(`origin answered ${res.status}`);
        const binary = (res.headers.get("content-type") ?? "").includes("octet-stream");
        const value: CacheValue = binary ? new Uint8Array(await res.arrayBuffer()) : await res.text();
        checkValue(value);
        store(value);
        return { value, stale: false };
      } catch (err) {
        if (stale === undefined)
          throw new UnavailableError("hub_unreachable", `the origin failed: ${(err as Error).message}`);
        count("stale");
        return { value: stale, stale: true };
      } finally {
        this.#inflight.delete(id);
      }
    })();
    this.#inflight.set(id, p);
    return p;
  }
}
