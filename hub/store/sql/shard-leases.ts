// Node-level controllers split by node: N shard leases shared fairly among the live holders.
import { RequestError } from "../../../shared/errors.ts";
import { checkName, type Leases } from "./leases.ts";

const utf8 = new TextEncoder();

/** FNV-1a (32-bit) over the id's UTF-8 bytes: a hash that every replica and every version computes alike. */
export function fnv1a(id: string): number {
  let h = 0x811c9dc5;
  for (const b of utf8.encode(id)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The shard (0..shards-1) that `node` belongs to. */
export function shardOf(node: string, shards: number): number {
  if (typeof node !== "string" || node.length === 0)
    throw new RequestError(`node must be a non-empty string, not ${JSON.stringify(node)}`, "node");
  if (!Number.isSafeInteger(shards) || shards < 1)
    throw new RequestError(`shards must be an integer >= 1, not ${shards}`, "shards");
  return fnv1a(node) % shards;
}

/** How many of `shards` the holder at `index` of `holders` (sorted) should hold: a fair share, the rest to the first. */
export function fairShare(shards: number, holders: number, index: number): number {
  return Math.floor(shards / holders) + (index < shards % holders ? 1 : 0);
}

export interface ShardLeasesOptions {
  leases: Leases;
  /** Names the controller: its leases are `<prefix>/shard/<i>` and `<prefix>/holder/<holder>`. */
  prefix: string;
  shards: number;
  holder: string;
  ttlMs: number;
}

/** What one round changed, and what the holder holds after it (shard numbers, ascending). */
export interface ShardRound {
  held: number[];
  gained: number[];
  lost: number[];
}

/**
 * One holder's share of a controller's shards. Each holder calls `round(now)` every ttl/3: it renews
 * its membership lease (how holders find each other, shards or none), renews the shards it holds,
 * gives up any above its fair share and takes free ones below it. Holders that die stop renewing;
 * once their leases expire the others' shares grow and take their shards. A holder acts on a shard
 * only while it is in `held`, with that shard's epoch.
 */
export class ShardLeases {
  readonly #o: ShardLeasesOptions;
  readonly #held = new Map<number, { epoch: number; expiresAt: number }>();

  constructor(opts: ShardLeasesOptions) {
    checkName("lease prefix", opts.prefix);
    checkName("holder", opts.holder);
    if (!Number.isSafeInteger(opts.shards) || opts.shards < 1 || opts.shards > 4096)
      throw new RequestError(`shards must be an integer from 1 to 4096, not ${opts.shards}`, "shards");
    this.#o = opts;
  }

  /** The epoch of a held shard (to write with). */
  epochOf(shard: number): number | undefined {
    return this.#held.get(shard)?.epoch;
  }

  /** The shards held whose leases are still live at `now` minus `skewMs`: what to act on when a round failed. */
  heldAt(now: number, skewMs = 0): number[] {
    return [...this.#held]
      .filter(([, h]) => h.expiresAt - skewMs > now)
      .map(([s]) => s)
      .sort((a, b) => a - b);
  }

  /** One pass: membership, renewals, then give or take toward the fair share. */
  async round(now: number): Promise<ShardRound> {
    const { leases, prefix, shards, holder, ttlMs } = this.#o;
    const gained: number[] = [];
    const lost: number[] = [];
    const member = await leases.acquire(`${prefix}/holder/${holder}`, holder, ttlMs, now);
    const holders = (await leases.live(`${prefix}/holder/`, now)).map((l) => l.holder);
    // Our own membership counts even if it could not be taken (a name clash): we still hold shards.
    if (!member.held && !holders.includes(holder)) holders.push(holder);
    holders.sort();
    const target = fairShare(shards, holders.length, holders.indexOf(holder));

    for (const [shard, h] of [...this.#held]) {
      if (await leases.renew(this.#name(shard), holder, h.epoch, ttlMs, now)) h.expiresAt = now + ttlMs;
      else {
        this.#held.delete(shard);
        lost.push(shard);
      }
    }
    // The highest-numbered first, so that who gives up what does not depend on the order of rounds.
    const extra = [...this.#held.keys()]
      .sort((a, b) => b - a)
      .slice(0, Math.max(0, this.#held.size - target));
    for (const shard of extra) {
      const h = this.#held.get(shard)!;
      this.#held.delete(shard);
      lost.push(shard);
      await leases.release(this.#name(shard), holder, h.epoch);
    }
    if (this.#held.size < target) {
      const taken = new Set(
        (await leases.live(`${prefix}/shard/`, now)).map((l) =>
          Number(l.name.slice(l.name.lastIndexOf("/") + 1)),
        ),
      );
      // Each holder looks from its own starting point, so that newcomers do not all race for shard 0.
      const start = shardOf(holder, shards);
      for (let i = 0; i < shards && this.#held.size < target; i++) {
        const shard = (start + i) % shards;
        if (taken.has(shard) || this.#held.has(shard)) continue;
        const got = await leases.acquire(this.#name(shard), holder, ttlMs, now);
        if (got.held) {
          this.#held.set(shard, { epoch: got.epoch, expiresAt: got.expiresAt });
          gained.push(shard);
        }
      }
    }
    return { held: this.heldAt(now), gained: gained.sort((a, b) => a - b), lost: lost.sort((a, b) => a - b) };
  }

  /** Gives up every shard and the membership (a clean shutdown): the others take them at their next round. */
  async releaseAll(): Promise<void> {
    const { leases, prefix, holder } = this.#o;
    for (const [shard, h] of [...this.#held]) {
      this.#held.delete(shard);
      await leases.release(this.#name(shard), holder, h.epoch);
    }
    const member = await leases.get(`${prefix}/holder/${holder}`);
    if (member?.holder === holder) await leases.release(member.name, holder, member.epoch);
  }

  #name(shard: number): string {
    return `${this.#o.prefix}/shard/${shard}`;
  }
}
