// Ranking feasible nodes: higher score first, ties broken by node id, so equal inputs give equal plans.

/** True when (scoreA, rankA) ranks before (scoreB, rankB). */
export function before(scoreA: number, rankA: number, scoreB: number, rankB: number): boolean {
  return scoreA > scoreB || (scoreA === scoreB && rankA < rankB);
}

/**
 * The best k of `count` scored nodes, best first, as positions into `nodes`/`scores`.
 * A bounded heap: O(count log k), and no allocation that grows with the fleet.
 */
export function topK(
  nodes: ArrayLike<number>,
  scores: ArrayLike<number>,
  count: number,
  rank: Uint32Array,
  k: number,
): Int32Array {
  const size = Math.min(k, count);
  const heap = new Int32Array(size); // positions; heap[0] is the worst kept
  let n = 0;
  const worse = (a: number, b: number) => before(scores[b]!, rank[nodes[b]!]!, scores[a]!, rank[nodes[a]!]!);
  const siftDown = (start: number) => {
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && worse(heap[l]!, heap[m]!)) m = l;
      if (r < n && worse(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      const t = heap[i]!;
      heap[i] = heap[m]!;
      heap[m] = t;
      i = m;
    }
  };
  for (let p = 0; p < count; p++) {
    if (n < size) {
      let i = n++;
      heap[i] = p;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!worse(heap[i]!, heap[parent]!)) break;
        const t = heap[i]!;
        heap[i] = heap[parent]!;
        heap[parent] = t;
        i = parent;
      }
    } else if (size > 0 && worse(heap[0]!, p)) {
      heap[0] = p;
      siftDown(0);
    }
  }
  const out = new Int32Array(n);
  for (let j = n - 1; j >= 0; j--) {
    out[j] = heap[0]!;
    heap[0] = heap[--n]!;
    siftDown(0);
  }
  return out;
}

/** Every scored node, best first, as positions. */
export function sortAll(
  nodes: ArrayLike<number>,
  scores: ArrayLike<number>,
  count: number,
  rank: Uint32Array,
) {
  const order = new Int32Array(count);
  for (let p = 0; p < count; p++) order[p] = p;
  order.sort((a, b) => {
    const d = scores[b]! - scores[a]!;
    return d !== 0 ? d : rank[nodes[a]!]! - rank[nodes[b]!]!;
  });
  return order;
}
