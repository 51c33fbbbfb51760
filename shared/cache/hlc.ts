// Hybrid logical clocks: a timestamp that follows wall time yet never goes back and always passes what it has seen.
//
// A stamp is (wall ms, counter, node). Its text form, "WWWWWWWWWWWWWWW.CCCCCC.node", sorts as the stamps
// do, so SQLite and plain string comparison order it correctly. Ties between nodes break by node id:
// two writes never share a stamp, so last-writer-wins picks the same winner on every node.
import { RequestError } from "../errors.ts";

export interface Stamp {
  wall: number;
  counter: number;
  node: string;
}

const WALL_DIGITS = 15;
const COUNTER_DIGITS = 6;
const MAX_COUNTER = 10 ** COUNTER_DIGITS - 1;
/** A remote stamp further ahead of local wall time than this is refused: it would drag every clock with it. */
export const MAX_DRIFT_MS = 60_000;

/** The sortable text form of a stamp. */
export function formatStamp(s: Stamp): string {
  return `${String(s.wall).padStart(WALL_DIGITS, "0")}.${String(s.counter).padStart(COUNTER_DIGITS, "0")}.${s.node}`;
}

const STAMP = /^(\d{15})\.(\d{6})\.(.{1,128})$/;

/** Parses the text form; RequestError naming `field` when it is not one. */
export function parseStamp(text: unknown, field = "hlc"): Stamp {
  const m = typeof text === "string" ? STAMP.exec(text) : null;
  if (!m) throw new RequestError("must be a hybrid clock stamp WALL.COUNTER.NODE", field);
  return { wall: Number(m[1]), counter: Number(m[2]), node: m[3]! };
}

/** -1, 0 or 1 as a is before, equal to or after b (text forms compare the same way). */
export function compareStamps(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** One node's hybrid clock. `now` is its physical clock. */
export class HybridClock {
  readonly #node: string;
  readonly #now: () => number;
  #wall = 0;
  #counter = 0;

  constructor(node: string, now: () => number, since?: string) {
    this.#node = node;
    this.#now = now;
    if (since) this.#merge(parseStamp(since));
  }

  /** A new stamp for a local event, after every stamp this clock issued or saw. */
  tick(): string {
    const pt = this.#now();
    if (pt > this.#wall) {
      this.#wall = pt;
      this.#counter = 0;
    } else this.#bump();
    return formatStamp({ wall: this.#wall, counter: this.#counter, node: this.#node });
  }

  /**
   * Takes in a stamp from another node so that the next tick follows it. A stamp more than
   * MAX_DRIFT_MS ahead of this node's wall time is refused (RequestError on `field`).
   */
  observe(text: string, field = "hlc"): void {
    const s = parseStamp(text, field);
    if (s.wall > this.#now() + MAX_DRIFT_MS)
      throw new RequestError(`is ${s.wall - this.#now()} ms ahead of this node's clock`, field);
    this.#merge(s);
  }

  /** The last stamp issued or seen (text form), without advancing. */
  last(): string {
    return formatStamp({ wall: this.#wall, counter: this.#counter, node: this.#node });
  }

  #merge(s: Stamp): void {
    if (s.wall > this.#wall) {
      this.#wall = s.wall;
      this.#counter = s.counter;
    } else if (s.wall === this.#wall && s.counter > this.#counter) this.#counter = s.counter;
  }

  #bump(): void {
    if (this.#counter < MAX_COUNTER) this.#counter++;
    else {
      // A million events in one millisecond: borrow the next millisecond rather than wrap.
      this.#wall++;
      this.#counter = 0;
    }
  }
}
